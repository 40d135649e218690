"""Tests of engine.audit: the per-column leak finder (real computations, no mocks)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.audit import audit_frame, audit_leads
from engine.data.demo_leads import demo_leads
from engine.data.leads import LEAK_PRESETS, LeadDataError, load_leads


def _by_name(report: dict) -> dict[str, dict]:
    return {c["column"]: c for c in report["columns"]}


@pytest.fixture(scope="module")
def demo() -> pd.DataFrame:
    return demo_leads(n=3000, seed=5)


def test_real_leads_flags_tags_and_lead_quality_and_no_clean_column(leads_csv):
    report = audit_leads(leads_csv, leak_policy="none")
    assert {"Tags", "Lead Quality"} <= set(report["flagged"])
    # every flag is one of the documented post-contact columns, none of the clean ones
    assert set(report["flagged"]) <= set(LEAK_PRESETS["default"])
    cols = _by_name(report)
    assert cols["Tags"]["auc"] >= 0.9 and "ROC-AUC" in cols["Tags"]["reason"]
    assert "filled" in cols["Lead Quality"]["reason"]
    assert not cols["Total Time Spent on Website"]["flagged"] and cols["Total Time Spent on Website"]["reason"] is None
    # the identifiers are listed as not audited
    assert cols["Prospect ID"]["auc"] is None and "identifier" in cols["Prospect ID"]["reason"]
    assert report["rows"] == 9240 and report["target"] == "Converted"
    aucs = [c["auc"] for c in report["columns"] if c["auc"] is not None]
    assert aucs == sorted(aucs, reverse=True)
    assert json.loads(json.dumps(report)) == report  # stored and shown as JSON


def test_clean_demo_table_flags_nothing(demo):
    report = audit_leads(demo, leak_policy="default")
    assert report["flagged"] == [], [(c["column"], c["reason"]) for c in report["columns"] if c["flagged"]]
    cols = _by_name(report)
    assert cols["Tags"]["auc"] is None and "leak policy" in cols["Tags"]["reason"]
    # the clean columns carry real signal (so "nothing flagged" is not "nothing measured")
    assert max(c["auc"] for c in report["columns"] if c["auc"] is not None) > 0.6


def test_demo_leaky_columns_are_flagged_with_policy_none(demo):
    report = audit_leads(demo, leak_policy="none")
    assert {"Tags", "Lead Quality"} <= set(report["flagged"])
    assert set(report["flagged"]) <= set(LEAK_PRESETS["default"])


def test_planted_leaks_are_flagged(demo):
    rng = np.random.default_rng(0)
    frame = demo.copy()
    y = frame["Converted"].to_numpy()
    noisy = np.where(rng.random(len(y)) < 0.05, 1 - y, y)
    frame["Deal stage"] = np.where(noisy == 1, "Closed won", "Closed lost")
    # filled only for converted leads: the value itself is uninformative, its presence is the leak
    frame["Invoice amount"] = np.where(y == 1, rng.normal(500, 50, len(y)).round(2), np.nan)
    report = audit_leads(frame, leak_policy="default")
    cols = _by_name(report)
    assert {"Deal stage", "Invoice amount"} == set(report["flagged"])
    assert cols["Deal stage"]["auc"] > 0.9
    assert cols["Invoice amount"]["missing_auc"] == pytest.approx(1.0)
    assert "filled in" in cols["Invoice amount"]["reason"]


def test_numpy_table_without_leak_flags_nothing():
    rng = np.random.default_rng(1)
    n = 4000
    X = pd.DataFrame(
        {
            "visits": rng.poisson(3, n).astype(float),
            "minutes": rng.exponential(10, n),
            "source": rng.choice(["web", "ads", "referral", "event"], n),
            "noise": rng.normal(size=n),
        }
    )
    X.loc[rng.random(n) < 0.3, "minutes"] = np.nan  # missing at random
    z = 0.4 * X["visits"] - 1.5 + (X["source"] == "referral") * 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    report = audit_frame(X, y)
    assert report["flagged"] == []
    cols = _by_name(report)
    assert 0.6 < cols["visits"]["auc"] < 0.85
    assert cols["noise"]["auc"] < 0.56
    assert cols["minutes"]["missing_auc"] < 0.56


def test_subsample_above_max_rows(demo):
    table = load_leads(demo, leak_policy="default")
    report = audit_frame(table.X, table.y, table.kinds, max_rows=1500)
    assert report["rows"] == 3000 and report["rows_used"] == 1500
    assert report["flagged"] == []


def test_one_class_empty_table_and_missing_target_get_clear_errors(demo):
    one_class = demo.assign(Converted=1)
    with pytest.raises(LeadDataError, match="single class"):
        audit_leads(one_class)
    with pytest.raises(LeadDataError, match="no rows"):
        audit_leads(demo.iloc[:0])
    with pytest.raises(LeadDataError, match="'Outcome' is not in the table"):
        audit_leads(demo, target="Outcome")
    with pytest.raises(LeadDataError, match="single class"):
        audit_frame(demo[["TotalVisits"]], np.zeros(len(demo), dtype=int))
    with pytest.raises(LeadDataError, match="no rows"):
        audit_frame(demo[["TotalVisits"]].iloc[:0], [])
    with pytest.raises(LeadDataError, match="y has 3 values but X has"):
        audit_frame(demo[["TotalVisits"]], [0, 1, 0])
    with pytest.raises(LeadDataError, match="blank values"):
        audit_frame(demo[["TotalVisits"]], demo["Converted"].where(demo.index > 5))
    with pytest.raises(LeadDataError, match="at least 10 of each"):
        audit_frame(demo[["TotalVisits"]].iloc[:30], [1] * 5 + [0] * 25)


def test_all_missing_constant_and_many_distinct_strings_are_not_flagged(demo):
    rng = np.random.default_rng(2)
    n = 12000
    frame = pd.concat([demo] * 4, ignore_index=True).iloc[:n]
    frame["Prospect ID"] = [f"P{i}" for i in range(n)]
    frame["Lead Number"] = np.arange(n)
    frame["Always blank"] = np.nan
    frame["Constant"] = "CRM"
    # 10,000 distinct strings, a few repeated: high cardinality, no information
    frame["Referrer URL"] = [f"https://example.com/{k}" for k in rng.integers(0, 10_000, n)]
    report = audit_leads(frame, leak_policy="default")
    cols = _by_name(report)
    assert cols["Always blank"]["auc"] is None and "missing" in cols["Always blank"]["reason"]
    assert cols["Constant"]["auc"] is None and "constant" in cols["Constant"]["reason"]
    url = cols["Referrer URL"]
    assert url["kind"] == "high_cardinality" and not url["flagged"] and url["auc"] < 0.6
    assert report["flagged"] == []
    # the same through audit_frame, with kinds inferred there
    X = frame[["TotalVisits", "Always blank", "Constant", "Referrer URL", "Prospect ID"]]
    direct = _by_name(audit_frame(X, frame["Converted"]))
    assert direct["Always blank"]["auc"] is None and not direct["Always blank"]["flagged"]
    assert direct["Constant"]["auc"] is None
    assert direct["Prospect ID"]["auc"] is None and "identifier" in direct["Prospect ID"]["reason"]
    assert not direct["Referrer URL"]["flagged"]
