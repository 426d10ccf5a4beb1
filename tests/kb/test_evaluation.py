"""Retrieval metrics on hand-checked numbers, and the eval command end to end on a tiny set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from support_mcp.errors import InvalidInput
from support_mcp.kb.evaluation import evaluate, load_dataset, mrr_at, ndcg_at, recall_at, score


def test_metrics_by_hand() -> None:
    ranked, grades = ["d1", "d2", "d3"], {"d2": 2, "d4": 1}
    # DCG = 2/log2(3); IDCG = 2/log2(2) + 1/log2(3)
    expected = (2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at(ranked, grades) == pytest.approx(expected) == pytest.approx(0.479625, abs=1e-6)
    assert recall_at(ranked, grades) == 0.5
    assert mrr_at(ranked, grades) == 0.5
    assert ndcg_at(["d2", "d4"], grades) == pytest.approx(1.0)
    assert (ndcg_at([], grades), recall_at([], grades), mrr_at([], grades)) == (0.0, 0.0, 0.0)
    assert mrr_at(["x"] * 10 + ["d2"], grades) == 0.0  # beyond @10
    both = score({"q1": ["d2"], "q2": []}, {"q1": {"d2": 1}, "q2": {"d9": 1}})
    assert both == {"nDCG@10": 0.5, "Recall@10": 0.5, "MRR@10": 0.5}


def _write(folder: Path, corpus: list[dict], queries: list[dict], qrels: list[tuple[str, str, int]]) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "\n".join(f"{q}\t{d}\t{s}" for q, d, s in qrels))
    return folder


async def test_eval_end_to_end_on_a_tiny_dataset(kb, tmp_path: Path) -> None:
    folder = _write(tmp_path / "tiny", [
        {"_id": "pw", "title": "Reset your password", "text": "Click Forgot password on the login page."},
        {"_id": "ship", "title": "Shipping", "text": "We ship to Canada in 5 days."},
        {"_id": "e42", "title": "Error E-4242", "text": "E-4242 means the sync token expired; sign in again."},
        {"_id": "cats", "title": "Office pets", "text": "Cats are welcome on Fridays."},
    ], [{"_id": "q1", "text": "I forgot my password"}, {"_id": "q2", "text": "E-4242"},
        {"_id": "q3", "text": "delivery time to Canada"}],
        [("q1", "pw", 2), ("q2", "e42", 2), ("q3", "ship", 2), ("q3", "cats", 0)])
    data = load_dataset(folder)
    assert len(data.corpus) == 4 and set(data.qrels) == {"q1", "q2", "q3"}
    results = await evaluate(kb, data, ["dense", "sparse", "hybrid"])
    for mode, metrics in results.items():
        assert set(metrics) == {"nDCG@10", "Recall@10", "MRR@10"}
        assert all(0.0 <= v <= 1.0 for v in metrics.values()), mode
    assert results["hybrid"]["MRR@10"] == pytest.approx(1.0)  # every answer is ranked first
    assert results["sparse"]["Recall@10"] == pytest.approx(1.0)


def test_bad_datasets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="corpus.jsonl is missing"):
        load_dataset(tmp_path)
    folder = _write(tmp_path / "x", [{"_id": "a", "title": "t", "text": "x"}], [{"_id": "q", "text": "x"}],
                    [("other", "a", 1)])
    with pytest.raises(InvalidInput, match="no qrels"):
        load_dataset(folder)
