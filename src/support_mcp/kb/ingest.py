"""Ingestion's parts that need no knowledge base: the document to ingest, its content hash and
the batched embedding. `KnowledgeBase.ingest_documents` (kb/service.py) runs them.

Write order per document: new vectors first (Postgres does not know their ids yet, so search
ignores them), then one Postgres transaction replaces the document's chunks, then the stale
vectors go. A search checks every hit against Postgres (never two versions) and asks the engine
again when a document's hits all vanished between the engine query and that check (never none).
Re-ingesting an unchanged document (same content hash) is a no-op."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..settings import Settings
from .chunking import Chunk
from .models import IngestResult

if TYPE_CHECKING:
    from .service import KnowledgeBase

Progress = Callable[[int, int, str], Awaitable[None]]
CHUNK_COLUMNS = ("id", "document_id", "ordinal", "heading_path", "text", "token_count", "dense", "sparse_indices",
                 "sparse_values")
_INSERT_CHUNK = (f"INSERT INTO chunks ({', '.join(CHUNK_COLUMNS)}) "
                 f"VALUES ({', '.join(f'${i}' for i in range(1, len(CHUNK_COLUMNS) + 1))})")


async def write_chunks(conn: Any, records: list[tuple[Any, ...]], *, isolation: str) -> None:
    """Insert chunk rows (CHUNK_COLUMNS order) in the caller's tenant scope: COPY in schema mode,
    INSERT in RLS mode (COPY FROM is refused on tables under row-level security)."""
    if isolation == "rls":
        await conn.executemany(_INSERT_CHUNK, records)
    else:
        await conn.copy_records_to_table("chunks", columns=CHUNK_COLUMNS, records=records)


@dataclass(frozen=True)
class NewDocument:
    title: str
    text: str
    source_uri: str | None = None


@dataclass
class Prepared:
    """A document that needs (re)writing: its chunks and their embedding inputs."""

    title: str
    source_uri: str
    digest: str
    existing_id: uuid.UUID | None
    chunks: list[Chunk]
    inputs: list[str]


def content_hash(settings: Settings, title: str, text: str, model: str) -> str:
    key = f"{model}\0{settings.kb_chunk_tokens}\0{settings.kb_chunk_overlap}\0{title}\0{text}"
    return hashlib.sha256(key.encode()).hexdigest()


async def embed_dense(emb: Any, inputs: list[str], batch: int, progress: Progress | None) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(inputs), batch):
        out += await emb.aembed_documents(inputs[start:start + batch])
        if progress:
            await progress(min(start + batch, len(inputs)), len(inputs), "embedding passages")
    return out


async def ingest_documents(kb: KnowledgeBase, slug: str, docs: list[NewDocument],
                           progress: Progress | None = None) -> list[IngestResult]:
    """Kept for callers not yet moved to `KnowledgeBase.ingest_documents` (episodes fixtures)."""
    return await kb.ingest_documents(slug, docs, progress)
