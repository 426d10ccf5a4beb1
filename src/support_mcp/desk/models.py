"""Result models (the tools' structured output). Customer-written text stays in its own fields."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from ..untrusted import untrusted_field

Status = Literal["open", "pending", "solved", "closed"]
Priority = Literal["low", "normal", "high", "urgent"]
AuthorRole = Literal["customer", "agent", "ai", "system"]
#: what a tool may post as: `system` notes are written only by the server itself (status changes,
#: Stripe webhook and refund notes), so a caller cannot forge one
PostingRole = Literal["customer", "agent", "ai"]
POSTING_ROLES: tuple[str, ...] = ("customer", "agent", "ai")
SYSTEM_ROLE_REFUSED = "author_role 'system' is reserved for the server's own notes; post as agent or ai"


class Customer(BaseModel):
    id: UUID
    name: str = untrusted_field()
    email: str | None = untrusted_field()
    phone: str | None = untrusted_field()
    stripe_customer_id: str | None
    created_at: datetime
    updated_at: datetime


class CustomerList(BaseModel):
    customers: list[Customer]


class Message(BaseModel):
    id: UUID
    author_role: AuthorRole = Field(description="system: written by the server itself (status changes, Stripe "
                                    "and refund notes); tools cannot post as system.")
    internal: bool = Field(description="Internal note: never shown to the customer.")
    content: str = untrusted_field("The message text, whoever wrote it.")
    created_at: datetime


class TicketSummary(BaseModel):
    id: UUID
    number: int = Field(description="Human ticket number, e.g. 1042 (shown as #1042).")
    customer_id: UUID
    subject: str = untrusted_field()
    status: Status
    priority: Priority
    assignee: str | None = untrusted_field()
    tags: list[str] = untrusted_field()
    created_at: datetime
    updated_at: datetime


class Ticket(TicketSummary):
    description: str = untrusted_field()


class TicketDetail(Ticket):
    customer: Customer
    messages: list[Message] = Field(description="The thread, oldest first (one page).")
    messages_total: int
    messages_next_cursor: str | None = Field(
        description="Pass as messages_cursor to get the next page; null when done."
    )


class TicketList(BaseModel):
    tickets: list[TicketSummary] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null when done.")


class TicketUpdate(BaseModel):
    ticket: Ticket
    changed: list[str] = Field(description="Fields that changed.")


class MessageAdded(BaseModel):
    ticket_id: UUID
    ticket_number: int
    ticket_status: Status
    message: Message


class DeletePreview(BaseModel):
    ticket_id: UUID
    ticket_number: int
    subject: str = untrusted_field()
    messages: int
    deleted: bool = Field(description="False for a dry run or an unconfirmed call.")
    note: str


class FeedbackRecorded(BaseModel):
    id: UUID
    ticket_number: int
    rating: int
    created_at: datetime
