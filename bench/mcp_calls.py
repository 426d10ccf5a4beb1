"""MCP call bench (not a test): create_ticket / list_tickets latency via a direct domain call,
in-memory MCP, stdio and stateless HTTP (JSON responses), then throughput of 16 HTTP clients over
N tenants vs a bare SDK MCPServer over the same HTTP (bench/bare_mcp_server.py: the SDK's own floor)
vs in-process scoped calls vs raw asyncpg. --isolation schema|rls picks the scratch database's
isolation mode. Markdown on stdout, JSON to --out.
All processes log at WARNING (the INFO tool_call line per call is left out of every path).
"""

from __future__ import annotations

import argparse, asyncio, contextlib, json, math, os, random, socket, sys  # noqa: E401
import time, uuid  # noqa: E401
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import mcp
import psutil
from mcp.client.stdio import StdioServerParameters
from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_REQUEST

_HERE = Path(__file__).resolve().parent  # last on sys.path: bench/stripe.py must not shadow the stripe SDK
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
from bare_mcp_server import GET_TICKET, INS_TICKET  # noqa: E402, I001  (the same SQL as the bare server's tools)
from common import (bench_main, bench_parser, bounded_map, interleaved_cpu, log, machine, md_table, ratio, rss_mb,  # noqa: E402, I001
                    scratch_settings, summarize)
from support_mcp import keys, migrations, tenancy  # noqa: E402
from support_mcp.access import Principal  # noqa: E402
from support_mcp.db import Database  # noqa: E402
from support_mcp.desk import tickets  # noqa: E402
from support_mcp.guard import Guard  # noqa: E402
from support_mcp.server import build_server  # noqa: E402

CONC = 16
CUSTOMER = uuid.UUID(int=1)  # every tenant (and bench_single) gets this customer upfront
CID = str(CUSTOMER)
INS_CUSTOMER = "INSERT INTO customers (id, name) VALUES ($1, 'Bench customer')"
W, R = "lat_w", "lat_r"  # latency tenants: creates go to W so R keeps its ~200 tickets
TICKET = {"subject": "Printer on fire", "description": "It is on fire. Please advise."}
LIST = {"tenant": R, "limit": 20}
MODES = ("mcp_http", "bare_mcp_http", "scoped_in_process", "raw_asyncpg")
SERVE = ["-m", "support_mcp", "serve", "--transport", "http", "--stateless", "--json-response", "--all-tenants"]
now = time.perf_counter
Op = Callable[[], Awaitable[Any]]


async def call(c: mcp.Client, name: str, args: dict[str, Any]) -> Any:
    r = await c.call_tool(name, args)
    if r.is_error:
        raise RuntimeError(f"{name} failed: {r.content}")
    return r.structured_content


def create_args(tenant: str) -> dict[str, Any]:
    return {"tenant": tenant, **TICKET, "customer_id": CID}


async def direct_create(db: Database, tenant: str) -> Any:
    async with db.tenant_scope(tenant) as s:
        return await tickets.create(s.conn, **TICKET, customer_email=None, customer_id=CID,
                                    customer_name=None, priority="normal", tags=None)


async def direct_list(db: Database) -> Any:
    async with db.tenant_scope(R) as s:
        return await tickets.list_(s.conn, status=None, priority=None, customer=None, tag=None,
                                   assignee=None, query=None, cursor=None, limit=20)


def server_env(st: Any) -> dict[str, str]:
    """Point a server subprocess at the bench database (same data dir / URL)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SUPPORT_MCP_DATABASE_URL")}
    env.update(SUPPORT_MCP_DATA_DIR=str(st.data_dir), SUPPORT_MCP_LOG_LEVEL="WARNING",
               SUPPORT_MCP_DB_POOL_MAX_SIZE=str(CONC), SUPPORT_MCP_ISOLATION=st.isolation)
    if st.database_url is not None:
        env["SUPPORT_MCP_DATABASE_URL"] = st.database_url.get_secret_value()
    return env


def bare_env(dsn: str) -> dict[str, str]:
    """The bare server's environment: the admin DSN (search_path bench_single is set by its pool)."""
    return {**os.environ, "BENCH_BARE_DSN": dsn}


def bare_args(st: Any) -> list[str]:
    return [str(_HERE / "bare_mcp_server.py"), "--pool-size", str(CONC), "--max-queries", str(st.db_pool_max_queries)]


async def start_http(args: list[str], env: dict[str, str], cwd: Path) -> tuple[asyncio.subprocess.Process, int]:
    """`python <args> --port <free port>`, returned once the port accepts connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(sys.executable, *args, "--port", str(port), env=env, cwd=str(cwd))
    for _ in range(600):
        with contextlib.suppress(OSError):
            (await asyncio.open_connection("127.0.0.1", port))[1].close()
            return proc, port
        if proc.returncode is not None:
            break
        await asyncio.sleep(0.1)
    raise RuntimeError(f"HTTP server did not come up (exit code {proc.returncode})")


async def shutdown(procs: list[Any], st: Any, raw: Any, db: Any) -> None:
    """Stop the server subprocesses, release pgserver handles they held, close the pools."""
    for p in procs:
        if p.returncode is None:
            p.terminate()
    for p in procs:
        await asyncio.wait_for(p.wait(), 15)
    if dead := release_pg_handles(st):
        log(f"pgserver handle list still held exited server pids {dead}: removed")
    if raw is not None:
        await raw.close()
    await db.close()


def release_pg_handles(st: Any) -> list[int]:
    """Drop dead pids from pgserver's handle list (a server subprocess killed before its atexit ran
    would keep the embedded server running after we exit). Returns them."""
    path = Path(st.data_dir) / "pg" / ".handle_pids.json"
    if st.database_url is not None or not path.exists():
        return []
    pids = json.loads(path.read_text())
    dead = [p for p in pids if not psutil.pid_exists(p)]
    path.write_text(json.dumps([p for p in pids if p not in dead]))
    return dead


async def seed(db: Database, slugs: list[str]) -> None:
    async def tenant(s: str) -> None:
        await tenancy.create_tenant(db, s, s.upper())
        async with db.tenant_scope(s) as sc:
            await sc.conn.execute(INS_CUSTOMER, CUSTOMER)
    await bounded_map(tenant, slugs, 4)
    if R in slugs:
        async with db.tenant_scope(R) as sc:
            await sc.conn.executemany(INS_TICKET, [(CUSTOMER, f"Ticket {i}") for i in range(200)])
        async with db.admin_scope() as c:  # raw baseline: one plain schema owned by the admin
            await c.execute("CREATE SCHEMA bench_single; SET LOCAL search_path = bench_single")
            await c.execute(migrations.load("tenant")[0].sql)
            await c.execute(INS_CUSTOMER, CUSTOMER)


class CallerOnlyGuard(Guard):
    """The guard minus its checks: establishes the caller only (no rate limit, argument check or
    audit row), the baseline for what the rest of the guard costs. Never a serving mode."""

    async def _data_request(self, ctx: Any, call_next: Any, principal: Any, refusal: Any, *_: Any) -> Any:
        if refusal is not None:
            raise MCPError(INVALID_REQUEST, str(refusal))
        return await call_next(ctx)


def caller_only(server: Any) -> Any:
    """`server` with its Guard replaced by a CallerOnlyGuard (same app and server)."""
    for i, layer in enumerate(server.middleware):
        if isinstance(layer, Guard):
            bare = CallerOnlyGuard(layer.app)
            bare.server = layer.server
            server.middleware[i] = bare
            return server
    raise AssertionError("no Guard in the server's middleware")


async def latency(db: Database, st: Any, env: dict[str, str], url: str, n: int, rounds: int,
                  warm: int) -> dict[str, Any]:
    server = build_server(st, Principal.operator(None, True), db=db)
    # issue 4: the same call without authorization/audit (baseline) and with an API key as a bearer token
    bare = caller_only(build_server(st, Principal.operator(None, True), db=db))
    # the limiter runs (its cost counts) but is set high enough never to refuse the bench's calls
    keyed = build_server(st.model_copy(update={"rate_limit_per_minute": 10_000_000}), db=db, bearer=True)
    key = (await keys.create_key(db, "bench", tenants=[], all_tenants=True, scopes=["read", "write"])).key
    user = AuthenticatedUser(AccessToken(token=key, client_id="bench", scopes=[]))
    stdio = StdioServerParameters(command=sys.executable, args=["-m", "support_mcp", "serve", "--all-tenants"],
                                  env=env, cwd=str(st.data_dir))
    async with (mcp.Client(server) as mem, mcp.Client(server) as mem_nv, mcp.Client(stdio) as sio,
                mcp.Client(url) as http, mcp.Client(bare) as mem_bare, mcp.Client(keyed) as mem_key):
        # the client re-validates structuredContent against the outputSchema (jsonschema);
        # "in-memory-noval" skips that to separate client-side validation from server cost
        mem_nv.session.validate_tool_result = lambda *_: asyncio.sleep(0)  # type: ignore[method-assign]
        modes: dict[str, Op] = {"create/direct": lambda: direct_create(db, W), "list/direct": lambda: direct_list(db)}
        for name, c in (("in-memory", mem), ("in-memory-noval", mem_nv), ("stdio", sio), ("http", http),
                        ("in-memory-noauth", mem_bare)):
            modes[f"create/{name}"] = lambda c=c: call(c, "create_ticket", create_args(W))
            modes[f"list/{name}"] = lambda c=c: call(c, "list_tickets", LIST)

        async def as_key(op: Op) -> None:  # the HTTP middleware would set this per request
            token = auth_context_var.set(user)
            try:
                await op()
            finally:
                auth_context_var.reset(token)

        modes["create/in-memory-key"] = lambda: as_key(lambda: call(mem_key, "create_ticket", create_args(W)))
        modes["list/in-memory-key"] = lambda: as_key(lambda: call(mem_key, "list_tickets", LIST))
        assert len((await call(http, "list_tickets", LIST))["tickets"]) == 20
        out = await interleaved_cpu(modes, n, rounds, warm)  # with CPU time of this process per call
    return out


def cpu_snapshot(server_pid: int, postmaster: psutil.Process | None) -> dict[str, float]:
    """CPU seconds: this process, the server subprocess, our PostgreSQL cluster (postmaster, its
    live children and those it reaped) and the whole machine."""
    def secs(p: psutil.Process, reaped: bool = False) -> float:
        try:
            t = p.cpu_times()
        except psutil.Error:
            return 0.0
        return t.user + t.system + ((t.children_user + t.children_system) if reaped else 0.0)
    pg = math.nan if postmaster is None else secs(postmaster, True) + sum(map(secs, postmaster.children()))
    m = psutil.cpu_times()
    return {"client": secs(psutil.Process()), "server": secs(psutil.Process(server_pid)), "postgres": pg,
            "machine": m.user + m.nice + m.system + m.irq + m.softirq + m.steal}


async def run_for(ops: list[Op], seconds: float) -> tuple[list[float], float]:
    """One worker per op, each looping until the deadline; returns (latencies, wall)."""
    lat: list[float] = []
    start = now()

    async def worker(op: Op) -> None:
        while now() < start + seconds:
            t0 = now()
            await op()
            lat.append(now() - t0)

    await asyncio.gather(*(worker(op) for op in ops))
    return lat, now() - start


async def throughput(db: Database, raw: asyncpg.Pool, urls: dict[str, str], pids: dict[str, int], slugs: list[str],
                     seconds: float, rounds: int, warm: float) -> dict[str, Any]:
    """Modes interleaved in rotated order; `urls` and `pids`: the HTTP servers of mcp_http and
    bare_mcp_http (the other modes charge our idle server's CPU to "server")."""
    async with db.connection() as conn:  # a local server's postmaster: parent of our backend
        backend = await conn.fetchval("SELECT pg_backend_pid()")
    postmaster = psutil.Process(backend).parent() if psutil.pid_exists(backend) else None

    async def scoped_op() -> None:
        t = random.choice(slugs)
        created = await direct_create(db, t)
        async with db.tenant_scope(t) as s:
            await tickets.get(s.conn, str(created.id))

    async def raw_op() -> None:  # autocommit: the insert commits, then the select (like 2 calls)
        async with raw.acquire() as c:
            await c.fetchrow(GET_TICKET, await c.fetchval(INS_TICKET, CUSTOMER, "bench"))

    def mcp_op(c: mcp.Client) -> Op:
        async def op() -> None:
            t = random.choice(slugs)
            created = await call(c, "create_ticket", create_args(t))
            await call(c, "get_ticket", {"tenant": t, "ticket": created["id"]})
        return op

    def bare_op(c: mcp.Client) -> Op:  # no tenant: one plain schema, like raw_asyncpg
        async def op() -> None:
            created = await call(c, "create_ticket", {**TICKET, "customer_id": CID})
            await call(c, "get_ticket", {"ticket_id": created["id"]})
        return op

    acc = {m: {"lat": [], "wall": 0.0, "cpu": {}, "round_ops_s": []} for m in MODES}
    async with contextlib.AsyncExitStack() as stack:
        clients = {k: [await stack.enter_async_context(mcp.Client(u)) for _ in range(CONC)] for k, u in urls.items()}
        modes = dict(zip(MODES, ([mcp_op(c) for c in clients["mcp_http"]], [bare_op(c) for c in clients["bare_mcp_http"]],
                                 [scoped_op] * CONC, [raw_op] * CONC)))
        for m in MODES:
            await run_for(modes[m], warm)
        for r in range(rounds):
            for m in MODES[r % len(MODES):] + MODES[:r % len(MODES)]:
                pid = pids.get(m, pids["mcp_http"])
                c0 = cpu_snapshot(pid, postmaster)
                lat, wall = await run_for(modes[m], seconds / rounds)
                c1, a = cpu_snapshot(pid, postmaster), acc[m]
                a["lat"], a["wall"] = a["lat"] + lat, a["wall"] + wall
                a["round_ops_s"].append(len(lat) / wall)
                a["cpu"] = {k: a["cpu"].get(k, 0.0) + c1[k] - c0[k] for k in c1}
            log(f"  round {r + 1}/{rounds}: ops/s " + ", ".join(f"{m} {acc[m]['round_ops_s'][-1]:.0f}" for m in MODES))
    out: dict[str, Any] = {f"{k}_server_rss_mb": psutil.Process(p).memory_info().rss / 2**20 for k, p in pids.items()}
    out["server_rss_mb"] = out["mcp_http_server_rss_mb"]
    for m, a in acc.items():
        ops, cpu = len(a["lat"]), a["cpu"]
        pct = {k: 100 * v / a["wall"] for k, v in cpu.items()}
        pct["others"] = pct["machine"] - pct["client"] - pct["server"] - pct["postgres"]
        per_op = {k: 1000 * cpu[k] / max(1, ops) for k in ("client", "server", "postgres")}
        per_op["sum"] = sum(per_op.values())
        out[m] = {**summarize(a["lat"]), "ops": ops, "seconds": a["wall"], "ops_per_s": ops / a["wall"],
                  "round_ops_s": a["round_ops_s"], "cpu_pct": pct, "cpu_ms_per_op": per_op,
                  "capacity_ops_s": 2000 / per_op["sum"] if per_op["sum"] > 0 else math.nan}
    for a, b in (("mcp_http", "raw_asyncpg"), ("mcp_http", "scoped_in_process"), ("scoped_in_process", "raw_asyncpg"),
                 ("mcp_http", "bare_mcp_http"), ("bare_mcp_http", "raw_asyncpg")):
        out[f"ratio_{a}_{b}"] = ratio(out[a]["ops_per_s"], out[b]["ops_per_s"])
        out[f"capacity_ratio_{a}_{b}"] = ratio(out[a]["capacity_ops_s"], out[b]["capacity_ops_s"])
    return out


async def run(a: argparse.Namespace) -> dict[str, Any]:
    n, rounds, warm = (60, 2, 10) if a.quick else (a.calls, a.rounds, 200)
    n_ten, secs, t_rounds, t_warm = (20, 2.0, 1, 0.5) if a.quick else (a.tenants, a.seconds, 4, 3.0)
    cfg = {"quick": a.quick, "calls_per_cell": n, "rounds": rounds, "tenants": n_ten, "seconds_per_mode": secs,
           "throughput_rounds": t_rounds, "concurrency": CONC, "server": "url" if a.database_url else "embedded",
           "isolation": a.isolation}
    res: dict[str, Any] = {"machine": machine(), "config": cfg, "loadavg_start": os.getloadavg()}
    async with scratch_settings(a.database_url, prefix="sm_mcpcalls", db_pool_min_size=1,
                                db_pool_max_size=CONC, isolation=a.isolation) as st:
        db, raw, procs = await migrations.database(st).start(), None, []
        try:
            async with db.connection() as c:
                cfg["server_version"] = await c.fetchval("SHOW server_version")
            await seed(db, [W, R])
            env = server_env(st)
            http, port = await start_http(SERVE, env, st.data_dir)
            procs.append(http)
            url = f"http://127.0.0.1:{port}/mcp"
            log(f"1. latency: 10 cells x {n} calls, {rounds} interleaved rounds")
            res["latency"] = lat = await latency(db, st, env, url, n, rounds, warm)
            for op in ("create", "list"):
                for v in ("in-memory", "in-memory-noval"):
                    res[f"overhead_{op}_{v}_ms"] = lat[f"{op}/{v}"]["p50"] - lat[f"{op}/direct"]["p50"]
                res[f"auth_overhead_{op}_ms"] = lat[f"{op}/in-memory-key"]["p50"] - lat[f"{op}/in-memory-noauth"]["p50"]
            log(f"2. provisioning {n_ten} tenants (4 in parallel)")
            slugs, t0 = [f"tp{i:05d}" for i in range(n_ten)], now()
            await seed(db, slugs)
            res["provision_s"] = now() - t0
            raw = await asyncpg.create_pool(db.admin_dsn, min_size=CONC, max_size=CONC, max_queries=st.db_pool_max_queries,
                                            server_settings={"search_path": "bench_single"})
            bare, bare_port = await start_http(bare_args(st), bare_env(db.admin_dsn), st.data_dir)
            procs.append(bare)
            urls = {"mcp_http": url, "bare_mcp_http": f"http://127.0.0.1:{bare_port}/mcp"}
            log(f"3. throughput: {CONC} workers, {secs:.0f} s per mode in {t_rounds} rounds")
            res["throughput"] = await throughput(db, raw, urls, {"mcp_http": http.pid, "bare_mcp_http": bare.pid},
                                                 slugs, secs, t_rounds, t_warm)
        finally:
            log("stopping the server subprocesses and the database")
            await shutdown(procs, st, raw, db)
    res["client_rss_mb"], res["loadavg_end"] = rss_mb(), os.getloadavg()
    return res


def render(r: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    c, lat, tp = r["config"], r["latency"], r["throughput"]
    rows = [[f"{op}_ticket" if op == "create" else "list_tickets(20)", path, s["n"], s["p50"], s["p99"], s["max"],
             s["p50"] - b["p50"], s["p99"] - b["p99"], s["cpu_p50"], s["cpu_p50"] - b["cpu_p50"],
             " ".join(f"{x:.2f}" for x in s["round_p50s"])]
            for op in ("create", "list") for b in [lat[f"{op}/direct"]]
            for path in ("direct", "in-memory", "in-memory-noval", "stdio", "http", "in-memory-noauth",
                         "in-memory-key") for s in [lat[f"{op}/{path}"]]]
    raw = tp["raw_asyncpg"]
    tp_rows = [[m, tp[m]["ops_per_s"], ratio(tp[m]["ops_per_s"], raw["ops_per_s"]), tp[m]["p50"], tp[m]["p99"],
                " ".join(f"{x:.0f}" for x in tp[m]["round_ops_s"])] for m in MODES]
    cpu_rows = [[m, *(tp[m]["cpu_pct"][k] for k in ("client", "server", "postgres", "others", "machine")),
                 *(tp[m]["cpu_ms_per_op"][k] for k in ("client", "server", "postgres", "sum")),
                 tp[m]["capacity_ops_s"], ratio(tp[m]["capacity_ops_s"], raw["capacity_ops_s"])] for m in MODES]
    targets = [{"target": f"{v} p50 - direct p50, ms, {op}", "value": r[f"overhead_{op}_{v}_ms"], "limit": "<= 0.5"}
               for v in ("in-memory", "in-memory-noval") for op in ("create", "list")]
    targets += [{"target": f"auth + audit: in-memory-key p50 - in-memory-noauth p50, ms, {op}",
                 "value": r[f"auth_overhead_{op}_ms"], "limit": "<= 0.3"} for op in ("create", "list")]
    targets += [{"target": "HTTP MCP ops/s / raw asyncpg ops/s", "value": tp["ratio_mcp_http_raw_asyncpg"],
                 "limit": ">= 0.35"},
                {"target": "same from CPU ms per op (2000/sum)",
                 "value": tp["capacity_ratio_mcp_http_raw_asyncpg"], "limit": ">= 0.35"}]
    applies = "target" if c["isolation"] == "rls" else "informative: the target applies to rls isolation"
    targets += [{"target": f"HTTP MCP ops/s / bare MCPServer ops/s ({applies})",
                 "value": tp["ratio_mcp_http_bare_mcp_http"], "limit": ">= 0.8"},
                {"target": f"same from CPU ms per op (2000/sum) ({applies})",
                 "value": tp["capacity_ratio_mcp_http_bare_mcp_http"], "limit": ">= 0.8"}]
    for t in targets:
        lim = float(t["limit"][3:])
        t["met"] = t["value"] <= lim if t["limit"].startswith("<=") else t["value"] >= lim
    load = " -> ".join("/".join(f"{x:.1f}" for x in r[k]) for k in ("loadavg_start", "loadavg_end"))
    out = [f"# MCP call bench ({c['isolation']} isolation): {c['server']} PostgreSQL {c['server_version']}, "
           f"{r['machine']['cpus']} CPUs, "
           f"{'quick' if c['quick'] else 'full'} run, load average {load}",
           f"\n## 1. Latency per call, concurrency 1 ({c['calls_per_cell']} calls per cell, {c['rounds']} "
           "interleaved rounds; ms)",
           md_table(["call", "path", "n", "p50", "p99", "max", "p50 - direct", "p99 - direct", "client CPU p50",
                     "CPU - direct", "round p50s"], rows),
           "\nclient CPU = CPU time of the bench process per call (direct and in-memory: all app-side work; "
           "stdio/http: the client's share only). in-memory-noval = in-memory with the client's jsonschema "
           "re-validation of structuredContent switched off. in-memory-noauth = the guard only establishes the caller "
           "(no key check, rate limit, argument pre-check or audit); in-memory-key = an API key verified on every "
           "call (cached), rate limit, argument pre-check and a batched audit row: their difference is the "
           "authorization + audit cost.",
           f"\n## 2. Throughput: op = create_ticket + get_ticket of it, random tenant of {c['tenants']}; "
           f"{CONC} workers, {c['seconds_per_mode']:.0f} s per mode in {c['throughput_rounds']} rounds",
           md_table(["mode", "ops/s", "vs raw", "p50 ms", "p99 ms", "ops/s per round"], tp_rows),
           "\nCPU: % of one core during the mode (2 cores = 200), and CPU ms per op; 2000/sum = ops/s if our "
           "processes had both cores to themselves (robust to other load on the machine)\n",
           md_table(["mode", "% client", "% server", "% postgres", "% other processes", "% machine",
                     "ms/op client", "ms/op server", "ms/op postgres", "ms/op sum", "2000/sum", "vs raw"], cpu_rows),
           f"\nmcp_http / bare_mcp_http: {tp['ratio_mcp_http_bare_mcp_http']:.2f}; mcp_http / scoped_in_process: "
           f"{tp['ratio_mcp_http_scoped_in_process']:.2f}; bare_mcp_http / raw: {tp['ratio_bare_mcp_http_raw_asyncpg']:.2f}; "
           f"scoped_in_process / raw: {tp['ratio_scoped_in_process_raw_asyncpg']:.2f}; server RSS "
           f"{tp['server_rss_mb']:.0f} MB (bare server {tp['bare_mcp_http_server_rss_mb']:.0f} MB); "
           f"provisioning {c['tenants']} tenants took {r['provision_s']:.1f} s. raw_asyncpg = autocommit insert + "
           "select by id on one plain schema; bare_mcp_http = the same two statements as two tools of a bare SDK "
           "MCPServer in its own process (bench/bare_mcp_server.py: no auth, guard, audit or tenancy), same HTTP "
           "transport settings and client code as mcp_http (the SDK's floor); scoped_in_process = the domain calls "
           "via Database.tenant_scope; % server and ms/op server: the bare server's process in bare_mcp_http, ours "
           "(idle) in the in-process modes.",
           "\n## Targets", md_table(["target", "value", "limit", "met"],
                                    [[t["target"], t["value"], t["limit"], t["met"]] for t in targets])]
    return "\n".join(out), targets


def main() -> None:
    ap = bench_parser(__doc__, "mcp_calls")
    ap.add_argument("--calls", type=int, default=2000, help="measured calls per latency cell")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds for latency")
    ap.add_argument("--tenants", type=int, default=1000, help="tenants for the throughput phase")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per throughput mode")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--isolation", choices=("schema", "rls"), default="schema",
                    help="SUPPORT_MCP_ISOLATION of the scratch database (and the server subprocess)")
    a = ap.parse_args()
    random.seed(a.seed)
    bench_main("mcp_calls" if a.isolation == "schema" else f"mcp_calls_{a.isolation}", a, run, render)


if __name__ == "__main__":
    main()
