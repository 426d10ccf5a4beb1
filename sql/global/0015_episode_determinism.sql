-- Global schema kind, version 15: deterministic episodes (issue 12, item 4). An episode created
-- with --deterministic records it here with its frozen clock (the instant its tools and its
-- Stripe sandbox treat as "now"); `eval tasks` replays only on deterministic episodes.
ALTER TABLE "global".episodes
    ADD COLUMN deterministic boolean NOT NULL DEFAULT false,
    ADD COLUMN clock timestamptz,
    ADD CONSTRAINT episodes_clock_when_deterministic CHECK (deterministic = (clock IS NOT NULL));
