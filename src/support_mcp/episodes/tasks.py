"""Task files and trajectories for graded evaluation runs (README "Evaluation runs").

A task file is JSONL, one task per line: `id`, `instruction` (what the simulated user wants),
`fixture` (a path relative to the task file, or a built-in name: `acme`, `suite`), `actions` (the
gold tool calls `{name, arguments}`), `outputs` (strings the agent must tell the user) and an
optional `policy` note. A trajectory is JSONL too: what one agent did in one trial, lines
`{"tool": name, "arguments": {...}}` and `{"role": "assistant", "content": "..."}`, optionally a
first line `{"meta": {"tenant": "ep_..."}}` naming the episode it was recorded on. Reading a
trajectory never fails: a line that is not one of those shapes is kept as a failed call with a
note (graded, never a crash).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ..errors import InvalidInput
from .fixtures import Fixture, load_fixture

MAX_TASK_FILE_BYTES = 10 * 1024 * 1024
MAX_TRAJECTORY_BYTES = 10 * 1024 * 1024
TASK_ID_RE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"  # also a file name in the trajectories directory
#: the value of a `tenant` argument that means "the episode this replay runs on"
TENANT_PLACEHOLDER = "<tenant>"

_PACKAGE = Path(__file__).parent
SUITE_TASKS = _PACKAGE / "suite" / "tasks.jsonl"
#: built-in fixture names -> files shipped with the package
BUILTIN_FIXTURES = {"acme": _PACKAGE / "examples" / "acme.json", "suite": _PACKAGE / "suite" / "northwind.json"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Action(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    arguments: dict[str, Any] = Field(default_factory=dict)


class Task(_Strict):
    id: Annotated[str, StringConstraints(pattern=TASK_ID_RE)]
    instruction: Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
    fixture: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    actions: list[Action] = Field(default_factory=list, max_length=200)
    outputs: list[Annotated[str, StringConstraints(min_length=1, max_length=2_000)]] = Field(
        default_factory=list, max_length=50)
    policy: Annotated[str, Field(max_length=20_000)] | None = None


@dataclass(frozen=True)
class TaskFile:
    path: Path
    tasks: list[Task]

    def fixture_path(self, task: Task) -> Path:
        """A task's fixture: a file relative to the task file, else a built-in name."""
        local = (self.path.parent / task.fixture).resolve()
        if local.is_file():
            return local
        if task.fixture in BUILTIN_FIXTURES:
            return BUILTIN_FIXTURES[task.fixture]
        raise InvalidInput(f"task {task.id}: fixture {task.fixture[:100]!r} is neither a file next to "
                           f"{self.path.name} nor a built-in name ({', '.join(sorted(BUILTIN_FIXTURES))})")

    def fixture(self, task: Task) -> Fixture:
        return _fixture(self.fixture_path(task))


@cache
def _fixture(path: Path) -> Fixture:
    return load_fixture(path)  # parsed once per run, whatever the number of episodes made from it


def _read_text(path: Path, cap: int, what: str) -> str:
    try:
        with path.open("rb") as fh:
            raw = fh.read(cap + 1)
    except OSError as exc:
        raise InvalidInput(f"{what} {path.name}: cannot read it ({exc.strerror or exc.__class__.__name__})") from None
    if len(raw) > cap:
        raise InvalidInput(f"{what} {path.name} is larger than {cap // (1024 * 1024)} MB")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} {path.name}: not UTF-8 text (byte {exc.start})") from None


def load_tasks(path: str | Path) -> TaskFile:
    """Read and validate a JSONL task file; every problem reported at once (`line N: field: problem`)."""
    path = Path(path)
    text = _read_text(path, MAX_TASK_FILE_BYTES, "task file")
    tasks: list[Task] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            task = Task.model_validate(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not valid JSON ({exc.msg})")
            continue
        except ValidationError as exc:
            problems += [f"line {n}: {_loc(e['loc'])}: {_msg(e)}" for e in exc.errors()]
            continue
        if task.id in seen:
            problems.append(f"line {n}: id {task.id!r} repeats line {seen[task.id]}")
            continue
        seen[task.id] = n
        tasks.append(task)
    if problems:
        more = f"; and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InvalidInput(f"task file {path.name} invalid: " + "; ".join(problems[:20]) + more)
    if not tasks:
        raise InvalidInput(f"task file {path.name} has no tasks (one JSON object per line)")
    return TaskFile(path, tasks)


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[") or "(line)"


def _msg(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required"
    if err["type"] == "string_pattern_mismatch":
        return "must be letters, digits, _ . - (it names the trajectory file), at most 100"
    return err["msg"][:1].lower() + err["msg"][1:]


# --- trajectories -------------------------------------------------------------------------

@dataclass
class Call:
    """One tool call of a trajectory; `problem` set when the line could not be a call at all."""

    name: str
    arguments: dict[str, Any]
    line: int
    problem: str | None = None


@dataclass
class Trajectory:
    source: str
    calls: list[Call] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # the assistant's messages to the user
    recorded_tenant: str | None = None
    problem: str | None = None  # the whole file was unusable (it fails, with this note)


def gold_trajectory(task: Task) -> Trajectory:
    """The gold actions as a trajectory, with one assistant message carrying every required output."""
    calls = [Call(a.name, dict(a.arguments), i) for i, a in enumerate(task.actions, 1)]
    return Trajectory("gold", calls, ["\n".join(task.outputs)] if task.outputs else [])


def parse_trajectory(text: str, source: str) -> Trajectory:
    traj = Trajectory(source)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            traj.calls.append(Call("?", {}, n, "not valid JSON"))
            continue
        if not isinstance(obj, dict):
            traj.calls.append(Call("?", {}, n, "not a JSON object"))
        elif "tool" in obj or "name" in obj:
            name, args = obj.get("tool", obj.get("name")), obj.get("arguments", {})
            if not isinstance(name, str) or not name.strip():
                traj.calls.append(Call("?", {}, n, "the tool name is not a string"))
            elif not isinstance(args, dict):
                traj.calls.append(Call(name[:100], {}, n, "arguments is not a JSON object"))
            else:
                traj.calls.append(Call(name.strip()[:100], args, n))
        elif "role" in obj:
            if obj["role"] == "assistant" and isinstance(obj.get("content"), str):
                traj.messages.append(obj["content"])
            elif obj["role"] == "assistant":
                traj.calls.append(Call("?", {}, n, "an assistant message without text content"))
            # user, system and tool lines are kept by the harness for its record; grading ignores them
        elif isinstance(obj.get("meta"), dict) and isinstance(obj["meta"].get("tenant"), str):
            traj.recorded_tenant = obj["meta"]["tenant"]
        else:
            traj.calls.append(Call("?", {}, n, "neither a tool call {tool, arguments} nor a message {role, content}"))
    return traj


def load_trajectory(path: Path) -> Trajectory:
    try:
        text = _read_text(path, MAX_TRAJECTORY_BYTES, "trajectory")
    except InvalidInput as exc:
        return Trajectory(path.name, problem=str(exc))
    return parse_trajectory(text, path.name)


def find_trajectories(directory: Path, task_id: str) -> list[Path]:
    """A task's trials: `DIR/<id>.jsonl` (one trial) and `DIR/<id>/*.jsonl` (one trial each)."""
    found = []
    single = directory / f"{task_id}.jsonl"
    if single.is_file():
        found.append(single)
    sub = directory / task_id
    if sub.is_dir():
        found += sorted(p for p in sub.glob("*.jsonl") if p.is_file())
    return found


def output_found(needle: str, messages: list[str]) -> bool:
    """Case-insensitive, whitespace-insensitive containment in the assistant's messages."""
    hay = _squash(" ".join(messages))
    return _squash(needle) in hay


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()
