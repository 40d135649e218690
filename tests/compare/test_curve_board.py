"""The Metric board's "Learning curves" tab: a curve of the dataset chosen is drawn with its crossings in words,
and a curve job is started from the tab (its sizes checked first)."""

from __future__ import annotations

import json
import shutil

import pytest
from dashboard_support import run_page, texts


@pytest.fixture
def own_workspace(stored_workspace, tmp_path, monkeypatch):
    root = tmp_path / "workspace"
    shutil.copytree(stored_workspace, root, ignore=shutil.ignore_patterns("*.lock"))
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    return root


def _open_tab():
    at = run_page("board")
    at.session_state["board_tab"] = "Learning curves"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _data_hash(root) -> str:
    from engine.runs import RunStore

    return RunStore(root / "runs").list_runs()[0].settings.data_hash


def _point(approach, size, auc, seed=0):
    return {"approach": approach, "size": size, "seed": seed, "roc_auc": auc, "roc_auc_ci": [auc - 0.01, auc + 0.01]}


def test_a_curve_of_the_file_is_drawn_with_its_crossing_in_words(own_workspace):
    data_hash = _data_hash(own_workspace)
    curve = {
        "kind": "learning_curve",
        "dataset": "demo",
        "data_hash": data_hash,
        "test_rows": 180,
        "points": [
            _point("lora", 100, 0.75),
            _point("stacking", 100, 0.70),
            _point("lora", 1000, 0.78),
            _point("stacking", 1000, 0.84),
        ],
    }
    (own_workspace / "curves").mkdir()
    (own_workspace / "curves" / f"curve_{data_hash[:16]}.json").write_text(json.dumps(curve))
    (own_workspace / "curves" / "curve_other.json").write_text(json.dumps({**curve, "data_hash": "0" * 64}))
    (own_workspace / "curves" / "curve_damaged.json").write_text("{not json")
    at = _open_tab()
    (chart,) = at.get("plotly_chart")
    figure = json.loads(chart.proto.spec)
    assert figure["layout"]["xaxis"]["type"] == "log"
    assert sorted(t["name"] for t in figure["data"] if t.get("mode") == "lines+markers") == [
        "the LLM (LoRA)",
        "the stack",
    ]
    crossing = 100 * 10 ** (0.05 / 0.11)  # the LLM leads by 0.05 at 100 rows, trails by 0.06 at 1,000: log scale
    assert f"ahead of the stack below about {float(f'{crossing:.2g}'):,.0f} training rows" in texts(at.markdown)
    assert not at.get(
        "selectbox",
    ) or "board_curve_file" not in [s.key for s in at.selectbox]  # one curve of this file


def test_a_curve_job_starts_from_the_tab_and_bad_sizes_are_refused(own_workspace):
    from engine.jobs import JobRunner

    at = _open_tab()
    assert "No learning curve for this file yet" in texts(at.info)
    at.multiselect(key="board_curve_approaches").set_value(["stacking"])
    at.text_input(key="board_curve_sizes").set_value("50, lots").run()
    at.button(key="board_curve_go").click().run()
    assert "cannot be used" in texts(at.error) and "50,100,300,all" in texts(at.error)
    runner = JobRunner(own_workspace)
    assert not [j for j in runner.list() if j.kind == "bench-curve"], "a refused size queues nothing"
    at.text_input(key="board_curve_sizes").set_value("50,all").run()
    at.button(key="board_curve_go").click().run()
    (job,) = [j for j in runner.list() if j.kind == "bench-curve"]
    try:
        out = own_workspace / "curves" / f"curve_{_data_hash(own_workspace)[:16]}.json"
        assert str(out) in job.argv and "stacking" in job.argv and "50,all" in job.argv
        assert not at.exception, [e.value for e in at.exception]
        assert f"Job {job.id}" in texts(at.markdown), "the tab shows the job while it runs"
    finally:
        runner.cancel(job.id)


def _time_split_only(root) -> str:
    """Every run of the workspace made a time-split run (the weekly loop: no random-split entry of the file)."""
    for spec_path in (root / "runs").glob("*/spec.json"):
        spec = json.loads(spec_path.read_text())
        n = spec["split"]["n_train"] + spec["split"]["n_test"] if spec.get("split") else None
        spec["split"] = {
            **(spec.get("split") or {"test_size": 0.3, "seed": 42}),
            "method": "time",
            "column": "Created On",
            "cutoff": "2024-01-20T00:00:00",
        }
        assert n is None or spec["split"]["n_train"] + spec["split"]["n_test"] == n
        spec_path.write_text(json.dumps(spec))
    return _data_hash(root)


def test_a_file_with_only_time_split_runs_still_draws_its_curves_said_to_be_on_another_split(own_workspace):
    """The board used to send a time-split entry to 'the random-split entry of this file above', which the weekly
    loop never has: a dead end (browser walk, 10_board_curves_tab.png). The curves of the file are drawn there, said to
    be on a random split, and the file is named as the board names it, not as the job's data.csv."""
    data_hash = _time_split_only(own_workspace)
    at = _open_tab()
    said = texts(at.caption)
    assert "not the time split of the runs above" in said and "choose the random-split entry" not in texts(at.info)
    assert "No learning curve for this file yet" in texts(at.info) and at.button(key="board_curve_go")
    curve = {
        "kind": "learning_curve",
        "dataset": "data.csv",  # what a job started from the tab records: the store's own file name
        "data_hash": data_hash,
        "test_rows": 180,
        "points": [_point("stacking", 50, 0.62), _point("stacking", 400, 0.81)],
    }
    (own_workspace / "curves").mkdir()
    (own_workspace / "curves" / f"curve_{data_hash[:16]}.json").write_text(json.dumps(curve))
    at = _open_tab()
    from engine.runs import RunStore

    name = RunStore(own_workspace / "runs").list_runs()[0].settings.dataset
    said = texts(at.caption)
    assert at.get("plotly_chart") and f"test rows (the same at every size) of {name};" in said
    assert "of data.csv" not in said
