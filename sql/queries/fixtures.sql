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

-- Bulk seeding of an EMPTY tenant (episode create and reset: episodes/seed.py). Each statement writes
-- what the per-row domain functions write (tests compare the two state exports).

-- name: seed-customers(names, emails, phones, stripe_customer_ids)
INSERT INTO customers (name, email, phone, stripe_customer_id)
SELECT u.n, u.e, u.p, u.s
FROM unnest(CAST(:names AS text[]), CAST(:emails AS text[]), CAST(:phones AS text[]),
            CAST(:stripe_customer_ids AS text[])) AS u(n, e, p, s)
RETURNING id, lower(email) AS email;

-- name: seed-tickets(customer_ids, subjects, descriptions, statuses, priorities, assignees, tags, back_ms)
-- In the fixture's order, so the identity hands out the numbers 1001, 1002, ... in that order.
INSERT INTO tickets (customer_id, subject, description, status, priority, assignee, tags, created_at)
SELECT u.c, u.s, u.d, u.st, u.pr, u.a,
       ARRAY(SELECT jsonb_array_elements_text(CAST(u.tg AS jsonb))),
       now() - make_interval(secs => u.back / 1000.0)
FROM unnest(CAST(:customer_ids AS uuid[]), CAST(:subjects AS text[]), CAST(:descriptions AS text[]),
            CAST(:statuses AS text[]), CAST(:priorities AS text[]), CAST(:assignees AS text[]),
            CAST(:tags AS text[]), CAST(:back_ms AS integer[])) WITH ORDINALITY AS u(c, s, d, st, pr, a, tg, back, ord)
ORDER BY u.ord
RETURNING id, number;

-- name: seed-messages(ticket_ids, roles, internals, contents, at_us)!
INSERT INTO messages (ticket_id, author_role, internal, content, created_at)
SELECT u.tid, u.r, u.i, u.c, t.created_at + make_interval(secs => u.us / 1000000.0)
FROM unnest(CAST(:ticket_ids AS uuid[]), CAST(:roles AS text[]), CAST(:internals AS boolean[]),
            CAST(:contents AS text[]), CAST(:at_us AS integer[])) AS u(tid, r, i, c, us)
JOIN tickets t ON t.id = u.tid;

-- name: seed-refs(ticket_ids, refs)!
INSERT INTO ticket_stripe_refs (ref, ticket_id)
SELECT DISTINCT u.r, u.tid FROM unnest(CAST(:refs AS text[]), CAST(:ticket_ids AS uuid[])) AS u(r, tid)
ON CONFLICT DO NOTHING;
