"""Tickets and threads of the scoped tenant."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from ..db import queries
from ..errors import InvalidInput, NotFound
from . import customers
from .models import (POSTING_ROLES, SYSTEM_ROLE_REFUSED, Customer, DeletePreview, Message, MessageAdded, Ticket,
                     TicketDetail, TicketList, TicketSummary, TicketUpdate)
from .refs import decode_cursor, encode_cursor, like_pattern, normalize_tags, payment_refs, ticket_ref

if TYPE_CHECKING:
    from ..confirm import Confirmation

# Allowed status moves. `closed` is final: a follow-up is a new ticket.
TRANSITIONS: dict[str, set[str]] = {
    "open": {"pending", "solved", "closed"},
    "pending": {"open", "solved", "closed"},
    "solved": {"open", "pending", "closed"},
    "closed": set(),
}


async def _locked(conn: asyncpg.Connection, ref: str) -> asyncpg.Record:
    """The ticket named by `ref`, row-locked until the transaction ends (every write path)."""
    uid, number = ticket_ref(ref)
    row = await queries.lock_ticket(conn, id=uid, number=number)
    if row is None:
        raise NotFound(f"ticket {ref.strip()[:50]} not found")
    return row


async def create(conn: asyncpg.Connection, *, subject: str, description: str, customer_email: str | None,
                 customer_id: str | None, customer_name: str | None, priority: str,
                 tags: list[str] | None) -> Ticket:
    if bool(customer_email) == bool(customer_id):
        raise InvalidInput("give exactly one of customer_email or customer_id")
    if customer_id:
        cust = await customers.get(conn, customer_id)
    else:
        cust = await customers.get_or_create_by_email(conn, customer_email or "", customer_name)
    row = await queries.insert_ticket(conn, customer_id=cust.id, subject=subject.strip(),
                                      description=description, priority=priority, tags=normalize_tags(tags))
    if refs := payment_refs(subject, description):
        await queries.link_refs(conn, ticket_id=row["id"], refs=refs)
    return Ticket(**dict(row))


async def get(conn: asyncpg.Connection, ref: str, *, messages_cursor: str | None = None,
              messages_limit: int = 50, newest: bool = False) -> TicketDetail:
    """The ticket with one page of its thread, oldest first. `newest`: the last `messages_limit`
    messages instead of the first (for a reader that sees one page only: resources, prompts); the
    older ones left out are `messages_total - len(messages)`, and there is no cursor."""
    uid, number = ticket_ref(ref)
    row = await queries.get_ticket_detail(conn, id=uid, number=number)
    if row is None:
        raise NotFound(f"ticket {ref.strip()[:50]} not found")
    if newest:
        msgs = [Message(**dict(r)) async for r in queries.list_latest_messages(
            conn, ticket_id=row["id"], limit=messages_limit)]
        more = False
    else:
        after_created, after_id = decode_cursor(messages_cursor)
        msgs = [Message(**dict(r)) async for r in queries.list_messages(
            conn, ticket_id=row["id"], after_created=after_created, after_id=after_id, limit=messages_limit + 1)]
        more = len(msgs) > messages_limit
        msgs = msgs[:messages_limit]
    data = dict(row)
    cust = Customer(id=data["customer_id"], **{k[2:]: data.pop(k) for k in list(data) if k.startswith("c_")})
    return TicketDetail(
        **data, customer=cust, messages=msgs,
        messages_next_cursor=encode_cursor(msgs[-1].created_at, msgs[-1].id) if more else None,
    )


async def list_(conn: asyncpg.Connection, *, status: str | None, priority: str | None, customer: str | None,
                tag: str | None, assignee: str | None, query: str | None, cursor: str | None,
                limit: int) -> TicketList:
    customer_id: UUID | None = None
    if customer:
        try:
            customer_id = await customers.resolve_id(conn, customer)
        except NotFound:
            return TicketList(tickets=[], next_cursor=None)
    after_created, after_id = decode_cursor(cursor)
    rows = [TicketSummary(**dict(r)) async for r in queries.list_tickets(
        conn, status=status, priority=priority, customer_id=customer_id,
        tag=normalize_tags([tag])[0] if tag else None, assignee=assignee,
        text_pattern=like_pattern(query) if query else None,
        after_created=after_created, after_id=after_id, limit=limit + 1)]
    more = len(rows) > limit
    rows = rows[:limit]
    return TicketList(tickets=rows, next_cursor=encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)


async def update(conn: asyncpg.Connection, ref: str, *, status: str | None = None, priority: str | None = None,
                 assignee: str | None = None, add_tags: list[str] | None = None,
                 remove_tags: list[str] | None = None) -> TicketUpdate:
    if status is None and priority is None and assignee is None and not add_tags and not remove_tags:
        raise InvalidInput("nothing to update: give status, priority, assignee, add_tags or remove_tags")
    current = await _locked(conn, ref)
    if status is not None and status != current["status"] and status not in TRANSITIONS[current["status"]]:
        allowed = ", ".join(sorted(TRANSITIONS[current["status"]])) or "none (closed is final)"
        raise InvalidInput(
            f"ticket #{current['number']} cannot go from {current['status']} to {status}; allowed: {allowed}"
        )
    unassign = assignee is not None and not assignee.strip()
    row = await queries.update_ticket(
        conn, id=current["id"], status=status, priority=priority, set_assignee=assignee is not None,
        assignee=None if unassign or assignee is None else assignee.strip(),
        add_tags=normalize_tags(add_tags), remove_tags=normalize_tags(remove_tags))
    changed = [k for k in ("status", "priority", "assignee", "tags") if row[k] != current[k]]
    if "status" in changed:
        await queries.insert_message(conn, ticket_id=row["id"], author_role="system", internal=True,
                                     content=f"Status changed from {current['status']} to {row['status']}.")
    return TicketUpdate(ticket=Ticket(**dict(row)), changed=changed)


async def add_message(conn: asyncpg.Connection, ref: str, *, content: str, author_role: str,
                      internal: bool) -> MessageAdded:
    """A message from a caller (never `system`: the server writes those itself with insert_message)."""
    if author_role not in POSTING_ROLES:
        raise InvalidInput(SYSTEM_ROLE_REFUSED if author_role == "system"
                           else f"author_role must be one of {', '.join(POSTING_ROLES)}")
    row = await _locked(conn, ref)
    status = row["status"]
    if status == "closed":
        raise InvalidInput(f"ticket #{row['number']} is closed; open a new ticket for a follow-up")
    if not content.strip():
        raise InvalidInput("content is empty")
    if internal and author_role == "customer":
        raise InvalidInput("customers cannot write internal notes")
    msg = await queries.insert_message(conn, ticket_id=row["id"], author_role=author_role, internal=internal,
                                       content=content)
    if refs := payment_refs(content):
        await queries.link_refs(conn, ticket_id=row["id"], refs=refs)
    if author_role == "customer" and status in ("pending", "solved"):
        status = "open"  # a customer reply reopens the ticket
        await queries.set_ticket_status(conn, id=row["id"], status=status)
    else:
        await queries.touch_ticket(conn, id=row["id"])
    return MessageAdded(ticket_id=row["id"], ticket_number=row["number"], ticket_status=status,
                        message=Message(**dict(msg)))


async def delete(conn: asyncpg.Connection, ref: str, *, approval: Confirmation, dry_run: bool) -> DeletePreview:
    """Delete a ticket and its thread, only when the user confirmed (see support_mcp.confirm)."""
    row = await _locked(conn, ref)
    preview = dict(ticket_id=row["id"], ticket_number=row["number"], subject=row["subject"],
                   messages=await queries.count_messages(conn, ticket_id=row["id"]))
    if dry_run:
        return DeletePreview(**preview, deleted=False,
                             note=f"dry run: would delete ticket #{row['number']} and its {preview['messages']} message(s)")
    n = row["number"]
    approval.require(action=f"deleting ticket #{n}", accepts=(str(row["id"]), str(n), f"#{n}"), example=f"#{n}")
    await queries.delete_ticket(conn, id=row["id"])
    return DeletePreview(**preview, deleted=True, note=f"deleted ticket #{row['number']}")
