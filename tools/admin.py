"""Feedback and destructive ticket administration."""

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import Field

from support_mcp.confirm import Approval, NotAsked, Outcome, ask, confirmation
from support_mcp.desk import feedback, tickets
from support_mcp.desk.models import DeletePreview, FeedbackRecorded
from support_mcp.guard import current_principal
from support_mcp.toolkit import TenantArg, app_of, scoped, tool

TicketRef = Annotated[str, Field(description="Ticket id (uuid) or number: 1042 or #1042.", min_length=1, max_length=64)]
CONFIRM_HELP = ("Only when the operator allows the confirm argument and your client cannot show a confirmation "
                "dialog: repeat {what} after the user said yes. Otherwise leave it out; the user is asked.")


# A resolver receives the tool's arguments by name, hence one small function per destructive tool.
async def confirm_ticket_delete(ctx: Context, tenant: str, ticket: str, confirm: str | None,
                                dry_run: bool) -> NotAsked | Elicit[Approval]:
    async def question() -> str:
        async with scoped(ctx, tenant) as s:
            found = await tickets.get(s.conn, ticket, messages_limit=1)
        return f"Delete ticket #{found.number} of '{tenant}' with its whole thread? This cannot be undone."

    return await ask(ctx, tenant, dry_run=dry_run, confirm=confirm, question=question)


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
        approval: Annotated[Outcome, Resolve(confirm_ticket_delete)],
        confirm: Annotated[str | None, Field(description=CONFIRM_HELP.format(what="the ticket id or number"),
                                             max_length=64)] = None,
        dry_run: Annotated[bool, Field(description="Only show what would be deleted.")] = False,
    ) -> DeletePreview:
        """Permanently delete a ticket and its thread (needs the admin scope and a confirmation).
        Never confirm on the user's behalf: ask them first, or use dry_run to preview."""
        async with scoped(ctx, tenant) as s:
            return await tickets.delete(s.conn, ticket, approval=confirmation(ctx, approval, confirm), dry_run=dry_run)
