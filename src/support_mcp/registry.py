"""THE tool registry: one entry per tool, its kind and the scope it needs. `toolkit.tool` fills it
when a tool is registered; the guard (authorization, read-only mode, tools/list), OAuth step-up
and the registry-wide tests read it. Resources and prompts need READ_SCOPE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["global", "read", "write", "destructive"]

#: the scope resources and prompts need (they read tenant data)
READ_SCOPE = "read"
#: the scope a tool of each kind needs unless it names its own
DEFAULT_SCOPE: dict[Kind, str | None] = {"global": None, "read": READ_SCOPE, "write": "write",
                                         "destructive": "admin"}


@dataclass(frozen=True)
class ToolSpec:
    name: str
    kind: Kind
    scope: str | None  # None: any identified caller (global tools)

    @property
    def writes(self) -> bool:
        return self.kind in ("write", "destructive")


#: tool name -> its spec, for every registered tool
TOOLS: dict[str, ToolSpec] = {}


def declare(name: str, kind: Kind, scope: str | None = None) -> ToolSpec:
    """Record a tool (toolkit.tool calls this); `scope` defaults by kind."""
    spec = TOOLS[name] = ToolSpec(name, kind, scope or DEFAULT_SCOPE[kind])
    return spec


def spec_of(name: str) -> ToolSpec:
    """The tool's spec; an unknown name is treated as a global tool (the SDK answers it)."""
    return TOOLS.get(name) or ToolSpec(name, "global", None)
