-- Global schema kind, version 8: the per-key rate limit, shared by every server process on this
-- database. One row per (key, fixed window); processes claim tokens from it in small batches
-- (support_mcp.ratelimit). UNLOGGED: counters are cheap to write and a crash only resets them.
-- No foreign key to api_keys: rows are pruned two windows after their window ends.
CREATE UNLOGGED TABLE "global".rate_limit_windows (
    key_id     uuid   NOT NULL,
    window_no  bigint NOT NULL,            -- floor(epoch seconds / window seconds), on the database's clock
    hits       integer NOT NULL CHECK (hits >= 0),
    last_grant integer NOT NULL CHECK (last_grant >= 0),  -- what the latest claim received
    PRIMARY KEY (key_id, window_no)
) WITH (fillfactor = 70);
