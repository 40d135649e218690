"""Numbers that mean "missing" (999 for "never"): found on the Data page, chosen as a dataset setting, applied by
training (NaN + a 0/1 flag column, recorded in the run's spec) and by scoring alike; hostile settings refused."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest
from dashboard_support import run_page, texts

from engine.approaches.stacking import SMALL_PARAMS
from engine.data.demo import demo_leads
from engine.data.leads import (
    MAX_MISSING_VALUES,
    LeadDataError,
    check_missing_values,
    find_sentinels,
    infer_kinds,
    load_leads,
    prepare_features,
    read_table,
)
from engine.datasets import DatasetStore
from engine.jobspec import TrainSpec, run_spec
from engine.scoring import prepare_rows, score_frame

CODE = {"TotalVisits": [999.0]}
FLAG = "TotalVisits was 999"


def with_code(n: int = 400, seed: int = 3, share: float = 0.2) -> tuple[pd.DataFrame, np.ndarray]:
    """Demo leads with 999 ("never") planted in ``share`` of TotalVisits; returns the frame and the rows."""
    frame = demo_leads(n, seed=seed)
    rows = np.random.default_rng(seed).choice(n, int(share * n), replace=False)
    frame.loc[rows, "TotalVisits"] = 999
    return frame, np.sort(rows)


# -- detection -------------------------------------------------------------------------------------------
def test_a_planted_code_is_found_and_a_clean_table_has_none():
    frame, rows = with_code(600)
    found = find_sentinels(frame, infer_kinds(frame))
    assert [(f["column"], f["value"], f["rows"]) for f in found] == [("TotalVisits", 999.0, len(rows))]
    assert found[0]["share"] == pytest.approx(0.2) and found[0]["high"] < 999
    clean = demo_leads(600, seed=3)
    assert find_sentinels(clean, infer_kinds(clean)) == []
    few = demo_leads(600, seed=3)
    few.loc[:3, "TotalVisits"] = 999  # four rows: an outlier, not a code
    assert find_sentinels(few, infer_kinds(few)) == []


def test_no_code_is_found_in_the_real_export(leads_csv):
    frame = read_table(leads_csv)
    assert find_sentinels(frame, infer_kinds(frame)) == []


# -- the transform ---------------------------------------------------------------------------------------
def test_load_leads_reads_the_code_as_missing_with_a_flag_and_scoring_does_the_same():
    frame, rows = with_code()
    table = load_leads(frame, missing_values={"TotalVisits": [999]})
    assert table.missing_values == CODE
    cols = list(table.X.columns)
    assert cols[cols.index("TotalVisits") + 1] == FLAG and table.kinds[FLAG] == "binary"
    assert np.flatnonzero(table.X[FLAG].to_numpy() == 1).tolist() == rows.tolist()
    assert table.X["TotalVisits"].iloc[rows].isna().all() and table.X["TotalVisits"].max() < 999
    plain = load_leads(frame)
    assert FLAG not in plain.X.columns and plain.X["TotalVisits"].max() == 999 and plain.missing_values == {}
    # new rows are shaped the same way (text cells as a CSV gives them)
    raw = frame.drop(columns=["Converted"]).astype(str)
    again = prepare_features(raw, cols, table.kinds, table.missing_values)
    pd.testing.assert_frame_equal(again, table.X, check_dtype=False)


def test_a_code_the_training_rows_never_held_gives_no_flag_but_is_still_missing():
    frame = demo_leads(300, seed=1)
    table = load_leads(frame, missing_values={"TotalVisits": [-1]})
    assert "TotalVisits was -1" in table.dropped and "TotalVisits was -1" not in table.X.columns  # constant 0
    new = frame.drop(columns=["Converted"]).head(3).assign(TotalVisits=[-1, 2, -1])
    X = prepare_features(new, list(table.X.columns), table.kinds, table.missing_values)
    assert X["TotalVisits"].isna().tolist() == [True, False, True] and list(X.columns) == list(table.X.columns)


# -- hostile settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "setting, words",
    [
        ([999], "not a list"),
        ({"TotalVisits": 999}, "not a list of numbers"),
        ({"TotalVisits": ["999"]}, "not a finite number"),
        ({"TotalVisits": [True]}, "not a finite number"),
        ({"TotalVisits": [float("inf")]}, "not a finite number"),
        ({"TotalVisits": [float("nan")]}, "not a finite number"),
        ({"TotalVisits": list(range(MAX_MISSING_VALUES + 1))}, "more than the limit"),
        ({f"c{i}": [1] for i in range(51)}, "more than the limit"),
        ({"": [1]}, "column name"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_problem(setting, words):
    with pytest.raises(LeadDataError, match=words) as err:
        check_missing_values(setting)
    assert "Fix" in str(err.value) or "e.g." in str(err.value)


def test_a_setting_that_does_not_fit_the_table_is_refused_or_reported():
    frame, _ = with_code(200)
    for setting, words in [
        ({"No Such Column": [999]}, "not in the table.*Fix"),
        ({"Lead Source": [999]}, "not a numeric column.*Fix"),
        ({"Converted": [1]}, "the outcome column"),
    ]:
        with pytest.raises(LeadDataError, match=words):
            load_leads(frame, missing_values=setting)
    with pytest.raises(LeadDataError, match="already has a column named 'TotalVisits was 999'.*rename"):
        load_leads(frame.assign(**{FLAG: 0}), missing_values=CODE)
    left_out = load_leads(frame, exclude=["TotalVisits"], missing_values=CODE)  # excluded later: a warning
    assert left_out.missing_values == {} and any("TotalVisits: left out" in w for w in left_out.warnings)


def test_the_dataset_store_keeps_checks_and_undoes_the_setting(workspace):
    store = DatasetStore()
    ds = store.add(with_code(100)[0].to_csv(index=False).encode(), filename="codes.csv", kind="leads")
    assert ds.missing_values == {}
    assert store.treat_as_missing(ds.sha, "TotalVisits", 999) == CODE
    assert store.treat_as_missing(ds.sha, "TotalVisits", 999) == CODE  # twice is once
    assert store.treat_as_missing(ds.sha, "TotalVisits", 999, missing=False) == {}  # the undo
    for bad in ({"TotalVisits": ["x"]}, "999"):
        with pytest.raises(ValueError, match="finite number|not a str"):
            store.update(ds.sha, missing_values=bad)
    with pytest.raises(ValueError, match="finite number"):
        store.treat_as_missing(ds.sha, "TotalVisits", "never")
    meta = json.loads((ds.path / "meta.json").read_text())
    (ds.path / "meta.json").write_text(json.dumps({**meta, "missing_values": {"TotalVisits": "999"}}))
    assert [d.sha for d in store.list()] == [ds.sha]  # a hand-edited setting hides no dataset
    with pytest.raises(ValueError, match="not usable.*meta.json.*Data page"):
        _ = store.get(ds.sha).missing_values
    with pytest.raises(ValueError, match="not usable"):
        store.treat_as_missing(ds.sha, "TotalVisits", 999)
    store.update(ds.sha, missing_values={})
    assert store.get(ds.sha).missing_values == {}


def test_concurrent_changes_of_the_setting_and_others_are_all_kept(workspace):
    store = DatasetStore()
    ds = store.add(with_code(100)[0].to_csv(index=False).encode(), filename="codes.csv", kind="leads")
    columns = ["TotalVisits", "Total Time Spent on Website", "Page Views Per Visit"]
    barrier = threading.Barrier(6)
    errors = []

    def codes(column):
        barrier.wait()
        for value in range(MAX_MISSING_VALUES):
            store.treat_as_missing(ds.sha, column, -1 - value)

    def names():
        barrier.wait()
        for i in range(MAX_MISSING_VALUES):
            store.update(ds.sha, name=f"name {i}", exclude=[f"col {i}"])

    def guarded(fn, *args):
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(codes, c)) for c in columns]
    threads += [threading.Thread(target=guarded, args=(names,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    meta = json.loads((ds.path / "meta.json").read_text())  # valid JSON
    expected = [float(-1 - v) for v in range(MAX_MISSING_VALUES)]
    assert meta["missing_values"] == {c: expected for c in columns}
    assert meta["name"] == f"name {MAX_MISSING_VALUES - 1}" and meta["exclude"] == [f"col {MAX_MISSING_VALUES - 1}"]


def test_the_training_spec_carries_and_checks_the_setting():
    spec = TrainSpec.from_dict({"input_kind": "leads", "missing_values": {"TotalVisits": [999]}})
    assert spec.missing_values == CODE and TrainSpec.from_dict(spec.to_dict()) == spec
    assert TrainSpec(input_kind="leads").missing_values == {}
    with pytest.raises(ValueError, match="finite number"):
        TrainSpec(input_kind="leads", missing_values={"TotalVisits": ["999"]})
    with pytest.raises(ValueError, match="transcripts"):
        TrainSpec(input_kind="transcripts", missing_values=CODE)


# -- training and scoring, end to end --------------------------------------------------------------------
def test_a_run_trained_with_the_setting_records_it_and_scoring_applies_it(workspace, tmp_path):
    frame, rows = with_code(300)
    path = tmp_path / "codes.csv"
    frame.to_csv(path, index=False)
    run = run_spec(TrainSpec(input_kind="leads", data=str(path), params=SMALL_PARAMS, missing_values=CODE))
    spec = json.loads((run.path / "spec.json").read_text())
    assert spec["missing_values"] == CODE and FLAG in spec["columns"] and spec["kinds"][FLAG] == "binary"
    model = run.load_approach()

    new = frame.drop(columns=["Converted"]).iloc[:40].astype(str)  # a file to score, with its 999s
    X, report = prepare_rows(run, new)
    coded = pd.to_numeric(new["TotalVisits"]).to_numpy() == 999
    assert coded.any() and (X[FLAG].to_numpy() == coded).all() and X.loc[coded, "TotalVisits"].isna().all()
    assert FLAG not in report.missing_columns and "TotalVisits" not in report.unparsed  # codes are not junk
    by_hand = prepare_features(new.assign(TotalVisits=new["TotalVisits"].where(~coded)), spec["columns"], spec["kinds"])
    by_hand[FLAG] = coded.astype(float)
    scored = score_frame(run, new, model=model, rank=False, explain=0)
    np.testing.assert_allclose(scored.proba, model.predict_proba(by_hand)[:, 1])


def test_a_run_without_the_setting_scores_as_before(small_stack_run):
    run, leads = small_stack_run
    assert run.settings.missing_values == {} and FLAG not in run.settings.columns
    new = leads.drop(columns=["Converted"]).head(5).assign(TotalVisits=999)
    X, _ = prepare_rows(run, new)
    assert (X["TotalVisits"] == 999).all() and list(X.columns) == run.settings.columns
    pd.testing.assert_frame_equal(X, prepare_features(new, run.settings.columns, run.settings.kinds))


# -- the Data page ---------------------------------------------------------------------------------------
def test_the_data_page_offers_the_code_stores_it_and_undoes_it(workspace):
    store = DatasetStore()
    ds = store.add(with_code(300)[0].to_csv(index=False).encode(), filename="codes.csv", kind="leads")
    at = run_page("data")
    assert "**TotalVisits**: the value 999 fills 60 rows (20%)" in texts(at.warning)
    box = at.checkbox(key=f"missing_{ds.sha}_TotalVisits_999.0")
    assert box.label == "Treat 999 in TotalVisits as missing, with a yes/no flag column" and not box.value
    features = {m.label: m.value for m in at.metric}["Features used"]
    box.check().run()
    assert not at.exception and store.get(ds.sha).missing_values == CODE
    assert "read as missing for training and scoring" in texts(at.info) and FLAG in texts(at.info)
    assert int({m.label: m.value for m in at.metric}["Features used"]) == int(features) + 1
    at.checkbox(key=f"missing_{ds.sha}_TotalVisits_999.0").uncheck().run()
    assert store.get(ds.sha).missing_values == {}

    meta = json.loads((ds.path / "meta.json").read_text())  # a hand-edited setting: refused, said, clearable
    (ds.path / "meta.json").write_text(json.dumps({**meta, "missing_values": ["TotalVisits", 999]}))
    at = run_page("data")
    assert "not usable" in texts(at.error) and at.checkbox(key=f"missing_{ds.sha}_TotalVisits_999.0").disabled
    at.button(key=f"clear_missing_{ds.sha}").click().run()
    assert not at.exception and store.get(ds.sha).missing_values == {} and "not usable" not in texts(at.error)
