"""resources/list: concrete resources for the caller's tenants, so a client that only lists
resources (and never expands templates) sees something to read: each tenant's profile and its
most recent tickets. Bounded (LIST_TENANTS tenants, RECENT_TICKETS tickets each), and gated by the
guard like a read (the `read` scope, one audit row). Names carry no customer text (ticket
subjects are the customer's words: read the resource for them)."""

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import Resource

from support_mcp import access, tenancy
from support_mcp.desk import tickets
from support_mcp.errors import SupportError
from support_mcp.guard import current_principal
from support_mcp.registry import READ_SCOPE
from support_mcp.logging import get_logger

LIST_TENANTS = 20  # tenants listed (by slug); the templates reach the others
RECENT_TICKETS = 10  # newest tickets listed per tenant

log = get_logger(__name__)


async def concrete_resources(app: Any) -> list[Resource]:
    """Profiles and recent tickets of the tenants the current caller may read."""
    principal = current_principal()
    found: list[Resource] = []
    for slug, name in await tenancy.active_tenant_names(app.db, principal.tenants, LIST_TENANTS):
        try:
            access.authorize(principal, slug, READ_SCOPE)
            async with app.db.tenant_scope(slug) as s:
                recent = await tickets.list_(s.conn, status=None, priority=None, customer=None, tag=None,
                                             assignee=None, query=None, cursor=None, limit=RECENT_TICKETS)
        except SupportError as exc:  # suspended meanwhile, or unreachable: list what can be read
            log.info("resource_listing_skipped", tenant=slug, error=str(exc))
            continue
        found.append(Resource(uri=f"tenant://{slug}/profile", name=f"tenant_profile {slug}",
                              title=f"{name[:80]}: profile and support policies", mime_type="application/json"))
        found += [Resource(uri=f"ticket://{slug}/{t.number}", name=f"ticket {slug} #{t.number}",
                           title=f"Ticket #{t.number} of {slug} ({t.status}, {t.priority})", mime_type="text/markdown")
                  for t in recent.tickets]
    return found


async def _list_resources(ctx: Any, call_next: Any) -> Any:
    """Middleware (inside the guard): add the caller's concrete resources to resources/list."""
    result = await call_next(ctx)
    if ctx.method != "resources/list" or not isinstance(result, dict):
        return result
    extra = [r.model_dump(by_alias=True, exclude_none=True, mode="json")
             for r in await concrete_resources(ctx.lifespan_context)]
    return {**result, "resources": [*result.get("resources", []), *extra]}


def register(server: MCPServer) -> None:
    server.middleware.append(_list_resources)
