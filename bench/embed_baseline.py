"""Embedding baseline (not a test): throughput and peak memory of the dense model on ~130-token
support-style chunks at batch 8/16/32, with onnxruntime's CPU memory arena on and off, plus the
project's Embedder (length-sorted batches) at its default. Each configuration runs in its own
process, so peak RSS (VmHWM) is that configuration's alone. Markdown on stdout, JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent  # last on sys.path: bench/stripe.py must not shadow the stripe SDK
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
from common import log, machine, md_table, rss_mb, write_json  # noqa: E402, I001

OUT = Path(__file__).resolve().parent / "results" / "embed_baseline.json"

PRODUCTS = ["the Nimbus Hub", "the mobile app", "the billing portal", "the Lock Pro", "your workspace",
            "the desktop client", "the API", "the admin console", "the smart plug", "the router"]
PROBLEMS = ["does not sync", "shows error {code}", "keeps logging me out", "charges me twice",
            "won't pair over Bluetooth", "is stuck on the update screen", "rejects my password",
            "sends no notifications", "runs very slowly after the update", "cannot find the device"]
STEPS = ["Open {p} and go to Settings, then {s}.", "Restart {p} and wait two minutes before trying again.",
         "Sign out of {p}, clear the cache, and sign back in with your account email.",
         "Check that {p} runs firmware {v} or later; older versions {x}.",
         "If the issue persists, export the diagnostic log from {p} and attach it to your ticket.",
         "Make sure the {n} is within ten metres of the hub and that nothing metal blocks the signal.",
         "Refunds for duplicate charges are issued to the original payment method within {d} business days.",
         "Administrators can reset another user's two-factor authentication from the Members page.",
         "Error {code} means the session token expired; generating a new API key resolves it.",
         "Shipping to {c} takes {d} business days and costs are calculated at checkout.",
         "Our support team answers tickets within {h} hours on weekdays, and faster on the Pro plan.",
         "You can downgrade your plan at any time; the change applies at the end of the billing period."]
SUBS = ["Security", "Notifications", "Devices", "Billing", "Integrations", "Advanced"]
COUNTRIES = ["Canada", "Germany", "Japan", "Brazil", "Australia", "Norway", "Mexico"]


def paragraphs(n: int, tokenizer: Any, seed: int = 7) -> list[str]:
    """`n` varied support paragraphs of 100-160 word pieces (about 130 on average)."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        target = rnd.randint(100, 160)
        p = rnd.choice(PRODUCTS)
        text = f"Customer reports that {p} {rnd.choice(PROBLEMS)}.".format(code=f"E{rnd.randint(100, 999)}")
        while len(tokenizer.encode(text, add_special_tokens=False).ids) < target:
            text += " " + rnd.choice(STEPS).format(
                p=rnd.choice(PRODUCTS), s=f"open {rnd.choice(SUBS)}", v=f"{rnd.randint(1, 9)}.{rnd.randint(0, 40)}",
                x=rnd.choice(["lose pairing", "drop events", "fail to update"]), n=rnd.choice(["sensor", "lock", "plug"]),
                d=rnd.randint(2, 14), code=f"E{rnd.randint(100, 999)}", c=rnd.choice(COUNTRIES), h=rnd.choice([4, 8, 24]))
        out.append(text)
    return out


def child(args: argparse.Namespace) -> None:
    """One configuration in this process; prints one JSON line."""
    from support_mcp.kb.embedding import DEFAULT_MODEL, Embedder, load_tokenizer, prepare_model_dir

    cache = Path(tempfile.gettempdir()) / "support-mcp-bench-models"
    t0 = time.perf_counter()
    threads = args.threads or None
    if args.mode == "embedder":
        emb = Embedder(cache_dir=cache, batch_size=args.batch, cpu_mem_arena=args.arena, threads=threads)
        tok, run = emb.tokenizer, emb.embed_documents
    else:
        from fastembed import TextEmbedding

        model_dir = prepare_model_dir(cache)
        model = TextEmbedding(DEFAULT_MODEL, specific_model_path=str(model_dir), cache_dir=str(cache),
                              enable_cpu_mem_arena=args.arena, threads=threads)
        tok = load_tokenizer(model_dir)[0]

        def run(texts: list[str]) -> list[Any]:
            return list(model.embed(texts, batch_size=args.batch))
    load_s = time.perf_counter() - t0
    rss_loaded = rss_mb()["rss"]
    texts = paragraphs(args.n, tok)
    tokens = sum(min(len(tok.encode(t).ids), 256) for t in texts)
    run(texts[: args.batch])  # warm-up: first-run graph setup is not throughput
    times, cpu = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        vecs = run(texts)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    assert len(vecs) == len(texts)
    best = min(times)
    mem = rss_mb()
    print(json.dumps({"mode": args.mode, "batch": args.batch, "arena": args.arena, "threads": threads,
                      "n": len(texts), "cpu_seconds": cpu, "chunks_per_cpu_s": len(texts) / min(cpu),
                      "loadavg_1m": os.getloadavg()[0],
                      "tokens": tokens, "load_s": load_s, "seconds": times, "chunks_per_s": len(texts) / best,
                      "tokens_per_s": tokens / best, "rss_loaded_mb": rss_loaded, "rss_after_mb": mem["rss"],
                      "peak_rss_mb": mem["peak"]}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=512, help="chunks per pass")
    ap.add_argument("--repeat", type=int, default=1, help="timed passes per process")
    ap.add_argument("--rounds", type=int, default=3,
                    help="runs of every configuration, interleaved (best counts: spreads out other load)")
    ap.add_argument("--batches", default="8,16,32")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="bare", choices=["bare", "embedder"], help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=16, help=argparse.SUPPRESS)
    ap.add_argument("--arena", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        args.arena = bool(args.arena)
        return child(args)

    configs = [("bare", b, a, 0) for a in (1, 0) for b in map(int, args.batches.split(","))]
    configs += [("bare", 16, 1, 1), ("embedder", 16, 1, 0)]
    runs: dict[tuple[Any, ...], list[dict[str, Any]]] = {c: [] for c in configs}
    for rnd in range(args.rounds):
        for mode, batch, arena, threads in configs:
            log(f"round {rnd + 1}/{args.rounds}: {mode} batch={batch} arena={arena} threads={threads or 'default'}")
            cmd = [sys.executable, __file__, "--child", f"--mode={mode}", f"--batch={batch}", f"--arena={arena}",
                   f"--threads={threads}", f"--n={args.n}", f"--repeat={args.repeat}"]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if proc.returncode != 0:
                sys.exit(f"{cmd} failed:\n{proc.stderr}")
            runs[(mode, batch, arena, threads)].append(json.loads(proc.stdout.strip().splitlines()[-1]))

    def best(rs: list[dict[str, Any]], key: str) -> float:
        return max(r[key] for r in rs)

    label = {"bare": "fastembed, file order", "embedder": "Embedder, length-sorted"}
    first = next(iter(runs.values()))[0]
    print(f"\n## Dense embedding baseline ({args.n} chunks, {first['tokens'] / first['n']:.0f} tokens avg, "
          f"best of {args.rounds} interleaved rounds)\n")
    print(md_table(["run", "batch", "CPU arena", "ORT threads", "chunks/s", "tokens/s", "chunks/CPU-s",
                    "load s", "RSS loaded MB", "peak RSS MB", "RSS after MB", "loadavg"],
                   [[label[c[0]], c[1], "on" if c[2] else "off", c[3] or "default",
                     round(best(rs, "chunks_per_s"), 1), round(best(rs, "tokens_per_s")),
                     round(best(rs, "chunks_per_cpu_s"), 1), round(min(r["load_s"] for r in rs), 2),
                     round(max(r["rss_loaded_mb"] for r in rs)), round(max(r["peak_rss_mb"] for r in rs)),
                     round(max(r["rss_after_mb"] for r in rs)),
                     "/".join(f"{r['loadavg_1m']:.1f}" for r in rs)] for c, rs in runs.items()]))
    print("\nchunks/s, tokens/s, chunks/CPU-s: best round; RSS: worst round; chunks/CPU-s: per second of "
          "this process's CPU time (all threads); loadavg: the machine's 1-minute load after each round "
          "(2 cores: above ~2, other work shared the CPUs).")
    path = write_json(args.out, {"machine": machine(), "n": args.n, "repeat": args.repeat, "rounds": args.rounds,
                                 "results": [{"config": dict(zip(("mode", "batch", "arena", "threads"), c,
                                                                  strict=True)), "runs": rs}
                                             for c, rs in runs.items()]})
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
