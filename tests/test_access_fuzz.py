"""A hypothesis state machine drives thousands of random calls across 3 tenants and 4 keys
through the real MCP client and checks that no answer carries data of a tenant the key does
not grant, and that the audit log has exactly one row per call."""

from __future__ import annotations

import asyncio
import json
import secrets

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from support_mcp import reports

STEPS, EXAMPLES = 50, 30  # up to 1,500 calls per run; runs repeat until 2,000 calls


async def test_random_calls_never_cross_tenants(db, make_tenant, make_key, connect_key) -> None:
    run = secrets.token_hex(3)
    tenants = [await make_tenant(f"fz{i}") for i in range(3)]
    a, b, c = tenants
    grants = {  # key name -> tenants it may use (None: all)
        f"fuzz-a-rw-{run}": ({a}, ["read", "write", "admin"]),
        f"fuzz-b-ro-{run}": ({b}, ["read"]),
        f"fuzz-ac-rw-{run}": ({a, c}, ["read", "write"]),
        f"fuzz-all-ro-{run}": (None, ["read"]),
    }
    keys = {name: await make_key(tenants=sorted(t) if t else None, all_tenants=t is None, scopes=s, name=name)
            for name, (t, s) in grants.items()}
    marker = {t: f"MARK{t.upper()}" for t in tenants}
    seeded: dict[str, list[dict]] = {t: [] for t in tenants}
    async with connect_key(await make_key(all_tenants=True, scopes=["read", "write"], name=f"seed-{run}")) as op:
        for t in tenants:
            for i in range(3):
                seeded[t].append(await op.ok(
                    "create_ticket", tenant=t, subject=f"{marker[t]} subject {i}",
                    description=f"{marker[t]} description", customer_email=f"c{i}@{t}.test",
                    customer_name=f"{marker[t]} customer"))
                await op.ok("add_message", tenant=t, ticket=seeded[t][-1]["id"], content=f"{marker[t]} message",
                            author_role="customer")
    loop = asyncio.get_running_loop()
    calls = {"n": 0}
    clients = {}
    async with connect_key(keys[f"fuzz-a-rw-{run}"], rate_limit_per_minute=0) as k1, \
            connect_key(keys[f"fuzz-b-ro-{run}"], rate_limit_per_minute=0) as k2, \
            connect_key(keys[f"fuzz-ac-rw-{run}"], rate_limit_per_minute=0) as k3, \
            connect_key(keys[f"fuzz-all-ro-{run}"], rate_limit_per_minute=0) as k4:
        clients = dict(zip(grants, (k1, k2, k3, k4), strict=True))
        all_ids = {t: {x["id"] for x in seeded[t]} | {x["customer_id"] for x in seeded[t]} for t in tenants}

        class Walk(RuleBasedStateMachine):
            @initialize()
            def start(self) -> None:
                self.known = [(t, x) for t in tenants for x in seeded[t]]

            def call(self, key: str, tool: str, args: dict) -> dict | None:
                r = asyncio.run_coroutine_threadsafe(clients[key].call(tool, args), loop).result(60)
                calls["n"] += 1
                text = " ".join(getattr(x, "text", "") for x in r.content) + json.dumps(r.structured_content or {})
                allowed, _ = grants[key]
                asked = json.dumps(args)
                for t in tenants:
                    if allowed is None or t in allowed:
                        continue
                    assert marker[t] not in text, (key, tool, args, text[:300])
                    assert f"@{t}.test" not in text, (key, tool, args, text[:300])
                    for foreign in all_ids[t]:
                        assert foreign not in text or foreign in asked, (key, tool, args, text[:300])
                return None if r.is_error else r.structured_content

            @rule(key=st.sampled_from(sorted(grants)), data=st.data())
            def read_something(self, key: str, data: st.DataObject) -> None:
                tenant = data.draw(st.sampled_from([*tenants, "zz_unknown", "BAD;x", a.upper(), "public"]))
                _, ticket = data.draw(st.sampled_from(self.known))
                ref = data.draw(st.sampled_from([ticket["id"], f"#{ticket['number']}", str(ticket["number"]),
                                                 "999999", "not-a-ref"]))
                tool, args = data.draw(st.sampled_from([
                    ("get_ticket", {"ticket": ref}),
                    ("list_tickets", {"query": "MARK"}),
                    ("list_tickets", {"customer": ticket["customer_id"]}),
                    ("find_customers", {"name": "MARK"}),
                    ("get_customer", {"customer": ticket["customer_id"]}),
                    ("delete_ticket", {"ticket": ref, "dry_run": True}),
                ]))
                self.call(key, tool, {"tenant": tenant, **args})

            @rule(key=st.sampled_from(sorted(grants)), data=st.data())
            def write_something(self, key: str, data: st.DataObject) -> None:
                tenant = data.draw(st.sampled_from([*tenants, "zz_unknown"]))
                _, ticket = data.draw(st.sampled_from(self.known))
                tool, args = data.draw(st.sampled_from([
                    ("add_message", {"ticket": ticket["id"], "content": "fuzz reply", "author_role": "agent"}),
                    ("update_ticket", {"ticket": f"#{ticket['number']}", "priority": "high"}),
                    ("create_ticket", {"subject": "fuzz", "description": "d", "customer_id": ticket["customer_id"]}),
                    ("record_feedback", {"ticket": ticket["id"], "rating": 3}),
                ]))
                created = self.call(key, tool, {"tenant": tenant, **args})
                if tool == "create_ticket" and created:
                    self.known.append((tenant, created))

            @rule()
            def global_tool(self) -> None:
                self.call(sorted(grants)[0], "status", {})

        Walk.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
                                          suppress_health_check=list(HealthCheck))
        while calls["n"] < 2000:  # hypothesis draws how many steps each run takes; go on until 2,000 calls
            await asyncio.to_thread(run_state_machine_as_test, Walk, settings=Walk.TestCase.settings)
    # the four servers flushed their audit buffers when their sessions closed
    rows = await reports.audit_rows(db, tenant=None, since=None, limit=100_000)
    mine = [r for r in rows if r["principal"].startswith("key:fuzz-") and r["principal"].endswith(run)]
    assert calls["n"] >= 2000
    assert len(mine) == calls["n"]
