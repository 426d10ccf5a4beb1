"""Validate the Nimbus help-center retrieval set (BEIR layout) in this folder.

Usage: python bench/data/helpdesk/validate.py   (exit status 0 = valid)

Checks: every JSON line parses and has the expected string fields; ids are unique and
well-formed; the qrels header and rows are well-formed, reference existing ids and use
grades 1 or 2; every query has at least one grade-2 document; minimum counts; document and
query length bounds; query categories (query_categories.tsv) cover every query and agree
with the lists in README.md; no category-(a) query contains the title of a document judged
for it. Prints counts, word statistics and the per-category breakdown.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIN_DOCS, MIN_QUERIES = 160, 120
DOC_WORDS = (150, 600)
QUERY_WORDS = (2, 25)
CATEGORIES = {"a": "paraphrase / natural language",
              "b": "keyword / identifier",
              "c": "mixed"}

errors: list[str] = []


def fail(msg: str) -> None:
    errors.append(msg)


def read_jsonl(path: Path, fields: tuple[str, ...], id_re: str) -> list[dict]:
    rows: list[dict] = []
    seen: set[str] = set()
    raw = read(path)
    if raw and not raw.endswith("\n"):
        fail(f"{path.name}: missing final newline")
    for n, line in enumerate(raw.rstrip("\n").split("\n"), 1):
        if not line.strip():
            fail(f"{path.name}:{n}: blank line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            fail(f"{path.name}:{n}: invalid JSON ({e})")
            continue
        if not isinstance(obj, dict):
            fail(f"{path.name}:{n}: not a JSON object")
            continue
        for f in fields:
            if not isinstance(obj.get(f), str) or not obj[f].strip():
                fail(f"{path.name}:{n}: field {f!r} missing, empty or not a string")
        extra = set(obj) - set(fields)
        if extra:
            fail(f"{path.name}:{n}: unexpected fields {sorted(extra)}")
        _id = obj.get("_id", "")
        if not re.fullmatch(id_re, str(_id)):
            fail(f"{path.name}:{n}: id {_id!r} does not match {id_re}")
        if _id in seen:
            fail(f"{path.name}:{n}: duplicate id {_id!r}")
        seen.add(_id)
        rows.append(obj)
    return rows


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        fail(f"cannot read {path.name}: {e}")
        return ""


def words(s: str) -> int:
    return len(s.split())


def stats(xs: list[int]) -> str:
    return (f"min {min(xs)}, max {max(xs)}, mean {statistics.fmean(xs):.1f}, "
            f"median {statistics.median(xs):g}")


def main() -> int:
    corpus = read_jsonl(HERE / "corpus.jsonl", ("_id", "title", "text"), r"doc-\d{3}")
    queries = read_jsonl(HERE / "queries.jsonl", ("_id", "text"), r"q-\d{3}")
    doc_ids = {d["_id"] for d in corpus}
    q_ids = {q["_id"] for q in queries}
    titles = {d["_id"]: d.get("title", "") for d in corpus}

    # qrels
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    lines = read(HERE / "qrels" / "test.tsv").rstrip("\n").split("\n")
    if lines[0] != "query-id\tcorpus-id\tscore":
        fail(f"qrels/test.tsv: bad header {lines[0]!r}")
    for n, line in enumerate(lines[1:], 2):
        parts = line.split("\t")
        if len(parts) != 3:
            fail(f"qrels/test.tsv:{n}: expected 3 tab-separated fields, got {len(parts)}")
            continue
        qid, did, score = parts
        if qid not in q_ids:
            fail(f"qrels/test.tsv:{n}: unknown query id {qid!r}")
        if did not in doc_ids:
            fail(f"qrels/test.tsv:{n}: unknown corpus id {did!r}")
        if score not in ("1", "2"):
            fail(f"qrels/test.tsv:{n}: score must be 1 or 2, got {score!r}")
            continue
        if did in qrels[qid]:
            fail(f"qrels/test.tsv:{n}: duplicate pair ({qid}, {did})")
        qrels[qid][did] = int(score)
    for qid in sorted(q_ids):
        if not any(s == 2 for s in qrels.get(qid, {}).values()):
            fail(f"{qid}: no document with score 2")

    # counts and lengths
    if len(corpus) < MIN_DOCS:
        fail(f"corpus has {len(corpus)} documents, need >= {MIN_DOCS}")
    if len(queries) < MIN_QUERIES:
        fail(f"queries has {len(queries)} queries, need >= {MIN_QUERIES}")
    doc_words = [words(d.get("text", "")) for d in corpus]
    for d, w in zip(corpus, doc_words):
        if not DOC_WORDS[0] <= w <= DOC_WORDS[1]:
            fail(f"{d['_id']}: text has {w} words, outside {DOC_WORDS}")
        if not re.search(r"^#{1,3} ", d.get("text", ""), re.M):
            fail(f"{d['_id']}: no Markdown heading")
    q_words = [words(q.get("text", "")) for q in queries]
    for q, w in zip(queries, q_words):
        if not QUERY_WORDS[0] <= w <= QUERY_WORDS[1]:
            fail(f"{q['_id']}: query has {w} words, outside {QUERY_WORDS}")
    dup_titles = [t for t, c in Counter(titles.values()).items() if c > 1]
    if dup_titles:
        fail(f"duplicate titles: {dup_titles}")

    # categories
    cat_of: dict[str, str] = {}
    clines = read(HERE / "query_categories.tsv").rstrip("\n").split("\n")
    if clines[0] != "query-id\tcategory":
        fail(f"query_categories.tsv: bad header {clines[0]!r}")
    for n, line in enumerate(clines[1:], 2):
        qid, _, cat = line.partition("\t")
        if qid not in q_ids:
            fail(f"query_categories.tsv:{n}: unknown query id {qid!r}")
        if cat not in CATEGORIES:
            fail(f"query_categories.tsv:{n}: unknown category {cat!r}")
        if qid in cat_of:
            fail(f"query_categories.tsv:{n}: duplicate query id {qid!r}")
        cat_of[qid] = cat
    for qid in sorted(q_ids - set(cat_of)):
        fail(f"{qid}: no category in query_categories.tsv")
    readme = read(HERE / "README.md")
    block = re.search(r"<!-- categories:start -->(.*?)<!-- categories:end -->", readme, re.S)
    if not block:
        fail("README.md: category block markers not found")
    else:
        listed: dict[str, str] = {}
        for m in re.finditer(r"^- \*\*\((a|b|c)\)[^:]*:\*\*(.*)$", block.group(1), re.M):
            for qid in re.findall(r"q-\d{3}", m.group(2)):
                listed[qid] = m.group(1)
        if listed != cat_of:
            diff = sorted(set(listed.items()) ^ set(cat_of.items()))[:10]
            fail(f"README.md category lists disagree with query_categories.tsv: {diff}")

    # leakage: a paraphrase query must not contain a judged document's title
    texts = {q["_id"]: q["text"].lower() for q in queries}
    for qid, rels in qrels.items():
        for did in rels:
            title = titles.get(did, "").lower()
            if cat_of.get(qid) == "a" and title and title in texts.get(qid, ""):
                fail(f"{qid}: category-a query contains the title of {did}")

    # report
    grades = Counter(s for r in qrels.values() for s in r.values())
    per_cat = Counter(cat_of.values())
    print(f"documents: {len(corpus)} (text words: {stats(doc_words)})")
    print(f"queries:   {len(queries)} (words: {stats(q_words)})")
    print(f"qrels:     {sum(grades.values())} judgments, {grades[2]} with score 2, "
          f"{grades[1]} with score 1; per query: {stats([len(r) for r in qrels.values()])}")
    print(f"queries with a score-1 document: {sum(1 for r in qrels.values() if 1 in r.values())}")
    print(f"documents judged for at least one query: {len({d for r in qrels.values() for d in r})}")
    for c, name in CATEGORIES.items():
        qs = [q for q in queries if cat_of.get(q["_id"]) == c]
        share = 100 * per_cat[c] / max(1, len(queries))
        lens = [words(q["text"]) for q in qs] or [0]
        print(f"category ({c}) {name}: {per_cat[c]} queries ({share:.0f}%), words: {stats(lens)}")
    bins = Counter(min(w // 100, 5) for w in doc_words)
    print("document length histogram: " + ", ".join(
        f"{b * 100}-{b * 100 + 99}: {bins[b]}" for b in sorted(bins)))
    if errors:
        print(f"\nINVALID: {len(errors)} problem(s)", file=sys.stderr)
        for e in errors[:100]:
            print("  " + e, file=sys.stderr)
        return 1
    print("\nOK: dataset is valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
