-- Tenant schema kind, version 4: webhook events that can never be stored or processed (NUL
-- characters, unpaired surrogates, non-finite numbers, absurd timestamps). The body is kept
-- verbatim (bytea: no value in it needs to be storable) and answered 200 so Stripe stops
-- redelivering; `support-mcp stripe quarantine` lists them. A redelivery of the same body
-- counts, it stores nothing new.

CREATE TABLE stripe_quarantine (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         text NOT NULL CHECK (event_id ~ '^evt_[A-Za-z0-9_]{1,255}$'),
    type             text NOT NULL CHECK (length(type) <= 400),
    reason           text NOT NULL CHECK (length(reason) <= 500),
    body             bytea NOT NULL,
    body_sha256      bytea NOT NULL UNIQUE,
    deliveries       integer NOT NULL DEFAULT 1,
    received_at      timestamptz NOT NULL DEFAULT now(),
    last_received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_quarantine_received_idx ON stripe_quarantine (received_at);
