"""Shared bench helpers: stats, markdown, JSON, RSS, load runners, loop lag, scratch database."""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

_T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress line on stderr, prefixed with seconds since start."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    if not values:
        return math.nan
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """Latency summary in milliseconds of a list of durations in seconds."""
    ms = sorted(s * 1000.0 for s in seconds)
    return {"n": len(ms), **{f"p{q}": percentile(ms, q) for q in (50, 90, 99)},
            "max": ms[-1] if ms else math.nan, "mean": statistics.fmean(ms) if ms else math.nan}


def ratio(a: float | None, b: float | None) -> float:
    ok = a is not None and b and not math.isnan(a) and not math.isnan(b)
    return a / b if ok else math.nan  # type: ignore[operator]


def fmt(x: Any, digits: int = 2) -> str:
    if isinstance(x, bool) or x is None:
        return {True: "yes", False: "**NO**", None: "-"}[x]
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.{digits}f}"
    return str(x)


def md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    body = [[fmt(c) for c in r] for r in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def write_json(path: str | Path, data: Any) -> Path:
    """Write results as JSON (NaN becomes null), creating parent folders."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(_clean(data), indent=2, default=str) + "\n", encoding="utf-8")
    return p


def rss_mb() -> dict[str, float]:  # current and peak resident memory of this process, MB
    status = Path("/proc/self/status")
    kv = dict(ln.split(":", 1) for ln in status.read_text().splitlines()) if status.exists() else {}
    return {k: int(kv[f].split()[0]) / 1024 if f in kv else math.nan
            for k, f in (("rss", "VmRSS"), ("peak", "VmHWM"))}


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0],
            "platform": platform.platform(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "loadavg": os.getloadavg()}


class LoopLag:
    """Measures event-loop stalls: a task that sleeps `interval` and records the overshoot."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval, self.samples, self._task = interval, [], None  # type: ignore[var-annotated]

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.samples.append(max(0.0, time.perf_counter() - t0 - self.interval))

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._run())  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        self._task.cancel()  # type: ignore[attr-defined]

    def max_ms(self) -> float:
        return max(self.samples, default=0.0) * 1000.0


async def bounded_map(fn: Callable[[Any], Awaitable[Any]], items: Iterable[Any],
                      parallel: int) -> None:
    """Await fn(item) for every item, at most `parallel` at a time."""
    todo = iter(items)

    async def worker() -> None:
        for item in todo:
            await fn(item)

    await asyncio.gather(*(worker() for _ in range(parallel)))


async def closed_loop(op: Callable[[], Awaitable[Any]], n: int, concurrency: int
                      ) -> tuple[list[float], float]:
    """Run `op` n times from `concurrency` workers; returns (latencies in s, wall time in s)."""
    lat: list[float] = []
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            await op()
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return lat, time.perf_counter() - t0


async def interleaved(modes: dict[str, Callable[[], Awaitable[Any]]], total: int, rounds: int,
                      warm: int, concurrency: int) -> dict[str, dict[str, Any]]:
    """Warm each mode up, then alternate them in `rounds` rounds (order rotated) so machine
    drift hits every mode alike. Per mode: latency summary, ops/s and per-round p50s."""
    names = list(modes)
    for m in names:
        await closed_loop(modes[m], warm, concurrency)
    lat: dict[str, list[float]] = {m: [] for m in names}
    wall = dict.fromkeys(names, 0.0)
    p50s: dict[str, list[float]] = {m: [] for m in names}
    for r in range(rounds):
        for m in names[r % len(names):] + names[:r % len(names)]:
            got, w = await closed_loop(modes[m], total // rounds, concurrency)
            lat[m] += got
            wall[m] += w
            p50s[m].append(summarize(got)["p50"])
        log(f"  round {r + 1}/{rounds}: p50 "
            + ", ".join(f"{m} {p50s[m][-1]:.2f} ms" for m in names))
    return {m: {**summarize(lat[m]), "ops_per_s": len(lat[m]) / wall[m], "round_p50s": p50s[m]}
            for m in names}


async def interleaved_cpu(modes: dict[str, Callable[[], Awaitable[Any]]], total: int, rounds: int,
                          warm: int) -> dict[str, dict[str, Any]]:
    """`interleaved` one call at a time, also recording this process's CPU per call: adds
    cpu_p50 and cpu_mean (ms, warm-up excluded) to each mode's summary."""
    cpu: dict[str, list[float]] = {m: [] for m in modes}

    def timed(m: str, op: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        async def f() -> None:
            t0 = time.process_time()
            await op()
            cpu[m].append(time.process_time() - t0)
        return f

    out = await interleaved({m: timed(m, op) for m, op in modes.items()}, total, rounds, warm, 1)
    for m, xs in cpu.items():
        s = summarize(xs[warm:])  # the first `warm` calls were the warm-up
        out[m]["cpu_p50"], out[m]["cpu_mean"] = s["p50"], s["mean"]
    return out


MEMORY_SQL = "SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts"


async def backend_memory_mb(conn: Any) -> float:
    """Server-side memory (MB) of one connection's backend: its memory contexts when the role may
    read pg_backend_memory_contexts (a superuser), else the backend process's private anonymous
    memory from /proc (a server on this machine, e.g. the embedded one), else NaN (not measured).
    Not Private_Clean/Private_Dirty: those also count the pages of shared_buffers that only this
    backend has touched (they grew 0.45 KB per tenant touched in RLS mode while the backend's memory
    contexts and its anonymous memory stayed at 2.2-2.4 MB from 3,000 to 6,000 tenants)."""
    try:
        return (await conn.fetchval(MEMORY_SQL)) / 1048576
    except asyncpg.InsufficientPrivilegeError:
        pass
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return math.nan
    kv = dict(ln.split(":", 1) for ln in rollup.splitlines() if ":" in ln)
    return int(kv["Anonymous"].split()[0]) / 1024 if "Anonymous" in kv else math.nan


async def pool_backend_memory_mb(pool: Any) -> list[float]:
    """Server-side memory (MB) of every connection of an asyncpg pool, acquired all at once."""
    conns = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        return [await backend_memory_mb(c) for c in conns]
    finally:
        for c in conns:
            await pool.release(c)


class BackgroundLoad:
    """`workers` tasks loop on `op` until exit, recording (start, duration) and counting
    exceptions by type; `between(t0, t1)` summarizes a time window."""

    def __init__(self, op: Callable[[], Awaitable[Any]], workers: int) -> None:
        self.op, self.workers = op, workers
        self.samples: list[tuple[float, float]] = []
        self.errors: dict[str, int] = {}
        self._stop, self._tasks = asyncio.Event(), []  # type: ignore[var-annotated]

    async def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                await self.op()
            except Exception as exc:
                self.errors[type(exc).__name__] = self.errors.get(type(exc).__name__, 0) + 1
            self.samples.append((t0, time.perf_counter() - t0))

    async def __aenter__(self) -> BackgroundLoad:
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self.workers)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def between(self, t0: float, t1: float) -> dict[str, float]:
        return summarize([d for t, d in self.samples if t0 <= t < t1])


def lat3(s: dict[str, float], keys: Sequence[str] = ("p50", "p99", "max")) -> str:
    return "/".join(f"{s[k]:.1f}" for k in keys)  # 'p50/p99/max' of a summary


def min_med_max(values: Sequence[float]) -> list[float]:
    xs = sorted(values) or [math.nan]
    return [xs[0], xs[len(xs) // 2], xs[-1]]


def targets_table(targets: Sequence[tuple[str, float, float]]) -> tuple[str, list[dict[str, Any]]]:
    """(name, value, limit) triples, met when value <= limit: a markdown table and JSON rows."""
    rows = [{"target": k, "value": v, "limit": lim, "met": None if math.isnan(v) else v <= lim}
            for k, v, lim in targets]
    return md_table(["target", "value", "limit", "met"],
                    [[x["target"], x["value"], x["limit"], x["met"]] for x in rows]), rows


def compare_table(configs: Sequence[dict[str, Any]], key: str, modes: Sequence[str],
                  baseline: str) -> str:
    """Rows per config and mode (`interleaved` results), with ratios against `baseline`."""
    rows = [[cfg[key], m, cfg[m]["p50"], cfg[m]["p99"], cfg[m]["max"], cfg[m]["ops_per_s"],
             ratio(cfg[m]["p50"], cfg[baseline]["p50"]), ratio(cfg[m]["p99"], cfg[baseline]["p99"])]
            for cfg in configs for m in modes]
    return md_table([key, "mode", "p50 ms", "p99 ms", "max ms", "ops/s", f"p50/{baseline}",
                     f"p99/{baseline}"], rows)


@asynccontextmanager
async def scratch_settings(database_url: str | None, prefix: str = "sm_bench",
                           **overrides: Any) -> AsyncIterator[Any]:
    """Settings for a throwaway database: no URL, a fresh embedded PostgreSQL in a temp dir;
    with a URL, a scratch database there, dropped at the end with its tenant roles
    (`tn_<dbtag>_%`, dbtag = left(md5(dbname), 8) as in Database.start)."""
    import asyncpg

    from support_mcp.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}_"))
    if not os.environ.get("XDG_RUNTIME_DIR"):  # pgserver's lock dir; kept: its atexit rewrites it
        run = Path(tempfile.gettempdir()) / "sm_bench_runtime"
        run.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run)
    name = None
    try:
        if database_url is None:
            yield Settings(data_dir=tmp, _env_file=None, database_url=None, **overrides)
        else:
            name = f"{prefix}_{secrets.token_hex(4)}"
            admin = await asyncpg.connect(database_url)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
            yield Settings(data_dir=tmp, _env_file=None, database_url=url, **overrides)
    finally:
        if name is not None:
            admin = await asyncpg.connect(database_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                tag = await admin.fetchval("SELECT left(md5($1), 8)", name)
                roles = await admin.fetch(
                    "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", f"tn\\_{tag}\\_%")
                names = [f'"{r[0]}"' for r in roles]
                for i in range(0, len(names), 500):  # batched: 10,000 roles one by one is slow
                    await admin.execute("DROP ROLE IF EXISTS " + ", ".join(names[i:i + 500]))
                log(f"dropped scratch database {name} and {len(roles)} roles")
            finally:
                await admin.close()
        elif (tmp / "pg").exists():
            import pgserver
            from pgserver import pg_ctl

            srv = pgserver.get_server(tmp / "pg")
            # immediate: the data is discarded, so skip the shutdown checkpoint
            await asyncio.to_thread(pg_ctl, ["-w", "-m", "immediate", "stop"], pgdata=srv.pgdata,
                                    user=srv.system_user)
            srv.cleanup_mode = None  # already stopped: only release pgserver's handle
            await asyncio.to_thread(srv.cleanup)
        # in the background: unlinking 10,000 schemas' files took up to 10 min under load
        subprocess.Popen(["rm", "-rf", str(tmp)], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def bench_parser(doc: str | None, name: str) -> Any:
    """The flags every bench shares: --quick, --database-url, --out (more are added by the caller)."""
    import argparse

    ap = argparse.ArgumentParser(description=(doc or name).splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run")
    ap.add_argument("--database-url", help="PostgreSQL server for a scratch database")
    ap.add_argument("--out", type=Path, help=f"JSON path (default bench/results/{name}[_quick].json)")
    return ap


def bench_main(name: str, args: Any, run: Callable[[Any], Awaitable[dict[str, Any]]],
               render: Callable[[dict[str, Any]], tuple[str, Any]]) -> None:
    """Run a bench: pgserver's lock dir (shared with server subprocesses, removed at exit), WARNING
    logs, `run(args)`, the rendered markdown on stdout, JSON with the targets to --out."""
    import atexit
    import shutil

    from support_mcp.logging import configure_logging

    if not os.environ.get("XDG_RUNTIME_DIR"):
        run_dir = tempfile.mkdtemp(prefix=f"sm_{name}_run_")
        os.environ["XDG_RUNTIME_DIR"] = run_dir
        atexit.register(shutil.rmtree, run_dir, True)
    configure_logging("WARNING", "console")
    res = asyncio.run(run(args))
    text, res["targets"] = render(res)
    print(text)
    out = args.out or Path(__file__).resolve().parent / "results" / (
        f"{name}_quick.json" if args.quick else f"{name}.json")
    log(f"wrote {write_json(out, res)}")
