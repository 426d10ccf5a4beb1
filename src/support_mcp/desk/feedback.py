"""Customer-satisfaction feedback, stored in the global schema keyed by tenant id."""

from __future__ import annotations

from uuid import UUID

from ..db import Database, queries
from .models import FeedbackRecorded


async def record(db: Database, *, tenant_id: UUID, ticket_id: UUID, ticket_number: int, rating: int,
                 comment: str | None, key_id: UUID | None) -> FeedbackRecorded:
    """`tenant_id` and the ticket come from the caller's tenant scope, never from arguments."""
    async with db.global_scope() as conn:
        row = await queries.insert_feedback(conn, tenant_id=tenant_id, ticket_id=ticket_id,
                                            ticket_number=ticket_number, rating=rating, comment=comment,
                                            key_id=key_id)
    return FeedbackRecorded(id=row["id"], ticket_number=ticket_number, rating=row["rating"],
                            created_at=row["created_at"])
