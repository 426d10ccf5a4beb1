// A real, independent OpenID provider for the OAuth tests (npm oidc-provider, OpenID-certified).
// Env: OP_JWK (the private signing key, a JWK), OP_RESOURCES (JSON list of resource indicators it issues JWT access tokens for; the first is
// the default), OP_CLIENTS (JSON list of {client_id, client_secret, tenants?, opaque?}), OP_TTL.
// Listens on 127.0.0.1 on a free port and prints "ready <issuer>" on stdout.
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const resources = JSON.parse(process.env.OP_RESOURCES);
const clients = JSON.parse(process.env.OP_CLIENTS);
const ttl = Number(process.env.OP_TTL || 300);
const SCOPES = 'read write admin refund';

// the tests generate the signing key (private JWK) so they can also sign what we would never mint
const jwk = JSON.parse(process.env.OP_JWK);

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const byId = Object.fromEntries(clients.map((c) => [c.client_id, c]));

const provider = new Provider(issuer, {
  jwks: { keys: [jwk] },
  clients: clients.map((c) => ({
    client_id: c.client_id, client_secret: c.client_secret, grant_types: ['client_credentials'],
    redirect_uris: [], response_types: [], scope: SCOPES, token_endpoint_auth_method: 'client_secret_basic',
  })),
  scopes: SCOPES.split(' '),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resources[0],
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator, client) => {
        if (!resources.includes(resourceIndicator)) throw new errors.InvalidTarget();
        const opaque = byId[client.clientId]?.opaque;
        return {
          scope: SCOPES, audience: resourceIndicator, accessTokenTTL: ttl,
          accessTokenFormat: opaque ? 'opaque' : 'jwt', jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  extraTokenClaims: (ctx, token) => {
    const tenants = byId[token.clientId]?.tenants;
    return tenants === undefined ? undefined : { tenants };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
server.on('request', provider.callback());
console.log(`ready ${issuer}`);
