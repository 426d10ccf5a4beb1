"""Retrieval evaluation on a BEIR-format dataset: nDCG@10, Recall@10 and MRR@10 per mode.

Gains are the graded qrels (linear, as trec_eval computes nDCG); a document counts as relevant
for recall and MRR when its grade is above 0. Rankings are of documents: the best chunk of a
document stands for it."""

from __future__ import annotations

import csv
import json
import math
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import tenancy
from ..errors import InvalidInput
from .ingest import NewDocument
from .service import KnowledgeBase

MODES = ("dense", "sparse", "hybrid")


@dataclass
class Dataset:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> grade


def _jsonl(path: Path) -> Iterable[dict]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    raise InvalidInput(f"{path.name} line {n} is not JSON") from None


def load_dataset(folder: Path, split: str = "test") -> Dataset:
    for need in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (folder / need).is_file():
            raise InvalidInput(f"{folder} is not a BEIR dataset: {need} is missing")
    corpus = {str(d["_id"]): (str(d.get("title") or ""), str(d.get("text") or "")) for d in _jsonl(folder / "corpus.jsonl")}
    queries = {str(q["_id"]): str(q["text"]) for q in _jsonl(folder / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
                continue  # header or junk
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    qrels = {q: rel for q, rel in qrels.items() if q in queries}
    if not qrels:
        raise InvalidInput(f"{folder}: no qrels match the queries")
    return Dataset(corpus, queries, qrels)


def ndcg_at(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    dcg = sum(grades.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    relevant = {d for d, g in grades.items() if g > 0}
    return len(relevant & set(ranked[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    return next((1 / (i + 1) for i, d in enumerate(ranked[:k]) if grades.get(d, 0) > 0), 0.0)


def score(runs: dict[str, list[str]], qrels: dict[str, dict[str, int]], k: int = 10) -> dict[str, float]:
    n = len(qrels)
    return {f"nDCG@{k}": sum(ndcg_at(runs.get(q, []), g, k) for q, g in qrels.items()) / n,
            f"Recall@{k}": sum(recall_at(runs.get(q, []), g, k) for q, g in qrels.items()) / n,
            f"MRR@{k}": sum(mrr_at(runs.get(q, []), g, k) for q, g in qrels.items()) / n}


async def evaluate(kb: KnowledgeBase, data: Dataset, modes: Iterable[str], *, k: int = 10,
                   on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, dict[str, float]]:
    """Ingest the corpus into a scratch tenant, run every query in every mode, drop the tenant."""
    slug = f"eval_{secrets.token_hex(4)}"
    info = await tenancy.create_tenant(kb.db, slug, "Retrieval evaluation (scratch)")
    try:
        ids = list(data.corpus)
        for start in range(0, len(ids), 64):
            batch = ids[start:start + 64]
            await kb.ingest_documents(slug, [NewDocument(data.corpus[i][0] or f"Document {i}", data.corpus[i][1]
                                                         or data.corpus[i][0], f"beir:{i}") for i in batch])
            if on_progress:
                on_progress("ingest", min(start + 64, len(ids)), len(ids))
        results: dict[str, dict[str, float]] = {}
        for mode in modes:
            runs: dict[str, list[str]] = {}
            for n, qid in enumerate(data.qrels, 1):
                found = await kb.search(slug, data.queries[qid], limit=k * 3, mode=mode)
                ranked: list[str] = []
                for hit in found.results:
                    doc = hit.source_uri.removeprefix("beir:")
                    if doc not in ranked:
                        ranked.append(doc)
                runs[qid] = ranked[:k]
                if on_progress:
                    on_progress(mode, n, len(data.qrels))
            results[mode] = score(runs, data.qrels, k)
        return results
    finally:
        await tenancy.delete_tenant(kb.db, slug)
        await kb.drop_tenant_namespace(info.rag_index_namespace)
