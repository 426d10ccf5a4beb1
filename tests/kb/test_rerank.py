"""Cross-encoder reranking inside the tenant (issue 13).

No package ships a reranker's weights, so these tests build a tiny real ONNX cross-encoder with
the `onnx` helpers: its logit is 100 x (passage tokens equal to the word "credit") + (passage
tokens), read from the same (input_ids, attention_mask, token_type_ids) a BERT cross-encoder
takes. onnxruntime runs it through the production code path; only the weights are made up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

from support_mcp.kb.embedding import TOKENIZER_DIR, ModelIntegrityError, file_sha256
from support_mcp.kb.rerank import CrossEncoder, load_reranker
from support_mcp.kb.service import KnowledgeBase

WINDOW = 64


def make_cross_encoder(folder: Path, window: int = WINDOW) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = Tokenizer.from_file(str(TOKENIZER_DIR / "tokenizer.json")).token_to_id("credit")
    ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
           for n in ("input_ids", "attention_mask", "token_type_ids")]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])
    consts = [numpy_helper.from_array(np.array([target], dtype=np.int64), "target"),
              numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
              numpy_helper.from_array(np.array([100.0], dtype=np.float32), "hundred")]
    nodes = [
        helper.make_node("Mul", ["attention_mask", "token_type_ids"], ["passage"]),
        helper.make_node("Cast", ["passage"], ["passage_f"], to=TensorProto.FLOAT),
        helper.make_node("Equal", ["input_ids", "target"], ["is_target"]),
        helper.make_node("Cast", ["is_target"], ["is_target_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["is_target_f", "passage_f"], ["hits"]),
        helper.make_node("ReduceSum", ["hits", "axis"], ["n_hits"], keepdims=1),
        helper.make_node("ReduceSum", ["passage_f", "axis"], ["length"], keepdims=1),
        helper.make_node("Mul", ["n_hits", "hundred"], ["weighted"]),
        helper.make_node("Add", ["weighted", "length"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "tiny-cross-encoder", ins, [out], initializer=consts)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8),
              str(folder / "model.onnx"))
    shutil.copyfile(TOKENIZER_DIR / "tokenizer.json", folder / "tokenizer.json")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": window}))
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cross_encoder(tmp_path_factory.mktemp("reranker"))


def test_scores_follow_the_model(model_dir: Path) -> None:
    ce = CrossEncoder(model_dir)
    scores = ce.score("money back", ["short", "a somewhat longer passage here", "credit policy"])
    assert scores == [2.0, 6.0, 103.0]  # the passage and its closing [SEP]
    assert ce.max_length == WINDOW


def test_a_query_longer_than_the_window_is_cut(model_dir: Path) -> None:
    ce = CrossEncoder(model_dir)
    (score,) = ce.score("why " * 1000, ["credit " * 10])
    assert score == 1011.0  # the passage still fits whole beside half a window of query
    (long_both,) = ce.score("why " * 1000, ["credit " * 1000])
    assert 100 * 20 < long_both < WINDOW * 101  # both cut, the passage keeps what is left


def test_a_hash_mismatch_or_a_corrupt_file_is_refused_in_one_line(model_dir: Path, tmp_path: Path) -> None:
    good = file_sha256(model_dir / "model.onnx")
    assert CrossEncoder(model_dir, sha256=good).model_sha256 == good
    with pytest.raises(ModelIntegrityError) as err:
        CrossEncoder(model_dir, sha256="0" * 64)
    assert str(model_dir / "model.onnx") in str(err.value) and "expected " + "0" * 64 in str(err.value)
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelIntegrityError, match="cannot be loaded") as err:
        CrossEncoder(broken)
    assert "\n" not in str(err.value)
    with pytest.raises(ModelIntegrityError, match="is missing"):
        CrossEncoder(tmp_path / "nowhere")


def test_missing_or_corrupt_reranker_loads_as_none_with_a_warning(tmp_path: Path, capfd) -> None:
    assert load_reranker(None, None, None) is None
    assert load_reranker(tmp_path / "nowhere", None, None) is None
    err = capfd.readouterr().err
    assert err.count("kb_rerank_unavailable") == 2 and str(tmp_path / "nowhere") in err


DOCS = [("Refunds", "A refund reaches the card in five days."),
        ("Refund exceptions", "Gift cards get no refund; store credit only, as the refund policy says."),
        ("Billing cycles and invoices", "Invoices are issued monthly on the first day, with a detailed line "
         "for every seat, add-on and tax, and they can be downloaded as PDF from the billing page.")]


async def test_search_reranks_inside_the_tenant_and_falls_back(db, kb, make_tenant, model_dir, tmp_path) -> None:
    a, b = await make_tenant("rra"), await make_tenant("rrb")
    for title, text in DOCS:
        await kb.ingest(a, title=title, text=text)
    await kb.ingest(b, title="Refund credit credit", text="Tenant B's refund credit credit credit note.")
    settings = kb.settings.model_copy(update={"kb_rerank": True, "kb_rerank_model_path": model_dir,
                                              "kb_rerank_candidates": 10})
    on = KnowledgeBase(settings, db, index=await kb.index(), embedder=await kb.embedder())
    reranked = await on.search(a, "when is my money back", limit=3)
    fused = await on.search(a, "when is my money back", limit=3, rerank=False)
    assert {h.title for h in reranked.results} == {t for t, _ in DOCS}  # only tenant a's documents
    # the model's order: "credit" first, then the longer passage; scores are the model's logits
    assert [h.title for h in reranked.results] == ["Refund exceptions", "Billing cycles and invoices", "Refunds"]
    assert reranked.results[0].score > 100 > reranked.results[1].score > reranked.results[2].score
    assert all(h.score < 1 for h in fused.results)  # the engine's fused scores, untouched
    # a limit below the candidates still reranks the whole candidate set, then cuts
    assert [h.title for h in (await on.search(a, "when is my money back", limit=1)).results] == ["Refund exceptions"]

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "model.onnx").write_bytes(b"garbage")
    off = KnowledgeBase(settings.model_copy(update={"kb_rerank_model_path": broken}), db,
                        index=await kb.index(), embedder=await kb.embedder())
    assert await off.reranker() is None
    fallback = await off.search(a, "when is my money back", limit=3)
    assert [h.chunk_id for h in fallback.results] == [h.chunk_id for h in fused.results]


def test_candidates_are_bounded_and_doctor_reports_the_reranker(model_dir: Path, tmp_path: Path) -> None:
    from pydantic import ValidationError

    from support_mcp import doctor
    from support_mcp.settings import Settings

    with pytest.raises(ValidationError, match="less than or equal to 100"):
        Settings(_env_file=None, kb_rerank_candidates=1000)
    assert doctor.check_reranker(Settings(_env_file=None)) is None  # off: nothing to check
    ok = doctor.check_reranker(Settings(_env_file=None, kb_rerank=True, kb_rerank_model_path=model_dir))
    assert ok is not None and ok.status == "ok" and f"window {WINDOW}" in ok.detail
    bad = doctor.check_reranker(Settings(_env_file=None, kb_rerank=True, kb_rerank_model_path=model_dir,
                                         kb_rerank_model_sha256="a" * 64))
    assert bad is not None and bad.status == "problem" and "expected " + "a" * 64 in bad.detail
    unset = doctor.check_reranker(Settings(_env_file=None, kb_rerank=True))
    assert unset is not None and unset.status == "problem" and "fused results" in unset.detail


async def test_equal_scores_rank_the_same_whatever_order_the_engine_gives(db, kb, make_tenant) -> None:
    """RRF gives many exact ties; their order must not depend on the engine (eval runs of the
    same pipeline differed by ±0.002 nDCG@10 before)."""
    slug = await make_tenant("ties")
    for i in range(6):
        await kb.ingest(slug, title=f"Hub note {i}", text=f"The hub light blinks {'blue' if i % 2 else 'green'}.")
    real = await kb.index()

    class Reversed:  # the real engine's answer, listed backwards
        def __getattr__(self, name: str):  # noqa: ANN204
            return getattr(real, name)

        async def search(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
            return list(reversed(await real.search(*args, **kwargs)))

    backwards = KnowledgeBase(kb.settings, db, index=Reversed(), embedder=await kb.embedder())  # type: ignore[arg-type]
    for mode in ("hybrid", "dense", "sparse"):
        a = await kb.search(slug, "hub light", limit=6, mode=mode)
        b = await backwards.search(slug, "hub light", limit=6, mode=mode)
        assert [h.chunk_id for h in a.results] == [h.chunk_id for h in b.results], mode
