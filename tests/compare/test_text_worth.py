"""Runs with ``use`` table | text | both (engine.data.uses): what each trains on, what its spec records, how the
board pairs them (engine.text_worth), the bench's three variants, and the demo leads with text behind them."""

import json

import numpy as np
import pandas as pd
import pytest
from support import SMALL_STACK

from engine import pipeline
from engine.cli import main
from engine.data.demo_lead_text import NOTES_COLUMN, demo_joined, demo_leads_with_text, write_text_demo
from engine.data.leads import load_leads
from engine.data.uses import USE_NAMES, apply_use
from engine.jobspec import TrainSpec
from engine.runs import RunStore
from engine.runspec import SpecProblem, validate_spec
from engine.text_worth import both_vs_best_part, use_groups, use_rows


@pytest.fixture(scope="module")
def joined():
    return demo_joined(400, seed=0)


def test_the_demo_with_text_is_deterministic_synthetic_and_joins_every_call():
    leads, calls = demo_leads_with_text(300, seed=3)
    again, calls_again = demo_leads_with_text(300, seed=3)
    pd.testing.assert_frame_equal(leads, again)
    assert calls == calls_again
    assert leads["Prospect ID"].str.startswith("DEMO-").all()
    assert all(c["metadata"]["source"] == "synthetic demo" for c in calls)
    assert "Tags" not in leads.columns  # the post-contact columns are left out: the calls stand in for them
    has_note = leads[NOTES_COLUMN].notna().mean()
    assert 0.6 < has_note < 0.95 and 0.25 < leads["Converted"].mean() < 0.5
    frame = demo_joined(300, seed=3)
    assert frame["call"].notna().sum() == len({c["metadata"]["lead_id"] for c in calls})


def test_the_demo_text_carries_signal_of_its_own_and_with_the_fields():
    """The generator's promise, checked with plain models on the demo: each part predicts, both predict better."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    frame = demo_joined(3000, seed=0)
    y = frame["Converted"].to_numpy()
    rng = np.random.default_rng(0)
    test = rng.random(len(y)) < 0.3
    words = TfidfVectorizer(min_df=2).fit_transform(frame[NOTES_COLUMN].fillna("") + " " + frame["call"].fillna(""))
    fields = pd.get_dummies(frame[["Lead Origin", "Lead Source", "Last Activity"]].astype(str)).to_numpy(float)
    fields = np.c_[fields, frame["Total Time Spent on Website"].to_numpy(float) / 1000]
    from scipy.sparse import csr_matrix, hstack

    both = hstack([csr_matrix(fields), words]).tocsr()
    aucs = {}
    for name, X in (("table", csr_matrix(fields)), ("text", words), ("both", both)):
        model = LogisticRegression(max_iter=2000).fit(X[~test], y[~test])
        aucs[name] = roc_auc_score(y[test], model.predict_proba(X[test])[:, 1])
    assert aucs["text"] > 0.6 and aucs["table"] > 0.65
    assert aucs["both"] > max(aucs["table"], aucs["text"]) + 0.03, aucs


def test_use_keeps_the_fields_the_text_or_both_and_says_what_it_left_out(joined):
    table = load_leads(joined)
    text = {c for c, k in table.kinds.items() if k == "text"}
    assert text == {NOTES_COLUMN, "call"}
    only_text = apply_use(table, "text")
    assert set(only_text.X.columns) == text and set(only_text.kinds) == text
    assert "use text" in only_text.dropped["Lead Origin"]
    only_table = apply_use(table, "table")
    assert not text & set(only_table.X.columns) and "use table" in only_table.dropped["call"]
    assert apply_use(table, "both") is table
    plain = load_leads(joined.drop(columns=[NOTES_COLUMN, "call"]))
    with pytest.raises(ValueError, match="--use text needs a text column.*Fix: join"):
        apply_use(plain, "text")
    with pytest.raises(ValueError, match="use must be one of table, text, both"):
        apply_use(table, "words")


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"input_kind": "leads", "use": "all"}, "use must be one of"),
        ({"input_kind": "leads", "use": ["table"]}, "use must be one of"),
        ({"input_kind": "transcripts", "use": "table"}, "setting of lead tables"),
    ],
)
def test_a_bad_use_is_refused_before_a_job_is_queued(payload, message):
    with pytest.raises(ValueError, match=message):
        TrainSpec.from_dict(payload)


def test_a_stored_spec_with_a_wrong_use_is_named():
    good = {"input_kind": "leads", "approach": "stacking", "columns": ["a"]}
    assert validate_spec(good).use == "both"  # runs from before the setting read as both
    with pytest.raises(SpecProblem, match="wrong 'use'"):
        validate_spec({**good, "use": "words"})


def test_cli_refuses_a_bad_use_with_one_line(capsys):
    with pytest.raises(SystemExit):
        main(["train", "leads", "--use", "words"])
    assert "invalid choice: 'words'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "leads", "--use", "table,words"])
    assert "use must be one of table, text, both" in capsys.readouterr().err


def test_runs_of_each_use_are_recorded_and_the_board_pairs_them(joined, workspace, capsys):
    store = RunStore()
    runs = {
        use: pipeline.train_leads(joined, params=SMALL_STACK, store=store, dataset_name="demo text", use=use)
        for use in ("table", "text", "both")
    }
    for use, run in runs.items():
        settings = store.get(run.id).settings
        assert settings.use == use
    assert set(runs["text"].settings.columns) == {NOTES_COLUMN, "call"}
    assert "call" not in runs["table"].settings.columns and "call" in runs["table"].settings.known_columns
    assert len({r.settings.split_key for r in runs.values()}) == 1  # one board group: the same test rows
    listed = store.list_runs()
    [group] = use_groups(listed)
    assert {u: r.id for u, r in group["runs"].items()} == {u: r.id for u, r in runs.items()}
    [row] = use_rows(listed, n_boot=200)
    assert row["Approach"] == "Stacked ensemble"  # the approach's name for people, not its registry id
    for use, column in (("table", "Table only"), ("text", "Text only"), ("both", "Both")):
        auc = runs[use].metrics["metrics"]["roc_auc"]
        assert row[f"{column}: ROC-AUC"] == f"{auc['value']:.3f} [{auc['low']:.3f}, {auc['high']:.3f}]"
    assert not any(r.id in cell for r in runs.values() for cell in row.values())  # short cells: no run ids
    assert row["Both minus the better part"].count("[") == 1
    y = runs["both"].predictions()["y_true"].to_numpy()
    probas = {u: r.predictions()["proba"].to_numpy() for u, r in runs.items()}
    worth = both_vs_best_part(y, probas, n_boot=200)
    assert worth["low"] <= worth["value"] <= worth["high"]
    assert f"{worth['value']:+.3f}" in row["Both minus the better part"]
    from dashboard.components.state import run_auto_label
    from engine.cli import format_run

    for use, name in (("table", "table only"), ("text", "text only"), ("both", "table + text")):
        assert f"Stacked ensemble · {name} · demo text · " in run_auto_label(runs[use])  # each use names itself
        assert f"on demo text, {name}, " in format_run(runs[use])
    assert main(["runs"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert all(f"demo text · {USE_NAMES[use]} " in listed[run.id] for use, run in runs.items())


def test_a_table_without_text_keeps_its_name(joined, workspace, capsys):
    """A run of a table without text columns (use both, the only choice the Train page gives it) is named as before
    there was a choice; use_name says nothing of it."""
    from dashboard.components.state import run_auto_label
    from engine.cli import format_run
    from engine.data.uses import use_name

    plain = joined.drop(columns=[NOTES_COLUMN, "call"])
    run = pipeline.train_leads(plain, params=SMALL_STACK, dataset_name="plain")
    assert run.settings.use == "both" and use_name(run.settings.use, run.settings.kinds) is None
    assert run_auto_label(run).startswith("Stacked ensemble · plain · ")
    assert f"(stacking on plain, {run.settings.rows} rows" in format_run(run)
    assert main(["runs"]) == 0
    listed = capsys.readouterr().out
    assert "plain  " in listed and "·" not in listed  # the dataset's name alone
    assert use_name("both", {"Notes": "text", "City": "categorical"}) == "table + text"
    assert use_name("table", {}) == "table only" and use_name("text", None) == "text only"


def test_runs_pair_only_when_nothing_but_use_differs():
    base = {"input_kind": "leads", "approach": "stacking", "columns": ["a"], "data_hash": "ab" * 8, "params": {"x": 1}}
    key = validate_spec({**base, "use": "table"}).use_key
    assert validate_spec(base).use_key == key  # use itself is not in the key
    for change in ({"params": {"x": 2}}, {"approach": "lora"}, {"data_hash": "cd" * 8}, {"excluded": ["b"]}):
        assert validate_spec({**base, **change}).use_key != key, change


def test_both_vs_best_part_is_positive_only_when_both_is_clearly_better():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    part = y + rng.normal(0, 1.5, len(y))
    better = y + rng.normal(0, 0.6, len(y))
    up = both_vs_best_part(y, {"table": part, "text": part * 0.5, "both": better}, n_boot=300)
    assert up["low"] > 0 and up["verdict"] == "better"
    same = both_vs_best_part(y, {"table": better, "both": better}, n_boot=300)
    assert same["value"] == 0 and same["verdict"] == "no clear difference"
    assert both_vs_best_part(y, {"table": part}) is None


def test_bench_leads_runs_the_three_variants_on_the_same_rows(tmp_path, capsys):
    data = tmp_path / "joined.csv"
    demo_joined(300, seed=1).to_csv(data, index=False)
    out = tmp_path / "bench.json"
    argv = ["bench", "leads", "--data", str(data), "--use", "table,text,both", "--json", str(out)]
    argv += [f"--param={k}={json.dumps(v)}" for k, v in SMALL_STACK.items()]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    entry = result["approaches"]["stacking"]
    assert list(entry["uses"]) == ["table", "text", "both"]
    assert set(entry["uses"]["text"]["columns"]) == {NOTES_COLUMN, "call"}
    assert entry["both_vs_best_part"]["both_minus"] in ("table", "text")
    assert result["text_columns"] == [NOTES_COLUMN, "call"] and result["synthetic"] is False
    assert "both - " in capsys.readouterr().out


def test_demo_text_writes_four_files_into_a_new_folder_only(tmp_path):
    files = write_text_demo(tmp_path / "demo", n=200)
    assert [f.name for f in files] == ["leads_with_notes.csv", "calls.jsonl", "leads_joined.csv", "README.txt"]
    assert "SYNTHETIC" in files[-1].read_text()
    with pytest.raises(ValueError, match="not an empty folder"):
        write_text_demo(tmp_path / "demo", n=200)
