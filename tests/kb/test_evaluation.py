"""Retrieval metrics on hand-checked numbers, and the eval command end to end on a tiny set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from support_mcp import tenancy
from support_mcp.errors import InvalidInput
from support_mcp.kb.evaluation import (
    bootstrap_ci,
    evaluate,
    load_dataset,
    mrr_at,
    ndcg_at,
    percentile,
    recall_at,
    score,
)
from support_mcp.kb.service import KnowledgeBase


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


def test_bootstrap_interval_and_percentiles() -> None:
    assert bootstrap_ci([0.5] * 40) == (0.5, 0.5)
    lo, hi = bootstrap_ci([0.0] * 50 + [1.0] * 50)
    assert 0.35 < lo < 0.5 < hi < 0.65  # the mean 0.5, about +-0.1 at n=100
    assert bootstrap_ci([0.0, 1.0] * 50) == bootstrap_ci([0.0, 1.0] * 50)  # seeded: reproducible
    assert percentile([5, 1, 3, 2, 4], 50) == 3 and percentile(list(range(1, 101)), 99) == 99
    assert percentile([], 50) == 0.0


def _write(folder: Path, corpus: list[dict], queries: list[dict], qrels: list[tuple[str, str, int]]) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus))
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries))
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "\n".join(f"{q}\t{d}\t{s}" for q, d, s in qrels))
    return folder


TINY_CORPUS = [
    {"_id": "pw", "title": "Reset your password", "text": "Click Forgot password on the login page."},
    {"_id": "ship", "title": "Shipping", "text": "We ship to Canada in 5 days."},
    {"_id": "e42", "title": "Error E-4242", "text": "E-4242 means the sync token expired; sign in again."},
    {"_id": "cats", "title": "Office pets", "text": "Cats are welcome on Fridays."},
]
TINY_QUERIES = [{"_id": "q1", "text": "I forgot my password"}, {"_id": "q2", "text": "E-4242"},
                {"_id": "q3", "text": "delivery time to Canada"}]
TINY_QRELS = [("q1", "pw", 2), ("q2", "e42", 2), ("q3", "ship", 2), ("q3", "cats", 0)]


async def test_eval_end_to_end_on_a_tiny_dataset(kb, tmp_path: Path) -> None:
    folder = _write(tmp_path / "tiny", TINY_CORPUS, TINY_QUERIES, TINY_QRELS)
    (folder / "query_categories.tsv").write_text("query-id\tcategory\nq1\taccount\nq2\terrors\nq3\taccount\n")
    data = load_dataset(folder)
    assert len(data.corpus) == 4 and set(data.qrels) == {"q1", "q2", "q3"}
    assert data.categories == {"q1": "account", "q2": "errors", "q3": "account"}
    before = {t.slug for t in await tenancy.list_tenants(kb.db)}
    report = await evaluate(kb, data, ["dense", "sparse", "hybrid", "default"])
    results = report.results
    for mode, metrics in results.items():
        assert {"nDCG@10", "Recall@10", "MRR@10"} <= set(metrics)
        assert all(0.0 <= metrics[m] <= 1.0 for m in ("nDCG@10", "Recall@10", "MRR@10")), mode
        lo, hi = metrics["nDCG@10_ci95"]
        assert lo <= metrics["nDCG@10"] <= hi
        assert 0 < metrics["search_p50_ms"] <= metrics["search_p99_ms"]
    assert results["hybrid"]["MRR@10"] == pytest.approx(1.0)  # every answer is ranked first
    assert results["sparse"]["Recall@10"] == pytest.approx(1.0)
    assert results["default"]["nDCG@10"] == results["hybrid"]["nDCG@10"]  # reranking is off by default
    assert report.categories["errors"]["queries"] == 1 and report.categories["account"]["queries"] == 2
    assert report.categories["errors"]["hybrid"] == pytest.approx(1.0)
    assert report.ingest["chunks"] == 4 and report.ingest["chunks_per_s"] > 0 and not report.ingest["reused"]
    assert {t.slug for t in await tenancy.list_tenants(kb.db)} == before  # the scratch tenant is gone


async def test_reuse_skips_ingest_until_corpus_or_chunking_changes(kb, db, tmp_path: Path) -> None:
    data = load_dataset(_write(tmp_path / "tiny", TINY_CORPUS, TINY_QUERIES, TINY_QRELS))
    first = await evaluate(kb, data, ["hybrid"], reuse=True)
    second = await evaluate(kb, data, ["hybrid"], reuse=True)
    assert not first.ingest["reused"] and first.ingest["chunks"] == 4
    assert second.ingest["reused"] and second.ingest["tenant"] == first.ingest["tenant"]
    assert second.results["hybrid"]["nDCG@10"] == first.results["hybrid"]["nDCG@10"]
    rechunked = KnowledgeBase(kb.settings.model_copy(update={"kb_chunk_tokens": 100}), db,
                              index=await kb.index(), embedder=await kb.embedder())
    third = await evaluate(rechunked, data, ["hybrid"], reuse=True)
    assert not third.ingest["reused"] and third.ingest["tenant"] != first.ingest["tenant"]
    data.corpus["ship"] = ("Shipping", "We ship to Canada in 7 days.")
    fourth = await evaluate(kb, data, ["hybrid"], reuse=True)
    assert not fourth.ingest["reused"] and fourth.ingest["tenant"] != first.ingest["tenant"]
    for slug in {first.ingest["tenant"], third.ingest["tenant"], fourth.ingest["tenant"]}:
        info = await tenancy.get_tenant(db, slug)
        await tenancy.delete_tenant(db, slug)
        await kb.drop_tenant_namespace(info.rag_index_namespace)


def test_bad_datasets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="corpus.jsonl is missing"):
        load_dataset(tmp_path)
    folder = _write(tmp_path / "x", [{"_id": "a", "title": "t", "text": "x"}], [{"_id": "q", "text": "x"}],
                    [("other", "a", 1)])
    with pytest.raises(InvalidInput, match="no qrels"):
        load_dataset(folder)


def test_eval_cli_prints_default_row_ci_categories_targets_and_reuses(settings, monkeypatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from support_mcp.cli import app

    monkeypatch.setenv("SUPPORT_MCP_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SUPPORT_MCP_LOG_LEVEL", "WARNING")
    if settings.database_url is not None:
        monkeypatch.setenv("SUPPORT_MCP_DATABASE_URL", settings.database_url.get_secret_value())
    folder = _write(tmp_path / "tiny", TINY_CORPUS, TINY_QUERIES, TINY_QRELS)
    (folder / "query_categories.tsv").write_text("query-id\tcategory\nq1\taccount\nq2\terrors\nq3\taccount\n")
    args = ["eval", "retrieval", "--dataset", str(folder), "--reuse", "--target", "default=0.5",
            "--target", "hybrid=1.01", "--out", str(tmp_path / "r.json")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.stderr
    assert "chunks/s" in first.stdout and "| default | " in first.stdout and "[95% CI]" in first.stdout
    assert "| errors | 1 |" in first.stdout and "| met |" in first.stdout and "| missed |" in first.stdout
    saved = json.loads((tmp_path / "r.json").read_text())
    assert set(saved["results"]) == {"dense", "sparse", "hybrid", "default"} and "account" in saved["categories"]
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and "ingest: skipped" in second.stdout
    bad = CliRunner().invoke(app, ["eval", "retrieval", "--dataset", str(folder), "--target", "best=0.9"])
    assert bad.exit_code == 2 and "the mode must be one of" in bad.stderr and bad.stderr.count("\n") == 1
    slug = saved["ingest"]["tenant"]
    assert CliRunner().invoke(app, ["tenants", "delete", slug, "--yes"]).exit_code == 0
