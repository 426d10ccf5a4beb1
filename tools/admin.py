"""Feedback and destructive ticket administration."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import BaseModel, Field

from support_mcp import access
from support_mcp.desk import feedback, tickets
from support_mcp.desk.models import DeletePreview, FeedbackRecorded
from support_mcp.guard import current_principal
from support_mcp.toolkit import TenantArg, app_of, scoped, tool

TicketRef = Annotated[str, Field(description="Ticket id (uuid) or number: 1042 or #1042.", min_length=1, max_length=64)]


class ConfirmDelete(BaseModel):
    confirm: bool = Field(description="Yes: delete this ticket and its whole thread. This cannot be undone.")


async def _ask(ctx: Context, tenant: str, confirm: str | None, dry_run: bool,
               target: str) -> ConfirmDelete | Elicit[ConfirmDelete]:
    """Ask the user to confirm a deletion when the client can show a dialog and no `confirm`
    argument was given; otherwise the tool checks `confirm` itself."""
    caps = ctx.client_capabilities
    if dry_run or confirm is not None or caps is None or caps.elicitation is None:
        return ConfirmDelete(confirm=False)
    access.authorize(current_principal(), tenant, "admin")  # never ask about a tenant the caller can't use
    return Elicit(f"Delete {target} of '{tenant}'? This cannot be undone.", ConfirmDelete)


# Resolvers receive tool arguments by parameter name, hence one small function per tool.
async def confirm_ticket_delete(ctx: Context, tenant: str, ticket: str, confirm: str | None,
                                dry_run: bool) -> ConfirmDelete | Elicit[ConfirmDelete]:
    return await _ask(ctx, tenant, confirm, dry_run, f"ticket {ticket.strip()} with its whole thread")


async def confirm_document_delete(ctx: Context, tenant: str, document_id: str, confirm: str | None,
                                  dry_run: bool) -> ConfirmDelete | Elicit[ConfirmDelete]:
    return await _ask(ctx, tenant, confirm, dry_run, f"knowledge-base document {document_id.strip()}")


def register(server: MCPServer) -> None:
    @tool(server, "write", title="Record feedback")
    async def record_feedback(
        tenant: TenantArg,
        ticket: TicketRef,
        rating: Annotated[int, Field(description="Customer satisfaction, 1 (bad) to 5 (great).", ge=1, le=5)],
        ctx: Context,
        comment: Annotated[str | None, Field(description="The customer's comment.", max_length=5000)] = None,
    ) -> FeedbackRecorded:
        """Record the customer's satisfaction rating for a ticket."""
        async with scoped(ctx, tenant) as s:
            detail = await tickets.get(s.conn, ticket, messages_limit=1)
            tenant_id = s.tenant_id
        return await feedback.record(app_of(ctx).db, tenant_id=tenant_id, ticket_id=detail.id,
                                     ticket_number=detail.number, rating=rating, comment=comment,
                                     key_id=current_principal().key_id)

    @tool(server, "destructive", title="Delete ticket")
    async def delete_ticket(
        tenant: TenantArg,
        ticket: TicketRef,
        ctx: Context,
        approval: Annotated[ConfirmDelete, Resolve(confirm_ticket_delete)],
        confirm: Annotated[str | None, Field(
            description="Repeat the ticket id or number to confirm (needed when your client cannot show a "
            "confirmation dialog).", max_length=64)] = None,
        dry_run: Annotated[bool, Field(description="Only show what would be deleted.")] = False,
    ) -> DeletePreview:
        """Permanently delete a ticket and its thread (needs the admin scope and a confirmation).
        Never confirm on the user's behalf: ask them first, or use dry_run to preview."""
        async with scoped(ctx, tenant) as s:
            return await tickets.delete(s.conn, ticket, confirm=confirm, approved=approval.confirm, dry_run=dry_run)
