"""`support-mcp eval retrieval --dataset DIR [--mode dense|sparse|hybrid|default|all] [--reuse]` and
`support-mcp eval tasks (--tasks FILE | --suite) (--trajectories DIR | --agent gold) [--k N] [--json]`."""

from __future__ import annotations

import json
from dataclasses import replace
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from ..db import Database
from ..errors import SupportError
from ..episodes.grading import TaskResult, grade
from ..episodes.tasks import SUITE_TASKS, load_tasks
from ..kb.evaluation import MODES, Report, evaluate, load_dataset
from ..kb.service import KnowledgeBase
from .common import fail, os_error, progress_bar, run_with_db, usage

app = typer.Typer(help="Evaluate retrieval quality, or grade agent trajectories against tasks.",
                  no_args_is_help=True)
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
    data = usage(load_dataset, dataset, split)
    modes = MODES if mode is Mode.all else (mode.value,)
    targets = _targets(target)

    async def go(db: Database) -> Report:
        kb = KnowledgeBase(db.settings, db)
        try:
            with progress_bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn()) as bar:
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
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps({"dataset": str(dataset), "documents": len(data.corpus),
                                          "queries": len(data.qrels), "results": report.results,
                                          "categories": report.categories, "ingest": report.ingest}, indent=2))
        except OSError as exc:
            raise fail(f"--out: {os_error(exc)}") from None


class Agent(str, Enum):
    gold = "gold"


@app.command("tasks")
def tasks_(
    tasks: Path | None = typer.Option(None, "--tasks", metavar="FILE", help="Task file (JSONL, README "
                                      "\"Evaluation runs\")."),
    suite: bool = typer.Option(False, "--suite", help="The task suite shipped with support-mcp."),
    trajectories: Path | None = typer.Option(None, "--trajectories", metavar="DIR",
                                             help="<task id>.jsonl (one trial) and/or <task id>/*.jsonl (one "
                                                  "trial each) per task."),
    agent: Agent | None = typer.Option(None, "--agent", help="gold: replay each task's gold actions as its "
                                       "trajectory (a consistency check: every task solvable and deterministic)."),
    only: list[str] = typer.Option([], "--task", metavar="ID", help="Grade only this task (repeatable)."),
    k: int = typer.Option(1, "--k", min=1, max=100, help="Report pass^1..pass^k (k trials per task; missing "
                          "trials count as failed)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Episodes replayed at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON instead of the table."),
    output: Path | None = typer.Option(None, "--out", help="Also write the JSON report here."),
) -> None:
    """Replay each trajectory on a fresh deterministic episode, compare its state hash with the gold
    replay's, check the required outputs, and report pass^1..pass^k per task and overall."""
    if (tasks is None) == (not suite):
        raise fail("give either --tasks FILE or --suite")
    if (trajectories is None) == (agent is None):
        raise fail("give either --trajectories DIR or --agent gold")
    if trajectories is not None and not trajectories.is_dir():
        raise fail(f"--trajectories {trajectories}: not a directory")
    try:
        task_file = load_tasks(SUITE_TASKS if suite else tasks)
    except SupportError as exc:
        raise fail(str(exc)) from None
    if only:
        unknown = sorted(set(only) - {t.id for t in task_file.tasks})
        if unknown:
            raise fail(f"no task {unknown[0][:100]!r} in {task_file.path.name}")
        task_file = replace(task_file, tasks=[t for t in task_file.tasks if t.id in set(only)])

    async def go(db: Database) -> dict:
        kb = KnowledgeBase(db.settings, db)
        try:
            with progress_bar(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
                task = bar.add_task("tasks", total=len(task_file.tasks))

                def tick(_result: TaskResult) -> None:
                    bar.advance(task)

                return await grade(db, kb, task_file, trajectories=trajectories, gold_agent=agent is Agent.gold,
                                   k=k, concurrency=concurrency, on_task=tick)
        finally:
            await kb.close()

    report = run_with_db(go)
    if output:
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(report, indent=2))
        except OSError as exc:
            raise fail(f"--out: {os_error(exc)}") from None
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(render_report(report))
    if agent is Agent.gold and report["overall"][f"pass^{k}"] < 1:
        raise typer.Exit(1)  # the consistency check failed: some task is unsolvable or not deterministic


def render_report(report: dict) -> str:
    """A markdown table: one row per task, then the overall mean."""
    k = report["k"]
    cols = [f"pass^{j}" for j in range(1, k + 1)]
    lines = ["| task | trials | passed | " + " | ".join(cols) + " | note |",
             "|---" * (len(cols) + 4) + "|"]
    for t in report["tasks"]:
        note = t["note"] or _trial_note(t["trials"])
        lines.append(f"| {t['id']} | {t['n']} | {t['c']} | " + " | ".join(f"{t['pass_hat'][c]:.3f}" for c in cols)
                     + f" | {note} |")
    lines.append(f"| **overall** ({len(report['tasks'])} tasks) | | | "
                 + " | ".join(f"**{report['overall'][c]:.3f}**" for c in cols) + " | |")
    if report.get("unmatched_trajectories"):
        names = report["unmatched_trajectories"]
        lines.append(f"\nnot graded (no task with that id): {', '.join(names[:10])}"
                     + (f" and {len(names) - 10} more" if len(names) > 10 else ""))
    return "\n".join(lines)


def _trial_note(trials: list[dict]) -> str:
    """Why the first failed trial failed, in a few words (the JSON report has everything)."""
    for t in trials:
        if t["passed"]:
            continue
        why = [t["note"]] if t["note"] else []
        if t["missing_outputs"]:
            why.append("missing output " + ", ".join(repr(o[:40]) for o in t["missing_outputs"][:3]))
        if t["failed_calls"]:
            f = t["failed_calls"][0]
            why.append(f"{len(t['failed_calls'])} failed call(s), first line {f['line']} {f['tool'][:40]}: "
                       f"{(f['error'] or '')[:80]}")
        return f"{t['trajectory']}: " + "; ".join(why).replace("|", "/").replace("\n", " ")
    return ""
