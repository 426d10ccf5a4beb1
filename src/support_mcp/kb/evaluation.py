"""Retrieval evaluation on a BEIR-format dataset: nDCG@10, Recall@10 and MRR@10 per mode.

Gains are the graded qrels (linear, as trec_eval computes nDCG); a document counts as relevant
for recall and MRR when its grade is above 0. Rankings are of documents: the best chunk of a
document stands for it. Modes: dense, sparse and hybrid (the engine's fused order, never
reranked) and ``default``: exactly what ``search_docs`` does (hybrid, reranked when
SUPPORT_MCP_KB_RERANK is on). nDCG@10 carries a bootstrap 95% confidence interval over queries;
per-category rows come from ``query_categories.tsv`` (or a query's ``category``) when present."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import tenancy
from ..errors import InvalidInput, NotFound
from .ingest import NewDocument
from .service import KnowledgeBase

MODES = ("dense", "sparse", "hybrid", "default")


@dataclass
class Dataset:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> grade
    categories: dict[str, str] = field(default_factory=dict)  # query id -> category (optional)


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
    categories = {str(q["_id"]): str(q.get("category") or (q.get("metadata") or {}).get("category"))
                  for q in _jsonl(folder / "queries.jsonl")
                  if q.get("category") or isinstance(q.get("metadata"), dict) and q["metadata"].get("category")}
    if (folder / "query_categories.tsv").is_file():
        with (folder / "query_categories.tsv").open(encoding="utf-8") as fh:
            categories |= {row[0]: row[1] for row in csv.reader(fh, delimiter="\t")
                           if len(row) >= 2 and row[0] in queries}
    return Dataset(corpus, queries, qrels, {q: c for q, c in categories.items() if q in qrels})


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


def bootstrap_ci(values: list[float], rounds: int = 1000, seed: int = 13) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean (queries resampled with replacement)."""
    if not values:
        return 0.0, 0.0
    rng, n = random.Random(seed), len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(rounds))
    return means[int(0.025 * rounds)], means[min(rounds - 1, int(0.975 * rounds))]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of `values`."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Report:
    results: dict[str, dict[str, Any]]  # mode -> metrics, nDCG CI, search p50/p99 (ms)
    categories: dict[str, dict[str, float]]  # category -> mode -> nDCG@k
    ingest: dict[str, Any]  # documents, chunks, seconds, chunks_per_s, reused, tenant


def fingerprint(kb: KnowledgeBase, data: Dataset, model_id: str) -> str:
    """What decides whether a kept scratch tenant can be reused: corpus, model and chunk settings."""
    h = hashlib.sha256(f"{model_id}\0{kb.settings.kb_chunk_tokens}\0{kb.settings.kb_chunk_overlap}".encode())
    for doc_id in sorted(data.corpus):
        title, text = data.corpus[doc_id]
        h.update(f"\0{doc_id}\0{title}\0{text}".encode())
    return h.hexdigest()


async def _document_count(kb: KnowledgeBase, slug: str) -> int | None:
    try:
        await kb.namespace(slug)
    except NotFound:
        return None
    async with kb.db.tenant_scope(slug) as s:
        return int(await s.conn.fetchval("SELECT count(*) FROM documents"))


async def _ingest(kb: KnowledgeBase, slug: str, data: Dataset,
                  on_progress: Callable[[str, int, int], None] | None) -> tuple[int, float]:
    ids, chunks, t0 = list(data.corpus), 0, time.perf_counter()
    group = 256  # documents per call: room for ingest's pipelining (embedding overlaps the writes)
    for start in range(0, len(ids), group):
        batch = ids[start:start + group]
        done = await kb.ingest_documents(slug, [NewDocument(data.corpus[i][0] or f"Document {i}", data.corpus[i][1]
                                                             or data.corpus[i][0], f"beir:{i}") for i in batch])
        chunks += sum(r.chunks for r in done if r.status != "unchanged")
        if on_progress:
            on_progress("ingest", min(start + group, len(ids)), len(ids))
    return chunks, time.perf_counter() - t0


async def evaluate(kb: KnowledgeBase, data: Dataset, modes: Iterable[str], *, k: int = 10, reuse: bool = False,
                   on_progress: Callable[[str, int, int], None] | None = None) -> Report:
    """Ingest the corpus into a scratch tenant, run every query in every mode, drop the tenant.

    With `reuse` the tenant is named after the corpus/model/chunk-settings fingerprint and kept:
    a second run with the same fingerprint skips ingest (search settings can be tuned in seconds).
    """
    emb = await kb.embedder()
    slug = f"eval_{fingerprint(kb, data, emb.model_id)[:16]}" if reuse else f"eval_{secrets.token_hex(4)}"
    have = await _document_count(kb, slug) if reuse else None
    if have is None:
        await tenancy.create_tenant(kb.db, slug, "Retrieval evaluation (scratch)")
    try:
        ingest: dict[str, Any] = {"documents": len(data.corpus), "tenant": slug, "reused": have == len(data.corpus)}
        if not ingest["reused"]:
            chunks, seconds = await _ingest(kb, slug, data, on_progress)
            ingest |= {"chunks": chunks, "seconds": round(seconds, 1),
                       "chunks_per_s": round(chunks / seconds, 1) if seconds else None}
        results: dict[str, dict[str, Any]] = {}
        per_query: dict[str, dict[str, float]] = {}
        for mode in modes:
            runs: dict[str, list[str]] = {}
            times: list[float] = []
            for n, qid in enumerate(data.qrels, 1):
                t0 = time.perf_counter()
                if mode == "default":  # exactly the search_docs call
                    found = await kb.search(slug, data.queries[qid], limit=k * 3)
                else:
                    found = await kb.search(slug, data.queries[qid], limit=k * 3, mode=mode, rerank=False)
                times.append((time.perf_counter() - t0) * 1000)
                ranked: list[str] = []
                for hit in found.results:
                    doc = hit.source_uri.removeprefix("beir:")
                    if doc not in ranked:
                        ranked.append(doc)
                runs[qid] = ranked[:k]
                if on_progress:
                    on_progress(mode, n, len(data.qrels))
            per_query[mode] = {q: ndcg_at(runs[q], g, k) for q, g in data.qrels.items()}
            lo, hi = bootstrap_ci(list(per_query[mode].values()))
            results[mode] = score(runs, data.qrels, k) | {
                f"nDCG@{k}_ci95": [round(lo, 4), round(hi, 4)],
                "search_p50_ms": round(percentile(times, 50), 2), "search_p99_ms": round(percentile(times, 99), 2)}
        categories: dict[str, dict[str, float]] = {}
        for cat in sorted(set(data.categories.values())):
            qs = [q for q, c in data.categories.items() if c == cat]
            categories[cat] = {m: sum(per_query[m][q] for q in qs) / len(qs) for m in per_query} | {"queries": len(qs)}
        return Report(results, categories, ingest)
    finally:
        if not reuse:
            info = await tenancy.get_tenant(kb.db, slug)
            await tenancy.delete_tenant(kb.db, slug)
            await kb.drop_tenant_namespace(info.rag_index_namespace)
