"""Fixtures: a tenant's known starting state for evaluation runs, as JSON or YAML.

The field names follow the tools' argument names (see README "Fixtures (for evaluation runs)").
`load_fixture` reads and validates a file; `parse_fixture` validates already-parsed data (an
HTTP body). Every problem is reported at once, as `path: problem` parts of ONE InvalidInput
message. `apply_fixture` writes a valid fixture into an existing tenant through the same domain
functions the tools use; the `stripe` section becomes the tenant's own Stripe sandbox account
(stripe_sandbox/fixture.py: its format and checks; stripe_sandbox/store.py: where it lives)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

from .. import tenancy
from ..db import Database, queries
from ..desk import customers, tickets
from ..desk.models import AuthorRole, Priority, Status
from ..desk.refs import is_email, normalize_tags
from ..errors import InvalidInput
from ..kb.limits import check_document_size
from ..logging import get_logger
from ..stripe_sandbox import store as sandbox
from ..stripe_sandbox.fixture import StripeSection, customer_ids, section_problems
from .documents import ingest_fresh

if TYPE_CHECKING:
    from ..kb.service import KnowledgeBase

log = get_logger(__name__)

MAX_FIXTURE_BYTES = 10 * 1024 * 1024  # a fixture is seed data, not a dump: refuse anything bigger
MAX_REPORTED = 20  # problems named in one message (the rest are counted)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

# the tools' limits (tools/tickets.py, tools/customers.py)
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100_000)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _email(value: str) -> str:
    if not is_email(value) or len(value) > 320:
        raise ValueError("not an email address")
    return value


def _tags(value: list[str]) -> list[str]:
    try:
        return normalize_tags(value)
    except InvalidInput as exc:
        raise ValueError(str(exc)) from None


class TenantPart(_Strict):
    name: Short | None = None
    policies: Annotated[str, Field(max_length=100_000)] | None = None


class CustomerPart(_Strict):
    name: Annotated[Short, Field(max_length=200)]
    email: str
    phone: Annotated[str, Field(max_length=40)] | None = None
    stripe_customer_id: Annotated[str, StringConstraints(pattern=r"^cus_[A-Za-z0-9]{1,64}$")] | None = None

    _check_email = field_validator("email")(_email)


class MessagePart(_Strict):
    author_role: AuthorRole
    content: Text
    internal: bool = False

    @model_validator(mode="after")
    def _customers_are_public(self) -> MessagePart:
        if self.internal and self.author_role == "customer":
            raise ValueError("customers cannot write internal notes")
        return self


class TicketPart(_Strict):
    subject: Short
    description: Text
    customer_email: str
    status: Status = "open"
    priority: Priority = "normal"
    tags: list[str] = Field(default_factory=list, max_length=20)
    assignee: Annotated[str, Field(max_length=200)] | None = None
    messages: list[MessagePart] = Field(default_factory=list)

    _check_email = field_validator("customer_email")(_email)
    _check_tags = field_validator("tags")(_tags)


class DocumentPart(_Strict):
    title: Short
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]  # the KB's own limit applies
    source_uri: Annotated[str, Field(max_length=2000)] | None = None


class Fixture(_Strict):
    clock: AwareDatetime | None = Field(default=None, description="A deterministic episode's frozen \"now\" "
                                        "(ISO 8601 with a zone); default DEFAULT_CLOCK (episodes/service.py).")
    tenant: TenantPart = Field(default_factory=TenantPart)
    customers: list[CustomerPart] = Field(default_factory=list)
    tickets: list[TicketPart] = Field(default_factory=list)
    documents: list[DocumentPart] = Field(default_factory=list)
    stripe: StripeSection | None = Field(default=None, description="The episode's Stripe sandbox account's objects.")


# --- reading ------------------------------------------------------------------------------

def load_fixture(path: str | Path, *, max_bytes: int = MAX_FIXTURE_BYTES) -> Fixture:
    """Read a .json, .yaml or .yml fixture file and validate it (InvalidInput on any problem)."""
    path = Path(path)
    kind = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(path.suffix.lower())
    if kind is None:
        raise InvalidInput(f"fixture {path.name}: unknown format; use a .json, .yaml or .yml file")
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)  # never more than the cap, whatever stat said
    except OSError as exc:
        raise InvalidInput(f"fixture {path.name}: cannot read it ({exc.strerror or exc.__class__.__name__})") from None
    if len(raw) > max_bytes:
        raise InvalidInput(f"fixture {path.name} is larger than {max_bytes // (1024 * 1024)} MB "
                           f"({max_bytes:,} bytes); a fixture is seed data: keep it smaller")
    return parse_fixture(_decode(raw, kind, path.name))


def _decode(raw: bytes, kind: str, name: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"fixture {name}: not UTF-8 text (byte {exc.start})") from None
    try:
        return json.loads(text) if kind == "json" else _yaml(text, name)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"fixture {name}: not valid JSON (line {exc.lineno} column {exc.colno}: "
                           f"{exc.msg})") from None
    except RecursionError:
        raise InvalidInput(f"fixture {name}: nested too deeply") from None


def _yaml(text: str, name: str) -> Any:
    import yaml  # PyYAML (installed with huggingface_hub, under fastembed)

    class NoAliases(yaml.SafeLoader):
        """Aliases (`*name`) refused: a few lines of them expand to billions of nodes to validate."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a fixture",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)

    try:
        return yaml.load(text, Loader=NoAliases)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise InvalidInput(f"fixture {name}: not valid YAML ({where}{problem})") from None


def parse_fixture(data: Any) -> Fixture:
    """Validate parsed fixture data: shapes and values, then cross-references, all reported at once."""
    if not isinstance(data, dict):
        raise InvalidInput("fixture invalid: the top level must be an object with clock, tenant, customers, "
                           "tickets, documents and stripe (all optional)")
    problems: list[str] = []
    fixture: Fixture | None = None
    try:
        fixture = Fixture.model_validate(data)
    except ValidationError as exc:
        problems += [f"{_path(e['loc'])}: {_problem(e)}" for e in exc.errors()]
    problems += _cross_references(data)
    if problems:
        more = f"; and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        raise InvalidInput("fixture invalid: " + "; ".join(problems[:MAX_REPORTED]) + more)
    assert fixture is not None
    return fixture


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _NAME_RE.fullmatch(str(part)):
            out += f".{part}" if out else str(part)
        else:  # an unknown key is the author's text: quoted, escaped (one line), cut
            out += f"[{str(part)[:60]!r}]"
    return out or "(top level)"


def _problem(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required"
    if kind == "model_type":  # not "instance of StripeSection": the author never saw our class names
        return "must be an object"
    msg = err["msg"].removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def _cross_references(data: dict[str, Any]) -> list[str]:
    """Best effort over the raw data (so these show up next to shape errors): duplicate customer
    emails, tickets naming a customer the fixture does not have, Stripe customer ids the stripe
    section does not define, and the stripe section's own references (section_problems)."""
    problems: list[str] = []
    known: dict[str, int] = {}
    customers = data.get("customers")
    for i, c in enumerate(customers if isinstance(customers, list) else []):
        email = c.get("email") if isinstance(c, dict) else None
        if not isinstance(email, str) or not is_email(email):
            continue
        key = email.strip().lower()
        if key in known:
            problems.append(f"customers[{i}].email: duplicate of customers[{known[key]}].email")
        else:
            known[key] = i
    stripe_ids, linked = customer_ids(data.get("stripe")), {}
    for i, c in enumerate(customers if isinstance(customers, list) else []):
        cus = c.get("stripe_customer_id") if isinstance(c, dict) else None
        if not isinstance(cus, str):
            continue
        if cus in linked:
            problems.append(f"customers[{i}].stripe_customer_id: duplicate of customers[{linked[cus]}].stripe_customer_id")
        elif isinstance(data.get("stripe"), dict) and cus not in stripe_ids:
            problems.append(f"customers[{i}].stripe_customer_id: no customer {cus!r} in stripe.customers")
        linked.setdefault(cus, i)
    problems += section_problems(data.get("stripe"))
    tickets = data.get("tickets")
    for i, t in enumerate(tickets if isinstance(tickets, list) else []):
        email = t.get("customer_email") if isinstance(t, dict) else None
        if isinstance(email, str) and is_email(email) and email.strip().lower() not in known:
            problems.append(f"tickets[{i}].customer_email: no customer with this email in the fixture's customers")
    return problems


# --- writing ------------------------------------------------------------------------------

class FixtureApplied(BaseModel):
    customers: int
    tickets: int
    messages: int
    documents: int
    stripe_account: str | None = Field(None, description="The tenant's Stripe sandbox account (a stripe section).")


async def apply_fixture(db: Database, kb: KnowledgeBase, slug: str, fixture: Fixture, *,
                        stripe_seed: str | int | None = None, stripe_clock: Any = None) -> FixtureApplied:
    """Write a validated fixture into an existing tenant, through the tools' domain functions:
    customers, tickets and threads in ONE tenant transaction (all or nothing), then the tenant's
    name/policies (as the admin), then every document in one knowledge-base ingest, then the stripe
    section as the tenant's sandbox account (stripe_sandbox.store.put_account: `stripe_seed` seeds
    the ids it mints, `stripe_clock` (datetime or unix seconds) freezes its "now")."""
    check_documents(kb, fixture)  # before any write
    async with db.tenant_scope(slug) as s:
        messages = await write_desk(s.conn, fixture)
    if fixture.tenant.name is not None or fixture.tenant.policies is not None:
        await tenancy.set_profile(db, slug, name=fixture.tenant.name, policies=fixture.tenant.policies)
    await write_documents(kb, slug, fixture)
    account = None
    if fixture.stripe is not None:
        account = await sandbox.put_account(db, slug, fixture.stripe, seed=stripe_seed, clock=stripe_clock)
    return FixtureApplied(customers=len(fixture.customers), tickets=len(fixture.tickets), messages=messages,
                          documents=len(fixture.documents), stripe_account=account)


def check_documents(kb: KnowledgeBase, fixture: Fixture) -> None:
    """The knowledge base's size limit on every document, named by its path (before any write)."""
    for i, doc in enumerate(fixture.documents):
        try:
            check_document_size(doc.title, doc.text, kb.settings.kb_max_document_chars)
        except InvalidInput as exc:
            raise InvalidInput(f"fixture invalid: documents[{i}].text: {exc}") from None


async def write_desk(conn: Any, fixture: Fixture) -> int:
    """Customers, tickets and their threads, in the caller's tenant transaction (a scope's
    connection); returns the number of messages written."""
    messages = 0
    for c in fixture.customers:
        await customers.create(conn, c.name, email=c.email, phone=c.phone, stripe_customer_id=c.stripe_customer_id)
    for i, t in enumerate(fixture.tickets):
        ids = []
        ticket = await tickets.create(conn, subject=t.subject, description=t.description,
                                      customer_email=t.customer_email, customer_id=None, customer_name=None,
                                      priority=t.priority, tags=t.tags)
        for m in t.messages:  # before the status: a closed ticket takes no messages
            if m.author_role == "system":  # the server's own notes are written like the server does
                row = await queries.insert_message(conn, ticket_id=ticket.id, author_role="system",
                                                   internal=m.internal, content=m.content)
                ids.append(row["id"])
            else:
                added = await tickets.add_message(conn, str(ticket.id), content=m.content,
                                                  author_role=m.author_role, internal=m.internal)
                ids.append(added.message.id)
            messages += 1
        if t.status != "open" or t.assignee:
            await tickets.update(conn, str(ticket.id), status=t.status if t.status != "open" else None,
                                 assignee=t.assignee)
        await queries.order_fixture_ticket(conn, ticket_id=ticket.id, back_ms=len(fixture.tickets) - i, ids=ids)
    return messages


async def write_documents(kb: KnowledgeBase, slug: str, fixture: Fixture) -> None:
    """Every document of the fixture, into the tenant's empty knowledge base, in bulk (episodes/documents.py;
    chunks and embeddings come from the per-process cache when another episode of the fixture made them)."""
    await ingest_fresh(kb, slug, fixture.documents)
