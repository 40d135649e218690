"""Tests of engine.drift: PSI per column and the adversarial train-vs-new check (real computations)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.data.demo_leads import demo_leads
from engine.data.leads import LeadDataError, read_table
from engine.drift import psi_level, shift_report


@pytest.fixture(scope="module")
def halves() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two random halves of 2,000 demo leads (enough for the PSI and the adversarial check to tell a shift)."""
    frame = demo_leads(n=2000, seed=11).drop(columns=["Converted"])
    order = np.random.default_rng(0).permutation(len(frame))
    return frame.iloc[order[:1000]].reset_index(drop=True), frame.iloc[order[1000:]].reset_index(drop=True)


def _psi(report: dict) -> dict[str, float]:
    return {c["column"]: c["psi"] for c in report["columns"]}


def test_two_halves_of_one_table_look_alike(halves):
    train, new = halves
    report = shift_report(train, new)
    assert report["adversarial_auc"] < 0.6
    assert report["verdict"] == "looks like the training data"
    assert all(c["level"] != "large" for c in report["columns"]), report["columns"][:3]
    assert report["most_shifted"] == [] and report["note"] is None
    assert report["rows_train"] == len(train) and report["rows_new"] == len(new) == 1000
    psis = [c["psi"] for c in report["columns"]]
    assert psis == sorted(psis, reverse=True)
    # identifiers always differ between batches, so they are left out and said so
    assert {s["column"] for s in report["skipped"]} == {"Prospect ID", "Lead Number"}
    assert "Prospect ID" not in _psi(report)


def test_shifted_numeric_column_is_found_first(halves):
    train, new = halves
    new = new.assign(TotalVisits=new["TotalVisits"] * 3 + 5)
    report = shift_report(train, new)
    assert report["adversarial_auc"] > 0.8
    assert report["verdict"] == "very different"
    assert report["most_shifted"][0] == "TotalVisits"
    assert report["columns"][0]["column"] == "TotalVisits" and report["columns"][0]["level"] == "large"
    assert json.loads(json.dumps(report)) == report  # written into the scoring report as JSON
    assert _psi(report)["Total Time Spent on Website"] < 0.1


def test_shifted_categorical_column_is_found(halves):
    train, new = halves
    rng = np.random.default_rng(3)
    source = new["Lead Source"].to_numpy(dtype=object).copy()
    source[rng.random(len(source)) < 0.4] = "Facebook"
    report = shift_report(train, new.assign(**{"Lead Source": source}))
    assert report["adversarial_auc"] > 0.65
    assert report["verdict"] in ("somewhat different", "very different")
    assert report["most_shifted"][0] == "Lead Source"
    top = report["columns"][0]
    assert top["column"] == "Lead Source" and top["level"] == "large" and top["kind"] == "categorical"


def test_real_leads_halves_and_shift(leads_csv):
    frame = read_table(leads_csv).drop(columns=["Converted"])
    order = np.random.default_rng(1).permutation(len(frame))
    train, new = frame.iloc[order[:4620]], frame.iloc[order[4620:]]
    same = shift_report(train, new, max_rows=2000)  # the adversarial check on a sample of each side
    assert same["adversarial_auc"] < 0.6 and all(c["level"] != "large" for c in same["columns"])
    shifted = shift_report(train, new.assign(TotalVisits=new["TotalVisits"] * 3 + 5), max_rows=2000)
    assert shifted["adversarial_auc"] > 0.8 and shifted["most_shifted"][0] == "TotalVisits"


def test_psi_reading_and_known_value():
    assert [psi_level(v) for v in (0.0, 0.099, 0.1, 0.25, 0.2501, 3.0)] == [
        "stable",
        "stable",
        "moderate",
        "moderate",
        "large",
        "large",
    ]
    # two categories, 50/50 in training, 90/10 new: PSI = 0.4 ln(1.8) + (-0.4) ln(0.2) = 0.879
    train = pd.DataFrame({"plan": ["a"] * 50 + ["b"] * 50})
    new = pd.DataFrame({"plan": ["a"] * 90 + ["b"] * 10})
    report = shift_report(train, new, kinds={"plan": "categorical"})
    assert report["columns"][0]["psi"] == pytest.approx(0.4 * np.log(1.8) - 0.4 * np.log(0.2), abs=1e-3)


def test_no_shared_columns_and_empty_tables_get_clear_errors(halves):
    train, new = halves
    with pytest.raises(ValueError, match="share no column"):
        shift_report(train, pd.DataFrame({"something else": [1, 2, 3]}))
    with pytest.raises(LeadDataError, match="new table has no rows"):
        shift_report(train, new.iloc[:0])
    with pytest.raises(LeadDataError, match="training table has no rows"):
        shift_report(train.iloc[:0], new)
    with pytest.raises(LeadDataError, match="DataFrame"):
        shift_report(train, [1, 2, 3])


def test_all_missing_partial_columns_and_tiny_batches(halves):
    train, new = halves
    train = train.assign(Blank=np.nan, Coupon=np.nan)
    new = new.assign(Blank=np.nan, **{"Promo code": "X1"}).drop(columns=["City"])
    # Specialization filled in training, blank in every new row: a large shift
    new["Specialization"] = np.nan
    report = shift_report(train, new)
    psi = _psi(report)
    assert psi["Blank"] == pytest.approx(0.0)
    assert psi["Specialization"] > 0.25
    assert report["only_in_train"] == ["City", "Coupon"]
    assert report["only_in_new"] == ["Promo code"]
    assert "Specialization" in report["most_shifted"]
    # a handful of new leads: no classifier, the verdict is read from the PSI
    tiny = shift_report(train, new.iloc[:8])
    assert tiny["adversarial_auc"] is None and tiny["rows_new"] == 8 and "too few" in tiny["note"]
    assert tiny["verdict"] == "too few rows to tell" and "Specialization" in tiny["most_shifted"]
