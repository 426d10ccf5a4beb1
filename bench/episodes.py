"""Episodes bench (not a test): create p50/p99 for an empty fixture and for 50 tickets + 20 documents
(embeddings cached), at concurrency 1 and 64, against `tenants create` in the same run; tool-call
throughput over Streamable HTTP with 64 concurrent episodes, each with its own key; destroy p50;
state export p50 of the 50-ticket fixture. Markdown on stdout (machine load included), JSON to --out.

Creates claim spares of the warm pool (refilled, untimed, before each measured round) like a
server with SUPPORT_MCP_EPISODES_WARM_POOL does; `create (no pool)` rows provision a tenant each.
The documents' embeddings are computed once, before the timed rounds (the cache a server keeps)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent  # last on sys.path: bench/stripe.py must not shadow the stripe SDK
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
from common import (bench_main, bench_parser, closed_loop, log, machine, md_table,  # noqa: E402, I001
                    scratch_settings, summarize, targets_table)
from support_mcp import migrations, tenancy  # noqa: E402
from support_mcp.db import Database  # noqa: E402
from support_mcp.episodes import pool, service  # noqa: E402
from support_mcp.episodes.fixtures import Fixture, parse_fixture  # noqa: E402
from support_mcp.kb.service import KnowledgeBase  # noqa: E402

now = time.perf_counter
TARGETS = (("create empty p50 ms @1", 10.0), ("create 50t+20d p50 ms @1", 50.0))


def big_fixture(tickets: int = 50, documents: int = 20) -> Fixture:
    customers = [{"name": f"Customer {i}", "email": f"c{i}@example.com"} for i in range(10)]
    return parse_fixture({
        "tenant": {"name": "Bench Co", "policies": "Refund within 30 days."},
        "customers": customers,
        "tickets": [{"subject": f"Ticket {i}", "description": f"Something broke ({i}). " * 5,
                     "customer_email": f"c{i % 10}@example.com", "priority": ("low", "normal", "high")[i % 3],
                     "tags": [f"tag{i % 4}"], "status": ("open", "pending", "solved")[i % 3],
                     "messages": [{"author_role": "customer", "content": f"Any news on {i}?"}] * (i % 3)}
                    for i in range(tickets)],
        "documents": [{"title": f"Article {i}", "text": f"# Article {i}\n\n" + f"Policy text number {i}. " * 40,
                       "source_uri": f"https://help.example/{i}"} for i in range(documents)],
    })


async def create_round(db: Database, kb: KnowledgeBase, fixture: Fixture, n: int, conc: int,
                       use_pool: bool) -> tuple[dict[str, float], list[str]]:
    if use_pool:
        await pool.refill(db, n, kb)  # untimed: a server keeps the pool full in the background
    made: list[str] = []

    async def one() -> None:
        made.append((await service.create(db, kb, fixture))["episode"])

    lat, _ = await closed_loop(one, n, conc)
    return summarize(lat), made


async def tenants_round(db: Database, n: int, conc: int) -> tuple[dict[str, float], list[str]]:
    slugs: list[str] = []

    async def one() -> None:
        slug = pool.new_slug().replace("ep_", "bt_")
        await tenancy.create_tenant(db, slug, "Bench tenant")
        slugs.append(slug)

    lat, _ = await closed_loop(one, n, conc)
    return summarize(lat), slugs


async def destroy_all(db: Database, kb: KnowledgeBase, ids: list[str]) -> dict[str, float]:
    lat = []
    for eid in ids:
        t0 = now()
        await service.destroy(db, eid, kb)
        lat.append(now() - t0)
    return summarize(lat)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def http_throughput(db: Database, kb: KnowledgeBase, fixture: Fixture, episodes: int,
                          calls: int) -> dict[str, Any]:
    """`episodes` episodes, each driven by its own key over Streamable HTTP, `calls` tool calls each."""
    import httpx2
    import uvicorn
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from support_mcp.server import build_server

    await pool.refill(db, episodes, kb)
    eps = [await service.create(db, kb, fixture) for _ in range(episodes)]
    server = build_server(db.settings.model_copy(update={"rate_limit_per_minute": 0}), db=db, bearer=True, kb=kb)
    app = server.streamable_http_app(host="127.0.0.1", stateless_http=False, json_response=False)
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False,
                                       lifespan="on"))
    uv.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        await asyncio.sleep(0.02)
    lat: list[float] = []

    async def drive(i: int, ep: dict[str, Any]) -> None:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {ep['api_key']}"}, timeout=60)
        async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as c:
            for k in range(calls):
                t0 = now()
                if k % 2:
                    r = await c.call_tool("list_tickets", {"tenant": ep["tenant"], "limit": 10})
                else:
                    r = await c.call_tool("add_message", {"tenant": ep["tenant"], "ticket": str(1001 + k % 3),
                                                          "content": f"note {i}/{k}", "author_role": "agent"})
                lat.append(now() - t0)
                assert not r.is_error, r.content

    t0 = now()
    try:
        await asyncio.gather(*(drive(i, ep) for i, ep in enumerate(eps)))
        wall = now() - t0
    finally:
        uv.should_exit = True
        await task
    for ep in eps:
        await service.destroy(db, ep["episode"], kb)
    return {"episodes": episodes, "calls": len(lat), "calls_per_s": len(lat) / wall, **summarize(lat)}


async def run(args: Any) -> dict[str, Any]:
    n = 6 if args.quick else args.n
    conc_hi = 4 if args.quick else 64
    docs = 2 if args.quick else 20
    tickets = 5 if args.quick else 50
    load_before = machine()["loadavg"]
    async with scratch_settings(args.database_url, prefix="sm_bench_ep") as s:
        db = await migrations.database(s).start()  # applies the global migrations (Database alone does not)
        kb = KnowledgeBase(s, db)
        try:
            empty, big = parse_fixture({}), big_fixture(tickets, docs)
            log("warming up (the embedding cache takes the documents' vectors once)")
            ids = [(await service.create(db, kb, big))["episode"] for _ in range(2)]
            ids += [(await service.create(db, kb, empty))["episode"] for _ in range(2)]
            res: dict[str, Any] = {"machine": machine(), "n": n, "fixture": {"tickets": tickets, "documents": docs}}
            rows: dict[str, dict[str, float]] = {}
            for conc in (1, conc_hi):
                rows[f"tenants create @{conc}"], _ = await tenants_round(db, n, conc)
                for label, fx in (("empty", empty), (f"{tickets}t+{docs}d", big)):
                    rows[f"create {label} @{conc}"], made = await create_round(db, kb, fx, n, conc, True)
                    ids += made
                    log(f"  create {label} @{conc}: p50 {rows[f'create {label} @{conc}']['p50']:.1f} ms")
                rows[f"create empty (no pool) @{conc}"], made = await create_round(db, kb, empty, n, conc, False)
                ids += made
            big_ids = ids[:2]
            lat = []
            for _ in range(n):
                t0 = now()
                await service.state(db, big_ids[0])
                lat.append(now() - t0)
            rows[f"state export {tickets}t+{docs}d"] = summarize(lat)
            rows["destroy"] = await destroy_all(db, kb, ids)
            res["latency_ms"] = rows
            log("tool calls over HTTP")
            res["http"] = await http_throughput(db, kb, big_fixture(3, 0), conc_hi, 4 if args.quick else 20)
        finally:
            await kb.close()
            await db.close()
    res["loadavg_before"], res["loadavg_after"] = load_before, machine()["loadavg"]
    return res


def render(res: dict[str, Any]) -> tuple[str, Any]:
    rows = res["latency_ms"]
    quick = res["fixture"]["tickets"] != 50
    label = f"{res['fixture']['tickets']}t+{res['fixture']['documents']}d"
    vs = rows["tenants create @1"]["p50"]
    table = md_table(["operation", "n", "p50 ms", "p99 ms", "max ms", "p50 / tenants create @1"],
                     [[k, v["n"], v["p50"], v["p99"], v["max"], v["p50"] / vs if vs else float("nan")]
                      for k, v in rows.items()])
    h = res["http"]
    http = md_table(["episodes", "tool calls", "calls/s", "p50 ms", "p99 ms"],
                    [[h["episodes"], h["calls"], h["calls_per_s"], h["p50"], h["p99"]]])
    got = {"create empty p50 ms @1": rows["create empty @1"]["p50"],
           "create 50t+20d p50 ms @1": rows[f"create {label} @1"]["p50"]}
    targets, json_rows = targets_table([(k, got[k], lim) for k, lim in TARGETS])
    load = f"load average before {res['loadavg_before']}, after {res['loadavg_after']}"
    note = " (quick: smaller fixture, targets not comparable)" if quick else ""
    return (f"## Episodes\n\n{table}\n\n### Tool calls over Streamable HTTP\n\n{http}\n\n### Targets{note}\n\n"
            f"{targets}\n\nMachine: {res['machine']['cpus']} CPUs, {load}.\n"), json_rows


def main() -> None:
    ap = bench_parser(__doc__, "episodes")
    ap.add_argument("--n", type=int, default=200, help="creates per measured row")
    bench_main("episodes", ap.parse_args(), run, render)


if __name__ == "__main__":
    main()
