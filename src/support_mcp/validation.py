"""One-line argument errors: validate tools/call arguments against the tool's own argument
model first and answer a failure with a short message that names each field and the rule,
without echoing the (possibly huge, possibly private) value back."""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent
from pydantic import ValidationError


def summarize(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not an argument of this tool"
        parts.append(f"{loc}: {msg}")
    more = len(exc.errors()) - len(parts)
    return "invalid arguments: " + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


class ArgumentErrors:
    """ServerMiddleware: pre-validates tools/call so clients get one actionable line."""

    server: MCPServer | None = None  # set right after the server is built


    async def __call__(self, ctx: Any, call_next: CallNext) -> HandlerResult:
        if self.server is not None and ctx.method == "tools/call" and isinstance(ctx.params, dict):
            tool = self.server._tool_manager.get_tool(str(ctx.params.get("name")))  # noqa: SLF001
            if tool is not None:
                try:
                    tool.fn_metadata.arg_model.model_validate(ctx.params.get("arguments") or {})
                except ValidationError as exc:
                    return CallToolResult(content=[TextContent(type="text", text=summarize(exc))], is_error=True)
        return await call_next(ctx)
