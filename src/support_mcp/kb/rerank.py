"""Cross-encoder reranking of a tenant's fused candidates, from a local model directory.

A cross-encoder reads (query, passage) pairs and scores each: better order than fusing two
independent rankings, at ~1 ms a pair. No installable package ships a cross-encoder's weights
(the knowledge base never downloads at run time), so reranking is off unless an operator points
``SUPPORT_MCP_KB_RERANK_MODEL_PATH`` at a directory with ``model.onnx`` (or ``onnx/model.onnx``)
and ``tokenizer.json`` (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2 exported to ONNX), optionally
pinned by ``SUPPORT_MCP_KB_RERANK_MODEL_SHA256``.

onnxruntime and tokenizers are used directly (both already load the embedding model): fastembed's
``TextCrossEncoder`` only loads the model names of its own registry, each with its file layout.
The reranker only ever sees the candidates one scoped search returned: it cannot widen a search
to another tenant or mix the shared documents into a tenant's results.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from ..logging import get_logger
from .embedding import ModelIntegrityError, verify_model_file

log = get_logger(__name__)
MODEL_FILES = ("model.onnx", "onnx/model.onnx")


class CrossEncoder:
    """A BERT-style ONNX cross-encoder: (input_ids, attention_mask[, token_type_ids]) -> logits.

    Pairs longer than the model's window are cut: the query to half the window at most, then the
    passage to what is left. Loading raises :class:`ModelIntegrityError` (missing files, a hash
    mismatch, a file onnxruntime cannot read) with a one-line reason.
    """

    def __init__(self, model_dir: Path | str, *, sha256: str | None = None, threads: int | None = None,
                 max_length: int | None = None) -> None:
        import onnxruntime as ort

        model_dir = Path(model_dir)
        model_file = next((model_dir / f for f in MODEL_FILES if (model_dir / f).is_file()), model_dir / MODEL_FILES[0])
        self.model_sha256 = verify_model_file(model_file, sha256, "reranker model")
        if not (model_dir / "tokenizer.json").is_file():
            raise ModelIntegrityError(f"the reranker's tokenizer {model_dir / 'tokenizer.json'} is missing")
        try:
            tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
            opts = ort.SessionOptions()
            if threads:
                opts.intra_op_num_threads = threads
            self._session = ort.InferenceSession(str(model_file), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - a corrupt file: one line, never a protobuf traceback
            raise ModelIntegrityError(f"the reranker model in {model_dir} cannot be loaded "
                                      f"({exc.__class__.__name__})") from None
        self.max_length = max_length or _window(model_dir)
        tok.no_padding()
        tok.no_truncation()
        self._query_tok = Tokenizer.from_str(tok.to_str())
        tok.enable_truncation(max_length=self.max_length, strategy="longest_first")
        pad_id = tok.token_to_id("[PAD]") or 0
        tok.enable_padding(pad_id=pad_id, pad_token=tok.id_to_token(pad_id) or "[PAD]")
        self._tok = tok
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.model_id = f"{model_dir.name}@sha256:{self.model_sha256[:16]}"

    def _cut_query(self, query: str) -> str:
        enc = self._query_tok.encode(query, add_special_tokens=False)
        cap = self.max_length // 2
        return query if len(enc.ids) <= cap else query[:enc.offsets[cap - 1][1]]

    def score(self, query: str, passages: list[str], batch_size: int = 16) -> list[float]:
        """One relevance score per passage (higher is better), in the passages' order."""
        query = self._cut_query(query)
        out: list[float] = []
        for start in range(0, len(passages), batch_size):
            enc = self._tok.encode_batch([(query, p) for p in passages[start:start + batch_size]])
            feeds = {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                     "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
            logits = np.asarray(self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0])
            logits = logits.reshape(len(enc), -1)
            # one relevance logit, or two classes [not relevant, relevant]: their difference
            rel = logits[:, 0] if logits.shape[1] == 1 else logits[:, -1] - logits[:, 0]
            out += rel.astype(float).tolist()
        return out


def _window(model_dir: Path) -> int:
    """The model's window: tokenizer_config's model_max_length, capped by max_position_embeddings."""
    limits = []
    for name, key in (("tokenizer_config.json", "model_max_length"), ("config.json", "max_position_embeddings")):
        try:
            value = json.loads((model_dir / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError):
            continue
        if isinstance(value, int) and 0 < value < 100_000:
            limits.append(value)
    return min(limits) if limits else 512


def load_reranker(model_dir: Path | None, sha256: str | None, threads: int | None) -> CrossEncoder | None:
    """The configured reranker, or None with a logged warning (search then keeps the fused order)."""
    if model_dir is None:
        log.warning("kb_rerank_unavailable", reason="SUPPORT_MCP_KB_RERANK is on but SUPPORT_MCP_KB_RERANK_MODEL_PATH "
                    "is not set; search returns the fused results")
        return None
    try:
        return CrossEncoder(model_dir, sha256=sha256, threads=threads)
    except ModelIntegrityError as exc:
        log.warning("kb_rerank_unavailable", reason=str(exc)[:300], fallback="fused results")
        return None
