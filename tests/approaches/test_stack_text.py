"""Free-text columns as features of the stack (engine.approaches._stack_text): the text model's scores of the
training rows are out of fold, the library transform and the NumPy fast path agree, reasons quote the lead's own
words, editing the text moves the score, a saved run scores the same after loading, hostile cells neither crash
nor slow scoring nor reach a spreadsheet as formulas, and the leak finder leaves an honest text column alone.

Real computations on synthetic tables with known answers (engine.data.text_tables)."""

from __future__ import annotations

import io
import re
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from support import SMALL_STACK

from engine import pipeline, whatif
from engine.approaches._stack_parts import features_transform, plan_columns
from engine.approaches._stack_text import MAX_CHARS, TextScore, cell_texts
from engine.approaches.stacking import StackingApproach, _column_kinds
from engine.data.text_tables import COLD, WARM, conversation_table
from engine.runs import RunStore
from engine.scoring import FLAGGED_NOTE, predict_rows, prepare_rows, reason_text, score_frame
from engine.storage import FORMULA_PREFIXES

WORDS = [f"w{i:03d}" for i in range(400)]


def random_texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts of 30 random words each and labels that have nothing to do with them."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, 30)) for _ in range(n)], rng.integers(0, 2, n)


# -- the text model on its own ---------------------------------------------------------------------------------------
def test_training_rows_get_out_of_fold_scores_equal_to_cross_val_predict():
    texts, y = random_texts(300, seed=1)
    X = pd.DataFrame({"Notes": texts})
    model = TextScore(cv=5, seed=7)
    oof = model.fit_transform(X, y)[:, 0]
    # the same regression over the same folds, by scikit-learn's own cross_val_predict
    T = model.vectorizers_[0].transform(texts)
    folds = StratifiedKFold(5, shuffle=True, random_state=7)
    want = cross_val_predict(
        LogisticRegression(C=model.C_[0], max_iter=2000), T, y, cv=folds, method="decision_function"
    )
    np.testing.assert_allclose(oof, want, rtol=0, atol=1e-6)  # float32 tf-idf
    # labels that are noise: the model fitted on every row memorises them, its out-of-fold scores cannot
    in_sample = roc_auc_score(y, model.transform(X)[:, 0])
    assert in_sample > 0.9
    assert roc_auc_score(y, oof) < 0.65


def test_cells_are_read_as_text_and_capped():
    cells = [None, float("nan"), pd.NA, b"caf\xc3\xa9 \xff\xfe ok", 12.5, "x" * (MAX_CHARS + 50)]
    texts = cell_texts(np.array(cells, dtype=object))
    assert texts[:3] == ["", "", ""]
    assert texts[3].startswith("café") and "\ufffd" in texts[3]
    assert texts[4] == "12.5" and len(texts[5]) == MAX_CHARS


def test_text_without_usable_words_gives_a_constant_not_an_error():
    X = pd.DataFrame({"Notes": ["", "a", "", "b", "?", "!"] * 5})
    y = np.array([0, 1] * 15)
    model = TextScore(cv=3)
    assert np.all(model.fit_transform(X, y) == 0.0)
    assert np.all(model.transform(X) == 0.0)
    with pytest.raises(ValueError, match="needs the labels"):
        TextScore().fit(X)


def test_a_text_column_is_planned_to_the_text_model_and_a_useless_one_dropped():
    table = conversation_table(n=60, seed=2, turns=3)
    table["blank"] = np.nan
    table["same"] = "the very same long sentence in every single row of the table"
    kinds = {**_column_kinds(table.drop(columns="label")), "blank": "text", "same": "text"}
    assert kinds["conversation"] == "text"
    plan = plan_columns(table.drop(columns="label"), kinds)
    assert plan["text"] == ["conversation"]
    assert "blank" not in sum(plan.values(), []) and "same" not in sum(plan.values(), [])


def test_a_text_reason_names_the_field_and_quotes_its_words():
    said = "mentions 'budget approved', 'next week'"
    assert reason_text("Notes", "long note", 0.09, words=said) == f"Notes: {said} (+9 points)"
    assert reason_text("Notes", "", -0.031, words="is blank") == "Notes is blank (-3 points)"
    flagged = reason_text("Notes", "x", 0.02, flagged={"Notes": "why"}, words=said)
    assert flagged == f"Notes: {said} (+2 points){FLAGGED_NOTE}"
    assert reason_text("City", "Paris", 0.05, words=None) == "City = Paris (+5 points)"


# -- in the stack ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def noise_stack(tmp_path_factory):
    """A stack on a text whose label is noise, beside one weak number: (model, X_train, y_train, X_test, y_test)."""
    texts, y = random_texts(400, seed=3)
    rng = np.random.default_rng(4)
    X = pd.DataFrame({"score": rng.normal(size=400) + 0.3 * y, "Notes": texts})
    model = StackingApproach(**SMALL_STACK).fit(X.iloc[:300], y[:300])
    return model, X.iloc[:300], y[:300], X.iloc[300:], y[300:]


def test_the_stack_learns_from_out_of_fold_text_scores_not_memorised_ones(noise_stack):
    """Were the text feature of a training row fitted on that row's label, the base models would lean on a
    feature that separates the training rows perfectly, and the training rows' scores would rank near 1.0."""
    model, X, y, X_test, y_test = noise_stack
    assert model.plan_["text"] == ["Notes"] and model.groups_["Notes"]
    text_column = model.groups_["Notes"][0]
    in_sample = model.features_.transform(X)[:, text_column]
    assert roc_auc_score(y, in_sample) > 0.9  # the text model fitted on all rows memorises their noise...
    assert roc_auc_score(y, model.train_proba_) < 0.8  # ...but the stack was trained on out-of-fold scores
    assert roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]) < 0.8


def test_the_fast_transform_equals_the_column_transformer_with_text(noise_stack):
    model, X, _, X_test, _ = noise_stack
    hostile = X_test.head(6).copy().astype(object)
    hostile["Notes"] = ["", np.nan, "w001 " * 200_000, b"\x00\xff\xfe binary", '=HYPERLINK("http://x","y")', 42]
    for rows in (X.head(1), X_test, hostile):
        np.testing.assert_array_equal(features_transform(model.features_, rows), model.features_.transform(rows))


def test_a_saved_stack_with_text_loads_and_scores_the_same(noise_stack, tmp_path):
    model, _, _, X_test, _ = noise_stack
    model.save(tmp_path / "model")
    loaded = StackingApproach.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(loaded.explain(X_test.head(3)), model.explain(X_test.head(3)))


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A run of the small stack on leads whose attributes and calls each carry signal (trained as `train` does)."""
    table = conversation_table(n=400, seed=5, turns=10)
    store = RunStore(tmp_path_factory.mktemp("text_run") / "runs")
    run = pipeline.train_leads(table, params=SMALL_STACK, target="label", dataset_name="calls", store=store)
    return run, run.load_approach(), table.drop(columns="label")


def test_train_keeps_the_text_and_the_stack_uses_it(text_run):
    run, model, _ = text_run
    assert run.settings.kinds["conversation"] == "text"
    assert model.plan_["text"] == ["conversation"] and model.groups_["conversation"]
    assert "conversation" not in (run.settings.flagged or {})  # the leak finder leaves honest text alone


def test_reasons_quote_the_words_of_that_lead(text_run):
    run, model, leads = text_run
    raw = leads.head(40)
    scored = score_frame(run, raw, model=model, explain="all")
    quoted = 0
    for i, found in scored.factors.items():
        said = " ".join(re.findall(r"(?u)\b\w\w+\b", raw.iloc[i]["conversation"].lower()))  # its tf-idf tokens
        for side in ("for", "against"):
            for f in found[side]:
                if f["feature"] != "conversation":
                    continue
                assert f["text"].startswith("conversation: mentions "), f["text"]
                terms = f["text"].split(" (")[0].split("mentions ", 1)[1]
                if terms.startswith("none"):
                    continue
                for term in terms.split(", "):
                    assert term[0] == term[-1] == "'" and f" {term[1:-1]} " in f" {said} ", (term, i)
                    quoted += 1
    assert quoted >= 10
    # the calls' warm words raise the score and the cold ones lower it
    texts = " ".join(
        " ".join(found["for"][j]["text"] for j in range(len(found["for"]))) for found in scored.factors.values()
    )
    warm_words = {w.lower().strip(".,") for line in WARM for w in line.split()}
    assert any(w in texts for w in ("budget", "approved", "contract", "paperwork", "excited", "order")), texts[:300]
    assert warm_words  # (the generator's vocabulary is what the reasons draw on)


def test_the_api_one_lead_path_quotes_the_text(text_run):
    run, model, leads = text_run
    X, _ = prepare_rows(run, leads.iloc[[0]])
    (answer,) = predict_rows(run, model, X, explain=True)
    reasons = answer["reasons_for"] + answer["reasons_against"]
    assert any(r.startswith("conversation: mentions") for r in reasons), reasons
    text_factor = [f for f in answer["factors"] if f["feature"] == "conversation"]
    assert text_factor and len(text_factor[0]["value"]) <= 200  # the table shows the text shortened


def test_editing_the_conversation_moves_the_score(text_run):
    run, model, leads = text_run
    lead = {column: leads.iloc[0][column] for column in whatif.form_fields(run.settings)}
    options = whatif.field_options(run.settings, leads)
    assert options["conversation"] == {"text": True}  # a text area on the What-if page, not a list to pick from
    warm = "\n".join(f"Agent: Hello.\nCustomer: {line}" for line in WARM)
    cold = "\n".join(f"Agent: Hello.\nCustomer: {line}" for line in COLD)
    p_warm = whatif.lead_probability(run, model, {**lead, "conversation": warm})
    p_cold = whatif.lead_probability(run, model, {**lead, "conversation": cold})
    assert p_warm > p_cold + 0.2


def test_hostile_text_cells_score_fast_and_export_as_text(text_run):
    run, model, leads = text_run
    raw = leads.head(7).copy().astype(object)
    huge = "budget " * (1024 * 1024 // 7)  # 1 MB of one word
    raw["conversation"] = [
        "",
        np.nan,
        huge,
        "\x00\x01\xff binary \ufffe",
        '=HYPERLINK("http://evil","x")',
        3.5,
        "@SUM(1)",
    ]
    started = time.perf_counter()
    scored = score_frame(run, raw, model=model, explain="all")
    assert time.perf_counter() - started < 30
    assert np.all(np.isfinite(scored.proba)) and np.all((scored.proba > 0) & (scored.proba < 1))
    blank = scored.factors.get(0, {"for": [], "against": []})
    assert all(
        f["text"].startswith("conversation is blank")
        for f in blank["for"] + blank["against"]
        if f["feature"] == "conversation"
    )
    exported = pd.read_csv(io.BytesIO(scored.export_csv()), dtype=str, keep_default_na=False)
    cells = [*exported.columns, *exported.to_numpy().ravel().tolist()]
    assert not [c for c in cells if c.startswith(FORMULA_PREFIXES) and not _is_number(c)]
    assert any(c.startswith("'=HYPERLINK") for c in cells)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
