"""`support-mcp eval retrieval --dataset DIR [--mode dense|sparse|hybrid|default|all] [--reuse]`."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..db import Database
from ..kb.evaluation import MODES, Report, evaluate, load_dataset
from ..kb.service import KnowledgeBase
from .common import fail, is_tty, run_with_db

app = typer.Typer(help="Evaluate retrieval quality.", no_args_is_help=True)
out = Console(soft_wrap=True)


class Mode(str, Enum):
    dense = "dense"
    sparse = "sparse"
    hybrid = "hybrid"
    default = "default"
    all = "all"


def _targets(specs: list[str]) -> dict[str, float]:
    targets: dict[str, float] = {}
    for spec in specs:
        mode, _, value = spec.partition("=")
        try:
            targets[mode.strip()] = float(value)
        except ValueError:
            raise fail(f"--target {spec!r}: use MODE=nDCG, e.g. default=0.74", 2) from None
        if mode.strip() not in MODES:
            raise fail(f"--target {spec!r}: the mode must be one of {', '.join(MODES)}", 2)
    return targets


@app.command("retrieval")
def retrieval(
    dataset: Path = typer.Option(..., "--dataset", exists=True, file_okay=False,
                                 help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv "
                                      "[, query_categories.tsv]."),
    mode: Mode = typer.Option(Mode.all, "--mode", help="default = exactly what search_docs does."),
    split: str = typer.Option("test", "--split", help="qrels/<split>.tsv"),
    reuse: bool = typer.Option(False, "--reuse", help="Keep the scratch tenant; skip ingest when corpus, model "
                               "and chunk settings are unchanged."),
    target: list[str] = typer.Option([], "--target", help="MODE=nDCG@10 to report met/missed (repeatable)."),
    output: Path | None = typer.Option(None, "--out", help="Also write the metrics as JSON here."),
) -> None:
    """Ingest the corpus into a scratch tenant and print nDCG@10 (95% CI), Recall@10, MRR@10, search
    p50/p99 per mode, per-category nDCG@10 and the ingest rate."""
    data = load_dataset(dataset, split)
    modes = MODES if mode is Mode.all else (mode.value,)
    targets = _targets(target)

    async def go(db: Database) -> Report:
        kb = KnowledgeBase(db.settings, db)
        try:
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          disable=not is_tty(), transient=True) as bar:
                tasks: dict[str, int] = {}

                def tick(phase: str, done: int, total: int) -> None:
                    if phase not in tasks:
                        tasks[phase] = bar.add_task(phase, total=total)
                    bar.update(tasks[phase], completed=done)

                return await evaluate(kb, data, modes, reuse=reuse, on_progress=tick)
        finally:
            await kb.close()

    report = run_with_db(go)
    s = report.ingest
    typer.echo(f"dataset {dataset.name}: {len(data.corpus)} documents, {len(data.qrels)} judged queries")
    if s["reused"]:
        typer.echo(f"ingest: skipped, tenant {s['tenant']} reused (same corpus, model and chunk settings)\n")
    else:
        kept = f" (kept as {s['tenant']})" if reuse else ""
        typer.echo(f"ingest: {s['chunks']} chunks in {s['seconds']} s = {s['chunks_per_s']} chunks/s{kept}\n")
    typer.echo("| mode | nDCG@10 [95% CI] | Recall@10 | MRR@10 | search p50 ms | p99 ms |\n|---|---|---|---|---|---|")
    for m, r in report.results.items():
        lo, hi = r["nDCG@10_ci95"]
        typer.echo(f"| {m} | {r['nDCG@10']:.4f} [{lo:.3f}, {hi:.3f}] | {r['Recall@10']:.4f} | {r['MRR@10']:.4f} "
                   f"| {r['search_p50_ms']:.1f} | {r['search_p99_ms']:.1f} |")
    if report.categories:
        shown = list(report.results)
        typer.echo("\n| category | queries | " + " | ".join(shown) + " |\n|---|---|" + "---|" * len(shown))
        for cat, row in report.categories.items():
            typer.echo(f"| {cat} | {row['queries']} | " + " | ".join(f"{row[m]:.4f}" for m in shown) + " |")
    if targets:
        typer.echo("\n| target | nDCG@10 | measured | met |\n|---|---|---|---|")
        for m, want in targets.items():
            got = report.results.get(m, {}).get("nDCG@10")
            verdict = "not run" if got is None else ("met" if got >= want else "missed")
            typer.echo(f"| {m} | ≥ {want:.3f} | {'-' if got is None else f'{got:.4f}'} | {verdict} |")
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps({"dataset": str(dataset), "documents": len(data.corpus),
                                      "queries": len(data.qrels), "results": report.results,
                                      "categories": report.categories, "ingest": report.ingest}, indent=2))
