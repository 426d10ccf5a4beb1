"""Grading trajectories against tasks, τ-bench style (README "Evaluation runs").

Per task: the gold actions are replayed once on a fresh deterministic episode of the task's
fixture, giving the expected state hash (tasks with the same fixture and gold actions share that
replay). Each trial (a trajectory) is replayed on its own fresh
deterministic episode through the real MCP client, authenticated with that episode's own key;
it passes when its final state hash equals the gold one AND every required output appears in its
assistant messages. pass^k per task is C(c, k) / C(n, k) (n trials, c passes); overall, the
mean over tasks. Every episode is destroyed after grading.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from math import comb
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ..errors import SupportError
from ..logging import get_logger
from . import service
from .fixtures import Fixture
from .state import canonical_json
from .tasks import (TENANT_PLACEHOLDER, Call, Task, TaskFile, Trajectory, find_trajectories, gold_trajectory,
                    load_trajectory, output_found)

if TYPE_CHECKING:
    import mcp

    from ..db import Database
    from ..kb.service import KnowledgeBase

log = get_logger(__name__)

REPLAY_TTL = timedelta(minutes=15)
_EPISODE_SLUG = re.compile(rf"^{service.SLUG_PREFIX}[0-9a-f]{{16}}$")  # a replay lasts seconds; a crashed grader's episodes expire soon


def pass_hat_k(n: int, c: int, k: int) -> float:
    """τ-bench's unbiased pass^k of one task: the chance that k trials drawn from the n all pass."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass^k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    return comb(c, k) / comb(n, k)


@dataclass
class CallResult:
    line: int
    tool: str
    ok: bool
    error: str | None = None


@dataclass
class Trial:
    trajectory: str
    passed: bool
    state_hash: str | None
    missing_outputs: list[str] = field(default_factory=list)
    failed_calls: list[CallResult] = field(default_factory=list)
    calls: int = 0
    note: str | None = None


@dataclass
class TaskResult:
    id: str
    expected_hash: str | None
    trials: list[Trial]
    n: int
    c: int
    pass_hat: dict[str, float]
    note: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# --- replay -------------------------------------------------------------------------------

async def _approve(_context: Any, _params: Any) -> Any:
    """The simulated user answers every confirmation dialog with yes: a trajectory is graded on
    what the agent chose to do, and a refund the user was asked about counts as done."""
    from mcp.types import ElicitResult

    return ElicitResult(action="accept", content={"confirm": True})


@asynccontextmanager
async def episode_client(db: Database, kb: KnowledgeBase, api_key: str, *,
                         stripe_sandbox: bool = False) -> AsyncIterator[mcp.Client]:
    """The real MCP client, in memory, against a server that knows the caller only by `api_key`
    (and hosts the Stripe sandbox when the episode has one)."""
    import mcp

    from ..server import build_server

    # no rate limit: a replay runs the agent's calls back to back, far faster than the agent made them
    settings = db.settings.model_copy(update={"api_key": SecretStr(api_key), "stripe_sandbox": stripe_sandbox,
                                              "rate_limit_per_minute": 0})
    server = build_server(settings, db=db, kb=kb)
    async with mcp.Client(server, elicitation_callback=_approve) as client:
        yield client


async def replay(client: mcp.Client, tenant: str, traj: Trajectory) -> list[CallResult]:
    """Run the trajectory's calls in order; a call that cannot run is a failed call, never a crash.
    `tenant` arguments naming the recorded episode (or `<tenant>`, or left out where the tool has
    one) are pointed at this replay's episode; any other tenant is sent as written."""
    listed = await client.list_tools()
    takes_tenant = {t.name: "tenant" in (t.input_schema or {}).get("properties", {}) for t in listed.tools}
    results = []
    for call in traj.calls:
        results.append(await _one(client, tenant, traj.recorded_tenant, takes_tenant, call))
    return results


async def _one(client: mcp.Client, tenant: str, recorded: str | None, takes_tenant: dict[str, bool],
               call: Call) -> CallResult:
    if call.problem is not None:
        return CallResult(call.line, call.name, False, call.problem)
    if call.name not in takes_tenant:
        return CallResult(call.line, call.name, False, f"unknown tool {call.name[:60]!r}")
    args = dict(call.arguments)
    if takes_tenant[call.name] and args.get("tenant", TENANT_PLACEHOLDER) in (TENANT_PLACEHOLDER, recorded):
        args["tenant"] = tenant
    try:
        r = await client.call_tool(call.name, args)
    except Exception as exc:  # noqa: BLE001 - a protocol-level refusal of a malformed call is a failed call
        return CallResult(call.line, call.name, False, f"{exc.__class__.__name__}: {str(exc)[:200]}")
    if r.is_error:
        text = (r.content[0].text if r.content and hasattr(r.content[0], "text") else "error")[:300]
        named = args.get("tenant")
        if isinstance(named, str) and named != tenant and _EPISODE_SLUG.match(named):
            text += (f" (tenant {named!r} is another episode: if the trajectory was recorded on it, start the "
                     f"file with {{\"meta\": {{\"tenant\": \"{named}\"}}}} or write \"{TENANT_PLACEHOLDER}\")")
        return CallResult(call.line, call.name, False, text)
    return CallResult(call.line, call.name, True)


async def run_on_fresh_episode(db: Database, kb: KnowledgeBase, fixture: Fixture,
                               traj: Trajectory) -> tuple[str, list[CallResult]]:
    """Create a deterministic episode, replay `traj` with its key, read its state hash, destroy it."""
    ep = await service.create(db, kb, fixture, REPLAY_TTL, deterministic=True)
    try:
        async with episode_client(db, kb, ep["api_key"], stripe_sandbox=fixture.stripe is not None) as client:
            results = await replay(client, ep["tenant"], traj)
        return (await service.state(db, ep["episode"]))["state_hash"], results
    finally:
        await service.destroy(db, ep["episode"], kb)


# --- grading ------------------------------------------------------------------------------

async def grade(db: Database, kb: KnowledgeBase, tasks: TaskFile, *, trajectories: Path | None = None,
                gold_agent: bool = False, k: int = 1, concurrency: int = 4,
                on_task: Callable[[TaskResult], None] | None = None) -> dict[str, Any]:
    """Grade every task (see the module docstring). `gold_agent`: k trials per task that replay
    the gold actions themselves (every task solvable and deterministic iff overall pass^k is 1)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    if not gold_agent and trajectories is None:
        raise ValueError("give a trajectories directory or the gold agent")
    gate = asyncio.Semaphore(max(1, concurrency))
    # the gold replay of one (fixture, actions) pair, shared by the tasks that have it (traps with
    # no action, tasks that differ only in wording): deterministic episodes make them one replay
    gold_runs: dict[tuple[Path, str], asyncio.Future[tuple[str, list[CallResult]]]] = {}

    async def on_fresh(task: Task, traj: Trajectory) -> tuple[str, list[CallResult]]:
        async with gate:
            return await run_on_fresh_episode(db, kb, tasks.fixture(task), traj)

    async def gold_hash(task: Task) -> tuple[str, list[CallResult]]:
        key = (tasks.fixture_path(task), canonical_json([a.model_dump() for a in task.actions]))
        if key not in gold_runs:
            gold_runs[key] = asyncio.ensure_future(on_fresh(task, gold_trajectory(task)))
        return await gold_runs[key]

    async def one_task(task: Task) -> TaskResult:
        try:
            expected, gold_calls = await gold_hash(task)
        except Exception as exc:  # noqa: BLE001 - one broken task is reported, the others still graded
            return _failed_task(task, k, f"gold replay impossible: {_one_line(exc)}")
        bad_gold = [c for c in gold_calls if not c.ok]
        trajs: list[Trajectory] = []
        note = None
        if gold_agent:
            trajs = [gold_trajectory(task) for _ in range(k)]
        else:
            assert trajectories is not None
            trajs = [load_trajectory(p) for p in find_trajectories(trajectories, task.id)]
            if not trajs:
                note = f"no trajectory ({task.id}.jsonl or {task.id}/*.jsonl): {k} missing trial(s) count as failed"
            elif len(trajs) < k:
                note = f"{len(trajs)} trajectory(ies) for k={k}: {k - len(trajs)} missing trial(s) count as failed"
        if bad_gold:
            first = bad_gold[0]
            note = f"gold action {first.line} ({first.tool}) failed: {first.error}"

        async def trial(traj: Trajectory) -> Trial:
            if traj.problem is not None:
                return Trial(traj.source, False, None, note=traj.problem)
            try:
                got, results = await on_fresh(task, traj)
            except Exception as exc:  # noqa: BLE001 - an episode that could not be made fails the trial
                return Trial(traj.source, False, None, note=f"replay failed: {_one_line(exc)}")
            missing = [o for o in task.outputs if not output_found(o, traj.messages)]
            failed = [r for r in results if not r.ok]
            return Trial(traj.source, got == expected and not missing and not bad_gold, got, missing, failed,
                         len(results), None if got == expected else "final state differs from the gold replay's")

        done = list(await asyncio.gather(*(trial(t) for t in trajs)))
        n = max(k, len(done))
        c = sum(t.passed for t in done)
        result = TaskResult(task.id, expected, done, n, c, {f"pass^{j}": pass_hat_k(n, c, j) for j in range(1, k + 1)},
                            note)
        if on_task is not None:
            on_task(result)
        return result

    results = list(await asyncio.gather(*(one_task(t) for t in tasks.tasks)))
    overall = {f"pass^{j}": sum(r.pass_hat[f"pass^{j}"] for r in results) / len(results) for j in range(1, k + 1)}
    return {"tasks_file": str(tasks.path), "agent": "gold" if gold_agent else str(trajectories), "k": k,
            "tasks": [r.as_json() for r in results], "overall": overall,
            "unmatched_trajectories": [] if trajectories is None else unmatched_trajectories(trajectories, tasks)}


def _failed_task(task: Task, k: int, note: str) -> TaskResult:
    return TaskResult(task.id, None, [], k, 0, {f"pass^{j}": 0.0 for j in range(1, k + 1)}, note)


def _one_line(exc: BaseException) -> str:
    """A SupportError's own one-line message; anything else by its class only (details in the log)."""
    if isinstance(exc, SupportError):
        text = str(exc).strip().splitlines()
        return (text[0] if text else exc.__class__.__name__)[:300]
    log.error("grading_error", error=exc.__class__.__name__, detail=str(exc)[:500])
    return f"{exc.__class__.__name__} (the log has details)"


def unmatched_trajectories(directory: Path, tasks: TaskFile) -> list[str]:
    """Trajectory files and folders in `directory` that name no task (a typo in a task id, say)."""
    ids = {t.id for t in tasks.tasks}
    out = []
    for p in sorted(directory.iterdir()):
        name = p.name.removesuffix(".jsonl") if p.is_file() else p.name
        if (p.is_dir() or p.suffix == ".jsonl") and name not in ids:
            out.append(p.name)
    return out
