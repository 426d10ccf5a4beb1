"""Replicas bench (not a test): throughput of two stateless HTTP replicas vs one on the same
database (16 concurrent clients; op = create_ticket + get_ticket of it on a random tenant, like
bench/mcp_calls.py's throughput phase), then the cost of a GET /metrics scrape (latency and the
server's CPU per scrape, metrics populated by the throughput run). Markdown on stdout, JSON to
--out. Both replicas run throughout; "one" sends every client to replica 1, "two" pins half of
the clients to each (a load balancer with connection affinity). Modes are interleaved per round.
"""

from __future__ import annotations

import argparse, asyncio, contextlib, os, random, sys  # noqa: E401
from pathlib import Path
from typing import Any

import httpx
import mcp
import psutil

_HERE = Path(__file__).resolve().parent  # last on sys.path: bench/stripe.py must not shadow the stripe SDK
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
from common import bench_main, bench_parser, log, machine, md_table, ratio, scratch_settings, summarize  # noqa: E402, I001
from mcp_calls import CONC, call, create_args, release_pg_handles, run_for, seed, server_env, start_http  # noqa: E402
from support_mcp import migrations  # noqa: E402

MODES = ("one", "two")
TOKEN = "bench-metrics-token-" + "x" * 24
SCRAPE_P50_LIMIT_MS = 5.0


def cpu_s(pid: int | None = None) -> float:
    if pid is None:
        m = psutil.cpu_times()
        return m.user + m.nice + m.system + m.irq + m.softirq + m.steal
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def op_for(c: mcp.Client, slugs: list[str]):  # noqa: ANN201
    async def op() -> None:
        t = random.choice(slugs)
        created = await call(c, "create_ticket", create_args(t))
        await call(c, "get_ticket", {"tenant": t, "ticket": created["id"]})
    return op


async def throughput(urls: list[str], pids: list[int], slugs: list[str], seconds: float, rounds: int,
                     warm: float) -> dict[str, Any]:
    acc = {m: {"lat": [], "wall": 0.0, "round_ops_s": [], "machine_cpu_s": 0.0, "server_cpu_s": 0.0}
           for m in MODES}
    async with contextlib.AsyncExitStack() as stack:
        one = [await stack.enter_async_context(mcp.Client(urls[0])) for _ in range(CONC)]
        two = [await stack.enter_async_context(mcp.Client(urls[i % 2])) for i in range(CONC)]
        modes = {"one": [op_for(c, slugs) for c in one], "two": [op_for(c, slugs) for c in two]}
        for m in MODES:
            await run_for(modes[m], warm)
        for r in range(rounds):
            for m in MODES if r % 2 == 0 else MODES[::-1]:
                m0, s0 = cpu_s(), sum(cpu_s(p) for p in pids)
                lat, wall = await run_for(modes[m], seconds / rounds)
                a = acc[m]
                a["lat"], a["wall"] = a["lat"] + lat, a["wall"] + wall
                a["round_ops_s"].append(len(lat) / wall)
                a["machine_cpu_s"] += cpu_s() - m0
                a["server_cpu_s"] += sum(cpu_s(p) for p in pids) - s0
            log(f"  round {r + 1}/{rounds}: ops/s " + ", ".join(f"{m} {acc[m]['round_ops_s'][-1]:.0f}" for m in MODES))
    out: dict[str, Any] = {}
    for m, a in acc.items():
        ops = len(a["lat"])
        out[m] = {**summarize(a["lat"]), "ops": ops, "seconds": a["wall"], "ops_per_s": ops / a["wall"],
                  "round_ops_s": a["round_ops_s"], "machine_cpu_pct": 100 * a["machine_cpu_s"] / a["wall"],
                  "servers_cpu_pct": 100 * a["server_cpu_s"] / a["wall"],
                  "servers_cpu_ms_per_op": 1000 * a["server_cpu_s"] / max(1, ops)}
    out["ratio_two_one"] = ratio(out["two"]["ops_per_s"], out["one"]["ops_per_s"])
    return out


async def scrape_cost(port: int, pid: int, n: int) -> dict[str, Any]:
    url, headers = f"http://127.0.0.1:{port}/metrics", {"Authorization": f"Bearer {TOKEN}"}
    lat: list[float] = []
    async with httpx.AsyncClient(timeout=10) as http:
        first = await http.get(url, headers=headers)
        first.raise_for_status()
        for _ in range(min(20, n)):  # warm-up
            await http.get(url, headers=headers)
        c0 = cpu_s(pid)
        loop = asyncio.get_running_loop()
        for _ in range(n):
            t0 = loop.time()
            (await http.get(url, headers=headers)).raise_for_status()
            lat.append(loop.time() - t0)
        cpu = cpu_s(pid) - c0
    return {**summarize(lat), "bytes": len(first.content), "series": sum(
        1 for ln in first.text.splitlines() if ln and not ln.startswith("#")),
        "server_cpu_ms_per_scrape": 1000 * cpu / n}


async def run(a: argparse.Namespace) -> dict[str, Any]:
    n_ten, secs, rounds, warm, scrapes = (20, 2.0, 2, 0.5, 50) if a.quick else (a.tenants, a.seconds, 6, 3.0, 1000)
    cfg = {"quick": a.quick, "tenants": n_ten, "seconds_per_mode": secs, "rounds": rounds, "concurrency": CONC,
           "scrapes": scrapes, "server": "url" if a.database_url else "embedded"}
    res: dict[str, Any] = {"machine": machine(), "config": cfg, "loadavg_start": os.getloadavg()}
    async with scratch_settings(a.database_url, prefix="sm_replicas", db_pool_min_size=1,
                                db_pool_max_size=CONC) as st:
        db, procs = await migrations.database(st).start(), []
        try:
            async with db.connection() as c:
                cfg["server_version"] = await c.fetchval("SHOW server_version")
            log(f"provisioning {n_ten} tenants")
            slugs = [f"rp{i:05d}" for i in range(n_ten)]
            await seed(db, slugs)
            env = {**server_env(st), "SUPPORT_MCP_METRICS": "on", "SUPPORT_MCP_METRICS_TOKEN": TOKEN}
            ports = []
            for _ in range(2):
                proc, port = await start_http(env, st.data_dir)
                procs.append(proc)
                ports.append(port)
            urls = [f"http://127.0.0.1:{p}/mcp" for p in ports]
            log(f"1. throughput: {CONC} clients, one replica vs two, {secs:.0f} s per mode in {rounds} rounds")
            res["throughput"] = await throughput(urls, [p.pid for p in procs], slugs, secs, rounds, warm)
            log(f"2. /metrics: {scrapes} sequential scrapes of replica 1")
            res["scrape"] = await scrape_cost(ports[0], procs[0].pid, scrapes)
        finally:
            log("stopping the servers and the database")
            for proc in procs:
                if proc.returncode is None:
                    proc.terminate()
                    await asyncio.wait_for(proc.wait(), 15)
            release_pg_handles(st)
            await db.close()
    res["loadavg_end"] = os.getloadavg()
    return res


def render(r: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    c, tp, sc = r["config"], r["throughput"], r["scrape"]
    load = " -> ".join("/".join(f"{x:.1f}" for x in r[k]) for k in ("loadavg_start", "loadavg_end"))
    rows = [[m, 1 if m == "one" else 2, CONC, tp[m]["ops_per_s"], ratio(tp[m]["ops_per_s"], tp["one"]["ops_per_s"]),
             tp[m]["p50"], tp[m]["p99"], tp[m]["machine_cpu_pct"], tp[m]["servers_cpu_pct"],
             tp[m]["servers_cpu_ms_per_op"], " ".join(f"{x:.0f}" for x in tp[m]["round_ops_s"])] for m in MODES]
    targets = [{"target": "two replicas ops/s / one replica ops/s", "value": tp["ratio_two_one"], "limit": "report",
                "met": None},
               {"target": "GET /metrics p50, ms", "value": sc["p50"], "limit": f"<= {SCRAPE_P50_LIMIT_MS}",
                "met": sc["p50"] <= SCRAPE_P50_LIMIT_MS}]
    out = [f"# Replicas bench: {c['server']} PostgreSQL {c['server_version']}, {r['machine']['cpus']} CPUs, "
           f"{'quick' if c['quick'] else 'full'} run, load average {load}",
           f"\n## 1. Throughput: op = create_ticket + get_ticket, random tenant of {c['tenants']}; {CONC} clients, "
           f"{c['seconds_per_mode']:.0f} s per mode in {c['rounds']} interleaved rounds",
           md_table(["mode", "replicas", "clients", "ops/s", "vs one", "p50 ms", "p99 ms", "% machine CPU",
                     "% servers CPU", "servers CPU ms/op", "ops/s per round"], rows),
           "\n% machine CPU: all processes (200 = both cores busy), so other load on the machine shows here.",
           f"\n## 2. GET /metrics ({c['scrapes']} sequential scrapes with the metrics token, after the run)",
           md_table(["p50 ms", "p99 ms", "max ms", "server CPU ms/scrape", "bytes", "series"],
                    [[sc["p50"], sc["p99"], sc["max"], sc["server_cpu_ms_per_scrape"], sc["bytes"], sc["series"]]]),
           "\n## Targets", md_table(["target", "value", "limit", "met"],
                                    [[t["target"], t["value"], t["limit"], t["met"] if t["met"] is not None
                                      else "report"] for t in targets])]
    return "\n".join(out), targets


def main() -> None:
    ap = bench_parser(__doc__, "replicas")
    ap.add_argument("--tenants", type=int, default=1000, help="tenants for the throughput phase")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds per mode")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    random.seed(a.seed)
    bench_main("replicas", a, run, render)


if __name__ == "__main__":
    main()
