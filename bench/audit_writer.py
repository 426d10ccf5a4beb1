"""Audit writer bench (not a test): rows/s the writer sustains into global.audit_log against a raw
COPY of the same rows (baseline, same run), the cost of record() on the request path, and the
writer's CPU while idle and while the database is unreachable (backoff). Markdown on stdout,
JSON to --out.
"""

from __future__ import annotations

import argparse, asyncio, os, sys, time, uuid  # noqa: E401
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent  # last on sys.path: bench/stripe.py must not shadow the stripe SDK
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
from common import log, machine, md_table, ratio, scratch_settings, summarize, write_json  # noqa: E402, I001
from support_mcp.audit import AuditRecord, AuditWriter  # noqa: E402
from support_mcp import migrations  # noqa: E402
from support_mcp.db import Database  # noqa: E402
from support_mcp.logging import configure_logging  # noqa: E402

COLUMNS = ("at", "tenant_id", "tenant_slug", "key_id", "principal", "tool", "outcome", "duration_ms", "arguments")
ARGS = {"tenant": "acme", "subject": "Printer on fire", "description": "It is on fire. " * 20,
        "customer_email": "mallory@example.com", "customer_name": "Mallory Example", "priority": "high",
        "tags": ["printer", "fire"]}
HOSTILE = {"tenant": "acme", "subject": "a\x00b", "n": float("nan"), "big": float("inf"),
           "nested": [[[[[[[[[[["deep"]]]]]]]]]]], "lone": "\ud800"}


def record(i: int, args: dict[str, Any] = ARGS) -> AuditRecord:
    return AuditRecord(tool="create_ticket", principal="key:bench", outcome="ok", duration_ms=1.5,
                       arguments=args, tenant_slug="acme", key_id=uuid.UUID(int=i % 7 + 1))


def cpu() -> float:
    return time.process_time()


async def record_cost(n: int) -> dict[str, Any]:
    """record() on the request path: make the row storable and buffer it (no database)."""
    out: dict[str, Any] = {}
    for name, args in (("typical", ARGS), ("hostile", HOSTILE)):
        w = AuditWriter(None, max_buffer=n + 1)  # type: ignore[arg-type]  # never flushed
        samples = []
        for i in range(n):
            rec = record(i, args)
            t0 = time.perf_counter()
            w.record(rec)
            samples.append(time.perf_counter() - t0)
        out[name] = summarize(samples)
    return out


async def throughput(db: Database, n: int, batch: int) -> dict[str, Any]:
    """Rows/s: the writer (record + flush loop) vs raw COPY of pre-built rows, same batch size."""
    rows = [record(i).row() for i in range(n)]
    async with db.admin_scope() as conn:
        await conn.execute('TRUNCATE "global".audit_log')
    t0, c0 = time.perf_counter(), cpu()
    for i in range(0, n, batch):
        async with db.connection() as conn:
            await conn.copy_records_to_table("audit_log", schema_name="global", columns=COLUMNS,
                                             records=rows[i:i + batch])
    raw_s, raw_cpu = time.perf_counter() - t0, cpu() - c0
    async with db.admin_scope() as conn:
        await conn.execute('TRUNCATE "global".audit_log')

    w = AuditWriter(db, interval=0.05, batch_rows=batch)
    await w.start()
    t0, c0 = time.perf_counter(), cpu()
    for i in range(n):
        w.record(record(i))
        if i % 1000 == 999:
            await asyncio.sleep(0)  # let the writer run beside the producer, as it would beside requests
    while w.pending:
        await asyncio.sleep(0.01)
    writer_s, writer_cpu = time.perf_counter() - t0, cpu() - c0
    await w.stop()
    async with db.admin_scope() as conn:
        stored = await conn.fetchval('SELECT count(*) FROM "global".audit_log')
    return {"rows": n, "batch": batch, "stored": stored, "raw_copy_rows_per_s": n / raw_s,
            "raw_copy_cpu_us_per_row": raw_cpu / n * 1e6, "writer_rows_per_s": n / writer_s,
            "writer_cpu_us_per_row": writer_cpu / n * 1e6}


async def idle_cpu(db: Database, seconds: float, down: bool) -> dict[str, Any]:
    """CPU of this process while the writer runs idle (or with rows pending and the database away)."""
    target = db
    if down:  # a Database whose pool is gone: every flush fails like an outage
        target = Database(db.settings)
    w = AuditWriter(target, interval=0.25)
    if down:
        for i in range(1000):
            w.record(record(i))
    await w.start()
    await asyncio.sleep(0.5)
    c0, t0 = cpu(), time.perf_counter()
    await asyncio.sleep(seconds)
    used = cpu() - c0
    elapsed = time.perf_counter() - t0
    stats = w.stats()
    w.stop_seconds = 0.5
    await w.stop()
    return {"seconds": elapsed, "cpu_percent_of_core": used / elapsed * 100, "failures": stats["consecutive_failures"],
            "pending": stats["pending"]}


async def run(a: argparse.Namespace) -> dict[str, Any]:
    res: dict[str, Any] = {"machine": machine(), "loadavg_start": os.getloadavg(), "config": vars(a) | {"out": None}}
    log("record() cost")
    res["record_us"] = {k: {m: v * 1e3 for m, v in s.items() if m in ("p50", "p99", "max")}
                        for k, s in (await record_cost(a.records)).items()}
    async with scratch_settings(a.database_url, prefix="sm_bench_audit") as st:
        db = await migrations.database(st).start()
        try:
            log("throughput")
            res["throughput"] = await throughput(db, a.rows, a.batch)
            log("idle CPU")
            res["idle"] = await idle_cpu(db, a.idle_seconds, down=False)
            log("CPU with the database unreachable")
            res["down"] = await idle_cpu(db, a.idle_seconds, down=True)
        finally:
            await db.close()
    res["loadavg_end"] = os.getloadavg()
    return res


def report(r: dict[str, Any]) -> str:
    t = r["throughput"]
    tp = ratio(t["writer_rows_per_s"], t["raw_copy_rows_per_s"])
    rows = [
        ["record() p50 / p99 µs, typical create_ticket args", f"{r['record_us']['typical']['p50']:.1f} / "
         f"{r['record_us']['typical']['p99']:.1f}", "", ""],
        ["record() p50 / p99 µs, hostile args (NUL, NaN, inf, lone surrogate, depth 11)",
         f"{r['record_us']['hostile']['p50']:.1f} / {r['record_us']['hostile']['p99']:.1f}", "", ""],
        ["writer rows/s (record + batched COPY)", f"{t['writer_rows_per_s']:.0f}", "≥ 5000", t["writer_rows_per_s"] >= 5000],
        ["raw COPY rows/s (baseline)", f"{t['raw_copy_rows_per_s']:.0f}", "", ""],
        ["writer / raw COPY", f"{tp:.2f}", "", ""],
        ["rows stored / rows recorded", f"{t['stored']} / {t['rows']}", "all", t["stored"] == t["rows"]],
        ["writer CPU idle, % of a core", f"{r['idle']['cpu_percent_of_core']:.2f}", "≤ 1", r["idle"]["cpu_percent_of_core"] <= 1],
        ["writer CPU, database unreachable, % of a core", f"{r['down']['cpu_percent_of_core']:.2f}", "≤ 1",
         r["down"]["cpu_percent_of_core"] <= 1],
        ["failed flushes in that window (backoff)", r["down"]["failures"], "", ""],
    ]
    load = " → ".join(f"{x[0]:.2f}" for x in (r["loadavg_start"], r["loadavg_end"]))
    return (f"audit writer bench, load average {load}\n\n"
            + md_table(["measure", "value", "target", "met"], rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", help="PostgreSQL server for a scratch database")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5_000)
    ap.add_argument("--records", type=int, default=20_000, help="record() calls timed per argument kind")
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=_HERE / "results" / "audit_writer.json")
    a = ap.parse_args()
    configure_logging("ERROR", "json")
    res = asyncio.run(run(a))
    print(report(res))
    write_json(a.out, res)


if __name__ == "__main__":
    main()
