"""The embeddings approach on lead tables with text columns (Issue 24 §2), with the real shipped MiniLM (generic
embeddings, no fine-tune): the text columns are embedded and the other fields encoded beside them; a table
without text is serialized whole as before; the split is saved with the model; hostile text cells fit and score."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from engine.approaches._embed_table import table_texts
from engine.approaches._stack_text import MAX_CHARS
from engine.approaches.registry import load_approach
from engine.callbacks import Callback
from engine.data.leads import load_leads
from engine.data.text import frame_to_texts
from engine.data.uses import apply_use
from engine.pipeline import build_approach

FAST = dict(classifier_type="logistic", fine_tune=False, seed=0, backend="torch")
NAMES = ["Asha", "Ben", "Chen", "Dara", "Eli", "Femi", "Gita", "Hugo", "Ines", "Jon"]
WARM = ["the budget is approved and they want to sign the contract this week",
        "they asked for the contract and a start date, budget already signed off"]  # fmt: skip
COLD = ["there is no budget this year and they are happy with their current tool",
        "they are not interested and asked us not to call again"]  # fmt: skip


class Logs(Callback):
    def __init__(self):
        self.lines = []

    def on_log(self, message):
        self.lines.append(message)


def leads(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Two independent signals: ``Visits`` (a number) and the call notes (warm or cold); a lead converts when both
    are good (either alone ranks at best ~0.83 ROC-AUC, both together ~1)."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    y = a * b
    notes = [
        f"Spoke with {NAMES[i % 10]} on day {i} of the quarter: {(WARM if b[i] else COLD)[int(rng.integers(2))]}."
        for i in range(n)
    ]
    frame = pd.DataFrame(
        {
            "Visits": np.round(4.0 * a + rng.normal(0, 1.0, n), 2),
            "Region": rng.choice(["North", "South", "East"], n),
            "Notes": notes,
        }
    )
    return frame, y


@pytest.fixture(scope="module")
def data():
    X, y = leads(240, seed=1)
    return X.iloc[:160], y[:160], X.iloc[160:].reset_index(drop=True), y[160:]


@pytest.fixture(scope="module")
def both(data):
    X, y, _, _ = data
    logs = Logs()
    model = build_approach("embeddings", FAST, "leads").fit(X, y, callbacks=[logs])  # kinds inferred
    return model, logs


def test_text_columns_are_embedded_and_fields_encoded_beside_them(both, data):
    model, logs = both
    X, y, Xt, yt = data
    assert model.text_columns_ == ["Notes"] and model.field_columns_ == ["Visits", "Region"]
    assert [item["column"] for item in model.metadata_encoder_.spec] == ["Visits", "Region"]
    assert model.texts_of(Xt.iloc[:1]) == [f"Notes: {Xt.at[0, 'Notes']}"]  # the fields are not in the text
    assert any("embedding the text columns (Notes)" in line and "Visits, Region" in line for line in logs.lines)
    features = model._features(Xt, "generic")
    assert features.shape == (len(Xt), 384 + 1 + 3)  # the embedding, Visits scaled, Region one-hot
    text_only = build_approach("embeddings", FAST, "leads").fit(X[["Notes"]], y)
    fields_only = build_approach("embeddings", FAST, "leads").fit(X[["Visits", "Region"]], y)
    auc = {
        name: roc_auc_score(yt, m.predict_proba(Xt[cols])[:, 1])
        for name, m, cols in [
            ("both", model, list(Xt.columns)),
            ("text", text_only, ["Notes"]),
            ("fields", fields_only, ["Visits", "Region"]),
        ]
    }
    assert auc["both"] > max(auc["text"], auc["fields"]) + 0.05, auc  # the concatenation reads both signals
    assert min(auc["text"], auc["fields"]) > 0.6, auc  # each part alone reads its own


def test_a_table_without_text_is_still_serialized_whole(data):
    X, y, Xt, _ = data
    fields = ["Visits", "Region"]
    model = build_approach("embeddings", FAST, "leads").fit(X[fields], y)
    assert model.text_columns_ == [] and model.metadata_encoder_ is None
    # today's path by hand: the whole row serialized to sentences, embedded, the same head
    head = model._new_classifier(y).fit(model.embed(frame_to_texts(X[fields]), "generic"), y)
    expected = head.predict_proba(model.embed(frame_to_texts(Xt[fields]), "generic"))[:, 1]
    assert np.allclose(model.predict_proba(Xt[fields])[:, 1], expected, atol=1e-9)


def test_use_text_embeds_the_text_only_and_use_table_has_no_text(data):
    X, y, Xt, _ = data
    table = load_leads(X.assign(Converted=y))
    part = apply_use(table, "text")
    model = build_approach("embeddings", FAST, "leads").fit(part.X, table.y, kinds=part.kinds)
    assert model.text_columns_ == ["Notes"] and model.field_columns_ == []
    assert model._features(Xt[["Notes"]], "generic").shape == (len(Xt), 384)  # embeddings only
    assert apply_use(table, "table").X.columns.tolist() == ["Visits", "Region"]


def test_save_load_scores_the_same_and_explains_sentences_and_fields(both, data, tmp_path):
    model, _ = both
    _, _, Xt, _ = data
    model.save(tmp_path / "m")
    stored = json.loads((tmp_path / "m" / "approach.json").read_text())
    assert stored["text_split"] == {"embedded": ["Notes"], "encoded": ["Visits", "Region"]}
    loaded = load_approach(tmp_path / "m")
    assert loaded.text_columns_ == ["Notes"] and loaded.field_columns_ == ["Visits", "Region"]
    assert np.allclose(loaded.predict_proba(Xt)[:, 1], model.predict_proba(Xt)[:, 1], atol=1e-6)
    table = loaded.explain(Xt.iloc[:2], embeddings="generic")
    assert {"Visits", "Region"} <= set(table["feature"])  # the fields' exact SHAP rows, named by column
    sentences = table[table["value"].str.startswith("Notes: ")]
    assert set(sentences["row"]) == {0, 1} and np.isfinite(table["contribution"]).all()
    # a new lead without its notes still scores (no text: an empty string)
    p = loaded.predict_proba(Xt[["Visits", "Region"]].iloc[:3])[:, 1]
    assert p.shape == (3,) and np.all((p > 0) & (p < 1))


def test_hostile_text_cells_fit_score_and_explain_with_the_hybrid(data):
    X, y, Xt, _ = data
    X = X.copy()
    junk = [
        "",
        np.nan,
        None,
        "budget " * 150_000,  # about 1 MB of one word
        bytes(range(256)) * 8,  # binary junk
        "\x00\x01\ufffd\udcff" * 50,
        '=HYPERLINK("http://evil.example","click")',
        "+cmd|' /C calc'!A0",
    ]
    X["Notes"] = X["Notes"].astype(object)
    for i, cell in enumerate(junk):
        X.at[X.index[i], "Notes"] = cell
    texts = table_texts(X.iloc[: len(junk)], ["Notes"])
    assert texts[0] == texts[1] == texts[2] == ""
    assert all(len(t) <= MAX_CHARS + len("Notes: ") for t in texts)
    params = {**FAST, "classifier_type": "hybrid"}
    model = build_approach("embeddings", params, "leads").fit(X, y, kinds={"Notes": "text", "Region": "categorical"})
    assert len(model.chunk(model.texts_of(X.iloc[[3]])[0])) < 40  # the 1 MB cell is cut before it is chunked
    hostile = X.iloc[: len(junk)].reset_index(drop=True)
    p = model.predict_proba(hostile)[:, 1]
    assert p.shape == (len(junk),) and np.all((p > 0) & (p < 1))
    table = model.explain(pd.concat([hostile.iloc[[0, 6]], Xt.iloc[[0]]]).reset_index(drop=True))
    assert np.isfinite(table["contribution"]).all()
    visits = table[table["feature"] == "Visits"]  # the hybrid names fields too (occlusion to the training median)
    assert len(visits) == 3 and visits["contribution"].abs().max() > 0
    assert not table[(table["row"] == 0) & table["value"].str.startswith("Notes")].shape[0]  # no text, no sentence
