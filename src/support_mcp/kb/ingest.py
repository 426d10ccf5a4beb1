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
from typing import Any

from ..settings import Settings
from .chunking import Chunk

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
    """Decides re-embedding: `model` is the embedder's model_id (its name and model file's SHA-256)."""
    key = f"{model}\0{settings.kb_chunk_tokens}\0{settings.kb_chunk_overlap}\0{title}\0{text}"
    return hashlib.sha256(key.encode()).hexdigest()


def waves(todo: list[tuple[int, Prepared]], chunks: int) -> list[list[tuple[int, Prepared]]]:
    """Whole documents in groups of about `chunks` chunks (a larger document is a group alone)."""
    out: list[list[tuple[int, Prepared]]] = [[]]
    size = 0
    for item in todo:
        if out[-1] and size + len(item[1].inputs) > chunks:
            out.append([])
            size = 0
        out[-1].append(item)
        size += len(item[1].inputs)
    return out


async def embed_dense(emb: Any, inputs: list[str], batch: int, progress: Progress | None, offset: int = 0,
                      total: int | None = None) -> list[Any]:
    out: list[Any] = []
    total = total if total is not None else len(inputs)
    for start in range(0, len(inputs), batch):
        out += await emb.aembed_documents(inputs[start:start + batch])
        if progress:
            await progress(offset + min(start + batch, len(inputs)), total, "embedding passages")
    return out

