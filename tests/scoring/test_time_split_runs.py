"""A run trained with the time split: its test rows are the newest 30 %, the fit saw only older rows, it scores
and explains as any other run, and the Metric board shows it apart from runs of the random split."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from dashboard_support import run_page, texts
from support import SMALL_STACK

from engine import pipeline
from engine.data.demo import demo_leads
from engine.runs import RunStore
from engine.scoring import score_frame


@pytest.fixture(scope="module")
def weekly_runs(tmp_path_factory):
    """(time-split run, stratified run, leads): small stacks on 8 drifting weekly cohorts of 60 leads."""
    root = tmp_path_factory.mktemp("time_split") / "workspace"
    store = RunStore(root / "runs")
    leads = demo_leads(n=480, seed=8, weeks=8)
    by_time = pipeline.train_leads(
        leads, params=SMALL_STACK, dataset_name="weekly", store=store, time_column="Created On"
    )
    random = pipeline.train_leads(leads, params=SMALL_STACK, dataset_name="weekly", store=store)
    return by_time, random, leads, root


def test_the_test_rows_are_the_newest_30_percent_and_the_fit_saw_only_older(weekly_runs):
    run, _, leads, _ = weekly_runs
    split = run.settings.split
    created = pd.to_datetime(leads["Created On"])
    n_test = math.ceil(0.3 * len(leads))
    assert (split.method, split.column, split.n_test) == ("time", "Created On", n_test)
    assert split.n_train + split.calibration_rows == 480 - n_test  # the fit's rows and the calibration slice
    tested = run.predictions()["row_id"].to_numpy()
    assert not set(run.calibration()["row_id"].astype(int)) & set(tested)  # the slice is older training rows
    assert len(tested) == n_test
    newest = np.lexsort((np.arange(len(leads)), created.to_numpy()))[-n_test:]
    assert sorted(tested) == sorted(newest)
    trained = np.setdiff1d(np.arange(len(leads)), tested)
    assert created.iloc[trained].max() <= pd.Timestamp(split.cutoff) == created.iloc[tested].min()
    assert "Created On" not in run.settings.columns and "date" in run.settings.dropped["Created On"]
    model = run.load_approach()
    assert len(model.train_proba_) == split.n_train  # the stack's out-of-fold rows: the training part only


def test_a_time_split_run_scores_and_explains_as_any_other(weekly_runs):
    run, _, _, _ = weekly_runs
    later = demo_leads(n=80, seed=9, weeks=2, start="2024-03-04")
    scored = score_frame(run, later, explain=5)
    assert len(scored.table) == 80 and scored.metrics is not None  # the file has its outcomes: metrics too
    assert scored.table["probability"].between(0, 1).all() and scored.table["reasons_for"].iloc[:5].str.len().min() > 0
    assert "Created On" not in str(scored.report)  # a date column is known to the run, not an unknown column
    explained = run.explanations()
    assert explained is not None and not explained.empty


def test_the_board_shows_the_split_and_never_ranks_across_splits(weekly_runs, monkeypatch):
    by_time, random, _, root = weekly_runs
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    at = run_page("board")
    choice = at.selectbox(key="board_group_select")
    labels = list(choice.options)  # as the page writes them
    assert len(labels) == 2 and sorted(labels) == sorted(
        ["weekly · time split by Created On · 480 leads · 1 run", "weekly · random split · 480 leads · 1 run"]
    )
    for index, label in enumerate(labels):
        at.selectbox(key="board_group_select").select_index(index).run()
        assert not at.exception
        (runs,) = [m.value for m in at.multiselect if m.label == "Runs"]  # every run of the choice is shown
        if "time split" in label:
            assert runs == [by_time.id]
            assert "Split by time: tested on the newest leads by Created On" in texts(at.caption)
        else:
            assert runs == [random.id]
            assert "Split by time" not in texts(at.caption)
        ranking = at.dataframe[0].value
        assert len(ranking) == 2  # the one run and the no-model baseline: nothing of the other split
