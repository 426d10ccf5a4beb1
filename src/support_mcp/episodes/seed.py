"""A fixture's desk data (customers, tickets, threads) into an EMPTY tenant, in a few statements.

`fixtures.write_desk` goes through the tools' domain functions, row by row (7-10 round trips per
ticket): right for a tenant that may hold data. An episode's tenant is empty when its fixture is
written (just provisioned, or just emptied by reset), so this writes the same rows set-wise: one
INSERT per table (sql/queries/fixtures.sql, `seed-*`). What the domain functions would add is
added here too: the status-change note a non-open ticket gets, the payment references found in
ticket and message text, the fixture's order in the timestamps (as `order-fixture-ticket`).
tests/episodes/test_seed.py checks both paths export the same state.
"""

from __future__ import annotations

import json
from typing import Any

from ..db import queries
from ..desk.refs import payment_refs
from .fixtures import Fixture


async def write_desk_fast(conn: Any, fixture: Fixture) -> int:
    """In the caller's tenant transaction; returns the number of messages written (the fixture's)."""
    ids: dict[str, Any] = {}
    if fixture.customers:
        ids = {r["email"]: r["id"] async for r in queries.seed_customers(
            conn, names=[c.name for c in fixture.customers], emails=[c.email for c in fixture.customers],
            phones=[c.phone for c in fixture.customers],
            stripe_customer_ids=[c.stripe_customer_id for c in fixture.customers])}
    tickets = fixture.tickets
    if not tickets:
        return 0
    n = len(tickets)
    rows = queries.seed_tickets(
        conn, customer_ids=[ids[t.customer_email.strip().lower()] for t in tickets], subjects=[t.subject for t in tickets],
        descriptions=[t.description for t in tickets], statuses=[t.status for t in tickets],
        priorities=[t.priority for t in tickets],
        assignees=[t.assignee.strip() if t.assignee and t.assignee.strip() else None for t in tickets],
        tags=[json.dumps(t.tags) for t in tickets], back_ms=[n - i for i in range(n)])
    made = sorted([(r["number"], r["id"]) async for r in rows])
    m_ticket, m_role, m_internal, m_content, m_at, r_ticket, r_ref = [], [], [], [], [], [], []
    written = 0
    for t, (_, tid) in zip(tickets, made, strict=True):
        for ref in payment_refs(t.subject, t.description):
            r_ticket.append(tid)
            r_ref.append(ref)
        for k, m in enumerate(t.messages):
            m_ticket.append(tid)
            m_role.append(m.author_role)
            m_internal.append(m.internal)
            m_content.append(m.content)
            m_at.append(k + 1)  # microseconds after the ticket, in thread order
            written += 1
            if m.author_role != "system":  # add_message links the references a message mentions
                for ref in payment_refs(m.content):
                    r_ticket.append(tid)
                    r_ref.append(ref)
        if t.status != "open":  # update_ticket's note, after the fixture's own messages
            m_ticket.append(tid)
            m_role.append("system")
            m_internal.append(True)
            m_content.append(f"Status changed from open to {t.status}.")
            m_at.append(len(t.messages) + 1)
    if m_ticket:
        await queries.seed_messages(conn, ticket_ids=m_ticket, roles=m_role, internals=m_internal,
                                    contents=m_content, at_us=m_at)
    if r_ref:
        await queries.seed_refs(conn, ticket_ids=r_ticket, refs=r_ref)
    return written
