"""Stripe bench (not a test): p50 overhead of the Stripe wrapper and lookup_charge over a bare SDK
call (Stripe double in its own process), then webhook ingestion throughput (signature check,
store, process) of an HTTP server subprocess vs raw asyncpg INSERTs of the same payloads.
Markdown on stdout, JSON to --out (full runs also write a markdown copy next to it).
All processes log at WARNING (the INFO line per tool call / processed event is left out).
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def _unshadow() -> None:
    """Run as a script, this file's folder comes first on sys.path and `import stripe` (ours and
    support_mcp's) would load this file: drop it, and find common/mcp_calls after site-packages."""
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH] + [str(BENCH)]


_unshadow()

import argparse, asyncio, contextlib, json, math, os, random, re, secrets, time  # noqa: E401, E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import mcp  # noqa: E402
import psutil  # noqa: E402
import stripe  # noqa: E402
from starlette.requests import Request  # noqa: E402

from common import (bounded_map, interleaved_cpu, log, machine, md_table, ratio, rss_mb,  # noqa: E402, I001
                    scratch_settings, summarize, write_json)
from mcp_calls import cpu_snapshot, server_env, shutdown, start_http  # noqa: E402
from support_mcp import tenancy  # noqa: E402
from support_mcp.access import Principal  # noqa: E402
from support_mcp.db import Database  # noqa: E402
from support_mcp.desk import customers, tickets  # noqa: E402
from support_mcp.logging import configure_logging  # noqa: E402
from support_mcp.payments import service  # noqa: E402
from support_mcp.payments.gateway import StripeGateway  # noqa: E402
from support_mcp.payments.webhooks import WebhookReceiver  # noqa: E402
from support_mcp.server import build_server  # noqa: E402
from support_mcp.stripe_sandbox import make_event, sign_webhook, signed_webhook  # noqa: E402

_unshadow()  # mcp_calls put this folder first again

CONC = 16
KEY = "sk_test_bench"
TICKETS, PLAIN = 20, 10  # per tenant: charges a ticket mentions, charges no ticket mentions
REPLAY, ON_TICKET = 0.10, 0.70  # shares of deliveries: replays, new events on a ticket's charge
PATHS = ("bare", "wrapper", "tool", "mcp_in_memory", "db_only")
WEBHOOK_MODES = ("webhook_httpx", "webhook_lean", "receiver_in_process", "raw_asyncpg_insert")
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.I)
slug = "st{:03d}".format
now = time.perf_counter


# ------------------------------------------------------------------ Stripe double (own process)
def serve_double(tenants: int) -> None:
    """Child process: the Stripe double with one account per tenant (a customer, TICKETS + PLAIN
    charges each); prints base URL and objects as one JSON line, serves until stdin closes."""
    from support_mcp.stripe_sandbox import StripeDouble

    with StripeDouble() as sd:
        accounts = []
        for i in range(tenants):
            acct = sd.add_account()
            cus = acct.customer(email=f"payer{i}@example.com", name=f"Payer {i}")
            accounts.append({"id": acct.id, "customer": cus["id"], "charges": [
                acct.charge(amount=2500 + j, customer=cus, description=f"Order {j}") for j in range(TICKETS + PLAIN)]})
        print(json.dumps({"base_url": sd.base_url, "accounts": accounts}), flush=True)
        sys.stdin.read()


async def start_double(tenants: int) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), "--serve-double", str(tenants),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26)
    line = await asyncio.wait_for(proc.stdout.readline(), 120)  # type: ignore[union-attr]
    if not line:
        raise RuntimeError(f"the Stripe double did not start (exit code {await proc.wait()})")
    return proc, json.loads(line)


async def seed(db: Database, dbl: dict[str, Any], secrets_: list[str]) -> None:
    """A tenant per double account: its Stripe customer linked, a ticket per TICKETS charge."""
    async def one(i: int) -> None:
        a = dbl["accounts"][i]
        await tenancy.create_tenant(db, slug(i), f"Stripe bench {i}", stripe_account_id=a["id"],
                                    stripe_webhook_secret=secrets_[i])
        async with db.tenant_scope(slug(i)) as s:
            cust = await customers.create(s.conn, f"Payer {i}", f"payer{i}@example.com",
                                          stripe_customer_id=a["customer"])
            for ch in a["charges"][:TICKETS]:
                await tickets.create(s.conn, subject="Refund question", description=f"Was {ch['id']} refunded?",
                                     customer_email=None, customer_id=str(cust.id), customer_name=None,
                                     priority="normal", tags=None)
    await bounded_map(one, range(len(dbl["accounts"])), 4)


# ------------------------------------------------------------------ 1. latency per path
async def latency(st: Any, db: Database, dbl: dict[str, Any], n: int, rounds: int, warm: int) -> dict[str, Any]:
    a, s0 = dbl["accounts"][0], slug(0)
    ch, opts = a["charges"][0]["id"], {"stripe_account": a["id"]}  # undisputed; one ticket mentions it
    bare_http = stripe.HTTPXClient(timeout=20)
    bare = stripe.StripeClient(KEY, base_addresses={"api": dbl["base_url"]}, http_client=bare_http,
                               max_network_retries=0)
    gw = StripeGateway(st, db)
    server = build_server(st, Principal.operator([s0], False), db=db)
    try:
        async with mcp.Client(server) as client:
            async def op_bare() -> Any:
                return await bare.v1.charges.retrieve_async(ch, options=opts)

            async def op_wrapper() -> Any:
                return await (await gw.for_tenant(s0)).retrieve_charge(ch)

            async def op_tool() -> Any:
                return await service.lookup_charge(await gw.for_tenant(s0), db, ch)

            async def op_mcp() -> Any:
                r = await client.call_tool("lookup_charge", {"tenant": s0, "id": ch})
                if r.is_error:
                    raise RuntimeError(f"lookup_charge failed: {r.content}")
                return r.structured_content

            async def op_db() -> Any:  # the tool's database part alone (what tool - wrapper should be)
                return await service._local_context(db, s0, a["customer"], [ch])

            info, via_mcp = await op_tool(), await op_mcp()  # the paths do what they claim
            assert (await op_bare()).id == (await op_wrapper())["id"] == info.id == via_mcp["id"] == ch
            assert len(info.tickets) == 1 and info.customer is not None and info.dispute is None, info
            ops = dict(zip(PATHS, (op_bare, op_wrapper, op_tool, op_mcp, op_db)))
            out = await interleaved_cpu(ops, n, rounds, warm)  # with CPU time of this process per call
    finally:
        await gw.close()
        await bare_http.close_async()
    return out


# ------------------------------------------------------------------ 2. webhook ingestion
def deliveries(dbl: dict[str, Any], secrets_: list[str], n: int, rng: random.Random) -> list[dict[str, Any]]:
    """n signed deliveries over all tenants: REPLAY of them re-deliver an event sent at least 4*CONC
    deliveries earlier (new signature, same body); of the new events ON_TICKET refund a charge a
    ticket mentions, the rest one no ticket mentions."""
    out: list[dict[str, Any]] = []
    for k in range(n):
        if k >= 4 * CONC and rng.random() < REPLAY:
            old = out[rng.randrange(k - 4 * CONC + 1)]
            while old["kind"] == "replay":
                old = out[rng.randrange(k - 4 * CONC + 1)]
            sig = sign_webhook(old["body"], secrets_[old["tenant"]])
            out.append({**old, "kind": "replay", "headers": {**old["headers"], "Stripe-Signature": sig}})
            continue
        t = rng.randrange(len(dbl["accounts"]))
        a = dbl["accounts"][t]
        on_ticket = rng.random() < ON_TICKET / (1 - REPLAY)
        ch = dict(rng.choice(a["charges"][:TICKETS] if on_ticket else a["charges"][TICKETS:]))
        ch["amount_refunded"] = rng.randrange(1, ch["amount"] + 1)
        ch["refunded"] = ch["amount_refunded"] == ch["amount"]
        body, headers = signed_webhook(make_event("charge.refunded", ch, account=a["id"]), secrets_[t])
        out.append({"tenant": t, "body": body, "headers": headers, "kind": "ticket" if on_ticket else "plain"})
    return out


class Sender:
    """POSTs deliveries from CONC workers over CONC keep-alive HTTP/1.1 connections, either with
    httpx.AsyncClient or with a lean client writing pre-built requests on asyncio streams (so the
    load generator's own CPU takes less of the 2 cores); checks and tallies every answer."""

    def __init__(self, port: int) -> None:
        self.port, self.base = port, f"http://127.0.0.1:{port}"
        self.tally: Counter[str] = Counter()
        self.errors: list[str] = []
        limits = httpx.Limits(max_connections=CONC, max_keepalive_connections=CONC)
        self.httpx = httpx.AsyncClient(limits=limits, timeout=60)
        self.lean: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> Sender:
        self.lean = [await asyncio.open_connection("127.0.0.1", self.port) for _ in range(CONC)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.httpx.aclose()
        for _, w in self.lean:
            w.close()

    def request(self, d: dict[str, Any]) -> bytes:
        head = [f"POST /webhooks/stripe/{slug(d['tenant'])} HTTP/1.1", f"Host: 127.0.0.1:{self.port}",
                *(f"{k}: {v}" for k, v in d["headers"].items()), f"Content-Length: {len(d['body'])}"]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + d["body"]

    def check(self, d: dict[str, Any], status: int, raw: bytes) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        ok = status == 200 and body.get("received") is True and body.get("duplicate") is (d["kind"] == "replay")
        ok = ok and str(body.get("outcome", "")).startswith(
            "no ticket" if d["kind"] == "plain" else "noted on" if d["kind"] == "ticket" else "")
        self.tally[f"{d['kind']}_{'ok' if ok else 'bad'}"] += 1
        self.tally[f"http_{status}"] += 1
        if not ok and len(self.errors) < 5:
            self.errors.append(f"{d['kind']}: HTTP {status} {raw[:200]!r}")

    async def run(self, items: list[dict[str, Any]], lean: bool) -> tuple[list[float], float]:
        lat: list[float] = []
        todo = iter(items)

        async def via_httpx(_: Any) -> None:
            for d in todo:
                t0 = now()
                r = await self.httpx.post(f"{self.base}/webhooks/stripe/{slug(d['tenant'])}", content=d["body"],
                                          headers=d["headers"])
                lat.append(now() - t0)
                self.check(d, r.status_code, r.content)

        async def via_lean(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
            reader, writer = conn
            for d in todo:
                t0 = now()
                writer.write(d["request"])
                head = await reader.readuntil(b"\r\n\r\n")
                size = CONTENT_LENGTH.search(head)
                if size is None:
                    raise RuntimeError(f"answer without Content-Length: {head[:300]!r}")
                body = await reader.readexactly(int(size.group(1)))
                lat.append(now() - t0)
                self.check(d, int(head[9:12]), body)

        if lean:  # fresh connections each round (uvicorn closes keep-alive connections idle > 5 s)
            for _, w in self.lean:
                w.close()
            self.lean = [await asyncio.open_connection("127.0.0.1", self.port) for _ in range(CONC)]
        t0 = now()
        await asyncio.gather(*(via_lean(c) if lean else via_httpx(c) for c in self.lean))
        return lat, now() - t0


def verify_rate(items: list[dict[str, Any]], secrets_: list[str]) -> dict[str, float]:
    """Bare signature check + json.loads of each body, one thread: the floor of the receiver's CPU."""
    t0, c0 = now(), time.process_time()
    for d in items:
        stripe.WebhookSignature.verify_header(d["body"], d["headers"]["Stripe-Signature"], secrets_[d["tenant"]], 300)
        json.loads(d["body"])
    wall, cpu = now() - t0, time.process_time() - c0
    return {"n": len(items), "us_per_event": 1e6 * wall / len(items), "cpu_us_per_event": 1e6 * cpu / len(items),
            "events_per_s": len(items) / wall, "body_bytes_mean": sum(len(d["body"]) for d in items) / len(items)}


def asgi_request(d: dict[str, Any]) -> Request:
    """The delivery as the Starlette request the route would hand the receiver."""
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": d["body"], "more_body": False}
    headers = [(k.lower().encode(), v.encode()) for k, v in d["headers"].items()]
    headers.append((b"content-length", str(len(d["body"])).encode()))
    scope = {"type": "http", "method": "POST", "path": f"/webhooks/stripe/{slug(d['tenant'])}", "query_string": b"",
             "headers": headers, "path_params": {"slug": slug(d["tenant"])}}
    return Request(scope, receive)


async def webhooks(db: Database, raw: asyncpg.Pool, port: int, server_pid: int, items: list[dict[str, Any]],
                   warm: int, rounds: int) -> dict[str, Any]:
    """Rounds of the WEBHOOK_MODES (order rotated). Every delivery goes out once, in list order
    (replays follow their original), through one of the first three modes; raw INSERTs reuse
    bodies. receiver_in_process = WebhookReceiver called in this process (no HTTP)."""
    async with db.connection() as conn:  # a local server's postmaster: parent of our backend
        backend = await conn.fetchval("SELECT pg_backend_pid()")
    postmaster = psutil.Process(backend).parent() if psutil.pid_exists(backend) else None
    gateway = StripeGateway(db.settings, db)
    receiver = WebhookReceiver(db.settings, db, gateway)

    async def concurrently(op: Any, chunk: list[dict[str, Any]]) -> tuple[list[float], float]:
        lat: list[float] = []

        async def one(d: dict[str, Any]) -> None:
            t0 = now()
            await op(d)
            lat.append(now() - t0)
        t0 = now()
        await bounded_map(one, chunk, CONC)
        return lat, now() - t0

    async def raw_insert(d: dict[str, Any]) -> None:  # autocommit, text -> jsonb as the receiver's insert
        await raw.execute("INSERT INTO bench_raw.events (payload) VALUES ($1::jsonb)", d["body"].decode())

    async def in_process(d: dict[str, Any]) -> None:
        resp = await receiver(asgi_request(d))
        snd.check(d, resp.status_code, bytes(resp.body))

    n_modes = len(WEBHOOK_MODES) - 1  # modes that deliver events
    async with Sender(port) as snd:
        for d in items:
            d["request"] = snd.request(d)
        runners = {"webhook_httpx": lambda c: snd.run(c, lean=False), "webhook_lean": lambda c: snd.run(c, lean=True),
                   "receiver_in_process": lambda c: concurrently(in_process, c),
                   "raw_asyncpg_insert": lambda c: concurrently(raw_insert, c)}
        for k, m in enumerate(WEBHOOK_MODES):  # warm-up
            await runners[m](items[k * warm // n_modes:(k + 1) * warm // n_modes] if k < n_modes else items[:warm])
        timed, parts = items[warm:], n_modes * rounds
        chunks = iter([timed[k * len(timed) // parts:(k + 1) * len(timed) // parts] for k in range(parts)])
        raw_chunk = timed[:len(timed) // parts]  # as many per round as each delivering mode
        acc = {m: {"lat": [], "wall": 0.0, "cpu": {}, "round_ops_s": [], "round_p99": []} for m in WEBHOOK_MODES}
        for r in range(rounds):
            for m in WEBHOOK_MODES[r % 4:] + WEBHOOK_MODES[:r % 4]:
                c0 = cpu_snapshot(server_pid, postmaster)
                lat, wall = await runners[m](raw_chunk if m == "raw_asyncpg_insert" else next(chunks))
                c1, a = cpu_snapshot(server_pid, postmaster), acc[m]
                a["lat"] += lat
                a["wall"] += wall
                a["round_ops_s"].append(len(lat) / wall)
                a["round_p99"].append(summarize(lat)["p99"])
                a["cpu"] = {k: a["cpu"].get(k, 0.0) + c1[k] - c0[k] for k in c1}
            log(f"  round {r + 1}/{rounds}: events/s "
                + ", ".join(f"{m} {acc[m]['round_ops_s'][-1]:.0f}" for m in WEBHOOK_MODES))
        out: dict[str, Any] = {"tally": dict(snd.tally), "errors": snd.errors,
                               "server_rss_mb": psutil.Process(server_pid).memory_info().rss / 2**20}
    await gateway.close()
    for m, a in acc.items():
        ops, cpu = len(a["lat"]), a["cpu"]
        per = {k: 1000 * cpu[k] / max(1, ops) for k in ("client", "server", "postgres", "machine")}
        app = per["client"] if m == "receiver_in_process" else per["server"]
        per["app+postgres"] = app + per["postgres"]
        out[m] = {**summarize(a["lat"]), "events": ops, "seconds": a["wall"], "events_per_s": ops / a["wall"],
                  "round_ops_s": a["round_ops_s"], "round_p99": a["round_p99"], "cpu_ms_per_event": per,
                  "cpu_pct_machine": 100 * cpu["machine"] / a["wall"],
                  "capacity_events_s": 2000 / per["app+postgres"] if per["app+postgres"] > 0 else math.nan}
    for m in WEBHOOK_MODES[:-1]:
        out[f"ratio_{m}_raw"] = ratio(out[m]["events_per_s"], out["raw_asyncpg_insert"]["events_per_s"])
    return out


async def check_stored(db: Database, items: list[dict[str, Any]], tenants: int) -> dict[str, Any]:
    """Per tenant: stored rows == distinct events sent, all processed, deliveries == POSTs, and one
    system message per event on a ticket's charge."""
    rows = []
    for t in range(tenants):
        mine = [d for d in items if d["tenant"] == t]
        want = {"events": sum(d["kind"] != "replay" for d in mine), "deliveries": len(mine),
                "messages": sum(d["kind"] == "ticket" for d in mine)}
        async with db.tenant_scope(slug(t)) as s:
            got = dict(await s.conn.fetchrow(
                "SELECT count(*) AS events, coalesce(sum(deliveries), 0) AS deliveries, "
                "count(*) FILTER (WHERE processed_at IS NULL) AS unprocessed, "
                "(SELECT count(*) FROM messages WHERE author_role = 'system') AS messages FROM stripe_events"))
        rows.append({"tenant": slug(t), "want": want, "got": got,
                     "ok": got["unprocessed"] == 0 and all(got[k] == v for k, v in want.items())})
    return {"all_ok": all(r["ok"] for r in rows), "tenants": rows}


# ------------------------------------------------------------------ run, render
async def run(a: argparse.Namespace) -> dict[str, Any]:
    n, rounds, warm = (200, 2, 20) if a.quick else (a.calls, a.rounds, 200)
    n_ten, (n_ev, w_rounds) = a.tenants, (800, 2) if a.quick else (a.events, 6)
    w_warm = 4 * CONC
    cfg = {"quick": a.quick, "calls_per_path": n, "rounds": rounds, "tenants": n_ten, "deliveries": 3 * n_ev + w_warm,
           "timed_deliveries_per_mode": n_ev, "warmup_deliveries": w_warm, "webhook_rounds": w_rounds,
           "concurrency": CONC, "replay_share": REPLAY, "on_ticket_share": ON_TICKET,
           "server": "url" if a.database_url else "embedded"}
    res: dict[str, Any] = {"machine": machine(), "config": cfg, "loadavg_start": os.getloadavg()}
    rng = random.Random(a.seed)
    secrets_ = [f"whsec_{secrets.token_hex(16)}" for _ in range(n_ten)]
    log(f"starting the Stripe double ({n_ten} accounts) in its own process")
    dproc, dbl = await start_double(n_ten)
    http = None
    try:
        async with scratch_settings(a.database_url, prefix="sm_stripe", db_pool_min_size=1, db_pool_max_size=CONC,
                                    stripe_api_key=KEY, stripe_api_base=dbl["base_url"],
                                    stripe_max_network_retries=0) as st:
            db, raw = await Database(st).start(), None
            try:
                async with db.connection() as c:
                    cfg["server_version"] = await c.fetchval("SHOW server_version")
                log(f"seeding {n_ten} tenants ({TICKETS} tickets each, each mentioning one charge)")
                await seed(db, dbl, secrets_)
                log(f"1. latency: {len(PATHS)} paths x {n} calls, {rounds} interleaved rounds, concurrency 1")
                res["latency"] = lat = await latency(st, db, dbl, n, rounds, warm)
                for m in PATHS[1:]:
                    res[f"overhead_{m}_ms"] = lat[m]["p50"] - lat["bare"]["p50"]
                log("2. webhooks: starting the HTTP server subprocess")
                env = server_env(st) | {"SUPPORT_MCP_STRIPE_API_KEY": KEY,
                                        "SUPPORT_MCP_STRIPE_API_BASE": dbl["base_url"],
                                        "SUPPORT_MCP_STRIPE_MAX_NETWORK_RETRIES": "0"}
                http, port = await start_http(env, st.data_dir)
                async with db.admin_scope() as c:
                    await c.execute("CREATE SCHEMA bench_raw; CREATE TABLE bench_raw.events "
                                    "(id bigserial PRIMARY KEY, payload jsonb NOT NULL)")
                raw = await asyncpg.create_pool(db.admin_dsn, min_size=CONC, max_size=CONC)
                items = deliveries(dbl, secrets_, 3 * n_ev + w_warm, rng)
                res["verify_json"] = verify_rate(items, secrets_)
                log(f"   {n_ev} deliveries per mode (+{w_warm} warm-up) to {n_ten} tenants, {CONC} concurrent, "
                    f"{w_rounds} rounds interleaved with raw INSERTs")
                res["webhooks"] = await webhooks(db, raw, port, http.pid, items, w_warm, w_rounds)
                res["stored"] = await check_stored(db, items, n_ten)
            finally:
                log("stopping the server subprocess, the double and the database")
                await shutdown(http, st, raw, db)
    finally:
        with contextlib.suppress(ProcessLookupError):
            res["double_cpu_s"] = sum(psutil.Process(dproc.pid).cpu_times()[:2])
        dproc.stdin.close()  # type: ignore[union-attr]
        await asyncio.wait_for(dproc.wait(), 15)
    res["client_rss_mb"], res["loadavg_end"] = rss_mb(), os.getloadavg()
    return res


def render(r: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    c, lat, wh, vj = r["config"], r["latency"], r["webhooks"], r["verify_json"]
    b, raw = lat["bare"], wh["raw_asyncpg_insert"]
    rows = [[m, s["n"], s["p50"], s["p99"], s["max"], s["p50"] - b["p50"], s["p99"] - b["p99"], s["cpu_p50"],
             s["cpu_p50"] - b["cpu_p50"], " ".join(f"{x:.2f}" for x in s["round_p50s"])]
            for m in PATHS for s in [lat[m]]]
    wrows = [[m, s["events"], s["events_per_s"], ratio(s["events_per_s"], raw["events_per_s"]), s["p50"], s["p99"],
              s["max"], " ".join(f"{x:.0f}" for x in s["round_ops_s"]), " ".join(f"{x:.0f}" for x in s["round_p99"]),
              *(s["cpu_ms_per_event"][k] for k in ("client", "server", "postgres", "machine")),
              s["cpu_pct_machine"], s["capacity_events_s"]] for m in WEBHOOK_MODES for s in [wh[m]]]
    t, st = wh["tally"], r["stored"]
    bad = {k: v for k, v in t.items() if k.endswith("_bad") or (k.startswith("http_") and k != "http_200")}
    sent = sum(v for k, v in t.items() if k.startswith("http_"))
    targets = [("tool (lookup_charge) p50 - bare p50, ms", r["overhead_tool_ms"], "<= 1"),
               ("wrapper p50 - bare p50, ms", r["overhead_wrapper_ms"], "<= 1"),
               ("webhook events/s, httpx client (shares the 2 cores)", wh["webhook_httpx"]["events_per_s"], ">= 300"),
               ("webhook events/s, lean client (shares the 2 cores)", wh["webhook_lean"]["events_per_s"], ">= 300"),
               ("webhook 2000 / CPU ms per event (server + postgres), lean rounds",
                wh["webhook_lean"]["capacity_events_s"], ">= 300"),
               ("answers not 200 or not as expected", sum(bad.values()), "<= 0"),
               ("tenants whose stored events/deliveries/messages differ from what was sent",
                sum(not x["ok"] for x in st["tenants"]), "<= 0")]
    trows = [{"target": k, "value": v, "limit": lim,
              "met": v <= float(lim[3:]) if lim.startswith("<=") else v >= float(lim[3:])} for k, v, lim in targets]
    load = " -> ".join("/".join(f"{x:.1f}" for x in r[k]) for k in ("loadavg_start", "loadavg_end"))
    wrong = json.dumps([x for x in st["tenants"] if not x["ok"]][:3], default=str)
    out = [f"# Stripe bench: {c['server']} PostgreSQL {c['server_version']}, {r['machine']['cpus']} CPUs, "
           f"{'quick' if c['quick'] else 'full'} run, load average {load}",
           f"\n## 1. Charge lookup latency against the Stripe double (own process), concurrency 1 "
           f"({c['calls_per_path']} calls per path, {c['rounds']} interleaved rounds; ms)",
           md_table(["path", "n", "p50", "p99", "max", "p50 - bare", "p99 - bare", "client CPU p50", "CPU - bare",
                     "round p50s"], rows),
           "\nbare = `StripeClient.v1.charges.retrieve_async` with `stripe_account`; wrapper = "
           "`gateway.for_tenant(slug)` (cached registry row) + `TenantStripe.retrieve_charge` (+ to_dict); tool = "
           "`for_tenant` + `service.lookup_charge` (that Stripe call, then one tenant-scoped transaction: linked "
           "customer, tickets mentioning the charge); mcp_in_memory = `lookup_charge` through `mcp.Client(server)` "
           "(guard, audit, pydantic output, client-side schema validation); db_only = that transaction alone "
           "(`service._local_context`, no Stripe call: its p50 - bare is meaningless, compare it with tool - wrapper). "
           "client CPU = CPU time of the bench process per call (the double runs in its own process).",
           f"\n## 2. Webhook ingestion: `charge.refunded` POSTs to the HTTP server subprocess, {c['tenants']} "
           f"tenants, {CONC} concurrent keep-alive HTTP/1.1 connections, {c['timed_deliveries_per_mode']} timed "
           f"deliveries per mode in {c['webhook_rounds']} rounds interleaved with raw INSERTs",
           md_table(["mode", "events", "events/s", "vs raw", "p50 ms", "p99 ms", "max ms", "events/s per round",
                     "p99 ms per round", "CPU ms/event: client", "server", "postgres", "whole machine",
                     "% machine", "2000/(app+postgres)"], wrows),
           "\nwebhook_httpx = httpx.AsyncClient; webhook_lean = pre-built requests written on 16 asyncio "
           "connections (the load generator's CPU competes less with the server for the 2 cores); "
           "receiver_in_process = `WebhookReceiver` (the route's handler: body, signature, store, process) called "
           "in this process with a Starlette request, no HTTP (its app CPU is the client column); "
           "raw_asyncpg_insert = one autocommit `INSERT ... VALUES ($1::jsonb)` of a body from this process "
           f"({CONC} pooled connections), as many per round as each delivering mode. whole machine = all CPU "
           "on the box (other users' tests included) per event; 2000/(app+postgres) = events/s if the "
           "app (server, or this process in-process) and PostgreSQL had both cores. "
           f"Deliveries (incl. {c['warmup_deliveries']} warm-up): {t.get('ticket_ok', 0)} on a ticket's charge "
           f"answered `noted on #n`, {t.get('plain_ok', 0)} on other charges `no ticket references`, "
           f"{t.get('replay_ok', 0)} replays duplicate=true; {sent} POSTs, not as expected: {bad or 'none'}"
           + (f" (first: {wh['errors'][0]})" if wh["errors"] else "") + ".",
           f"\nStored per tenant == distinct events sent, all processed, deliveries == POSTs, one system message "
           f"per event on a ticket's charge: {'yes' if st['all_ok'] else '**NO** ' + wrong}. "
           f"Server RSS {wh['server_rss_mb']:.0f} MB.",
           f"\nBare `WebhookSignature.verify_header` + `json.loads` ({vj['body_bytes_mean']:.0f}-byte bodies), one "
           f"thread: {vj['us_per_event']:.0f} µs/event ({vj['events_per_s']:.0f}/s).",
           "\n## Targets", md_table(["target", "value", "limit", "met"],
                                    [[x["target"], x["value"], x["limit"], x["met"]] for x in trows])]
    return "\n".join(out), trows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (< 1 min)")
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                    help="PostgreSQL server for a scratch database (default $DATABASE_URL, else embedded)")
    ap.add_argument("--calls", type=int, default=2000, help="measured calls per latency path")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds for latency")
    ap.add_argument("--tenants", type=int, default=10, help="tenants receiving webhooks")
    ap.add_argument("--events", type=int, default=6000, help="timed webhook deliveries per delivering mode")
    ap.add_argument("--out", type=Path, help="JSON path (default bench/results/stripe[_quick].json)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--serve-double", type=int, help=argparse.SUPPRESS)  # child process: the Stripe double
    a = ap.parse_args()
    if a.serve_double is not None:
        return serve_double(a.serve_double)
    configure_logging("WARNING", "console")
    res = asyncio.run(run(a))
    text, res["targets"] = render(res)
    print(text)
    out = a.out or BENCH / "results" / ("stripe_quick.json" if a.quick else "stripe.json")
    log(f"wrote {write_json(out, res)}")
    if not a.quick:
        md = out.with_suffix(".md")
        md.write_text(text + "\n", encoding="utf-8")
        log(f"wrote {md}")


if __name__ == "__main__":
    main()
