"""The MCP SDK's internals this server relies on, where `MCPServer` (mcp 2.3) has no public hook:
kept in this one adapter so an SDK upgrade breaks here and nowhere else. Everything else uses the
public API (`list_tools()`, `list_resource_templates()`, `list_prompts()`, `middleware`, ...).

- a registered tool's argument model (the guard validates arguments before the call and names
  unknown ones; the knowledge base bounds `ingest_document`'s `text`): the public
  `list_tools()` gives only the JSON schema;
- the registered resource templates with their URI matcher (the guard names the template a
  `resources/read` URI belongs to for its audit row): `list_resource_templates()` gives only
  the template strings;
- a request handler for `logging/setLevel` (clientlog): MCPServer has no way to add one;
- the Streamable HTTP session manager's admission point and session owners (sessions: the
  per-key session cap): no hook exists before a session is created."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager


def registered_tool(server: Any, name: str) -> Any | None:
    """The SDK's Tool (with `fn_metadata.arg_model` and `parameters`) or None."""
    return server._tool_manager.get_tool(name)  # noqa: SLF001


def resource_templates(server: Any) -> Iterable[Any]:
    """The SDK's ResourceTemplates (each with `name` and `matches(uri)`)."""
    return server._resource_manager.list_templates()  # noqa: SLF001


def add_request_handler(server: Any, method: str, params_type: type, handler: Callable[..., Any]) -> None:
    server._lowlevel_server.add_request_handler(method, params_type, handler)  # noqa: SLF001


def wrap_session_admission(manager: StreamableHTTPSessionManager,
                           wrap_handle: Callable[[Callable[..., Any]], Callable[..., Any]],
                           wrap_admit: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    """Replace the manager's stateful request handler and its session admission with wrappers
    around the SDK's own."""
    manager._handle_stateful_request = wrap_handle(manager._handle_stateful_request)  # type: ignore[method-assign]  # noqa: SLF001
    manager._admit_session = wrap_admit(manager._admit_session)  # type: ignore[method-assign]  # noqa: SLF001


def session_owners(manager: StreamableHTTPSessionManager) -> Iterable[dict[str, Any]]:
    """The owner record (with `client_id`) of each open session."""
    return manager._session_owners.values()  # noqa: SLF001
