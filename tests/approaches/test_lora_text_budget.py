"""The LLM's text budget: free-text fields (the ``text`` kind, the user's kinds included) cut to ``text_budget``
characters at a word boundary with " …", a megabyte cell included, and the run saying how many leads were cut."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from engine import pipeline  # noqa: E402
from engine.approaches.lora import LoraApproach  # noqa: E402
from engine.data.text import ELLIPSIS, cut_text  # noqa: E402
from engine.runs import RunStore  # noqa: E402

BUDGET = 200


def test_cut_text_ends_at_a_word_boundary_with_the_marker():
    text = "Agent: hello, thanks for calling back about the annual plan. Customer: yes we want the quote today"
    cut, was_cut = cut_text(text, 60)
    assert was_cut and cut.endswith(ELLIPSIS) and len(cut) <= 60
    assert text.startswith(cut[: -len(ELLIPSIS)]) and text[len(cut) - len(ELLIPSIS)] in " ,."  # a whole word
    assert cut_text("short note", 60) == ("short note", False)
    assert cut_text("line one\n\n  line two", 60) == ("line one line two", False)  # whitespace as one space
    assert cut_text(text, None) == (text, False) and cut_text(text, 0) == (text, False)


def test_a_megabyte_cell_is_cut_in_no_time():
    started = time.perf_counter()
    one_word, cut = cut_text("a" * 1_000_000, BUDGET)
    words, cut_too = cut_text("word " * 200_000, BUDGET)
    assert time.perf_counter() - started < 0.5
    assert cut and len(one_word) <= BUDGET and one_word.endswith(ELLIPSIS)  # no boundary: cut inside the word
    assert cut_too and len(words) <= BUDGET and words == "word " * ((BUDGET - 2) // 5 - 1) + "word" + ELLIPSIS


def _leads(n: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    long_note = " ".join(["asked", "for", "the", "annual", "quote", "and", "a", "demo"] * 8)  # 300+ characters
    notes = [f"{long_note} (call {i})" if i % 3 == 0 else f"called back, no answer ({i})" for i in range(n)]
    notes[0] = "a" * 1_000_000  # a megabyte of one word
    return pd.DataFrame(
        {
            "Call notes": notes,
            "Stage": np.where(y == 1, "warm", "cold"),
            "Visits": rng.integers(0, 9, n),
            "Converted": y,
        }
    )


def test_the_run_says_how_many_leads_were_cut(tiny_base, tmp_path):
    leads = _leads()
    params = dict(
        base_model=tiny_base,
        epochs=1,
        batch_size=8,
        grad_accum=1,
        max_length=96,
        device="cpu",
        precision="fp32",
        drop_constant_share=None,
        text_budget=BUDGET,
    )
    store = RunStore(tmp_path / "runs")
    run = pipeline.train_leads(leads, approach="lora", params=params, store=store, kinds={"Stage": "text"})
    assert run.settings.kinds["Call notes"] == "text" and run.settings.kinds["Stage"] == "text"
    assert run.settings.kinds_set == {"Stage": "text"} and run.settings.kinds_source == "request"
    facts = run.metrics["text_budget"]
    # the training rows: neither test rows nor the calibration slice
    held = set(pd.read_csv(run.path / "predictions.csv")["row_id"]) | set(
        pd.read_csv(run.path / "calibration.csv")["row_id"]
    )
    train_rows = [i for i in range(len(leads)) if i not in held]
    long_rows = [i for i in train_rows if len(leads["Call notes"][i]) > BUDGET]
    assert facts == {
        "chars": BUDGET,
        "columns": ["Call notes", "Stage"],
        "truncated_leads": len(long_rows),
        "leads": len(train_rows),
    }
    assert 0 < len(long_rows) < len(train_rows)

    model = LoraApproach.load(run.model_dir)
    assert model.text_columns_ == ["Call notes", "Stage"]
    texts = model._texts(leads.drop(columns="Converted").iloc[:4])
    assert len(texts[0]) < BUDGET + 100 and "a" * 50 in texts[0] and ELLIPSIS in texts[0]
    assert "called back, no answer (1)" in texts[1] and ELLIPSIS not in texts[1]
    proba = model.predict_proba(leads.drop(columns="Converted").iloc[:4])
    assert proba.shape == (4, 2) and np.isfinite(proba).all()
    # a lone surrogate in a note (the tokenizer refuses it) is read as "?"; the lead still scores
    hostile = leads.drop(columns="Converted").iloc[:2].astype(object)
    hostile.iloc[0, hostile.columns.get_loc("Call notes")] = "asked \udcff for a quote"
    assert "asked ? for a quote" in model._texts(hostile)[0]
    assert np.isfinite(model.predict_proba(hostile)).all()


def test_text_budget_is_checked_as_a_parameter():
    with pytest.raises(ValueError, match="text_budget"):
        pipeline.check_params("lora", {"text_budget": -5})
    with pytest.raises(ValueError, match="text_budget"):
        pipeline.check_params("lora", {"text_budget": "lots"})
