// A real, independent OpenID provider for the OAuth tests (npm oidc-provider, OpenID-certified).
// Env: OP_JWK (the private signing key, a JWK), OP_RESOURCES (JSON list of resource indicators it issues JWT access tokens for; the first is
// the default), OP_CLIENTS (JSON list of {client_id, client_secret, tenants?, opaque?}), OP_TTL,
// OP_ACCOUNTS (JSON {account id: tenants} for the authorization code flow: dynamic client
// registration is open, and login + consent complete by themselves as the first account).
// Listens on 127.0.0.1 on a free port and prints "ready <issuer>" on stdout.
import http from 'node:http';
import Provider, { errors } from 'oidc-provider';

const resources = JSON.parse(process.env.OP_RESOURCES);
const clients = JSON.parse(process.env.OP_CLIENTS);
const ttl = Number(process.env.OP_TTL || 300);
const accounts = JSON.parse(process.env.OP_ACCOUNTS || '{}');
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
    registration: { enabled: true },
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
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  extraTokenClaims: (ctx, token) => {
    const tenants = token.accountId ? accounts[token.accountId] : byId[token.clientId]?.tenants;
    return tenants === undefined ? undefined : { tenants };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
const callback = provider.callback();
// login and consent without a person: the first account logs in and grants what was asked
async function interact(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    return provider.interactionFinished(req, res, { login: { accountId: Object.keys(accounts)[0] } },
      { mergeWithLastSubmission: false });
  }
  const grant = details.grantId ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}
server.on('request', (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interact(req, res).catch((err) => { console.error(err); res.statusCode = 500; res.end(); });
  } else {
    callback(req, res);
  }
});
console.log(`ready ${issuer}`);
