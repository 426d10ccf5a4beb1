"""Episodes (issue 12, item 1, CLI half): create from a fixture, key scoped to the episode, state, destroy."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support_mcp import keys, tenancy
from support_mcp.cli import app
from support_mcp.episodes import service
from support_mcp.episodes.fixtures import parse_fixture
from support_mcp.errors import InvalidInput, NotFound, NotPermitted

ACME = Path(service.__file__).parent / "examples" / "acme.json"


async def test_create_key_works_on_its_episode_only(db, kb, connect_key, make_tenant) -> None:
    ep = await service.create(db, kb, ACME, timedelta(minutes=5))
    assert set(ep) == {"episode", "tenant", "api_key", "expires_at"} and ep["tenant"].startswith("ep_")
    other = await make_tenant("real")
    async with connect_key(ep["api_key"]) as c:
        listed = await c.ok("list_tickets", tenant=ep["tenant"])
        assert "Charged twice" in json.dumps(listed)
        await c.ok("create_ticket", tenant=ep["tenant"], subject="New", description="From the agent",
                   customer_email="beep@example.com")
        msg = await c.err("list_tickets", tenant=other)
        assert "\n" not in msg.strip()
    p = await keys.KeyVerifier(db, ttl=0).principal(ep["api_key"])
    assert p.tenants == frozenset({ep["tenant"]}) and p.scopes == frozenset({"read", "write"})
    assert p.name == f"key:episode:{ep['episode']}"
    listed = {str(r["id"]): r for r in await service.list_(db)}
    assert listed[ep["episode"]]["tenant"] == ep["tenant"]
    await service.destroy(db, ep["episode"], kb)


async def test_state_hash_same_fixture_equal_until_a_change(db, kb, connect_key) -> None:
    a = await service.create(db, kb, ACME)
    b = await service.create(db, kb, ACME)
    sa, sb = await service.state(db, a["episode"]), await service.state(db, b["episode"])
    assert sa["state_hash"] == sb["state_hash"] and sa["state"] == sb["state"]
    assert len(sa["state"]["tickets"]) == 3
    async with connect_key(a["api_key"]) as c:
        number = sa["state"]["tickets"][0]["number"]
        await c.ok("update_ticket", tenant=a["tenant"], ticket=str(number), status="solved")
    assert (await service.state(db, a["episode"]))["state_hash"] != sb["state_hash"]
    assert (await service.state(db, b["episode"]))["state_hash"] == sb["state_hash"]
    for ep in (a, b):
        await service.destroy(db, ep["episode"], kb)


async def test_destroy_removes_tenant_key_and_row(db, kb, connect_key) -> None:
    ep = await service.create(db, kb, ACME)
    async with connect_key(ep["api_key"]) as c:
        await c.ok("list_tickets", tenant=ep["tenant"])  # leaves audit rows behind
    audit = 'SELECT count(*) FROM "global".audit_log WHERE tenant_slug = $1'
    async with db.admin_scope() as conn:
        assert await conn.fetchval(audit, ep["tenant"]) >= 1
    gone = await service.destroy(db, ep["episode"], kb)
    assert gone == {"episode": ep["episode"], "tenant": ep["tenant"]}
    with pytest.raises(NotFound):
        await tenancy.get_tenant(db, ep["tenant"])
    with pytest.raises(NotPermitted):
        await keys.KeyVerifier(db, ttl=0).principal(ep["api_key"])
    async with db.admin_scope() as conn:
        assert await conn.fetchval(audit, ep["tenant"]) == 0
    async with connect_key(ep["api_key"]) as c:
        await c.err("list_tickets", tenant=ep["tenant"])
    assert ep["episode"] not in {str(r["id"]) for r in await service.list_(db)}
    async with db.admin_scope() as conn:
        assert await conn.fetchval('SELECT count(*) FROM "global".api_keys WHERE name = $1',
                                   f"episode:{ep['episode']}") == 0
    with pytest.raises(NotFound):  # twice: the second time it is unknown
        await service.destroy(db, ep["episode"], kb)


async def test_destroy_refuses_real_tenants_and_unknown_ids(db, kb, make_tenant) -> None:
    slug = await make_tenant("keep")
    info = await tenancy.get_tenant(db, slug)
    for bad, kind in ((slug, InvalidInput), (str(info.id), NotFound), ("00000000-0000-0000-0000-000000000000",
                                                                         NotFound), ("x" * 500, InvalidInput)):
        with pytest.raises(kind) as exc:
            await service.destroy(db, bad, kb)
        assert "\n" not in str(exc.value) and len(str(exc.value)) < 300
    assert (await tenancy.get_tenant(db, slug)).status == "active"


async def test_bad_fixture_or_ttl_leaves_nothing(db, kb, tmp_path: Path) -> None:
    before = {r.slug for r in await tenancy.list_tenants(db)}
    bad = tmp_path / "bad.json"
    bad.write_text('{"customers": [{"name": "X", "email": "nope"}]}')
    with pytest.raises(InvalidInput, match=r"customers\[0\]\.email"):
        await service.create(db, kb, bad)
    with pytest.raises(InvalidInput):
        await service.create(db, kb, ACME, timedelta(0))
    # valid as a fixture, refused while applying (after the tenant exists): nothing is left either
    keys_before = len(await keys.list_keys(db))
    big = parse_fixture({"customers": [{"name": "A", "email": "a@example.com"}],
                         "documents": [{"title": "Huge", "text": "x" * (kb.settings.kb_max_document_chars + 1)}]})
    with pytest.raises(InvalidInput, match=r"documents\[0\]\.text"):
        await service.create(db, kb, big)
    assert {r.slug for r in await tenancy.list_tenants(db)} == before
    assert len(await keys.list_keys(db)) == keys_before


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr




def test_keys_create_episodes_scope_needs_no_tenant(cli_env) -> None:
    code, out, err = _run("keys", "create", "--name", "harness-cli", "--scope", "episodes")
    assert code == 0 and keys.KEY_RE.match(out.strip().splitlines()[-1]), err
    code, out, err = _run("keys", "create", "--name", "no-tenant", "--scope", "read")
    assert code == 1 and "--tenant" in err


def test_episodes_via_cli(cli_env, tmp_path: Path) -> None:
    code, out, err = _run("episodes", "create", "--fixture", str(ACME), "--ttl", "10m", "--json")
    assert code == 0, err
    ep = json.loads(out)
    assert keys.KEY_RE.match(ep["api_key"]) and ep["tenant"].startswith("ep_")
    code, out, _ = _run("episodes", "list", "--json")
    assert code == 0 and ep["episode"] in {r["id"] for r in json.loads(out)}
    assert ep["api_key"] not in out
    code, out, _ = _run("episodes", "list")
    assert code == 0 and "episode(s)" in out
    code, out, _ = _run("episodes", "state", ep["episode"], "--json")
    st = json.loads(out)
    assert code == 0 and len(st["state_hash"]) == 64 and st["state"]["tickets"]
    code, out, _ = _run("episodes", "state", ep["episode"])
    assert code == 0 and out.strip() == st["state_hash"]
    # a real tenant's slug is refused, one line, no trace
    code, out, err = _run("episodes", "destroy", "acme")
    assert code == 1 and err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err + out
    code, out, err = _run("episodes", "create", "--fixture", str(ACME), "--ttl", "soon")
    assert code == 2 and "30m" in err and err.count("\n") == 1
    missing = tmp_path / "missing.json"
    code, out, err = _run("episodes", "create", "--fixture", str(missing))
    assert code == 1 and "missing.json" in err and err.count("\n") == 1
    code, out, err = _run("episodes", "reset", ep["episode"])
    assert code == 0 and f"reset episode {ep['episode']}" in out, err
    code, out, _ = _run("episodes", "state", ep["episode"])
    assert code == 0 and out.strip() == st["state_hash"]
    code, out, err = _run("episodes", "reset", "acme")
    assert code == 1 and "distinct kinds" in err and err.count("\n") == 1
    code, out, err = _run("episodes", "sweep")
    assert code == 0 and "expired episode(s) destroyed" in out, err
    assert ep["episode"] not in out  # not expired: kept
    code, out, _ = _run("episodes", "destroy", ep["episode"])
    assert code == 0 and f"destroyed episode {ep['episode']}" in out
    code, _, err = _run("episodes", "state", ep["episode"])
    assert code == 1 and "no episode" in err
