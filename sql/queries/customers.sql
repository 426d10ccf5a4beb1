-- Customers of one tenant. Run inside Database.tenant_scope: names are unqualified.

-- name: insert-customer(name, email, phone, stripe_customer_id)^
INSERT INTO customers (name, email, phone, stripe_customer_id)
VALUES (:name, :email, :phone, :stripe_customer_id)
RETURNING id, name, email, phone, stripe_customer_id, created_at, updated_at;

-- name: get-customer(id)^
SELECT id, name, email, phone, stripe_customer_id, created_at, updated_at
FROM customers WHERE id = :id;

-- name: get-customer-by-email(email)^
SELECT id, name, email, phone, stripe_customer_id, created_at, updated_at
FROM customers WHERE lower(email) = lower(:email);

-- name: find-customers(email, name_pattern, stripe_customer_id, limit)
SELECT id, name, email, phone, stripe_customer_id, created_at, updated_at
FROM customers
WHERE (CAST(:email AS text) IS NULL OR lower(email) = lower(:email))
  AND (CAST(:name_pattern AS text) IS NULL OR name ILIKE :name_pattern ESCAPE '\')
  AND (CAST(:stripe_customer_id AS text) IS NULL OR stripe_customer_id = :stripe_customer_id)
ORDER BY created_at DESC, id DESC
LIMIT :limit;
