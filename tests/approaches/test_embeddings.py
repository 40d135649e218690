"""The embeddings approach with the real shipped MiniLM: chunking, pooling, a short contrastive
fine-tune that changes the weights, both classifiers, both embeddings, explanations, save/load."""

import numpy as np
import pandas as pd
import pytest
from support import BENCH_ROW_KEYS

from engine.approaches.base import CONTRIBUTION_COLUMNS
from engine.approaches.registry import load_approach
from engine.callbacks import Callback, TrainingCancelled
from engine.data.demo_transcripts import demo_transcripts
from engine.data.transcripts import load_transcripts
from engine.pipeline import build_approach

TINY = dict(epochs=1, n_pairs=1, max_triplets=12, batch_size=6, train_tokens=64, seed=0)
#: TINY on PyTorch: no int8 ONNX export after the fine-tune (that backend is tested on the ``fitted`` model)
TINY_TORCH = {**TINY, "backend": "torch"}


class Recorder(Callback):
    def __init__(self):
        self.stages, self.steps = [], []

    def on_train_begin(self, total_steps, stage="train"):
        self.stages.append(stage)

    def on_step_end(self, progress):
        self.steps.append((progress.stage, progress.step, progress.total, progress.loss))


@pytest.fixture(scope="module")
def data():
    table = load_transcripts(demo_transcripts(24, seed=7))
    return table.X, table.y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    recorder = Recorder()
    model = build_approach("embeddings", dict(classifier_type="logistic", use_metadata=True, **TINY))
    model.fit(X, y, callbacks=[recorder])
    return model, recorder


def test_long_text_is_split_into_overlapping_chunks_and_pooling_differs():
    from engine.approaches.embeddings import EmbeddingApproach

    model = EmbeddingApproach(chunk_tokens=64, chunk_overlap=8)
    long_text = " ".join(f"Customer: item {i} of our plan is about budget and rollout." for i in range(40))
    chunks = model.chunk(long_text)
    assert len(chunks) > 5
    assert all(len(model._generic_model().tokenizer(c, add_special_tokens=False)["input_ids"]) <= 62 for c in chunks)
    assert chunks[0].split()[-1] in chunks[1]  # windows overlap
    assert model.chunk("short call") == ["short call"]
    mean = EmbeddingApproach(chunk_tokens=64, pooling="mean").embed([long_text], "generic")
    maxed = EmbeddingApproach(chunk_tokens=64, pooling="max").embed([long_text], "generic")
    assert mean.shape == maxed.shape == (1, 384)
    assert np.isclose(np.linalg.norm(mean), 1.0) and np.isclose(np.linalg.norm(maxed), 1.0)
    assert not np.allclose(mean, maxed, atol=1e-3)


def test_fine_tune_changes_weights_and_reports_progress(fitted, data):
    model, recorder = fitted
    X, _ = data
    generic = model._generic_model()
    tuned = dict(model.model_.named_parameters())
    changed = [
        name
        for name, p in generic.named_parameters()
        if not np.allclose(p.detach().numpy(), tuned[name].detach().numpy())
    ]
    assert len(changed) > 10  # the contrastive step moved the encoder
    assert "fine-tune" in recorder.stages
    fine = [s for s in recorder.steps if s[0] == "fine-tune"]
    assert fine and fine[-1][1] == fine[-1][2] and fine[-1][3] is not None
    e_generic = model.embed(X.iloc[:3], which="generic")
    e_tuned = model.embed(X.iloc[:3], which="fine_tuned")
    assert not np.allclose(e_generic, e_tuned, atol=1e-4)
    assert model.n_triplets_ == 12


def test_in_batch_segments_are_balanced_windows_and_the_explicit_triplet_loss_also_trains(data):
    from engine.approaches.embeddings import EmbeddingApproach

    X, y = data
    texts = list(X["transcript"])
    model = EmbeddingApproach(**TINY)
    segments, labels = model.make_segments(texts, y)
    assert len(segments) == 3 * TINY["max_triplets"]  # a triplet's worth per example, capped
    assert labels.count(0) == labels.count(1) == len(segments) // 2
    windows = model._chunk_many(texts, window=TINY["train_tokens"], overlap=model.chunk_overlap // 2)
    for segment, label in zip(segments, labels):  # each segment is a window of a call with its label
        assert any(segment in windows[i] for i in np.flatnonzero(y == label))

    triplet = build_approach("embeddings", dict(loss="triplet", **TINY_TORCH)).fit(X, y)
    assert triplet.n_triplets_ == TINY["max_triplets"]
    before = dict(model._generic_model().named_parameters())
    moved = [
        n
        for n, p in triplet.model_.named_parameters()
        if not np.allclose(p.detach().numpy(), before[n].detach().numpy())
    ]
    assert len(moved) > 10 and triplet.train_loss_


def test_trains_on_the_fewest_examples_it_accepts(data):
    X, y = data
    idx = np.r_[np.flatnonzero(y == 0)[:2], np.flatnonzero(y == 1)[:2]]  # two of each class
    model = build_approach("embeddings", TINY_TORCH).fit(X.iloc[idx], y[idx])
    proba = model.predict_proba(X.iloc[:3])
    assert proba.shape == (3, 2) and np.allclose(proba.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="at least 2 examples of each class"):
        build_approach("embeddings", TINY_TORCH).fit(X.iloc[idx[1:]], y[idx[1:]])


def test_predict_both_embeddings_and_explain(fitted, data):
    model, _ = fitted
    X, y = data
    p_tuned = model.predict_proba(X.iloc[:4])
    p_generic = model.predict_proba(X.iloc[:4], embeddings="generic")
    assert p_tuned.shape == (4, 2) and np.allclose(p_tuned.sum(axis=1), 1)
    assert not np.allclose(p_tuned, p_generic)
    short = pd.DataFrame(
        [
            {
                **X.iloc[0].to_dict(),
                "transcript": "Customer: We need this fixed this quarter.\nCustomer: No thanks, we'll pass.",
            }
        ]
    )
    table = model.explain(short)
    assert list(table.columns) == CONTRIBUTION_COLUMNS
    sentences = table[~table["feature"].str.startswith("[meta]")]
    assert len(sentences) == 2
    assert (table["feature"].str.startswith("[meta]")).any()  # SHAP on metadata
    assert sorted(sentences["feature"]) == [
        "Customer: No thanks, we'll pass.",
        "Customer: We need this fixed this quarter.",
    ]


def test_save_load_gives_identical_probabilities(fitted, data, tmp_path):
    model, _ = fitted
    X, _ = data
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "fine_tuned" / "model.safetensors").exists()
    loaded = load_approach(tmp_path / "m")
    for which in ("fine_tuned", "generic"):
        np.testing.assert_array_equal(
            model.predict_proba(X.iloc[:3], embeddings=which), loaded.predict_proba(X.iloc[:3], embeddings=which)
        )


def test_xgboost_classifier_on_generic_embeddings_and_lead_tables(tmp_path):
    rng = np.random.default_rng(0)
    leads = pd.DataFrame(
        {
            "Lead Source": rng.choice(["Google", "Referral"], 24),
            "Total Time Spent on Website": rng.integers(0, 2000, 24).astype(float),
        }
    )
    y = ((leads["Lead Source"] == "Referral") | (leads["Total Time Spent on Website"] > 1500)).astype(int).to_numpy()
    model = build_approach("embeddings", dict(classifier_type="xgboost", fine_tune=False))
    model.fit(leads, y)
    proba = model.predict_proba(leads)
    assert proba.shape == (24, 2)
    assert model.input_kind_ == "leads"
    model.save(tmp_path / "x")
    assert (tmp_path / "x" / "classifier_generic.json").exists()
    np.testing.assert_array_equal(load_approach(tmp_path / "x").predict_proba(leads), proba)


def test_bad_parameters_and_cancellation(data):
    X, y = data
    with pytest.raises(ValueError, match="classifier_type must be one of .*hybrid"):
        build_approach("embeddings", dict(classifier_type="forest")).fit(X, y)
    with pytest.raises(ValueError, match="pooling"):
        build_approach("embeddings", dict(pooling="median")).fit(X, y)
    with pytest.raises(ValueError, match="loss must be one of"):
        build_approach("embeddings", dict(loss="contrastive")).fit(X, y)

    class Cancel(Callback):
        def on_step_end(self, progress):
            if progress.stage == "fine-tune":
                raise TrainingCancelled("stop")

    with pytest.raises(TrainingCancelled):
        build_approach("embeddings", TINY_TORCH).fit(X, y, callbacks=[Cancel()])


def test_write_transcript_outputs(fitted, data, tmp_path):
    import json

    from engine.approaches.registry import load_approach as load
    from engine.benchmarks.transcripts import write_transcript_outputs

    model, _ = fitted
    X, y = data
    paths = write_transcript_outputs(model, X.iloc[:12], y[:12], tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "models" / "fine_tuned_embeddings" / "model.safetensors").exists()
    for name in ("generic_embeddings.png", "fine_tuned_embeddings.png", "performance_comparison.html", "metrics.json"):
        assert (out / "results" / name).stat().st_size > 100, name
    assert (out / "results" / "generic_embeddings.png").read_bytes()[:4] == b"\x89PNG"
    metrics = json.loads((out / "results" / "metrics.json").read_text())
    assert set(metrics["models"]) == {"generic_embeddings", "fine_tuned_embeddings"}
    assert 0 <= metrics["models"]["fine_tuned_embeddings"]["roc_auc"] <= 1
    assert "plotly" in (out / "results" / "performance_comparison.html").read_text().lower()
    assert load(paths["classifiers"]).predict_proba(X.iloc[:2]).shape == (2, 2)


@pytest.mark.slow
def test_bench_runs_end_to_end_on_a_small_demo(tmp_path):
    import json

    from engine.benchmarks.transcripts import run_transcripts_bench

    result = run_transcripts_bench(
        None, json_out=tmp_path / "b.json", demo_n=40, heldout_n=16, max_triplets=16, batch_size=8, train_tokens=64
    )
    heads = ("logistic", "xgboost", "hybrid")
    names = {f"{w}_{h}" for w in ("generic", "fine_tuned") for h in heads} | {"peer_setfit", "peer_tfidf"}
    assert set(result["models"]) == names and set(result["heldout_models"]) == names
    for row in result["models"].values():
        assert set(BENCH_ROW_KEYS) <= set(row)
    assert result["embed_per_second"] > 0 and result["embed_chunks_measured"] >= 12  # the 12 test calls
    assert json.loads((tmp_path / "b.json").read_text())["rows"] == 40
    stages = result["stage_seconds"]  # where the time went, each stage once, within the whole bench
    assert {"peer_setfit", "peer_tfidf", "xgboost and hybrid heads"} <= set(stages)
    assert all(v >= 0 for v in stages.values()) and sum(stages.values()) <= result["bench_seconds"]
    assert result["bench_cpu_seconds"] > 0 and result["machine"] and result["date"]
    ours = names - {"peer_setfit", "peer_tfidf"}
    for peer in ("setfit", "tfidf"):
        comparison = result[f"{peer}_comparison"]
        best = comparison["best_of_ours"]
        assert result["models"][best]["roc_auc"] == max(result["models"][n]["roc_auc"] for n in ours)
        for set_name, models in (("test", result["models"]), ("heldout_phrases", result["heldout_models"])):
            diff = comparison[set_name]
            assert np.isclose(diff["value"], models[best]["roc_auc"] - models[f"peer_{peer}"]["roc_auc"])
            assert diff["low"] <= diff["high"]


def test_int8_onnx_embeddings_agree_with_pytorch_and_are_saved(fitted, data, tmp_path):
    from engine import onnx_encoder

    if not onnx_encoder.available():
        pytest.skip("onnxruntime/onnx not installed (they are in requirements.txt)")
    model, _ = fitted
    X, _ = data
    assert model.backend_ == "onnx-int8"
    torch_model = build_approach("embeddings", TINY_TORCH)
    torch_model.model_, torch_model.backend_ = model.model_, "torch"
    for which in ("generic", "fine_tuned"):
        fast, exact = model.embed(X.iloc[:6], which), torch_model.embed(X.iloc[:6], which)
        cosine = (fast * exact).sum(axis=1) / np.linalg.norm(fast, axis=1) / np.linalg.norm(exact, axis=1)
        assert cosine.min() > 0.97, (which, cosine)
        assert not np.allclose(fast, exact)  # really the int8 graph, not PyTorch again
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "fine_tuned_int8.onnx").stat().st_size > 1_000_000
    assert load_approach(tmp_path / "m").backend_ == "onnx-int8"
    with pytest.raises(ValueError, match="backend must be one of"):
        build_approach("embeddings", dict(backend="gpu"))._check_params()
