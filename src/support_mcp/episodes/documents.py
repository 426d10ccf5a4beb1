"""An episode fixture's documents in the knowledge base (create and reset): the fixture's parts as
`NewDocument`s for `KnowledgeBase.load_documents` (bulk, into an empty knowledge base) and
`KnowledgeBase.content_hashes` (reset keeps a namespace that still holds exactly these)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..kb.ingest import NewDocument

if TYPE_CHECKING:
    from ..kb.service import KnowledgeBase
    from .fixtures import DocumentPart


def _new(docs: list[DocumentPart]) -> list[NewDocument]:
    return [NewDocument(d.title, d.text, d.source_uri) for d in docs]


async def fixture_document_hashes(kb: KnowledgeBase, fixture: Any) -> dict[str, str]:
    """source_uri -> content hash of the documents the fixture puts in the knowledge base."""
    return await kb.content_hashes(_new(fixture.documents))


async def ingest_fresh(kb: KnowledgeBase, slug: str, docs: list[DocumentPart]) -> int:
    """Write `docs` into `slug`'s empty knowledge base; returns the number of chunks."""
    return await kb.load_documents(slug, _new(docs))
