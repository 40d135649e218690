"""The scoring service over a real stored stack: ranking, tiers, reasons, the validation report, outcomes."""

import numpy as np
import pandas as pd
import pytest
from support import store_with

from engine import pipeline
from engine.data.demo import demo_leads
from engine.runs import RunStore
from engine.scoring import (
    MIN_REASON_POINTS,
    SCORE_COLUMNS,
    ScoringError,
    reason_text,
    run_scale,
    save_training_profile,
    score_frame,
    top_factors,
)


@pytest.fixture(scope="module")
def stack_run(small_stack_run, tmp_path_factory):
    """(run, leads): a copy of the session's small stack (tests here store a training profile in it)."""
    run, leads = small_stack_run
    return store_with(run, tmp_path_factory.mktemp("scoring") / "runs").get(run.id), leads


def test_scored_table_keeps_the_input_columns_then_ranks_scores_and_tiers(stack_run):
    run, _ = stack_run
    new = demo_leads(n=120, seed=9).drop(columns=["Converted"])
    scored = score_frame(run, new, explain=10)
    table = scored.table
    assert list(table.columns) == list(new.columns) + SCORE_COLUMNS  # identifiers (Prospect ID) kept first
    assert table["probability"].is_monotonic_decreasing and table["rank"].tolist() == list(range(1, 121))
    expected = run_scale(run).score(table["probability"])  # the run's scale (the table's probability is rounded)
    assert np.abs(table["score"].to_numpy() - expected).max() <= 1 and table["score"].is_monotonic_decreasing
    assert set(table["tier"]) <= set("ABCD")
    # the same lead (found by its CRM id) scores what the model says for it alone
    one = new[new["Prospect ID"] == table.loc[0, "Prospect ID"]]
    alone = score_frame(run, one, explain=0).table.loc[0, "probability"]
    assert alone == pytest.approx(table.loc[0, "probability"], abs=1e-6)
    # reasons only for the top rows asked for, in plain words with points
    assert table["has_reasons"].tolist() == [True] * 10 + [False] * 110
    assert scored.explained_rows == 10 and (table.loc[10:, "reasons_for"] == "").all()
    assert all("points)" in text for text in table.loc[:9, "reasons_for"] + table.loc[:9, "reasons_against"] if text)
    assert scored.metrics is None  # no outcomes in the file


def test_scores_equal_the_stored_test_predictions(stack_run):
    run, leads = stack_run
    preds = run.predictions().head(8)
    rows = leads.iloc[preds["row_id"]].drop(columns=["Converted"]).astype(object)
    scored = score_frame(run, rows, explain=0, rank=False)
    np.testing.assert_allclose(scored.table["probability"], preds["proba"], atol=1e-6)


def test_validation_report_counts_missing_ignored_unparsed_and_unseen(stack_run):
    run, leads = stack_run
    features = leads.drop(columns=["Converted"])
    save_training_profile(run, pipeline_features(run, features), run.settings.kinds)
    new = demo_leads(n=50, seed=3).drop(columns=["Converted", "Lead Origin"])
    new["Favourite colour"] = "blue"
    new["TotalVisits"] = new["TotalVisits"].astype(object)
    new.loc[:4, "TotalVisits"] = "lots"
    new.loc[:2, "Lead Source"] = "Carrier pigeon"
    report = score_frame(run, new, explain=0).report
    assert report.missing_columns == ["Lead Origin"]
    assert report.ignored_columns == ["Favourite colour"]  # Prospect ID: an identifier training knew
    assert report.unparsed == {"TotalVisits": 5}
    assert report.unseen_values["Lead Source"] == {"Carrier pigeon": 3}
    words = " ".join(report.messages())
    assert "Lead Origin" in words and "Carrier pigeon" in words and "not numbers" in words


def pipeline_features(run, features):
    from engine.data.leads import prepare_features

    return prepare_features(features, run.settings.columns, run.settings.kinds)


def test_a_file_with_outcomes_also_reports_how_the_run_did(stack_run):
    run, _ = stack_run
    last_month = demo_leads(n=200, seed=11)
    scored = score_frame(run, last_month, explain=0)
    assert scored.outcome_rows == 200
    auc = scored.metrics["roc_auc"]
    assert 0.5 < auc["value"] <= 1 and auc["low"] <= auc["value"] <= auc["high"]
    assert "Converted" not in scored.report.ignored_columns


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"colour": ["red"], "size": [3]}), "None of the columns"),
        (pd.DataFrame(columns=["Lead Origin", "TotalVisits"]), "no rows"),
    ],
)
def test_rows_the_run_cannot_score_are_refused(stack_run, frame, message):
    run, _ = stack_run
    with pytest.raises(ScoringError, match=message):
        score_frame(run, frame)


def test_input_columns_named_like_ours_are_kept_and_exports_are_neutralised(stack_run, tmp_path):
    run, _ = stack_run
    new = demo_leads(n=20, seed=4).drop(columns=["Converted"])
    new["score"] = 7
    new["Notes"] = '=HYPERLINK("http://example.invalid","click")'
    scored = score_frame(run, new, explain=0)
    assert (scored.table["score"] == 7).all() and "score (model)" in scored.table.columns
    scored.to_csv(tmp_path / "out.csv")
    back = pd.read_csv(tmp_path / "out.csv")
    assert back["Notes"].str.startswith("'=").all()


def test_scored_tiers_and_scores_follow_the_runs_training_leads(stack_run):
    run, leads = stack_run
    assert len(run.metrics["train_score_percentiles"]) == 99
    scored = score_frame(run, leads.drop(columns=["Converted"]), explain=0).table
    assert scored["score"].between(1, 99).all() and scored["score"].is_monotonic_decreasing  # ranked by probability
    rank = scored["tier"].map({"A": 3, "B": 2, "C": 1, "D": 0})
    assert rank.is_monotonic_decreasing and set(scored["tier"]) == {"A", "B", "C", "D"}


def test_reasons_name_the_value_even_when_it_is_inside_the_fields_name():
    assert reason_text("Do Not Email", "No", 0.005) == "Do Not Email = No (+0.5 points)"
    assert reason_text("Do Not Call", "Yes", -0.03) == "Do Not Call = Yes (-3 points)"
    assert reason_text("Lead Source", "Source", 0.02) == "Lead Source = Source (+2 points)"
    assert reason_text("Country", "nan", 0.02) == "Country is blank (+2 points)"
    assert reason_text("Country", "", -0.02) == "Country is blank (-2 points)"
    long_phrase = "the customer said the budget for next quarter is approved and they want to start in january " * 2
    shown = " ".join(long_phrase.split())[:79] + "…"
    assert reason_text(shown, long_phrase, 0.1) == f"{shown} (+10 points)"  # a transcript's phrase, once


def test_one_point_reads_singular():
    """Seen on the browser walk of a bank export: "call_status = completed (+1 points)"."""
    from engine.scoring import points

    assert [points(c) for c in (0.01, -0.0099, 0.0104, -0.02, 0.009)] == [
        "+1 point",
        "-1 point",
        "+1 point",
        "-2 points",
        "+0.9 points",
    ]
    assert reason_text("job", "admin.", 0.012) == "job = admin. (+1 point)"


def test_reasons_read_as_points_and_pick_both_directions():
    assert (
        reason_text("Total Time Spent on Website", "1250", 0.2143) == "Total Time Spent on Website = 1,250 (+21 points)"
    )
    assert (
        reason_text(
            "What matters most is Better Career Prospects.", "What matters most is Better Career Prospects.", -0.05
        )
        == "What matters most is Better Career Prospects. (-5 points)"
    )
    table = pd.DataFrame(
        {"row": [0] * 5, "feature": list("abcde"), "value": ["1"] * 5, "contribution": [0.3, -0.2, 0.1, -0.4, 0.0]}
    )
    factors = top_factors(table, n=2)[0]
    assert [f["feature"] for f in factors["for"]] == ["a", "c"]
    assert [f["feature"] for f in factors["against"]] == ["d", "b"]


def test_scored_lists_are_stored_by_content_and_never_overwritten(stack_run, tmp_path):
    import threading

    from engine.scored_lists import ScoredStore

    run, _ = stack_run
    store = ScoredStore(tmp_path / "scored")
    week1 = score_frame(run, demo_leads(n=30, seed=21).drop(columns=["Converted"]), explain=0)
    week2 = score_frame(run, demo_leads(n=30, seed=22).drop(columns=["Converted"]), explain=0)
    errors = []

    def save(scored):
        try:
            store.add(scored, "week.csv")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(s,)) for s in [week1, week2] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    listed = store.list()
    assert len(listed) == 2 and {m["run_id"] for m in listed} == {run.id}
    assert all(m["rows"] == 30 and m["source"] == "week.csv" for m in listed)
    back = pd.read_csv(store.path(listed[0]["sha256"]))
    assert list(back.columns[-len(SCORE_COLUMNS) :]) == SCORE_COLUMNS
    for bad in ["../../etc", "/tmp", "x" * 64]:
        with pytest.raises(KeyError):
            store.path(bad)


def test_dashboard_api_and_cli_give_the_same_numbers_for_the_same_rows(stack_run, tmp_path, monkeypatch, capsys):
    """The Score page calls score_frame; the API and the CLI go through engine.scoring too."""
    from fastapi.testclient import TestClient

    from engine.api import create_app
    from engine.cli import main

    run, _ = stack_run
    monkeypatch.setenv("CLAB_WORKSPACE", str(run.path.parent.parent))
    new = demo_leads(n=12, seed=41).drop(columns=["Converted"])
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    page = score_frame(run, pd.read_csv(path), explain="all").table.set_index("Prospect ID")

    assert (
        main(["score", "--run", run.id, "--data", str(path), "--out", str(tmp_path / "cli.csv"), "--explain", "all"])
        == 0
    )
    cli = pd.read_csv(tmp_path / "cli.csv", keep_default_na=False).set_index("Prospect ID")

    rows = pd.read_csv(path).astype(object).where(pd.read_csv(path).notna(), None).to_dict(orient="records")
    client = TestClient(create_app(RunStore(run.path.parent)))
    body = client.post("/predict/lead", json={"leads": rows, "run_id": run.id, "explain": True}).json()
    single = client.post("/predict/lead", json={"leads": rows[0], "run_id": run.id}).json()["predictions"][0]
    api = pd.DataFrame(body["predictions"], index=new["Prospect ID"])

    ids = new["Prospect ID"]
    np.testing.assert_allclose(cli.loc[ids, "probability"], page.loc[ids, "probability"], atol=1e-6)
    np.testing.assert_allclose(api.loc[ids, "probability"], page.loc[ids, "probability"], atol=1e-6)
    assert single["probability"] == pytest.approx(page.loc[ids.iloc[0], "probability"], abs=1e-6)
    for frame in (cli, api):
        assert frame.loc[ids, "score"].tolist() == page.loc[ids, "score"].tolist()
        assert frame.loc[ids, "tier"].tolist() == page.loc[ids, "tier"].tolist()
    assert cli.loc[ids, "reasons_for"].tolist() == page.loc[ids, "reasons_for"].tolist()
    assert ["; ".join(r) for r in api.loc[ids, "reasons_for"]] == page.loc[ids, "reasons_for"].tolist()


def test_top_factors_equal_a_plain_groupby_on_random_tables():
    rng = np.random.default_rng(0)
    n_rows, n_feat = 40, 9
    table = pd.DataFrame(
        {
            "row": np.repeat(np.arange(n_rows), n_feat),
            "feature": [f"f{j}" for j in range(n_feat)] * n_rows,
            "value": [str(v) for v in rng.integers(0, 5, n_rows * n_feat)],
            "contribution": np.round(rng.normal(0, 0.1, n_rows * n_feat), 6),
        }
    )
    table.loc[::7, "contribution"] = 0.0  # zero effects belong to neither side
    table.loc[3::11, "contribution"] = 0.004  # under half a point of the score: no reason either
    got = top_factors(table, n=3)
    least = MIN_REASON_POINTS / 98
    for r, group in table.groupby("row"):
        ups = group[group["contribution"] >= least].sort_values("contribution", ascending=False).head(3)
        downs = group[group["contribution"] <= -least].sort_values("contribution").head(3)
        assert [f["feature"] for f in got[r]["for"]] == ups["feature"].tolist()
        assert [f["feature"] for f in got[r]["against"]] == downs["feature"].tolist()


def test_transcript_runs_score_through_the_same_service(tmp_path):
    """Every approach goes through score_frame: an embeddings run ranks new calls, explains them in one phrase
    each, and reports how it did when the calls carry labels (generic embeddings: the service is the point here;
    fine-tuning is tested in tests/approaches/test_embeddings.py)."""
    from engine.data.demo import demo_transcripts
    from engine.data.transcripts import write_jsonl
    from engine.scoring import read_rows

    store = RunStore(tmp_path / "runs")
    tiny = dict(fine_tune=False, seed=0)
    run = pipeline.train_transcripts(demo_transcripts(40, seed=7), params=tiny, store=store, dataset_name="calls")
    new = demo_transcripts(12, seed=8)
    path = write_jsonl(new, tmp_path / "calls.jsonl")
    scored = score_frame(run, read_rows(run, path), explain=2)
    table = scored.table
    assert len(table) == 12 and table["probability"].is_monotonic_decreasing
    assert "transcript" in table.columns and set(table["tier"]) <= set("ABCD")
    assert (
        table["has_reasons"].sum() == 2 and " = " not in table.loc[0, "reasons_for"] + table.loc[0, "reasons_against"]
    )
    assert scored.outcome_rows == 12 and scored.metrics is not None  # the demo calls carry labels


def test_a_file_without_an_id_column_gets_its_row_numbers(stack_run):
    from engine.scoring import ROW_COLUMN

    run, _ = stack_run
    new = demo_leads(n=30, seed=5).drop(columns=["Converted", "Prospect ID", "Lead Number"])
    table = score_frame(run, new, explain=0).table
    assert table.columns[0] == ROW_COLUMN
    rows = table[ROW_COLUMN].to_numpy() - 1  # back to the file's rows: the same leads, in ranked order
    assert sorted(rows.tolist()) == list(range(30))
    again = score_frame(run, new.iloc[rows].reset_index(drop=True), explain=0).table
    np.testing.assert_allclose(again["probability"], table["probability"])
    with_id = score_frame(run, demo_leads(n=30, seed=5).drop(columns=["Converted"]), explain=0).table
    assert ROW_COLUMN not in with_id.columns  # the CRM id matches it back


def test_reasons_with_progress_count_the_leads_and_equal_those_in_one_go(stack_run):
    from engine.scoring import add_reasons

    run, _ = stack_run
    raw = demo_leads(n=60, seed=38).drop(columns=["Converted"])
    listed = score_frame(run, raw, explain=0)
    model = run.load_approach()
    calls = []
    counted = add_reasons(run, raw, listed, model=model, explain=40, progress=lambda d, t: calls.append((d, t)))
    whole = add_reasons(run, raw, listed, model=model, explain=40)
    assert calls[-1] == (40, 40) and len(calls) > 1, calls  # explained in chunks, each one counted
    assert [d for d, _ in calls] == sorted({d for d, _ in calls}) and {t for _, t in calls} == {40}
    # the same reasons as in one go (contributions to the last bits of a float: the batches sum in another order)
    assert counted.explained_rows == whole.explained_rows == 40 and counted.factors.keys() == whole.factors.keys()
    for position, found in whole.factors.items():
        for side in ("for", "against"):
            assert [f["text"] for f in counted.factors[position][side]] == [f["text"] for f in found[side]]
            np.testing.assert_allclose(
                [f["contribution"] for f in counted.factors[position][side]],
                [f["contribution"] for f in found[side]],
                atol=1e-12,
            )
    pd.testing.assert_frame_equal(counted.table, whole.table)


class _Counting:
    """The run's own model, counting its ``predict_proba`` calls (everything else goes to the model)."""

    def __init__(self, model):
        self.model, self.predictions = model, 0

    def predict_proba(self, X):
        self.predictions += 1
        return self.model.predict_proba(X)

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_reasons_are_added_to_a_scored_list_without_scoring_it_again(small_stack_run):
    """The Score page lists a file at once and adds the reasons after: the probabilities are computed once, and
    the list with reasons is the one ``score_frame`` gives when asked for them at once."""
    from engine.data.demo import demo_leads
    from engine.scoring import add_reasons, score_frame

    run, _ = small_stack_run
    new = demo_leads(n=60, seed=41).drop(columns=["Converted"])
    model = _Counting(run.load_approach())
    listed = score_frame(run, new, model=model, explain=0)
    assert model.predictions == 1 and not listed.table["has_reasons"].any()
    explained = add_reasons(run, new, listed, model=model, explain=15)
    assert model.predictions == 1  # the reasons did not score the file again
    at_once = score_frame(run, new, model=run.load_approach(), explain=15)
    assert explained.explained_rows == 15 and explained.table["has_reasons"].sum() == 15
    assert explained.table.equals(at_once.table) and explained.factors == at_once.factors
    assert listed.table["has_reasons"].sum() == 0  # the first list is not changed in place
