"""Confirmation of destructive actions: one helper for every destructive tool.

The way to confirm is a dialog the *user* answers (MCP elicitation, the SDK's `Resolve(Elicit)`
form): the model cannot answer it for them. The `confirm` argument (repeating the target's id)
is a fallback the model could fill in by itself, so it is off unless the operator enables it
(`SUPPORT_MCP_CONFIRM_FALLBACK=on`, or per key: `keys create --allow-confirm-argument`). A client
without dialogs then gets a one-line refusal that says how to proceed. `dry_run` never needs
confirmation.

Each destructive tool declares a parameter `Annotated[Outcome, Resolve(its_resolver)]` whose
resolver (it receives the tool's arguments by name) returns `await ask(...)`: that authorizes the
caller through the toolkit *before* anything is looked up or any dialog is shown. The tool (or
its domain function) then calls `Confirmation.require(...)` right before the irreversible step.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import Elicit
from pydantic import BaseModel, Field

from .errors import ConfirmationRequired, SupportError
from .guard import current_principal
from .toolkit import app_of, authorize


class Approval(BaseModel):
    """The dialog's form: one checkbox."""

    confirm: bool = Field(description="Yes, do it. This cannot be undone.")


class NotAsked(BaseModel):
    """The resolver showed no dialog (dry run, the fallback argument, or a client without dialogs)."""

    reason: Literal["dry_run", "argument", "no_dialog"]


#: what a destructive tool's confirmation parameter receives (accept / decline / cancel)
Outcome = ElicitationResult[Approval]

FALLBACK_HINT = ("use a client that can show confirmation dialogs (MCP elicitation), or ask the operator to allow "
                 "the confirm argument (SUPPORT_MCP_CONFIRM_FALLBACK=on, or a key created with "
                 "--allow-confirm-argument); dry_run=true previews it")


def fallback_allowed(ctx: Context) -> bool:
    """May this caller confirm by repeating the target in the `confirm` argument?"""
    return bool(app_of(ctx).settings.confirm_fallback or current_principal().allow_confirm_argument)


def can_show_dialogs(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


async def ask(ctx: Context, tenant: str, *, dry_run: bool, confirm: str | None,
              question: Callable[[], Awaitable[str]]) -> NotAsked | Elicit[Approval]:
    """A destructive tool's resolver body. Authorizes `tenant` (the tool's scope, through the
    toolkit) first; `question()` may then look the target up (through the toolkit's scoping) so
    the dialog names exactly what happens, and nothing is asked about what does not exist."""
    if dry_run:
        return NotAsked(reason="dry_run")
    try:
        authorize(ctx, tenant)
        if confirm is not None and fallback_allowed(ctx):
            return NotAsked(reason="argument")
        if not can_show_dialogs(ctx):
            return NotAsked(reason="no_dialog")
        return Elicit(await question(), Approval)
    except SupportError as exc:  # resolvers run before the tool's wrapper: same one-line error
        raise ToolError(str(exc)) from None


@dataclass(frozen=True)
class Confirmation:
    """The outcome of a destructive call's confirmation, checked right before the action."""

    outcome: Any  # an ElicitationResult: Accepted(Approval | NotAsked), Declined or Cancelled
    confirm: str | None
    fallback: bool

    def require(self, *, action: str, accepts: Iterable[str], example: str) -> None:
        """Return only if the user confirmed `action` (e.g. "deleting ticket #12"); otherwise
        raise ConfirmationRequired, nothing done. `accepts`: what the `confirm` argument may repeat
        (when the fallback is allowed); `example`: the value to suggest."""
        if not isinstance(self.outcome, AcceptedElicitation):
            raise ConfirmationRequired(f"the user declined: {action} was not done")
        data = self.outcome.data
        if isinstance(data, Approval):
            if data.confirm:
                return
            raise ConfirmationRequired(f"the user did not confirm: {action} was not done")
        if self.confirm is not None and self.fallback:
            if self.confirm.strip() in {a.strip() for a in accepts}:
                return
            raise ConfirmationRequired(f"confirm must repeat {example!r} to confirm {action}; "
                                       f"got {self.confirm[:60]!r}")
        if self.fallback:
            raise ConfirmationRequired(f"{action} cannot be undone: ask the user, then call again with "
                                       f"confirm='{example}' (or dry_run=true to preview)")
        raise ConfirmationRequired(f"{action} needs the user's confirmation and this client cannot show "
                                   f"confirmation dialogs: {FALLBACK_HINT}")


def confirmation(ctx: Context, outcome: Any, confirm: str | None) -> Confirmation:
    """Bind a tool's resolved confirmation outcome and its `confirm` argument for the check."""
    return Confirmation(outcome, confirm, fallback_allowed(ctx))
