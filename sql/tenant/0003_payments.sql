-- Tenant schema kind, version 3: Stripe Connect. Webhook events delivered for the tenant's
-- connected account, which tickets reference which payment objects, and the refunds issued
-- through support-mcp (a durable idempotency record beyond Stripe's 24-hour key window).

CREATE TABLE stripe_events (
    id           text PRIMARY KEY CHECK (id ~ '^evt_[A-Za-z0-9_]{1,255}$'),
    type         text NOT NULL CHECK (length(type) BETWEEN 1 AND 200),
    account      text NOT NULL,
    created      timestamptz NOT NULL,
    payload      jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    deliveries   integer NOT NULL DEFAULT 1,
    attempts     integer NOT NULL DEFAULT 0,
    processed_at timestamptz,
    outcome      text CHECK (length(outcome) <= 500),
    last_error   text CHECK (length(last_error) <= 500)
);
CREATE INDEX stripe_events_unprocessed_idx ON stripe_events (received_at) WHERE processed_at IS NULL;

-- A ticket references a charge, payment intent or dispute: linked when a webhook opens the
-- ticket, when a refund names the ticket, or when ticket text mentions the id.
CREATE TABLE ticket_stripe_refs (
    ref        text NOT NULL CHECK (ref ~ '^(ch|py|pi|dp|du|re)_[A-Za-z0-9]{1,64}$'),
    ticket_id  uuid NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ref, ticket_id)
);
CREATE INDEX ticket_stripe_refs_ticket_idx ON ticket_stripe_refs (ticket_id);

CREATE TABLE stripe_refunds (
    idempotency_key text PRIMARY KEY,
    refund_id       text NOT NULL UNIQUE,
    charge_id       text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        text NOT NULL,
    reason          text NOT NULL,
    ticket_id       uuid REFERENCES tickets (id) ON DELETE SET NULL,
    requested_by    text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_refunds_charge_idx ON stripe_refunds (charge_id);
