-- Stripe Connect: the registry lookup (global) and the tenant tables of sql/tenant/0003.

-- name: get-tenant-stripe(slug)^
-- The app role cannot read the secret column: a SECURITY DEFINER function (sql/global/0005).
SELECT id, status, stripe_account_id, stripe_webhook_secret, sandbox
FROM public.support_mcp_tenant_stripe(:slug);

-- name: count-connected-tenants()$
SELECT count(*) FROM public.tenants WHERE stripe_account_id IS NOT NULL;

-- name: store-event(id, type, account, created, payload)^
-- A replay does not store anything new: it counts the delivery and answers the stored state.
INSERT INTO stripe_events AS e (id, type, account, created, payload)
VALUES (:id, :type, :account, to_timestamp(:created), :payload)
ON CONFLICT ON CONSTRAINT stripe_events_pkey DO UPDATE SET deliveries = e.deliveries + 1
RETURNING (xmax = 0) AS inserted, processed_at, outcome, attempts;

-- name: claim-event(id)^
SELECT id, type, payload, attempts
FROM stripe_events
WHERE id = :id AND processed_at IS NULL
FOR UPDATE;

-- name: mark-processed(id, outcome)!
UPDATE stripe_events
SET processed_at = now(), attempts = attempts + 1, outcome = left(:outcome, 500), last_error = NULL
WHERE id = :id;

-- name: mark-failed(id, error)!
UPDATE stripe_events
SET attempts = attempts + 1, last_error = left(:error, 500)
WHERE id = :id AND processed_at IS NULL;

-- name: unprocessed-events(max_attempts, limit)
SELECT id, payload FROM stripe_events
WHERE processed_at IS NULL AND attempts < :max_attempts
ORDER BY received_at
LIMIT :limit;

-- name: event-counts()^
SELECT count(*) AS total, count(*) FILTER (WHERE processed_at IS NULL) AS unprocessed
FROM stripe_events;

-- name: link-refs(ticket_id, refs)!
INSERT INTO ticket_stripe_refs (ref, ticket_id)
SELECT DISTINCT r, CAST(:ticket_id AS uuid) FROM unnest(CAST(:refs AS text[])) AS r
ON CONFLICT DO NOTHING;

-- name: tickets-referencing(refs)
SELECT DISTINCT t.id, t.number, t.status
FROM ticket_stripe_refs r JOIN tickets t ON t.id = r.ticket_id
WHERE r.ref = ANY(CAST(:refs AS text[]))
ORDER BY t.number;

-- name: customer-by-stripe-id(stripe_customer_id)^
SELECT id, name, email, phone, stripe_customer_id, created_at, updated_at
FROM customers WHERE stripe_customer_id = :stripe_customer_id;

-- name: link-customer-stripe-id(id, stripe_customer_id)^
UPDATE customers SET stripe_customer_id = :stripe_customer_id, updated_at = now()
WHERE id = :id AND stripe_customer_id IS NULL
RETURNING id, name, email, phone, stripe_customer_id, created_at, updated_at;

-- name: get-refund-request(idempotency_key)^
SELECT refund_id, charge_id, amount, currency, reason, ticket_id, created_at
FROM stripe_refunds WHERE idempotency_key = :idempotency_key;

-- name: record-refund(idempotency_key, refund_id, charge_id, amount, currency, reason, ticket_id, requested_by)$
INSERT INTO stripe_refunds (idempotency_key, refund_id, charge_id, amount, currency, reason, ticket_id, requested_by)
VALUES (:idempotency_key, :refund_id, :charge_id, :amount, :currency, :reason, :ticket_id, :requested_by)
ON CONFLICT DO NOTHING
RETURNING true;

-- name: tickets-referencing-each(refs)
SELECT r.ref, t.number
FROM ticket_stripe_refs r JOIN tickets t ON t.id = r.ticket_id
WHERE r.ref = ANY(CAST(:refs AS text[]));

-- name: set-tenant-stripe(slug, account, secret)^
UPDATE public.tenants
SET stripe_account_id = :account, stripe_webhook_secret = :secret, updated_at = now()
WHERE slug = :slug
RETURNING slug, stripe_account_id;

-- name: list-connected-slugs()
SELECT slug FROM public.tenants WHERE stripe_account_id IS NOT NULL AND status = 'active' ORDER BY slug;

-- name: charge-context(stripe_customer_id, refs)^
-- lookup_charge's local side in one round trip: the linked customer and the referencing tickets.
SELECT (SELECT to_jsonb(c) FROM (SELECT id, name, email, phone, stripe_customer_id, created_at, updated_at
                                 FROM customers WHERE stripe_customer_id = :stripe_customer_id) c) AS customer,
       ARRAY(SELECT DISTINCT t.number
             FROM ticket_stripe_refs r JOIN tickets t ON t.id = r.ticket_id
             WHERE r.ref = ANY(CAST(:refs AS text[]))
             ORDER BY t.number) AS tickets;

-- name: quarantine-event(event_id, type, reason, body, body_sha256)^
-- sql/tenant/0004: an event that can never be stored as such; the same body again counts a delivery.
INSERT INTO stripe_quarantine AS q (event_id, type, reason, body, body_sha256)
VALUES (:event_id, :type, :reason, :body, :body_sha256)
ON CONFLICT ON CONSTRAINT stripe_quarantine_body_sha256_key DO UPDATE SET deliveries = q.deliveries + 1, last_received_at = now()
RETURNING (xmax = 0) AS inserted;

-- name: list-quarantine(limit)
SELECT id, event_id, type, reason, deliveries, length(body) AS bytes, received_at, last_received_at
FROM stripe_quarantine
ORDER BY received_at DESC, id DESC
LIMIT :limit;

-- name: given-up-events(max_attempts, limit)
SELECT id, type, attempts, last_error, received_at
FROM stripe_events
WHERE processed_at IS NULL AND attempts >= :max_attempts
ORDER BY received_at DESC
LIMIT :limit;
