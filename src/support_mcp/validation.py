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


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


class ArgumentErrors:
    """ServerMiddleware: pre-validates tools/call so clients get one actionable line, and
    refuses unknown argument names (a misspelt filter must not silently widen a query)."""

    server: MCPServer | None = None  # set right after the server is built


    async def __call__(self, ctx: Any, call_next: CallNext) -> HandlerResult:
        if self.server is not None and ctx.method == "tools/call" and isinstance(ctx.params, dict):
            tool = self.server._tool_manager.get_tool(str(ctx.params.get("name")))  # noqa: SLF001
            if tool is not None:
                model = tool.fn_metadata.arg_model
                arguments = ctx.params.get("arguments") or {}
                unknown = sorted(set(arguments) - set(model.model_fields)) if isinstance(arguments, dict) else []
                try:
                    model.model_validate(arguments)
                except ValidationError as exc:
                    return _error(summarize(exc))
                if unknown:
                    known = ", ".join(n for n in model.model_fields if n != "ctx")
                    return _error(f"invalid arguments: {', '.join(u[:40] for u in unknown[:5])}: "
                                  f"not an argument of this tool (its arguments: {known})")
        return await call_next(ctx)
