-- The state export of the scoped tenant (unqualified names): everything an agent can change,
-- keyed by natural keys (ticket number, customer email, source URI), never by uuid or time.
-- One statement, so the export is one snapshot even under concurrent writes. Stripe object ids
-- are the sandbox's and exported as they are (deterministic episodes seed them).

-- name: export-state()^
-- Messages in thread order: by time, and within one transaction (same now()) by content, so
-- ties never fall back to random uuids.
SELECT
  (SELECT coalesce(jsonb_agg(jsonb_build_object(
              'name', c.name, 'email', c.email, 'phone', c.phone,
              'stripe_customer_id', c.stripe_customer_id)
            ORDER BY lower(c.email) COLLATE "C" NULLS LAST, c.name COLLATE "C", c.phone COLLATE "C",
                     c.stripe_customer_id COLLATE "C"), '[]')
   FROM customers c) AS customers,
  (SELECT coalesce(jsonb_agg(jsonb_build_object(
              'number', t.number, 'subject', t.subject, 'description', t.description,
              'status', t.status, 'priority', t.priority, 'assignee', t.assignee,
              'tags', ARRAY(SELECT x FROM unnest(t.tags) AS x ORDER BY x COLLATE "C"),
              'customer', coalesce(c.email, c.name),
              'stripe_refs', ARRAY(SELECT r.ref FROM ticket_stripe_refs r
                                   WHERE r.ticket_id = t.id ORDER BY r.ref COLLATE "C"),
              'messages', coalesce((SELECT jsonb_agg(jsonb_build_object(
                                       'author_role', m.author_role, 'internal', m.internal,
                                       'content', m.content)
                                     ORDER BY m.created_at, m.author_role COLLATE "C",
                                              m.internal, m.content COLLATE "C")
                                    FROM messages m WHERE m.ticket_id = t.id), '[]'))
            ORDER BY t.number), '[]')
   FROM tickets t JOIN customers c ON c.id = t.customer_id) AS tickets,
  (SELECT coalesce(jsonb_agg(jsonb_build_object(
              'refund_id', f.refund_id, 'charge_id', f.charge_id, 'amount', f.amount, 'currency', f.currency,
              'reason', f.reason, 'ticket', t.number)
            ORDER BY f.charge_id COLLATE "C", f.amount, t.number, f.reason COLLATE "C"), '[]')
   FROM stripe_refunds f LEFT JOIN tickets t ON t.id = f.ticket_id) AS refunds,
  (SELECT coalesce(jsonb_agg(jsonb_build_object(
              'source_uri', d.source_uri, 'title', d.title, 'content_hash', d.content_hash)
            ORDER BY d.source_uri COLLATE "C"), '[]')
   FROM documents d) AS documents;
