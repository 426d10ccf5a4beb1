"""Knowledge-base results (structured tool output)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from ..untrusted import untrusted_field


class IngestResult(BaseModel):
    document_id: UUID
    title: str = untrusted_field("Document text.")
    status: Literal["created", "updated", "unchanged"]
    chunks: int


class DocumentInfo(BaseModel):
    id: UUID
    title: str = untrusted_field("Document text.")
    source_uri: str = untrusted_field("Document text.")
    chunks: int
    created_at: datetime
    updated_at: datetime


class DocumentList(BaseModel):
    documents: list[DocumentInfo]
    next_cursor: str | None


class SearchHit(BaseModel):
    document_id: UUID
    chunk_id: UUID
    title: str = untrusted_field("Document text.")
    heading_path: list[str] = untrusted_field("Document text.")
    snippet: str = untrusted_field("The matching passage of a help-center document.")
    score: float
    source_uri: str = untrusted_field("Document text.")


class SearchResults(BaseModel):
    query: str
    mode: Literal["hybrid", "dense", "sparse"]
    results: list[SearchHit] = Field(description="From this tenant's own documents, best first.")
    global_results: list[SearchHit] | None = Field(
        default=None, description="From the shared global documents (never mixed with the tenant's list).")
