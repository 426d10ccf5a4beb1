"""Shared bench helpers: percentiles, markdown tables, JSON results, RSS, event-loop lag and a
scratch database (fresh embedded PostgreSQL, or a scratch database on a server)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
    ms = [s * 1000.0 for s in seconds]
    if not ms:
        return {"n": 0, "p50": math.nan, "p90": math.nan, "p99": math.nan, "max": math.nan,
                "mean": math.nan}
    return {"n": len(ms), "p50": percentile(ms, 50), "p90": percentile(ms, 90),
            "p99": percentile(ms, 99), "max": max(ms), "mean": statistics.fmean(ms)}


def ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return math.nan
    return a / b


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
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
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


def rss_mb() -> dict[str, float]:
    """Current and peak resident memory of this process, in MB (Linux /proc)."""
    out = {"rss": math.nan, "peak": math.nan}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                out["peak"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0],
            "platform": platform.platform(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


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
        if self._task is not None:
            self._task.cancel()

    def max_ms(self) -> float:
        return max(self.samples, default=0.0) * 1000.0


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@asynccontextmanager
async def scratch_settings(database_url: str | None, prefix: str = "sm_bench",
                           **overrides: Any) -> AsyncIterator[Any]:
    """Settings for a throwaway database, cleaned up on exit.

    No URL: a fresh embedded PostgreSQL in a temp data dir (stopped and deleted afterwards).
    With a URL: a scratch database on that server, dropped at the end with its tenant roles
    (`tn_<dbtag>_%`, dbtag = left(md5(dbname), 8) as in Database.start)."""
    import asyncpg

    from support_mcp.settings import Settings

    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}_"))
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
            yield Settings(data_dir=tmp, _env_file=None,
                           database_url=_with_database(database_url, name), **overrides)
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

            await asyncio.to_thread(pgserver.get_server(tmp / "pg").cleanup)
        shutil.rmtree(tmp, ignore_errors=True)
