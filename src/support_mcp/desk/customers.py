"""Customers of the scoped tenant."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from ..db import queries
from ..errors import Conflict, InvalidInput, NotFound
from .models import Customer
from .refs import is_email, like_pattern, parse_uuid


def _model(row: asyncpg.Record) -> Customer:
    return Customer(**dict(row))


async def create(conn: asyncpg.Connection, name: str, email: str | None = None, phone: str | None = None,
                 stripe_customer_id: str | None = None) -> Customer:
    if email is not None and not is_email(email):
        raise InvalidInput(f"email {email[:80]!r} is not a valid address")
    try:
        row = await queries.insert_customer(conn, name=name.strip(), email=email.strip() if email else None,
                                            phone=phone, stripe_customer_id=stripe_customer_id)
    except asyncpg.UniqueViolationError as exc:  # the unique indexes decide, race-free
        what = f"email {email.strip()}" if email and "email" in (exc.constraint_name or "") else "Stripe customer id"
        raise Conflict(f"a customer with that {what} already exists") from None
    return _model(row)


async def get(conn: asyncpg.Connection, ref: str) -> Customer:
    """By customer id or email."""
    ref = ref.strip()
    if uid := parse_uuid(ref):
        row = await queries.get_customer(conn, id=uid)
    elif is_email(ref):
        row = await queries.get_customer_by_email(conn, email=ref)
    else:
        raise InvalidInput("customer must be a customer id (uuid) or an email address")
    if row is None:
        raise NotFound(f"customer {ref[:80]} not found")
    return _model(row)


async def get_or_create_by_email(conn: asyncpg.Connection, email: str, name: str | None) -> Customer:
    row = await queries.get_customer_by_email(conn, email=email.strip())
    if row is not None:
        return _model(row)
    return await create(conn, name or email.split("@", 1)[0], email=email)


async def resolve_id(conn: asyncpg.Connection, ref: str) -> UUID:
    return (await get(conn, ref)).id


async def find(conn: asyncpg.Connection, *, email: str | None, name: str | None,
               stripe_customer_id: str | None, limit: int) -> list[Customer]:
    if not (email or name or stripe_customer_id):
        raise InvalidInput("give at least one of email, name or stripe_customer_id")
    rows = queries.find_customers(conn, email=email, name_pattern=like_pattern(name) if name else None,
                                  stripe_customer_id=stripe_customer_id, limit=limit)
    return [_model(r) async for r in rows]
