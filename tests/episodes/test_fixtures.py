"""Fixtures for evaluation runs (issue 12): the documented format, its validation errors (one
line, `path: problem`, every problem at once) and apply_fixture through the domain functions."""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import pytest
import yaml

from support_mcp import tenancy
from support_mcp.desk import customers, tickets
from support_mcp.episodes.fixtures import MAX_FIXTURE_BYTES, apply_fixture, load_fixture, parse_fixture
from support_mcp.errors import Conflict, InvalidInput, NotFound
from support_mcp.kb.service import KnowledgeBase

EXAMPLE = resources.files("support_mcp.episodes") / "examples" / "acme.json"


def example() -> dict:
    return json.loads(EXAMPLE.read_text("utf-8"))


async def _ticket_rows(db, slug: str) -> list:
    async with db.tenant_scope(slug) as s:
        listed = await tickets.list_(s.conn, status=None, priority=None, customer=None, tag=None, assignee=None,
                                     query=None, cursor=None, limit=50)
        return [await tickets.get(s.conn, str(t.id)) for t in listed.tickets]


async def test_example_fixture_applies(db, kb, make_tenant) -> None:
    slug = await make_tenant("fx")
    done = await apply_fixture(db, kb, slug, load_fixture(Path(str(EXAMPLE))))
    assert (done.customers, done.tickets, done.messages, done.documents, done.stripe_account) == (2, 3, 3, 2, None)
    profile = await tenancy.get_profile(db, slug)
    assert profile["name"] == "Acme Rockets" and profile["policies"].startswith("Refunds: full refund")
    rows = await _ticket_rows(db, slug)
    # one transaction writes them all, yet lists show the fixture's order (newest first)
    assert [t.subject for t in rows] == [t["subject"] for t in reversed(example()["tickets"])]
    assert [t.number for t in rows] == sorted((t.number for t in rows), reverse=True)
    by_subject = {t.subject: t for t in rows}
    skates = by_subject["Charged twice for the rocket skates"]
    assert skates.customer.email == "wile@example.com" and skates.priority == "high" and skates.status == "open"
    assert skates.tags == ["billing", "duplicate-charge"]
    assert [(m.author_role, m.internal) for m in skates.messages] == [("customer", False), ("agent", True)]
    magnet = by_subject["How do I return the giant magnet?"]
    assert magnet.status == "pending" and magnet.assignee == "sam@acme.example"
    shipping = by_subject["Question about shipping speed"]
    assert shipping.status == "solved" and shipping.priority == "low"
    assert shipping.messages[0].author_role == "ai"
    assert shipping.messages[-1].author_role == "system"  # the status change, written as the tool would
    hits = (await kb.search(slug, "can I send a product back for a refund")).results
    assert hits and hits[0].title == "Returns and refunds"
    assert hits[0].source_uri == "https://help.acme.example/returns"


async def test_yaml_fixture_loads_like_json(db, kb, make_tenant, tmp_path) -> None:
    data = example()
    data["tickets"][0]["messages"].append({"author_role": "system", "content": "Refund of 49.00 USD issued.",
                                           "internal": True})
    thread = [{"author_role": ("customer", "agent", "ai")[n % 3], "content": f"message {n}"} for n in range(12)]
    data["tickets"][2]["messages"] = thread
    data["stripe"] = {"customers": []}  # an empty sandbox account
    (tmp_path / "acme.yaml").write_text(yaml.safe_dump(data), "utf-8")
    (tmp_path / "acme.json").write_text(json.dumps(data), "utf-8")
    fixture = load_fixture(tmp_path / "acme.yaml")
    assert fixture == load_fixture(tmp_path / "acme.json")
    slug = await make_tenant("fy")
    done = await apply_fixture(db, kb, slug, fixture)
    assert done.messages == 15 and done.stripe_account.startswith("acct_")
    rows = await _ticket_rows(db, slug)
    skates = next(t for t in rows if "skates" in t.subject)
    assert [m.author_role for m in skates.messages] == ["customer", "agent", "system"]
    assert skates.messages[-1].internal
    shipping = next(t for t in rows if "shipping" in t.subject)  # the thread in order, then the status note
    assert [m.content for m in shipping.messages] == [f"message {n}" for n in range(12)] + \
        ["Status changed from open to solved."]


def _bad(mutate) -> dict:  # noqa: ANN001
    data = copy.deepcopy(example())
    mutate(data)
    return data


BAD = [
    ("unknown top-level field", lambda d: d.update(agents=[]), ["agents: unknown field"]),
    ("unknown nested field", lambda d: d["tickets"][1].update(due="tomorrow"), ["tickets[1].due: unknown field"]),
    ("unknown message field", lambda d: d["tickets"][0]["messages"][1].update(author="bob"),
     ["tickets[0].messages[1].author: unknown field"]),
    ("bad customer email", lambda d: d["customers"][0].update(email="wile at example"),
     ["customers[0].email: not an email address"]),
    ("bad ticket email", lambda d: d["tickets"][2].update(customer_email="nobody"),
     ["tickets[2].customer_email: not an email address"]),
    ("missing customer", lambda d: d["tickets"][1].update(customer_email="elmer@example.com"),
     ["tickets[1].customer_email: no customer with this email"]),
    ("duplicate customer", lambda d: d["customers"].append({"name": "W", "email": "WILE@example.com"}),
     ["customers[2].email: duplicate of customers[0].email"]),
    ("missing field", lambda d: d["customers"][1].pop("name"), ["customers[1].name: required"]),
    ("bad status", lambda d: d["tickets"][0].update(status="done"), ["tickets[0].status: input should be"]),
    ("bad role", lambda d: d["tickets"][0]["messages"][0].update(author_role="bot"),
     ["tickets[0].messages[0].author_role: input should be"]),
    ("internal customer note", lambda d: d["tickets"][0]["messages"][0].update(internal=True),
     ["tickets[0].messages[0]: customers cannot write internal notes"]),
    ("bad tag", lambda d: d["tickets"][0].update(tags=["Not a tag!"]), ["tickets[0].tags: invalid tag"]),
    ("empty subject", lambda d: d["tickets"][0].update(subject="  "), ["tickets[0].subject: string should have"]),
    ("stripe not an object", lambda d: d.update(stripe=[1]),
     ["stripe: must be an object"]),
    ("stripe charge not an object", lambda d: d.update(stripe={"charges": ["ch_1"]}),
     ["stripe.charges[0]: must be an object"]),
    ("everything at once", lambda d: (d["tickets"][1].update(customer_email="elmer@example.com"),
                                      d["customers"][1].update(email="beep"), d.update(extra=1)),
     ["tickets[1].customer_email: no customer", "customers[1].email: not an email", "extra: unknown field",
      # the ticket of the customer whose email is broken refers to a missing customer too
      "tickets[2].customer_email: no customer"]),
]


@pytest.mark.parametrize(("mutate", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_fixture_gives_one_line_naming_the_path(mutate, expected, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_bad(mutate)), "utf-8")
    with pytest.raises(InvalidInput) as err:
        load_fixture(path)
    msg = str(err.value)
    assert msg.startswith("fixture invalid: ") and "\n" not in msg
    for part in expected:
        assert part in msg, msg


def test_many_problems_are_counted_not_all_listed() -> None:
    data = {"customers": [{"name": "x", "email": f"bad{i}"} for i in range(30)]}
    msg = str(pytest.raises(InvalidInput, parse_fixture, data).value)
    assert "customers[19].email" in msg and "customers[20].email" not in msg and msg.endswith("and 10 more")


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("f.json", "{\"customers\": [}", "fixture f.json: not valid JSON (line 1 column 16"),
    ("f.yaml", "customers: [\n  - {name: x\n", "fixture f.yaml: not valid YAML (line"),
    ("f.json", "[1, 2]", "fixture invalid: the top level must be an object"),
    ("f.yml", "", "fixture invalid: the top level must be an object"),
    ("f.txt", "{}", "fixture f.txt: unknown format; use a .json, .yaml or .yml file"),
    ("f.json", "[" * 100_000 + "]" * 100_000, "fixture f.json: nested too deeply"),
    ("f.yaml", "a: &a [1, 2]\nb: &b [*a, *a]\nstripe: {c: [*b, *b]}\n",
     "fixture f.yaml: not valid YAML (line 2 column 8: aliases (*name) are not allowed in a fixture)"),
    ("f.json", '{"customers": [{"name": "x", "email": "a@b.c", "a\\nb": 1}]}',
     "fixture invalid: customers[0]['a\\nb']: unknown field"),
    ("f.json", b"\xff\xfe{}", "fixture f.json: not UTF-8 text"),
])
def test_unreadable_files(name, content, expected, tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    msg = str(pytest.raises(InvalidInput, load_fixture, path).value)
    assert msg.startswith(expected) and "\n" not in msg
    assert str(tmp_path) not in msg  # the file's name, never the server's directories


def test_oversize_file_is_refused_before_parsing(tmp_path) -> None:
    path = tmp_path / "huge.json"
    filler = " " * (MAX_FIXTURE_BYTES - 1)  # valid JSON, one byte over the cap
    path.write_text("{" + filler + "}", "utf-8")
    msg = str(pytest.raises(InvalidInput, load_fixture, path).value)
    assert msg == (f"fixture huge.json is larger than 10 MB ({MAX_FIXTURE_BYTES:,} bytes); "
                   "a fixture is seed data: keep it smaller")
    path.write_text("{" + filler[1:] + "}", "utf-8")  # exactly at the cap: fine
    assert load_fixture(path).tickets == []


async def _state(db, kb, slug: str) -> tuple:
    async with db.tenant_scope(slug) as s:
        n_customers = await s.conn.fetchval("SELECT count(*) FROM customers")
        n_tickets = await s.conn.fetchval("SELECT count(*) FROM tickets")
    return n_customers, n_tickets, len(await kb.list_documents(slug, None, None, 10)), \
        (await tenancy.get_profile(db, slug))["name"]


async def test_nothing_is_written_when_apply_fails(db, kb, make_tenant) -> None:
    slug = await make_tenant("fz", name="Before")
    async with db.tenant_scope(slug) as s:  # the tenant already has one of the fixture's customers
        await customers.create(s.conn, "Already here", email="beep@example.com")
    before = await _state(db, kb, slug)
    with pytest.raises(Conflict, match="beep@example.com already exists"):
        await apply_fixture(db, kb, slug, parse_fixture(example()))
    assert await _state(db, kb, slug) == before == (1, 0, 0, "Before")
    # a document over the knowledge base's limit is refused before anything is written
    small = KnowledgeBase(db.settings.model_copy(update={"kb_max_document_chars": 100}), db,
                          index=await kb.index(), embedder=await kb.embedder())
    other = await make_tenant("fz", name="Before")
    with pytest.raises(InvalidInput, match=r"^fixture invalid: documents\[0\]\.text: document 'Returns and refunds' "
                                           r"is \d+ characters long; the limit is 100"):
        await apply_fixture(db, small, other, parse_fixture(example()))
    assert await _state(db, kb, other) == (0, 0, 0, "Before")


async def test_set_profile(db, make_tenant) -> None:
    slug = await make_tenant("fp", name="Old", policies="old rules")
    await tenancy.set_profile(db, slug, policies="new rules")  # None keeps the name
    assert (await tenancy.get_profile(db, slug))["name"] == "Old"
    await tenancy.set_profile(db, slug, name="  New  ")
    profile = await tenancy.get_profile(db, slug)
    assert (profile["name"], profile["policies"]) == ("New", "new rules")
    with pytest.raises(InvalidInput, match="tenant name is empty"):
        await tenancy.set_profile(db, slug, name=" ")
    with pytest.raises(NotFound, match="unknown tenant 'fp_missing'"):
        await tenancy.set_profile(db, "fp_missing", name="X")
