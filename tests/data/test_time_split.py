"""Dates as a column kind and the out-of-time split (engine/data/leads/dates.py, engine.evaluate.time_split), and
the demo generator's weekly cohorts that drift (engine/data/demo_leads.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.config import REPO_ROOT
from engine.data.demo import demo_leads
from engine.data.leads import LeadDataError, infer_kinds, load_leads, read_table
from engine.data.leads.dates import parse_dates
from engine.evaluate import time_split
from engine.jobspec import TrainSpec

LEADS_CSV = REPO_ROOT.parent.parent / "shared" / "data" / "leads" / "Leads.csv"


def dated(n: int = 200, seed: int = 3, fmt: str = "%Y-%m-%d") -> pd.DataFrame:
    """Demo leads with a creation date one day apart per 5 rows, written in ``fmt``."""
    leads = demo_leads(n=n, seed=seed)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(n) // 5, unit="D")
    leads.insert(0, "Created On", days.strftime(fmt))
    return leads


# -- the date kind -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d %b %Y", "%B %d, %Y", "%Y-%m-%dT%H:%M:%SZ"])
def test_a_date_column_is_the_date_kind_never_a_feature(fmt):
    leads = dated(fmt=fmt)
    assert infer_kinds(leads)["Created On"] == "date"
    table = load_leads(leads)
    assert "Created On" not in table.X.columns and "Created On" not in table.kinds
    assert list(table.dates.columns) == ["Created On"] and len(table.dates) == len(table.X)


def test_numbers_text_and_identifiers_are_not_dates():
    kinds = infer_kinds(
        pd.DataFrame(
            {
                "year": [2020 + i % 4 for i in range(40)],
                "version": [f"{i % 3}.{i % 5}" for i in range(40)],
                "city": ["Mumbai", "Pune"] * 20,
                "phone": [f"12-34-{i:04d}" for i in range(40)],
            }
        )
    )
    assert "date" not in kinds.values(), kinds


def test_several_text_formats_in_one_column_read_as_the_same_days():
    text = pd.Series(["2024-03-05", "13/03/2024", "5 Mar 2024", "March 6, 2024", "2024-03-07T23:30:00-02:00", None])
    when = parse_dates(text, "Created On")
    expected = ["2024-03-05", "2024-03-13", "2024-03-05", "2024-03-06", "2024-03-08 01:30:00"]
    assert when.iloc[:5].tolist() == [pd.Timestamp(v) for v in expected]  # day first (13/03), offsets to UTC
    assert pd.isna(when.iloc[5])


def test_a_column_with_both_day_orders_is_refused_naming_both():
    with pytest.raises(LeadDataError, match=r"mixes day/month and month/day order.*'13/03/2024'.*'03/14/2024'"):
        parse_dates(pd.Series(["13/03/2024", "03/14/2024"]), "Created On")


def test_leads_csv_has_no_date_column_so_nothing_changes_there():
    if not LEADS_CSV.exists():
        pytest.skip("the X Education export is not on this machine")
    kinds = infer_kinds(read_table(LEADS_CSV))
    assert "date" not in kinds.values()
    assert load_leads(LEADS_CSV).dates.empty


# -- the split ---------------------------------------------------------------------------------------------------
def test_the_newest_30_percent_are_the_test_rows_and_nothing_newer_trains():
    rng = np.random.default_rng(0)
    n = 157
    times = np.datetime64("2024-01-01") + rng.integers(0, 400, n).astype("timedelta64[D]")
    y = rng.integers(0, 2, n)
    train, test, cutoff = time_split(times, y, 0.3)
    assert len(test) == math.ceil(0.3 * n) and len(train) + len(test) == n
    assert set(train).isdisjoint(test)
    assert times[train].max() <= times[test].min() == cutoff
    # exactly the newest: every row strictly newer than the cut-off is a test row
    assert set(np.flatnonzero(times > cutoff)) <= set(test)


def test_ties_at_the_cut_off_go_by_file_order_the_same_every_time():
    times = np.array(["2024-01-01"] * 4 + ["2024-01-02"] * 6, dtype="datetime64[ns]")
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1])
    train, test, cutoff = time_split(times, y, 0.3)
    assert test.tolist() == [7, 8, 9]  # the last rows of the newest day
    assert train.tolist() == [0, 1, 2, 3, 4, 5, 6] and cutoff == np.datetime64("2024-01-02")
    again = time_split(times[::-1].copy(), y[::-1].copy(), 0.3)
    assert again[1].tolist() == [3, 4, 5]  # the newest day is first now: its last rows by file order


def test_a_part_with_one_outcome_is_refused():
    times = np.arange(10).astype("datetime64[D]")
    with pytest.raises(ValueError, match="test part of the time split.*0 converted"):
        time_split(times, np.array([1, 0, 1, 0, 1, 0, 1, 0, 0, 0]), 0.3)


# -- hostile --time-column ---------------------------------------------------------------------------------------
def test_a_column_that_is_not_there_lists_the_date_columns():
    leads = dated()
    leads.insert(0, "Closed On", leads["Created On"])
    with pytest.raises(LeadDataError, match=r"'Created' is not a column.*date columns are: 'Closed On', 'Created On'"):
        load_leads(leads, time_column="Created")


def test_a_column_that_is_not_there_on_a_table_without_dates_says_so():
    with pytest.raises(LeadDataError, match="has no date column.*--split stratified"):
        load_leads(demo_leads(n=100, seed=1), time_column="Created On")


@pytest.mark.parametrize("column, kind", [("TotalVisits", "numeric"), ("Lead Origin", "categorical")])
def test_a_column_that_is_not_a_date_is_refused_naming_its_kind(column, kind):
    with pytest.raises(LeadDataError, match=rf"{column!r} is not a date column \(it is read as {kind}\).*'Created On'"):
        load_leads(dated(), time_column=column)


def test_all_dates_equal_is_refused():
    leads = dated()
    leads["Created On"] = "2024-02-01"
    with pytest.raises(LeadDataError, match="same date in every row"):
        load_leads(leads, time_column="Created On")


def test_dates_in_the_future_are_refused_with_the_count():
    leads = dated()
    leads.loc[:2, "Created On"] = "2999-01-01"
    with pytest.raises(LeadDataError, match=r"3 rows are dated in the future \(the latest 2999-01-01\).*day"):
        load_leads(leads, time_column="Created On")


def test_missing_and_unparseable_dates_are_counted_and_named():
    leads = dated()
    leads.loc[[5, 6], "Created On"] = ""
    leads.loc[7, "Created On"] = "2024-02-30"  # the form of a date, not a day of the calendar
    with pytest.raises(LeadDataError, match=r"'Created On': 3 of 200 rows have no date or one that does not read"):
        load_leads(leads, time_column="Created On")


def test_dates_as_text_in_several_formats_split_like_iso():
    iso = load_leads(dated(), time_column="Created On")
    mixed = dated()
    mixed.loc[::3, "Created On"] = pd.to_datetime(mixed.loc[::3, "Created On"]).dt.strftime("%d/%m/%Y")
    mixed.loc[1::3, "Created On"] = pd.to_datetime(mixed.loc[1::3, "Created On"]).dt.strftime("%d %B %Y")
    assert mixed["Created On"].nunique() > iso.dates["Created On"].nunique()
    np.testing.assert_array_equal(load_leads(mixed, time_column="created on").times, iso.times)


def test_a_one_row_table_is_refused():
    with pytest.raises(LeadDataError, match="single class"):
        load_leads(dated().iloc[:1], time_column="Created On")
    with pytest.raises(ValueError, match="at least 4 rows"):
        time_split(np.arange(1).astype("datetime64[D]"), np.array([1]), 0.3)


def test_the_train_request_checks_the_split_settings():
    with pytest.raises(ValueError, match="needs its date column: --time-column"):
        TrainSpec(input_kind="leads", split="time")
    with pytest.raises(ValueError, match="used only by the time split: add --split time"):
        TrainSpec(input_kind="leads", time_column="Created On")
    with pytest.raises(ValueError, match="split must be one of stratified, time"):
        TrainSpec(input_kind="leads", split="random")
    with pytest.raises(ValueError, match="for lead tables"):
        TrainSpec(input_kind="transcripts", split="time", time_column="date")
    spec = TrainSpec.from_dict({"input_kind": "leads", "split": "time", "time_column": "Created On"})
    assert TrainSpec.from_dict(spec.to_dict()) == spec


def test_the_cli_refuses_a_missing_time_column_by_name(tmp_path, monkeypatch, capsys):
    from engine.cli import main

    monkeypatch.setenv("CLAB_WORKSPACE", str(tmp_path / "workspace"))
    data = tmp_path / "weekly.csv"
    demo_leads(n=200, seed=2, weeks=4).to_csv(data, index=False)
    assert main(["train", "leads", "--data", str(data), "--split", "time", "--time-column", "Signup"]) != 0
    said = capsys.readouterr().err
    assert "'Signup' is not a column" in said and "'Created On'" in said
    assert not (tmp_path / "workspace" / "runs").exists() or not list((tmp_path / "workspace" / "runs").iterdir())


# -- the demo's weekly cohorts -----------------------------------------------------------------------------------
def test_the_weekly_demo_is_deterministic_and_the_undated_one_unchanged():
    a, b = demo_leads(n=500, seed=4, weeks=5), demo_leads(n=500, seed=4, weeks=5)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(demo_leads(n=500, seed=5, weeks=5))
    assert list(a.columns[:3]) == ["Prospect ID", "Lead Number", "Created On"]
    created = pd.to_datetime(a["Created On"])
    week = (created - pd.Timestamp("2024-01-01")).dt.days // 7
    assert week.tolist() == sorted(week) and week.value_counts().tolist() == [100] * 5
    stored = pd.read_csv(REPO_ROOT / "data" / "demo_leads_synthetic.csv")
    assert list(demo_leads(2000, 0).columns) == list(stored.columns)  # no date without weeks


def test_weekly_conversion_and_mix_drift_as_documented():
    leads = demo_leads(n=40_000, seed=0, weeks=20)
    week = (pd.to_datetime(leads["Created On"]) - pd.Timestamp("2024-01-01")).dt.days // 7
    rate = leads.groupby(week)["Converted"].mean()
    first, last = leads[week < 4]["Converted"].mean(), leads[week >= 16]["Converted"].mean()
    assert first == pytest.approx(0.376, abs=0.005) and last == pytest.approx(0.203, abs=0.005)  # the docstring's
    assert np.polyfit(rate.index, rate.to_numpy(), 1)[0] < -0.007  # falling about a point a week
    api = leads.groupby(week)["Lead Origin"].apply(lambda s: (s == "API").mean())
    assert api.iloc[:4].mean() == pytest.approx(0.40, abs=0.02) and api.iloc[-4:].mean() == pytest.approx(
        0.54, abs=0.02
    )
