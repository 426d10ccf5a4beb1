"""The MCP logging capability: `notifications/message` about the caller's own tool calls.

What a client receives: its own tool-level events (a call started, finished with its outcome,
a retry, a progress milestone), masked exactly like the server log (`mask_pii_processor`). Never
the server log itself, never another session's events:

- Each message rides the stream of the request it belongs to (`related_request_id`), so only the
  session that made the call can receive it. Emitting needs the current request, which only
  `RequestLog` (a server middleware around `tools/call`) provides; outside a request nothing is sent.
- Handshake protocol versions (2025-06-18, 2025-11-25): `logging/setLevel` sets the level for its
  session (kept in the SDK connection's per-session `state`); nothing is sent before a client asks.
  Stateless HTTP has no session, so a level set there lasts for that request only.
- 2026-07-28 (no `logging/setLevel`): the request's own `_meta` opt-in
  (`io.modelcontextprotocol/logLevel`) decides and the SDK filters; absent means nothing is sent.

A client that went away never fails a tool: sending errors are logged and dropped.
"""

from __future__ import annotations

import warnings
from contextvars import ContextVar
from typing import Any, get_args

from mcp.server.context import CallNext, HandlerResult
from mcp.shared.exceptions import MCPDeprecationWarning
from mcp.types import EmptyResult, LoggingLevel, SetLevelRequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from . import sdk_internals
from .logging import get_logger, mask_pii_processor

log = get_logger(__name__)

#: severity-ascending (RFC 5424), as the protocol defines them
LEVELS: tuple[LoggingLevel, ...] = get_args(LoggingLevel)
LOGGER = "support_mcp"  # the `logger` field of every message
_STATE_KEY = "support_mcp_log_level"

_request: ContextVar[Any | None] = ContextVar("support_mcp_client_log_request", default=None)

# The 2026-07-28 revision deprecates the feature; it is still how handshake-era clients get logs.
_DEPRECATED = r"The logging capability is deprecated"
warnings.filterwarnings("ignore", message=_DEPRECATED, category=MCPDeprecationWarning)


def _state(ctx: Any) -> dict[str, Any] | None:
    """The SDK connection's per-session scratch state (one dict per MCP session)."""
    connection = getattr(ctx.session, "_connection", None)  # the SDK exposes no public accessor
    return getattr(connection, "state", None)


async def set_level(ctx: Any, params: SetLevelRequestParams) -> EmptyResult:
    """`logging/setLevel`: remember the level for this session."""
    state = _state(ctx)
    if state is not None:
        state[_STATE_KEY] = params.level
    return EmptyResult()


class RequestLog:
    """Server middleware: makes the current `tools/call` request available to `emit`."""

    async def __call__(self, ctx: Any, call_next: CallNext) -> HandlerResult:
        if ctx.method != "tools/call" or ctx.request_id is None:
            return await call_next(ctx)
        token = _request.set(ctx)
        try:
            return await call_next(ctx)
        finally:
            _request.reset(token)


def wanted(level: LoggingLevel) -> bool:
    """Whether the current request's client asked for messages at `level`."""
    ctx = _request.get()
    if ctx is None:
        return False
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return True  # the request's own _meta opt-in decides, inside the SDK
    state = _state(ctx)
    threshold = state.get(_STATE_KEY) if state is not None else None
    return threshold is not None and LEVELS.index(level) >= LEVELS.index(threshold)


async def emit(level: LoggingLevel, event: str, **fields: Any) -> None:
    """Send one event about the current request to its own client, if it asked for `level`."""
    if not wanted(level):
        return
    ctx = _request.get()
    data = mask_pii_processor(None, level, {"event": event, **fields})
    try:
        await ctx.session.send_log_message(level=level, data=data, logger=LOGGER,
                                           related_request_id=ctx.request_id)
    except Exception as exc:  # noqa: BLE001  # a client that went away must not fail the call
        log.debug("client_log_dropped", error=type(exc).__name__)


def register(server: Any) -> None:
    """Declare the `logging` capability (the SDK declares it when the handler exists)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATED, category=MCPDeprecationWarning)
        sdk_internals.add_request_handler(server, "logging/setLevel", SetLevelRequestParams, set_level)
