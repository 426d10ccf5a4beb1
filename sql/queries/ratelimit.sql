-- The shared per-key rate limit (schema "global"; app role: SELECT, INSERT, UPDATE, DELETE).

-- name: claim-rate-tokens(key_id, window_seconds, want, max_hits)^
-- One round trip: claim up to CAST(:want AS integer) tokens of the key's current window without passing CAST(:max_hits AS integer).
-- In the UPDATE every right-hand side reads the old row, so last_grant is exactly this claim's share
-- even when several processes claim at once (the row lock serializes them).
INSERT INTO "global".rate_limit_windows AS r (key_id, window_no, hits, last_grant)
VALUES (CAST(:key_id AS uuid), floor(extract(epoch FROM now()) / CAST(:window_seconds AS integer))::bigint,
        least(CAST(:want AS integer), CAST(:max_hits AS integer)), least(CAST(:want AS integer), CAST(:max_hits AS integer)))
ON CONFLICT (key_id, window_no) DO UPDATE
   SET hits = r.hits + least(EXCLUDED.last_grant, greatest(CAST(:max_hits AS integer) - r.hits, 0)),
       last_grant = least(EXCLUDED.last_grant, greatest(CAST(:max_hits AS integer) - r.hits, 0))
RETURNING last_grant AS granted,
          ((r.window_no + 1) * CAST(:window_seconds AS integer) - extract(epoch FROM now()))::float8 AS reset_in;

-- name: prune-rate-windows(window_seconds)!
DELETE FROM "global".rate_limit_windows
WHERE window_no < floor(extract(epoch FROM now()) / CAST(:window_seconds AS integer))::bigint - 1;
