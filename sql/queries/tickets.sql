-- Tickets and their threads, inside one tenant's scope (unqualified names).

-- name: insert-ticket(customer_id, subject, description, priority, tags)^
INSERT INTO tickets (customer_id, subject, description, priority, tags)
VALUES (:customer_id, :subject, :description, :priority, :tags)
RETURNING id, number, customer_id, subject, description, status, priority, assignee, tags,
          created_at, updated_at;

-- name: lock-ticket(id, number)^
-- A ticket by id or by number, row-locked for the rest of the transaction (writes).
SELECT id, number, customer_id, subject, description, status, priority, assignee, tags,
       created_at, updated_at
FROM tickets WHERE id = CAST(:id AS uuid) OR number = CAST(:number AS bigint)
FOR UPDATE;

-- name: list-tickets(status, priority, customer_id, tag, assignee, text_pattern, after_created, after_id, limit)
SELECT id, number, customer_id, subject, status, priority, assignee, tags, created_at, updated_at
FROM tickets
WHERE (CAST(:status AS text) IS NULL OR status = :status)
  AND (CAST(:priority AS text) IS NULL OR priority = :priority)
  AND (CAST(:customer_id AS uuid) IS NULL OR customer_id = :customer_id)
  AND (CAST(:tag AS text) IS NULL OR tags @> ARRAY[CAST(:tag AS text)])
  AND (CAST(:assignee AS text) IS NULL OR assignee = :assignee)
  AND (CAST(:text_pattern AS text) IS NULL
       OR subject ILIKE :text_pattern ESCAPE '\' OR description ILIKE :text_pattern ESCAPE '\')
  AND (CAST(:after_created AS timestamptz) IS NULL
       OR (created_at, id) < (CAST(:after_created AS timestamptz), CAST(:after_id AS uuid)))
ORDER BY created_at DESC, id DESC
LIMIT :limit;

-- name: update-ticket(id, status, priority, set_assignee, assignee, add_tags, remove_tags)^
UPDATE tickets SET
    status = coalesce(:status, status),
    priority = coalesce(:priority, priority),
    assignee = CASE WHEN :set_assignee THEN :assignee ELSE assignee END,
    tags = ARRAY(SELECT DISTINCT x FROM unnest(tags || CAST(:add_tags AS text[])) AS x
                 WHERE x <> ALL (CAST(:remove_tags AS text[])) ORDER BY x),
    updated_at = now()
WHERE id = :id
RETURNING id, number, customer_id, subject, description, status, priority, assignee, tags,
          created_at, updated_at;

-- name: set-ticket-status(id, status)!
UPDATE tickets SET status = :status, updated_at = now() WHERE id = :id;

-- name: touch-ticket(id)!
UPDATE tickets SET updated_at = now() WHERE id = :id;

-- name: insert-message(ticket_id, author_role, internal, content)^
INSERT INTO messages (ticket_id, author_role, internal, content)
VALUES (:ticket_id, :author_role, :internal, :content)
RETURNING id, ticket_id, author_role, internal, content, created_at;

-- name: list-messages(ticket_id, after_created, after_id, limit)
SELECT id, ticket_id, author_role, internal, content, created_at
FROM messages
WHERE ticket_id = :ticket_id
  AND (CAST(:after_created AS timestamptz) IS NULL
       OR (created_at, id) > (CAST(:after_created AS timestamptz), CAST(:after_id AS uuid)))
ORDER BY created_at, id
LIMIT :limit;

-- name: list-latest-messages(ticket_id, limit)
-- The newest `limit` messages, oldest first (a thread too long to show whole).
SELECT * FROM (
    SELECT id, ticket_id, author_role, internal, content, created_at
    FROM messages
    WHERE ticket_id = :ticket_id
    ORDER BY created_at DESC, id DESC
    LIMIT :limit
) newest
ORDER BY created_at, id;

-- name: count-messages(ticket_id)$
SELECT count(*) FROM messages WHERE ticket_id = :ticket_id;

-- name: ticket-status-counts()
SELECT status, count(*) AS n FROM tickets GROUP BY status;

-- name: delete-ticket(id)$
DELETE FROM tickets WHERE id = :id RETURNING number;

-- name: get-ticket-detail(id, number)^
-- The ticket (by id or by number) with its customer and thread size, in one round trip.
SELECT t.id, t.number, t.customer_id, t.subject, t.description, t.status, t.priority, t.assignee, t.tags,
       t.created_at, t.updated_at,
       c.name AS c_name, c.email AS c_email, c.phone AS c_phone, c.stripe_customer_id AS c_stripe_customer_id,
       c.created_at AS c_created_at, c.updated_at AS c_updated_at,
       (SELECT count(*) FROM messages m WHERE m.ticket_id = t.id) AS messages_total
FROM tickets t JOIN customers c ON c.id = t.customer_id
WHERE t.id = CAST(:id AS uuid) OR t.number = CAST(:number AS bigint);
