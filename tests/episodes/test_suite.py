"""The task suite shipped with support-mcp (issue 12, item 6): its gold replays pass (CI)."""

from __future__ import annotations

from collections import Counter

from support_mcp.episodes.grading import grade
from support_mcp.episodes.tasks import SUITE_TASKS, load_tasks


def test_suite_shape() -> None:
    suite = load_tasks(SUITE_TASKS)
    assert len(suite.tasks) >= 30
    kinds = Counter(t.id.split("-")[0] for t in suite.tasks)
    for kind in ("refund", "triage", "merge", "status", "kb", "lookup", "escalate", "trap"):
        assert kinds[kind] >= 1, kind
    for t in suite.tasks:
        assert suite.fixture_path(t).is_file() and t.instruction


async def test_suite_gold_replays_pass(db, kb) -> None:
    """Every task solvable and deterministic: the gold actions replayed on a fresh deterministic
    episode reproduce the gold replay's state hash (each on its own episode)."""
    report = await grade(db, kb, load_tasks(SUITE_TASKS), gold_agent=True, k=1, concurrency=4)
    failed = {t["id"]: t["note"] or t["trials"] for t in report["tasks"] if t["c"] != t["n"]}
    assert not failed
    assert report["overall"] == {"pass^1": 1.0}
