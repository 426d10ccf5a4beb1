"""`support-mcp eval retrieval --dataset DIR [--mode dense|sparse|hybrid|all]`."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from ..db import Database
from ..kb.evaluation import MODES, evaluate, load_dataset
from ..kb.service import KnowledgeBase
from .common import fail, os_error, progress_bar, run_with_db, usage

app = typer.Typer(help="Evaluate retrieval quality.", no_args_is_help=True)
out = Console(soft_wrap=True)


class Mode(str, Enum):
    dense = "dense"
    sparse = "sparse"
    hybrid = "hybrid"
    all = "all"


@app.command("retrieval")
def retrieval(
    dataset: Path = typer.Option(..., "--dataset", exists=True, file_okay=False,
                                 help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/test.tsv."),
    mode: Mode = typer.Option(Mode.all, "--mode"),
    split: str = typer.Option("test", "--split", help="qrels/<split>.tsv"),
    output: Path | None = typer.Option(None, "--out", help="Also write the metrics as JSON here."),
) -> None:
    """Ingest the corpus into a scratch tenant and print nDCG@10, Recall@10 and MRR@10 per mode."""
    data = usage(load_dataset, dataset, split)
    modes = MODES if mode is Mode.all else (mode.value,)

    async def go(db: Database) -> dict[str, dict[str, float]]:
        kb = KnowledgeBase(db.settings, db)
        try:
            with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn()) as bar:
                tasks: dict[str, int] = {}

                def tick(phase: str, done: int, total: int) -> None:
                    if phase not in tasks:
                        tasks[phase] = bar.add_task(phase, total=total)
                    bar.update(tasks[phase], completed=done)

                return await evaluate(kb, data, modes, on_progress=tick)
        finally:
            await kb.close()

    results = run_with_db(go)
    typer.echo(f"dataset {dataset.name}: {len(data.corpus)} documents, {len(data.qrels)} judged queries\n")
    typer.echo("| mode | nDCG@10 | Recall@10 | MRR@10 |\n|---|---|---|---|")
    for m, r in results.items():
        typer.echo(f"| {m} | {r['nDCG@10']:.4f} | {r['Recall@10']:.4f} | {r['MRR@10']:.4f} |")
    if output:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps({"dataset": str(dataset), "documents": len(data.corpus),
                                          "queries": len(data.qrels), "results": results}, indent=2))
        except OSError as exc:
            raise fail(f"--out: {os_error(exc)}") from None
