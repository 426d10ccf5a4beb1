"""Resource kb://{slug}/documents/{id}: a knowledge-base document as markdown."""

from uuid import UUID

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from support_mcp.errors import NotFound, SupportError
from support_mcp.toolkit import app_of

from .tenant import resource_scope


def register(server: MCPServer) -> None:
    @server.resource("kb://{slug}/documents/{document_id}", name="kb_document", mime_type="text/markdown",
                     description="A help-center document of the tenant's knowledge base, as markdown.")
    async def kb_document(slug: str, document_id: str, ctx: Context) -> str:
        async with resource_scope(ctx, slug):
            pass  # authorized, and the tenant exists and is active
        try:
            return await app_of(ctx).kb.document_markdown(slug, UUID(document_id))
        except (ValueError, NotFound):
            raise ResourceNotFoundError(f"document {document_id[:64]} not found") from None
        except SupportError as exc:
            raise ResourceError(str(exc)) from None
