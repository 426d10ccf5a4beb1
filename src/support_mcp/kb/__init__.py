"""Per-tenant knowledge base: embeddings, chunking and hybrid search."""
