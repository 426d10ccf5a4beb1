-- Knowledge base of the scoped tenant (unqualified names).

-- name: get-document-by-source(source_uri)^
SELECT id, source_uri, title, content_hash, embedding_model, created_at, updated_at
FROM documents WHERE source_uri = :source_uri;

-- name: get-document(id)^
SELECT d.id, d.source_uri, d.title, d.content_hash, d.embedding_model, d.created_at, d.updated_at,
       (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks
FROM documents d WHERE d.id = :id;

-- name: upsert-document(id, source_uri, title, content_hash, embedding_model)^
INSERT INTO documents (id, source_uri, title, content_hash, embedding_model)
VALUES (:id, :source_uri, :title, :content_hash, :embedding_model)
ON CONFLICT ON CONSTRAINT documents_source_uri_key DO UPDATE  -- named: the same in both isolation modes
SET title = EXCLUDED.title, content_hash = EXCLUDED.content_hash,
    embedding_model = EXCLUDED.embedding_model, updated_at = now()
RETURNING id, (xmax = 0) AS created;

-- name: delete-chunks-of(document_id)
DELETE FROM chunks WHERE document_id = :document_id RETURNING id;

-- name: delete-document(id)$
DELETE FROM documents WHERE id = :id RETURNING id;

-- name: list-documents(after_updated, after_id, limit)
SELECT d.id, d.source_uri, d.title, d.created_at, d.updated_at,
       (SELECT count(*) FROM chunks c WHERE c.document_id = d.id) AS chunks
FROM documents d
WHERE CAST(:after_updated AS timestamptz) IS NULL
   OR (d.updated_at, d.id) < (CAST(:after_updated AS timestamptz), CAST(:after_id AS uuid))
ORDER BY d.updated_at DESC, d.id DESC
LIMIT :limit;

-- name: hydrate-chunks(ids)
SELECT c.id, c.document_id, c.ordinal, c.heading_path, c.text, d.title, d.source_uri
FROM chunks c JOIN documents d ON d.id = c.document_id
WHERE c.id = ANY (CAST(:ids AS uuid[]));

-- name: document-chunks(document_id)
SELECT id, ordinal, heading_path, text, token_count
FROM chunks WHERE document_id = :document_id ORDER BY ordinal;

-- name: all-chunk-vectors(after_id, limit)
SELECT id, document_id, dense, sparse_indices, sparse_values
FROM chunks
WHERE CAST(:after_id AS uuid) IS NULL OR id > :after_id
ORDER BY id
LIMIT :limit;

-- name: count-chunks()$
SELECT count(*) FROM chunks;
