"""Markdown views of tickets for resources and prompts.

Every customer- or Stripe-controlled value is either in an untrusted block (subject, description,
every message) or escaped to one line (customer name, email, phone, assignee, tags): see
support_mcp.untrusted. Only the server's own words (numbers, statuses, dates, roles) are bare.
"""

from __future__ import annotations

from ..untrusted import Fence, fenced, one_line
from .models import TicketDetail

__all__ = ["Fence", "fenced", "one_line", "ticket_markdown"]


def ticket_markdown(t: TicketDetail, fence: Fence | None = None) -> str:
    """The ticket as markdown. A prompt passes its own `fence` (one nonce for the whole prompt) and
    states the fence's preamble itself."""
    own = fence is None
    fence = fence or Fence()
    c = t.customer
    tags = ", ".join(one_line(tag, 60) for tag in t.tags) or "none"
    lines = [
        f"# Ticket #{t.number}",
        "",
        f"- status: {t.status}; priority: {t.priority}; assignee: "
        f"{one_line(t.assignee) if t.assignee else '(unassigned)'}",
        f"- tags: {tags}",
        f"- customer name: {one_line(c.name)}",
        f"- customer email: {one_line(c.email) if c.email else '(none)'}; "
        f"phone: {one_line(c.phone, 60) if c.phone else '(none)'}",
        f"- opened: {t.created_at:%Y-%m-%d %H:%M} UTC; updated: {t.updated_at:%Y-%m-%d %H:%M} UTC",
        "",
        *([fence.preamble(), ""] if own else []),
        "## Subject",
        fence.block(t.subject, "subject"),
        "",
        "## Description",
        fence.block(t.description or "(empty)", "description"),
        "",
        f"## Thread ({t.messages_total} message(s), oldest first)",
    ]
    omitted = t.messages_total - len(t.messages)
    if omitted > 0 and not t.messages_next_cursor:  # the newest messages are shown
        lines += ["", f"({omitted} older message(s) omitted; the newest {len(t.messages)} follow)"]
    for m in t.messages:
        note = " (internal note)" if m.internal else ""
        lines += ["", f"### {m.author_role}{note}, {m.created_at:%Y-%m-%d %H:%M} UTC",
                  fence.block(m.content, f"{m.author_role} message")]
    if t.messages_next_cursor:  # a first page: what is missing is newer
        lines += ["", f"(thread truncated: {omitted} newer message(s) not shown)"]
    return "\n".join(lines)
