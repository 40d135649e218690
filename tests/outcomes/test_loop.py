"""The whole loop on the weekly demo, through the command line: train on the early weeks with the time split, make it
live, score four later weekly files, upload their outcomes, see realized performance fall and the alert fire, train a
challenger on recent weeks, score the next weeks with it beside the live run, compare on realized outcomes
(engine/challenger.py, checked against scikit-learn), make it live, roll back."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from support import SMALL_STACK, cli_params

from engine.cli import main
from engine.data.demo import demo_leads
from engine.live import LiveStore
from engine.scored_lists import ScoredStore

WEEKS, PER_WEEK, TOP_N = 16, 200, 40


def _week_files(tmp_path):
    leads = demo_leads(n=WEEKS * PER_WEEK, seed=3, weeks=WEEKS)
    week = np.arange(len(leads)) // PER_WEEK
    return leads, week


def _train(path, capsys) -> str:
    argv = ["train", "leads", "--data", str(path), "--split", "time", "--time-column", "Created On", "--quiet"]
    assert main([*argv, *cli_params(SMALL_STACK)]) == 0
    return re.search(r"^RUN_ID=(\S+)$", capsys.readouterr().out, re.M).group(1)


def _score(path, tmp_path, capsys, *shadows) -> None:
    argv = ["score", "--data", str(path), "--out", str(tmp_path / f"ranked_{path.stem}.csv")]
    assert main(argv + [flag for s in shadows for flag in ("--shadow", s)]) == 0
    capsys.readouterr()


def _outcomes(leads: pd.DataFrame, path) -> None:
    pd.DataFrame(
        {"Prospect ID": leads["Prospect ID"], "Outcome": np.where(leads["Converted"] == 1, "won", "lost")}
    ).to_csv(path, index=False)


def test_the_whole_loop_on_the_weekly_demo(workspace, tmp_path, capsys):
    leads, week = _week_files(tmp_path)
    files = {}
    for w in range(WEEKS):
        files[w] = tmp_path / f"week_{w:02d}.csv"
        leads[week == w].drop(columns=["Converted"]).to_csv(files[w], index=False)

    # 1. train on the early weeks, split by time, and make it live
    early = tmp_path / "early.csv"
    leads[week < 4].to_csv(early, index=False)
    champion = _train(early, capsys)
    assert main(["deploy", champion, "--note", "first weeks"]) == 0
    capsys.readouterr()

    # 2. score four later weekly files with the live run; their outcomes come back
    for w in range(8, 12):
        _score(files[w], tmp_path, capsys)
    _outcomes(leads[(week >= 8) & (week < 12)], tmp_path / "won_lost_1.csv")
    assert main(["outcomes", "--data", str(tmp_path / "won_lost_1.csv"), "--json", str(tmp_path / "r1.json")]) == 0
    err = capsys.readouterr().err
    first = json.loads((tmp_path / "r1.json").read_text())
    # realized performance fell below what the run promised on its (early) test weeks, and the alert fired
    assert first["matched"] == 4 * PER_WEEK and len(first["lists"]) == 4
    assert first["roc_auc"] < first["promised"]["roc_auc"]
    assert first["conversion_rate"] < first["mean_predicted"]  # fewer convert than the early weeks taught it
    assert first["alerts"] and "ALERT:" in err
    # four weeks scored on one day: realized performance by the leads' own week (their creation date), one each
    created = pd.to_datetime(leads.loc[(week >= 8) & (week < 12), "Created On"]).dt.isocalendar()
    expected = sorted({f"{y}-W{w:02d}" for y, w in zip(created["year"], created["week"])})
    assert [w["week"] for w in first["weeks"]] == expected and len(expected) >= 4
    assert sum(w["matched"] for w in first["weeks"]) == 4 * PER_WEEK
    assert first["challengers"]["live_run_id"] == champion and first["challengers"]["runs"] == []

    # 3. a challenger trained on the recent weeks whose outcomes came back; it scores the next weeks in the shadow
    recent = tmp_path / "recent.csv"
    leads[(week >= 8) & (week < 12)].to_csv(recent, index=False)
    challenger = _train(recent, capsys)
    assert LiveStore(workspace).live("leads")["run_id"] == champion  # training never changes the live run
    for w in range(12, WEEKS):
        _score(files[w], tmp_path, capsys, challenger)
    later = leads[week >= 12]
    _outcomes(later, tmp_path / "won_lost_2.csv")
    argv = ["outcomes", "--data", str(tmp_path / "won_lost_2.csv"), "--top", str(TOP_N)]
    assert main([*argv, "--json", str(tmp_path / "r2.json")]) == 0
    out = capsys.readouterr().out
    block = json.loads((tmp_path / "r2.json").read_text())["challengers"]
    (entry,) = block["runs"]
    assert (entry["run_id"], entry["live_run_id"], entry["top_n"]) == (challenger, champion, TOP_N)

    # 4. the comparison, computed independently from the stored lists (the live run's list, the shadow's scores)
    lists = [m for m in ScoredStore().list() if m.get("shadow_runs") == [challenger]]
    assert len(lists) == WEEKS - 12
    store, y_all, a_all, b_all, top_a, top_b = ScoredStore(), [], [], [], 0, 0
    for meta in lists:
        ranked = pd.read_csv(store.path(meta["sha256"]))
        shadow = store.shadow_scores(meta)
        joined = ranked.assign(challenger=shadow[challenger].to_numpy()).merge(
            later[["Prospect ID", "Converted"]], on="Prospect ID"
        )
        y_all.append(joined["Converted"]), a_all.append(joined["probability"]), b_all.append(joined["challenger"])
        top_a += joined.nlargest(TOP_N, "probability", keep="first")["Converted"].sum()
        top_b += joined.sort_values("challenger", ascending=False, kind="stable").head(TOP_N)["Converted"].sum()
    y, a, b = pd.concat(y_all), pd.concat(a_all), pd.concat(b_all)
    assert entry["leads"] == len(y) == len(later) and entry["converted"] == y.sum()
    assert entry["roc_auc_live"] == pytest.approx(roc_auc_score(y, a), abs=1e-9)
    assert entry["roc_auc_challenger"] == pytest.approx(roc_auc_score(y, b), abs=1e-9)
    assert (entry["top_n_converted_live"], entry["top_n_converted_challenger"]) == (top_a, top_b)
    low, high = entry["roc_auc_difference_ci"]
    assert low <= entry["roc_auc_difference"] <= high
    tlow, thigh = entry["top_n_difference_ci"]
    clearly_better = (low > 0 or tlow > 0) and not (high < 0 or thigh < 0)
    assert entry["recommendation"] == ("make live" if clearly_better else "keep the live run")
    assert entry["words"][-1] in out
    assert entry["words"][-1].startswith(f"Make run {challenger} live" if clearly_better else "Keep the live run")

    # 5. the team makes it live, then rolls back
    # the challenger was trained on another file (another dataset family): it replaces the champion of early.csv
    assert main(["deploy", challenger, "--family", "early.csv", "--note", "challenger on recent weeks"]) == 0
    assert LiveStore(workspace).live("leads")["run_id"] == challenger
    assert main(["deploy", "--rollback", "--note", "back"]) == 0
    history = LiveStore(workspace).history()
    assert [(e["action"], e["run_id"]) for e in history] == [
        ("deploy", champion),
        ("deploy", challenger),
        ("rollback", champion),
    ]
