"""Tenancy bench (not a test): provisioning, scoped vs raw ops at 10 and N tenants, server
memory per connection, tenant migrations under live load. Markdown on stdout, JSON to --out.
Order: provision P (sequential, measured) -> ops @10 -> migrate +1 (ADD COLUMN) over P under
load -> grow to N (parallel, with +1) -> ops @N -> memory -> migrate +2 over N under load.
--isolation rls: the same on an RLS-mode database (shared tables; no per-tenant migrations, so
step 4 is skipped). The raw baseline is the same SQL on one plain schema in both modes."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr

_HERE = Path(__file__).resolve().parent  # last on sys.path: bench/stripe.py must not shadow the stripe SDK
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
from common import (BackgroundLoad, LoopLag, backend_memory_mb, bounded_map,  # noqa: E402, I001
                    compare_table, interleaved, lat3, log, machine, md_table, min_med_max,
                    pool_backend_memory_mb, ratio, rss_mb, scratch_settings, summarize,
                    targets_table, write_json)
from support_mcp import migrations, tenancy  # noqa: E402
from support_mcp.db import Database  # noqa: E402
from support_mcp.logging import configure_logging  # noqa: E402

CONC = 16
CUSTOMER = uuid.UUID(int=1)  # the one customer every tenant (and bench_single) gets upfront
INS_CUSTOMER = "INSERT INTO customers (id, name) VALUES ($1, 'Bench customer')"
INS_TICKET = "INSERT INTO tickets (customer_id, subject) VALUES ($1, $2) RETURNING id"
GET_TICKET = "SELECT id, number, subject, status, created_at FROM tickets WHERE id = $1"
TEMPLATE = migrations.load("tenant")  # what create_tenant applies; the bench adds top+1, top+2
now = time.perf_counter
slug = "bt{:05d}".format  # tenant i's slug
MODES = ("scoped", "raw_tx", "raw_autocommit")


def add_column(k: int) -> migrations.Migration:
    return migrations.Migration(TEMPLATE[-1].version + k, f"bench_add_column_{k}",
                                f"ALTER TABLE tickets ADD COLUMN bench_{k} text")


async def seed_customer(db: Database, s: str) -> None:
    async with db.tenant_scope(s) as sc:
        await sc.conn.execute(INS_CUSTOMER, CUSTOMER)


async def plain_schema(db: Database, name: str, seed: bool = False) -> None:
    """A schema owned by the admin with the whole tenant template: no role, registry, ledger."""
    async with db.admin_scope() as c:
        await c.execute(f"CREATE SCHEMA {name}; SET LOCAL search_path = {name}")
        await c.execute(";\n".join(m.sql for m in TEMPLATE))
        if seed:
            await c.execute(INS_CUSTOMER, CUSTOMER)


async def provision_measured(db: Database, n: int) -> dict[str, Any]:
    """n sequential create_tenant calls; every 10th also a bare schema + the same DDL (baseline)."""
    lat, bare = [], []
    for i in range(n):
        t0 = now()
        await tenancy.create_tenant(db, slug(i), f"Bench {i}")
        lat.append(now() - t0)
        await seed_customer(db, slug(i))
        if i % 10 == 0:
            t0 = now()
            await plain_schema(db, "bench_bare")
            bare.append(now() - t0)
            async with db.admin_scope() as c:
                await c.execute("DROP SCHEMA bench_bare CASCADE")
        if (i + 1) % 250 == 0:
            log(f"  provisioned {i + 1}/{n}")
    return {"create_tenant": summarize(lat), "bare_schema_ddl": summarize(bare),
            "first_10pct": summarize(lat[:n // 10]), "last_10pct": summarize(lat[-(n // 10):])}


async def provision_fast(db: Database, start: int, stop: int, tmpl: list) -> float:
    async def one(i: int) -> None:
        await tenancy.create_tenant(db, slug(i), f"Bench {i}", tenant_migrations=tmpl)
        await seed_customer(db, slug(i))
        if (i + 1) % 1000 == 0:
            log(f"  provisioned {i + 1}/{stop}")

    t0 = now()
    await bounded_map(one, range(start, stop), 4)
    return now() - t0


async def op_scoped(db: Database, s: str) -> None:
    async with db.tenant_scope(s) as sc:
        tid = await sc.conn.fetchval(INS_TICKET, CUSTOMER, "bench")
        await sc.conn.fetchrow(GET_TICKET, tid)


async def op_raw(pool: asyncpg.Pool, in_tx: bool) -> None:
    async with pool.acquire() as c, c.transaction() if in_tx else contextlib.nullcontext():
        tid = await c.fetchval(INS_TICKET, CUSTOMER, "bench")
        await c.fetchrow(GET_TICKET, tid)


async def compare(db: Database, raw: asyncpg.Pool, slugs: list[str], ops: int, rounds: int,
                  warm: int) -> dict[str, Any]:
    """Scoped op (random tenant) vs the same SQL on bench_single: in a transaction, autocommit."""
    out: dict[str, Any] = await interleaved({
        "scoped": lambda: op_scoped(db, random.choice(slugs)),
        "raw_tx": lambda: op_raw(raw, True),
        "raw_autocommit": lambda: op_raw(raw, False)}, ops, rounds, warm, CONC)
    sc, tx = out["scoped"], out["raw_tx"]
    out |= {f"ratio_{q}_scoped_{b}": ratio(sc[q], out[b][q])
            for q, b in (("p50", "raw_tx"), ("p99", "raw_tx"), ("p50", "raw_autocommit"))}
    rr = [ratio(a, b) for a, b in zip(sc["round_p50s"], tx["round_p50s"])]
    return {**out, "tenants": len(slugs), "round_ratios_p50": rr,
            "round_ratio_p50_min_med_max": min_med_max(rr)}


ENTER = {"schema": "SELECT public.support_mcp_enter_tenant($1, false)",
         "rls": "SELECT public.support_mcp_enter_shared($1, (SELECT id FROM public.tenants WHERE slug = $1), false)"}


async def raw_conn_memory(dsn: str, slugs: list[str], isolation: str) -> dict[str, Any]:
    """One unrecycled connection: the op in every tenant (cold), then the last 500 again (warm)."""
    c = await asyncpg.connect(dsn)
    marks = {len(slugs) * k // 10 for k in (1, 2, 5, 10)}
    curve, cold, warm = {0: await backend_memory_mb(c)}, [], []
    try:
        for k, s in enumerate(slugs + slugs[-500:], 1):
            t0 = now()
            async with c.transaction():
                await c.fetchval(ENTER[isolation], s)
                tid = await c.fetchval(INS_TICKET, CUSTOMER, "touch")
                await c.fetchrow(GET_TICKET, tid)
            (cold if k <= len(slugs) else warm).append(now() - t0)
            if k in marks:
                curve[k] = await backend_memory_mb(c)
                log(f"  raw connection: {k} tenants touched, {curve[k]:.1f} MB")
    finally:
        await c.close()
    return {"mb_by_tenants_touched": curve, "cold_op_c1": summarize(cold),
            "warm_op_c1": summarize(warm)}


async def migrate_under_load(db: Database, migs: list, slugs: list[str], before_s: float,
                             workers: int = 4) -> dict[str, Any]:
    """Scoped reads: before_s of baseline, then during migrate_all on its own pool (as the CLI)."""
    s = db.settings.model_copy(update={
        "database_url": SecretStr(db.admin_dsn or ""), "db_pool_min_size": 1,
        "db_pool_max_size": db.settings.migrate_concurrency})
    mdb = await migrations.database(s).start()

    async def read() -> None:
        async with db.tenant_scope(random.choice(slugs)) as sc:
            await sc.conn.fetchval("SELECT count(*) FROM tickets")
            await sc.conn.fetchrow("SELECT subject FROM tickets ORDER BY created_at DESC LIMIT 1")

    try:
        async with BackgroundLoad(read, workers) as load:
            b0 = now()
            with LoopLag() as lag_before:
                await asyncio.sleep(before_s)
            with LoopLag() as lag:
                m0 = now()
                rep = await migrations.migrate_all(mdb, migrations=migs)
                m1 = now()
    finally:
        await mdb.close()
    before, during = load.between(b0, m0), load.between(m0, m1)
    return {"tenants": rep.tenants, "migrated": rep.migrated, "up_to_date": rep.up_to_date,
            "failed": len(rep.failed), "total_s": m1 - m0,
            "live_before": before, "live_during": during, "live_errors": load.errors,
            "ratio_p99_during_before": ratio(during["p99"], before["p99"]),
            "loop_lag_max_ms_before": lag_before.max_ms(), "loop_lag_max_ms_during": lag.max_ms()}


async def run(a: argparse.Namespace) -> dict[str, Any]:
    sizes = [50, 200] if a.quick else sorted({a.provision, *a.tenants})
    n_prov, n_all, mids = sizes[0], sizes[-1], sizes[1:-1]
    ops, rounds, warm, pause = (300, 3, 60, 2) if a.quick else (a.ops, a.rounds, 300, 5)
    cfg = {"quick": a.quick, "provision": n_prov, "tenants": n_all, "ops_per_mode": ops,
           "rounds": rounds, "concurrency": CONC, "server": "url" if a.database_url else "embedded",
           "measured_at": [10, *mids, n_all],
           "isolation": a.isolation,
           "template": [f"{m.version:04d}_{m.name}" for m in TEMPLATE]}
    res: dict[str, Any] = {"machine": machine(), "config": cfg}
    rls = a.isolation == "rls"
    async with scratch_settings(a.database_url, db_pool_min_size=CONC, db_pool_max_size=CONC,
                                isolation=a.isolation) as st:
        db, raw = await migrations.database(st).start(), None
        try:
            await plain_schema(db, "bench_single", seed=True)  # the raw baseline's table set
            cfg["db_pool_max_queries"] = st.db_pool_max_queries
            raw = await asyncpg.create_pool(
                db.admin_dsn, min_size=CONC, max_size=CONC, max_queries=st.db_pool_max_queries,
                max_inactive_connection_lifetime=st.db_pool_max_idle_seconds,
                server_settings={"search_path": "bench_single"})
            cfg["server_version"] = await raw.fetchval("SHOW server_version")
            log(f"1. provisioning {n_prov} tenants sequentially")
            res["provision"] = await provision_measured(db, n_prov)
            slugs = [slug(i) for i in range(n_prov)]
            log("2a. scoped vs raw @10 tenants")
            res["ops_10"] = await compare(db, raw, slugs[:10], ops, rounds, warm)
            tmpl2 = TEMPLATE + [add_column(1)]
            if not rls:  # RLS mode: the shared tables migrate once, with the global migrations
                log(f"4a. migrate +1 over {n_prov} tenants under live load")
                res["migrate_small"] = await migrate_under_load(db, tmpl2, slugs, pause)
            res["ops_mid"], grown, res["provision_fast_s"] = [], n_prov, 0.0
            for mid in mids:  # intermediate sizes: grow, measure, go on growing
                log(f"growing to {mid} tenants (4 in parallel, not measured)")
                res["provision_fast_s"] += await provision_fast(db, grown, mid, tmpl2)
                grown = mid
                log(f"2m. scoped vs raw @{mid} tenants")
                res["ops_mid"].append(await compare(db, raw, [slug(i) for i in range(mid)], ops, rounds, warm))
            log(f"growing to {n_all} tenants (4 in parallel, not measured)")
            res["provision_fast_s"] += await provision_fast(db, grown, n_all, tmpl2)
            slugs = [slug(i) for i in range(n_all)]
            log(f"2b. scoped vs raw @{n_all} tenants")
            res["ops_all"] = await compare(db, raw, slugs, ops, rounds, warm)
            o10, on = res["ops_10"], res["ops_all"]
            res |= {f"ratio_p50_{m}_all_vs_10": ratio(on[m]["p50"], o10[m]["p50"]) for m in MODES}
            log("3. memory per pooled connection, then one raw connection over all tenants")
            try:
                res["memory"] = {"scoped_pool_mb": await pool_backend_memory_mb(db.pool),
                                 "raw_pool_mb": await pool_backend_memory_mb(raw),
                                 "one_conn_all_tenants": await raw_conn_memory(db.dsn, slugs, a.isolation)}
            except asyncpg.InsufficientPrivilegeError as exc:
                res["memory"] = {"error": f"pg_backend_memory_contexts not readable: {exc}"}
            if not rls:
                log(f"4b. migrate +2 over {n_all} tenants under live load")
                res["migrate_all"] = await migrate_under_load(db, tmpl2 + [add_column(2)], slugs, pause)
        finally:
            if raw is not None:
                await raw.close()
            await db.close()
    res["client_rss_mb"], res["machine_end"] = rss_mb(), machine()
    return res


def render(r: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    c, p, o10, on, mem = r["config"], r["provision"], r["ops_10"], r["ops_all"], r.get("memory", {})
    mids = r.get("ops_mid", [])
    n, ms, ma = c["tenants"], r.get("migrate_small"), r.get("migrate_all")
    iso = c.get("isolation", "schema")
    out = [f"# Tenancy bench ({iso} isolation): {c['server']} PostgreSQL {c['server_version']}, "
           f"{r['machine']['cpus']} CPUs, {'quick' if c['quick'] else 'full'} run; tenant "
           f"template {', '.join(c['template'])}",
           f"\n## 1. Provisioning ({c['provision']} tenants, sequential)",
           md_table(["what", "n", "p50 ms", "p99 ms", "max ms", "mean ms"],
                    [[k, v["n"], v["p50"], v["p99"], v["max"], v["mean"]] for k, v in p.items()]),
           f"\ncreate_tenant / bare DDL p50: "
           f"{ratio(p['create_tenant']['p50'], p['bare_schema_ddl']['p50']):.2f}; "
           f"growing to {n} tenants (4 in parallel) took {r['provision_fast_s']:.1f} s",
           f"\n## 2. Op = insert ticket + read it back, committed; concurrency {CONC}, "
           f"{c['ops_per_mode']} ops/mode in {c['rounds']} interleaved rounds",
           compare_table((o10, *mids, on), "tenants", MODES, "raw_tx"),
           "\nscoped/raw_tx p50 ratio per round, min/median/max: " + "; ".join(
               f"@{o['tenants']}: " + "/".join(f"{x:.2f}" for x in o["round_ratio_p50_min_med_max"])
               for o in (o10, *mids, on)),
           f"\np50@{n} / p50@10: scoped {r['ratio_p50_scoped_all_vs_10']:.2f}, "
           f"raw_tx {r['ratio_p50_raw_tx_all_vs_10']:.2f}",
           "\n## 3. Server memory per connection (MB)"]
    if "error" in mem:
        out.append(mem["error"])
    else:
        one = mem["one_conn_all_tenants"]
        cold, warm = one["cold_op_c1"], one["warm_op_c1"]
        out += [md_table(["connections", "min", "median", "max"], [
            [f"scoped pool after @{n} load ({len(mem['scoped_pool_mb'])} conns, max_queries="
             f"{c['db_pool_max_queries']})", *min_med_max(mem["scoped_pool_mb"])],
            ["raw pool, bench_single", *min_med_max(mem["raw_pool_mb"])]]),
            "\none raw connection, no recycling: " + ", ".join(
                f"{k} tenants {v:.1f} MB" for k, v in one["mb_by_tenants_touched"].items()),
            f"\nits op latency at concurrency 1, p50/p99/max ms: first touch {lat3(cold)}, "
            f"warm {lat3(warm)} (p50 ratio {ratio(cold['p50'], warm['p50']):.2f})"]
    out += ["\n## 4. Tenant migration (ADD COLUMN) under live load: 4 workers, scoped count + read"]
    if ms is None or ma is None:
        out.append("(RLS mode: no per-tenant migrations; the shared tables migrate once)")
    else:
        out.append(md_table(["tenants", "total s", "ms/tenant", "migrated", "failed",
                      "live before p50/p99/max ms", "live during p50/p99/max ms",
                      "p99 during/before", "errors", "loop lag max ms"],
                     [[m["tenants"], m["total_s"], m["total_s"] * 1e3 / m["tenants"], m["migrated"],
                       m["failed"], lat3(m["live_before"]), lat3(m["live_during"]),
                       m["ratio_p99_during_before"], m["live_errors"] or "-",
                       m["loop_lag_max_ms_during"]] for m in (ms, ma)]))
    migrate_targets = [] if ms is None or ma is None else [
        (f"migrate {ma['tenants']} tenants, s", ma["total_s"], 120),
        (f"live max ms during migrate {ms['tenants']}", ms["live_during"]["max"], 100),
        (f"live max ms during migrate {ma['tenants']}", ma["live_during"]["max"], 100)]
    table, rows = targets_table([
        ("provisioning p50 ms", p["create_tenant"]["p50"], 2 if iso == "rls" else 25),
        *((f"scoped/raw_tx p50 @{o['tenants']}", o["ratio_p50_scoped_raw_tx"], 1.15) for o in (o10, *mids, on)),
        (f"scoped p50@{n} / p50@10", r["ratio_p50_scoped_all_vs_10"], 1.2),
        ("max server MB per pooled connection", max(mem.get("scoped_pool_mb") or [math.nan]), 100),
        *migrate_targets])
    return "\n".join([*out, "\n## Targets", table]), rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenants", type=lambda v: [int(x) for x in v.split(",")], default=[10000],
                    help="tenant counts measured after the first 10, comma-separated (grown in order; "
                         "e.g. 10000,100000)")
    ap.add_argument("--provision", type=int, default=1000, help="tenants created sequentially")
    ap.add_argument("--ops", type=int, default=4800, help="measured ops per mode and config")
    ap.add_argument("--rounds", type=int, default=16, help="interleaved rounds per config")
    ap.add_argument("--quick", action="store_true", help="50/200 tenants, 300 ops: smoke run")
    ap.add_argument("--database-url", help="PostgreSQL server for a scratch database")
    ap.add_argument("--out", type=Path, help="JSON path (default bench/results/tenancy.json)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--isolation", choices=("schema", "rls"), default="schema",
                    help="SUPPORT_MCP_ISOLATION of the scratch database")
    a = ap.parse_args()
    random.seed(a.seed)
    configure_logging("WARNING", "console")
    res = asyncio.run(run(a))
    text, res["targets"] = render(res)
    print(text)
    suffix = "" if a.isolation == "schema" else f"_{a.isolation}"
    out = a.out or Path(__file__).resolve().parent / "results" / (
        f"tenancy{suffix}_quick.json" if a.quick else f"tenancy{suffix}.json")
    log(f"wrote {write_json(out, res)}")


if __name__ == "__main__":
    main()
