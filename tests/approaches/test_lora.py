"""LoRA approach: real training steps on a tiny random Llama with the shipped SmolLM2 tokenizer, plus one
test on the shipped SmolLM2 itself."""

import shutil

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from engine.approaches.base import CONTRIBUTION_COLUMNS  # noqa: E402
from engine.approaches.lora import LoraApproach, PromptBuilder, clear_base_cache, pad_batch  # noqa: E402
from engine.approaches.registry import load_approach  # noqa: E402
from engine.benchmarks.lora import CPU_PRESET  # noqa: E402
from engine.callbacks import Callback, TrainingCancelled  # noqa: E402
from engine.models import ModelNotFoundError, resolve_base_model, smollm2_path  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread (no OpenMP barriers on a shared CPU); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smol_folder() -> str:
    """The converted shipped SmolLM2 (converted on first use, cached afterwards)."""
    return smollm2_path()


@pytest.fixture(scope="module")
def tokenizer(smol_folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_folder)


def easy_leads(n=60, seed=0):
    """Label is fully given by 'Lead Source' (Reference -> converts); other columns are noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    rng.shuffle(y)
    X = pd.DataFrame(
        {
            "Lead Source": np.where(y == 1, "Reference", "Olark Chat"),
            "TotalVisits": rng.integers(0, 9, n).astype(float),
            "City": rng.choice(["Mumbai", "Select", "Thane & Outskirts"], n),
        }
    )
    X.loc[X.index % 5 == 0, "TotalVisits"] = np.nan
    return X, y


ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TINY = dict(
    r=16,
    lora_alpha=16,
    lora_dropout=0.0,
    target_modules=ALL_LINEAR,
    batch_size=8,
    grad_accum=1,
    learning_rate=2e-2,
    max_length=96,
    calibration_rows=12,
    drop_constant_share=None,
    device="cpu",
    precision="fp32",
    warmup_ratio=0.0,
)


@pytest.fixture(scope="module")
def fitted(tiny_base):
    X, y = easy_leads()
    model = LoraApproach(base_model=tiny_base, epochs=6, **TINY).fit(X, y)
    return model, X, y


def test_prompt_labels_mask_prompt_and_padding(tokenizer):
    builder = PromptBuilder(tokenizer, max_length=256)
    ids_pos, lab_pos = builder.example("source: Reference.", 1)
    ids_neg, lab_neg = builder.example("source: Olark Chat; visits: 3; city: Mumbai.", 0)
    n_prompt = len(builder.prompt_ids("source: Reference."))
    assert lab_pos[:n_prompt] == [-100] * n_prompt
    assert lab_pos[n_prompt:] == ids_pos[n_prompt:] == builder.answer_ids[0]
    assert lab_neg[-len(builder.answer_ids[1]) :] == builder.answer_ids[1]
    ids, mask, labels = pad_batch([ids_pos, ids_neg], tokenizer.pad_token_id, [lab_pos, lab_neg])
    short = 0 if len(ids_pos) < len(ids_neg) else 1
    length = min(len(ids_pos), len(ids_neg))
    assert mask[short, length:].sum() == 0 and mask[short, :length].all()
    assert (labels[short, length:] == -100).all()
    # every supervised token is an answer token: prompt + padding carry no loss
    assert int((labels != -100).sum()) == len(builder.answer_ids[0]) + len(builder.answer_ids[1])


def test_verbalizers_are_distinct_first_tokens(tokenizer):
    builder = PromptBuilder(tokenizer, max_length=256)
    pos, neg = builder.verbalizer_ids
    assert pos != neg
    assert builder.answers == ("Converted", "Not Converted")
    assert builder.answer_ids[0][0] == pos and builder.answer_ids[1][0] == neg
    assert builder.prompt_text("x").startswith("<|im_start|>system")


def test_long_prompts_are_truncated_keeping_the_assistant_cue(tokenizer):
    builder = PromptBuilder(tokenizer, max_length=40)
    full = builder._raw_ids(builder.prompt_text("source: Google; " * 40))
    cut = builder.prompt_ids("source: Google; " * 40)
    assert len(cut) + max(len(a) for a in builder.answer_ids) <= 40
    assert cut[-builder._tail :] == full[-builder._tail :]


def test_training_lowers_the_loss_and_learns_the_easy_task(fitted):
    from sklearn.metrics import roc_auc_score

    model, X, y = fitted
    assert model.n_calibration_rows_ == 12 and model.n_train_rows_ == 48
    losses = [h["loss"] for h in model.loss_history_]
    assert len(losses) == 6 * 6  # 48 training rows / 8 per batch, 6 epochs
    assert np.mean(losses[-6:]) < 0.7 * np.mean(losses[:2])
    proba = model.predict_proba(X)
    assert proba.shape == (60, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y, model.raw_proba(X)) > 0.9
    assert model.step_seconds_ > 0 and model.calibration_["method"] == "platt"


def test_verbalizer_score_is_softmax_of_two_first_token_logits(fitted):
    model, X, _ = fitted
    raw = model.raw_proba(X.iloc[:3])
    peft_model = model._activate()
    for i in range(3):
        ids = model.prompts_.prompt_ids(model._texts(X.iloc[[i]])[0])
        with torch.no_grad():
            logits = peft_model(input_ids=torch.tensor([ids])).logits[0, -1]
        pos, neg = model.verbalizer_ids_
        manual = torch.softmax(logits[[pos, neg]].double(), dim=0)[0].item()
        assert raw[i] == pytest.approx(manual, abs=1e-5)


def test_the_shared_prompt_prefix_is_run_once_with_the_same_scores(fitted):
    model, X, _ = fitted
    texts = model._texts(X)
    prefix = model.prompts_.prefix_ids
    assert len(prefix) >= 4 and all(model.prompts_.prompt_ids(t)[: len(prefix)] == prefix for t in texts)
    reused = model._margins_from_texts(texts)
    assert model._prefix_kv is not None and model._prefix_kv[0] == model.adapter_name_
    whole = model._margins_from_texts(texts, reuse_prefix=False)
    np.testing.assert_allclose(reused, whole, atol=1e-4)


def test_scoring_is_padding_invariant(fitted):
    model, X, _ = fitted
    texts = model._texts(X)
    lengths = [len(model.prompts_.prompt_ids(t)) for t in texts]
    shortest = int(np.argmin(lengths))
    assert max(lengths) > lengths[shortest]  # the batch really pads the short row
    alone = model.raw_proba(X.iloc[[shortest]])[0]
    batched = model.raw_proba(X)[shortest]
    assert alone == pytest.approx(batched, abs=1e-5)


def test_save_load_gives_identical_probabilities(fitted, tmp_path):
    model, X, _ = fitted
    model.save(tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter" / "adapter_model.safetensors").exists()
    again = load_approach(tmp_path / "lora")
    assert isinstance(again, LoraApproach) and again.adapter_name_ != model.adapter_name_
    np.testing.assert_allclose(again.predict_proba(X), model.predict_proba(X), atol=1e-6)


def test_load_refuses_a_different_base(fitted, tmp_path, tiny_base):
    model, X, _ = fitted
    model.save(tmp_path / "lora")
    other = tmp_path / "other-base"
    shutil.copytree(tiny_base, other)
    from transformers import AutoModelForCausalLM

    changed = AutoModelForCausalLM.from_pretrained(other)
    with torch.no_grad():
        changed.model.norm.weight.mul_(2.0)
    changed.save_pretrained(other)
    import json

    meta = json.loads((tmp_path / "lora" / "approach.json").read_text())
    meta["state"]["base_path"] = str(other)
    (tmp_path / "lora" / "approach.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="not the one the adapter"):
        LoraApproach.load(tmp_path / "lora")


def test_explain_is_occlusion_in_the_shared_shape(fitted):
    model, X, _ = fitted
    table = model.explain(X.iloc[:3])
    assert list(table.columns) == CONTRIBUTION_COLUMNS
    filled = [len([v for v in row if not pd.isna(v) and v != "Select"]) for row in X.iloc[:3].values]
    assert len(table) == sum(filled)
    assert set(table["feature"]) <= set(X.columns)
    # the only informative field moves the score most
    top = table.loc[table.groupby("row")["contribution"].apply(lambda s: s.abs().idxmax())]
    assert (top["feature"] == "Lead Source").all()


class StopAfter(Callback):
    def __init__(self, n):
        self.n, self.seen = n, []

    def on_step_end(self, progress):
        self.seen.append(progress.step)
        if progress.step >= self.n:
            raise TrainingCancelled("test stop")


def test_cancel_stops_cleanly_and_resume_finishes(tiny_base, tmp_path):
    X, y = easy_leads(32, seed=1)
    params = dict(
        TINY,
        base_model=tiny_base,
        epochs=2,
        calibration_rows=0,
        checkpoint_dir=str(tmp_path / "ckpt"),
        checkpoint_every=100,
    )
    stopper = StopAfter(2)
    with pytest.raises(TrainingCancelled):
        LoraApproach(**params).fit(X, y, callbacks=[stopper])
    assert stopper.seen == [1, 2]
    assert (tmp_path / "ckpt" / "trainer_state.pt").exists()

    seen = StopAfter(10_000)
    resumed = LoraApproach(**params, resume=True).fit(X, y, callbacks=[seen])
    assert seen.seen == [3, 4, 5, 6, 7, 8]  # 32 rows / 8 per batch = 4 steps per epoch, 2 epochs
    full = LoraApproach(**params).fit(X, y)  # resume=False starts over and ignores the checkpoint
    assert [h["step"] for h in resumed.loss_history_] == [h["step"] for h in full.loss_history_]
    np.testing.assert_allclose(
        [h["loss"] for h in resumed.loss_history_], [h["loss"] for h in full.loss_history_], rtol=1e-3, atol=1e-4
    )
    with pytest.raises(ValueError, match="other data"):
        LoraApproach(**params, resume=True).fit(X.iloc[:24], y[:24])


def test_missing_base_model_names_where_it_looked(tmp_path):
    with pytest.raises(ModelNotFoundError) as info:
        resolve_base_model("nobody-here/NoSuchModel-1B")
    message = str(info.value)
    assert "nobody-here/NoSuchModel-1B" in message and "Hugging Face hub cache" in message
    assert "local folder" in message and "download" in message
    with pytest.raises(ModelNotFoundError):
        LoraApproach(base_model=str(tmp_path / "no-such-folder")).fit(*easy_leads(8))


def test_bad_labels_are_explained(tiny_base):
    X, _ = easy_leads(8)
    with pytest.raises(ValueError, match="0/1"):
        LoraApproach(base_model=tiny_base).fit(X, np.arange(8))


def test_shipped_smollm2_trains_a_step_and_scores_leads(smol_folder, leads_csv):
    raw = pd.read_csv(leads_csv, nrows=200)
    y = raw.pop("Converted").to_numpy()
    X = raw.drop(columns=["Prospect ID", "Lead Number", "Tags", "Lead Quality", "Lead Profile"])
    # the CPU preset of the LoRA bench, cut to one step of 8 rows on the top 4 layers
    step = {**CPU_PRESET, "train_rows": 8, "top_layers": 4, "calibration_rows": 0}
    model = LoraApproach(**step, device="cpu").fit(X, y)
    assert model.base_path_ == smol_folder and len(model.loss_history_) == 1
    assert np.isfinite(model.loss_history_[0]["loss"])
    raw_p = model.raw_proba(X.iloc[100:104])
    proba = model._calibrate(np.log(raw_p / (1 - raw_p)))  # what predict_proba returns, without re-scoring
    assert np.all((raw_p > 0) & (raw_p < 1)) and np.all((proba > 0) & (proba < 1))
    assert np.unique(np.round(raw_p, 6)).size > 1  # different leads get different scores
    clear_base_cache()


@pytest.mark.slow
def test_4bit_quantized_base_trains_on_cpu(tiny_base):
    pytest.importorskip("bitsandbytes")
    X, y = easy_leads(16)
    model = LoraApproach(base_model=tiny_base, epochs=1, quantize="4bit", **{**TINY, "calibration_rows": 0}).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (16, 2) and np.isfinite(proba).all()


def test_prepare_models_is_idempotent_and_finds_minilm(smol_folder):
    from engine.models import minilm_path, model_fingerprint, prepare_models

    lines = prepare_models()  # the cache exists already (fixture): nothing is converted again
    assert "already converted" in lines[0] and smol_folder in lines[0]
    assert minilm_path() in lines[1] and isinstance(minilm_path(), str)
    assert len(model_fingerprint(smol_folder)) == 64


def test_fractional_epochs(tiny_base):
    X, y = easy_leads(32, seed=2)
    model = LoraApproach(base_model=tiny_base, epochs=1.5, **{**TINY, "calibration_rows": 0}).fit(X, y)
    assert len(model.loss_history_) == 4 + 2  # one epoch of 4 batches, then half an epoch


# -- the fit on transformers' Trainer ---------------------------------------------------------------
class Steps(Callback):
    def __init__(self):
        self.reports = []

    def on_step_end(self, progress):
        self.reports.append(progress)


def _answer_ce(model, batch):
    """Summed cross-entropy of the answer tokens of one micro-batch, and their count, computed the plain
    transformers way (the whole model's logits, shifted labels)."""
    ids, mask, labels = pad_batch([e[0] for e in batch], model._entry.tokenizer.pad_token_id, [e[1] for e in batch])
    with torch.no_grad():
        logits = model._activate()(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    target = labels[:, 1:]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum")
    return float(ce), int((target != -100).sum())


def test_accumulated_steps_weigh_answer_tokens_and_never_span_two_epochs(tiny_base):
    """32 rows in batches of 8 with accumulation 3: each epoch is a step of 3 batches, then a step of 1 (padded
    with empty micro-batches for the Trainer), and a step's loss is the cross-entropy over all its answer tokens."""
    X, y = easy_leads(32, seed=3)
    params = dict(TINY, base_model=tiny_base, epochs=2, grad_accum=3, calibration_rows=0, learning_rate=0.0)
    steps = Steps()
    model = LoraApproach(**params).fit(X, y, callbacks=[steps])
    assert [h["epoch"] for h in model.loss_history_] == [0, 0, 1, 1]
    assert [p.step for p in steps.reports if p.stage == "train"] == [1, 2, 3, 4]
    # learning rate 0: the adapter stays at its start (B = 0, the base model), so each logged loss is checkable
    examples = [model.prompts_.example(t, int(v)) for t, v in zip(model._texts(X), y)]
    groups = [b[s : s + 3] for b in model._epoch_batches(examples) for s in range(0, len(b), 3)]
    assert [len(g) for g in groups] == [3, 1, 3, 1]
    for logged, group in zip(model.loss_history_, groups):
        parts = [_answer_ce(model, batch) for batch in group]
        expected = sum(ce for ce, _ in parts) / sum(n for _, n in parts)
        assert logged["loss"] == pytest.approx(expected, rel=1e-4)


def test_learning_rate_follows_transformers_linear_schedule_and_progress_is_reported(tiny_base):
    from transformers import get_linear_schedule_with_warmup

    X, y = easy_leads(48, seed=4)
    params = dict(TINY, base_model=tiny_base, epochs=2, calibration_rows=0, warmup_ratio=0.25)
    steps = Steps()
    LoraApproach(**params).fit(X, y, callbacks=[steps])
    train = [p for p in steps.reports if p.stage == "train"]
    assert [p.step for p in train] == list(range(1, 13)) and all(p.total == 12 for p in train)
    assert all(np.isfinite(p.loss) for p in train) and [p.extra["epoch"] for p in train] == [0] * 6 + [1] * 6
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=TINY["learning_rate"])
    schedule = get_linear_schedule_with_warmup(probe, 3, 12)  # warm-up 0.25 of 12 steps
    expected = []
    for _ in range(12):
        probe.step()
        schedule.step()
        expected.append(schedule.get_last_lr()[0])
    np.testing.assert_allclose([p.extra["lr"] for p in train], expected, rtol=1e-9)


def test_a_cancelled_fit_leaves_no_adapter_and_no_trainer_files(fitted, tiny_base, tmp_path, monkeypatch):
    import tempfile

    entry = fitted[0]._entry  # the shared base (the fitted model's adapter is on it)
    before = set(entry.peft.peft_config)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # the Trainer's scratch folder goes here
    monkeypatch.chdir(tmp_path)  # where a default Trainer output folder would appear
    X, y = easy_leads(32, seed=5)
    model = LoraApproach(**dict(TINY, base_model=tiny_base, epochs=3, calibration_rows=0))
    stopper = StopAfter(1)
    with pytest.raises(TrainingCancelled):
        model.fit(X, y, callbacks=[stopper])
    assert stopper.seen == [1]  # stopped at once: no step after the cancel
    assert not hasattr(model, "adapter_name_") and not hasattr(model, "calibration_")
    assert set(entry.peft.peft_config) == before  # the half-trained adapter is gone from the shared base
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tmp"] and list(scratch.iterdir()) == []


def test_given_the_protocol_slice_it_trains_on_every_row_and_calibrates_there(tiny_base):
    """A pipeline fit passes the protocol's calibration slice: the adapter trains on all rows given, and the Platt
    calibration is fitted on the slice, not on rows held out of its own."""
    X, y = easy_leads(n=40, seed=1)
    X_cal, y_cal = easy_leads(n=16, seed=2)
    model = LoraApproach(base_model=tiny_base, epochs=1, **TINY).fit(X, y, calibration=(X_cal, y_cal))
    assert model.n_train_rows_ == 40 and model.n_calibration_rows_ == 16
    assert model.calibration_["rows"] == 16 and model.calibration_["method"] == "platt"
    assert getattr(model, "_calibration_set", None) is None  # not kept after the fit
