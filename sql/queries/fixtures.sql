-- Fixtures (issue 12): everything a fixture writes shares one transaction, so one now(). Spread
-- the times so the fixture's order is the order every list shows: ticket i of N starts
-- (N - i) ms before the transaction, its thread follows it in order (:ids, then anything the
-- server wrote itself, such as the status-change note) one microsecond apart.

-- name: order-fixture-ticket(ticket_id, back_ms, ids)!
WITH t AS (
    UPDATE tickets SET created_at = created_at - make_interval(secs => :back_ms / 1000.0)
    WHERE id = :ticket_id
    RETURNING created_at
)
UPDATE messages m
SET created_at = (SELECT created_at FROM t)
    + make_interval(secs => coalesce(array_position(CAST(:ids AS uuid[]), m.id),
                                     cardinality(CAST(:ids AS uuid[])) + 1) / 1000000.0)
WHERE m.ticket_id = :ticket_id;
