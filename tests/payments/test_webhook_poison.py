"""Signed webhook bodies that can never be processed (issue 10, finding 6): never a 500 or a
503 "deliver again later" loop. Not parseable as an event -> 400; a well-formed event of this
tenant's account whose values cannot be stored or make no sense -> stored quarantined, 200."""

from __future__ import annotations

import json

import pytest

from support_mcp.stripe_sandbox import make_event, sign_webhook

from .test_webhooks import _count, hooks  # noqa: F401 - fixture re-export


def _signed(body: bytes, secret: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Stripe-Signature": sign_webhook(body, secret)}


async def _quarantined(db, slug: str) -> list[dict]:
    async with db.tenant_scope(slug) as s:
        return [dict(r) for r in await s.conn.fetch(
            "SELECT event_id, type, reason, deliveries, body FROM stripe_quarantine ORDER BY id")]


async def test_deeply_nested_and_bad_json_bodies_answer_400(hooks, db, stripe_tenant) -> None:
    t = await stripe_tenant("wp")
    deep = b'{"object": "event", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    just_deep = json.dumps(make_event("customer.created", {"id": "cus_1", "x": _nest(80)},
                                      account=t.account_id)).encode()
    bodies = {"deep": deep, "nested 80 levels": just_deep, "bad json": b'{"object": "event", "id": ',
              "nan": b'{"object": "event", "x": NaN}', "not utf-8": b'{"a": "\xff"}'}
    async with hooks() as (post, _):
        answers = {name: await post(t.slug, body=body, headers=_signed(body, t.secret))
                   for name, body in bodies.items()}
    for name, r in answers.items():
        assert r.status_code == 400, (name, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/json"), name
    assert "deeper than" in answers["deep"].json()["error"]
    assert "deeper than" in answers["nested 80 levels"].json()["error"]
    assert await _count(db, t.slug, "SELECT count(*) FROM stripe_events") == 0


def _nest(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.mark.parametrize("case", ["nul", "nul in type", "lone surrogate", "huge float", "created 10**18",
                                  "created negative", "created 10**400"])
async def test_unstorable_events_are_quarantined_with_200(hooks, db, stripe_tenant, case) -> None:
    t = await stripe_tenant("wq")
    ev = make_event("charge.refunded", t.acct.charge(amount=100), account=t.account_id)
    if case == "nul":
        ev["data"]["object"]["description"] = "bad\u0000byte"
    elif case == "nul in type":
        ev["type"] = "charge.refunded\u0000"
    elif case == "lone surrogate":
        ev["data"]["object"]["description"] = "half \ud800 a pair"
    elif case == "huge float":
        ev["data"]["object"]["metadata"] = {"n": 1e308}
    elif case == "created 10**18":
        ev["created"] = 10**18
    elif case == "created negative":
        ev["created"] = -5
    else:
        ev["created"] = 10**400
    body = json.dumps(ev).encode()
    if case == "huge float":
        body = body.replace(b"1e+308", b"1e400")  # parses to inf: valid JSON syntax, not storable
    if case == "lone surrogate":
        assert b"\\ud800" in body
    async with hooks() as (post, _):
        first = await post(t.slug, body=body, headers=_signed(body, t.secret))
        again = await post(t.slug, body=body, headers=_signed(body, t.secret))
    assert first.status_code == 200, first.text
    assert first.json()["quarantined"] is True and first.json()["received"] is True
    assert again.status_code == 200 and again.json()["duplicate"] is True
    rows = await _quarantined(db, t.slug)
    assert len(rows) == 1 and rows[0]["deliveries"] == 2
    assert rows[0]["event_id"] == ev["id"] and bytes(rows[0]["body"]) == body
    assert "\x00" not in rows[0]["type"]
    assert await _count(db, t.slug, "SELECT count(*) FROM stripe_events") == 0


async def test_a_normal_event_still_goes_through(hooks, db, stripe_tenant) -> None:
    t = await stripe_tenant("wn")
    ev = make_event("customer.created", t.acct.customer(), account=t.account_id)
    async with hooks() as (post, _):
        body = json.dumps(ev).encode()
        r = await post(t.slug, body=body, headers=_signed(body, t.secret))
    assert r.status_code == 200 and r.json()["outcome"].startswith("ignored")
    assert await _quarantined(db, t.slug) == []


async def test_an_operator_lists_quarantined_events(hooks, db, stripe_tenant) -> None:
    from .test_stripe_cli import _cli

    t, other = await stripe_tenant("wl"), await stripe_tenant("wl")
    ev = make_event("charge.refunded", t.acct.charge(amount=100), account=t.account_id, created=10**18)
    ev["type"] = "charge.refunded\u0000\n## heading"
    body = json.dumps(ev).encode()
    async with hooks() as (post, _):
        assert (await post(t.slug, body=body, headers=_signed(body, t.secret))).status_code == 200
    mine = _cli(db.settings, "stripe", "quarantine", "--tenant", t.slug)
    theirs = _cli(db.settings, "stripe", "quarantine", "--tenant", other.slug)
    everyone = _cli(db.settings, "stripe", "quarantine")
    assert mine.returncode == 0, mine.stderr
    line = next(x for x in mine.stdout.splitlines() if x.startswith(t.slug))
    assert ev["id"] in line and "created timestamp 1000000000000000000 is out of range" in line
    assert "charge.refunded\\u0000\\n## heading" in line  # one escaped line
    assert mine.stdout.rstrip().endswith("1 quarantined event(s)")
    assert theirs.returncode == 0 and theirs.stdout.strip() == "0 quarantined event(s)"
    assert everyone.returncode == 0 and ev["id"] in everyone.stdout


async def test_processing_that_keeps_failing_stops_the_redeliveries(hooks, db, stripe_tenant, monkeypatch) -> None:
    from support_mcp.payments import events

    from .test_stripe_cli import _cli

    async def broken(conn, obj):  # noqa: ANN001 - an event our code cannot handle, every time
        raise KeyError("amount")

    monkeypatch.setattr(events, "_charge_refunded", broken)
    t = await stripe_tenant("wg")
    ev = make_event("charge.refunded", t.acct.charge(amount=100), account=t.account_id)
    async with hooks(stripe_webhook_max_attempts=3) as (post, _):
        answers = [await post(t.slug, ev, t.secret) for _ in range(4)]
    assert [r.status_code for r in answers] == [500, 500, 200, 200]
    assert answers[2].json()["gave_up"] is True and "failed 3 times" in answers[2].json()["error"]
    assert await _count(db, t.slug, "SELECT count(*) FROM stripe_events WHERE processed_at IS NULL") == 1
    listed = _cli(db.settings, "stripe", "quarantine", "--tenant", t.slug, "--max-attempts", "3")
    assert listed.returncode == 0, listed.stderr
    assert ev["id"] in listed.stdout and "processing stopped after failing" in listed.stdout
