-- Tenant schema kind, version 2: the knowledge base. Postgres is the source of truth (a tenant
-- backup includes its documents); the vector engine holds a copy of each chunk's vectors.

CREATE TABLE documents (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source_uri      text NOT NULL UNIQUE CHECK (length(source_uri) BETWEEN 1 AND 2000),
    title           text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 300),
    content_hash    text NOT NULL,
    embedding_model text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX documents_updated_idx ON documents (updated_at DESC, id DESC);

CREATE TABLE chunks (
    id             uuid PRIMARY KEY,
    document_id    uuid NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
    ordinal        integer NOT NULL CHECK (ordinal >= 0),
    heading_path   text[] NOT NULL DEFAULT '{}',
    text           text NOT NULL CHECK (length(text) BETWEEN 1 AND 100000),
    token_count    integer NOT NULL CHECK (token_count >= 0),
    dense          real[] NOT NULL,
    sparse_indices integer[] NOT NULL,
    sparse_values  real[] NOT NULL,
    UNIQUE (document_id, ordinal)
);
