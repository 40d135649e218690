"""Numbers read as missing (999 for "never") on every path that trains or scores: the CLI's --missing-value flag
(and its hostile forms), a dashboard job's spec, the API (single-lead fast path and batches) and the What-if
page's form, all agreeing with the one scoring service."""

import json

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from support import SMALL_STACK, cli_params

from engine.api import create_app
from engine.cli import main
from engine.data.demo import demo_leads
from engine.jobspec import TrainSpec, read_spec
from engine.runs import RunStore
from engine.scoring import score_frame

CODE = 999.0
FLAG = "TotalVisits was 999"


def _with_code(n: int, seed: int) -> pd.DataFrame:
    frame = demo_leads(n=n, seed=seed)
    rows = np.random.default_rng(seed).random(len(frame)) < 0.2
    frame.loc[rows, "TotalVisits"] = CODE
    return frame


@pytest.fixture(scope="module")
def coded_run(tmp_path_factory):
    """A real small stack trained by the CLI with ``--missing-value TotalVisits=999``."""
    import os

    root = tmp_path_factory.mktemp("coded")
    path = root / "leads.csv"
    _with_code(400, 5).to_csv(path, index=False)
    old = os.environ.get("CLAB_WORKSPACE")
    os.environ["CLAB_WORKSPACE"] = str(root / "workspace")
    try:
        args = ["train", "leads", "--data", str(path), "--quiet", "--missing-value", "TotalVisits=999"]
        assert main([*args, *cli_params(SMALL_STACK)]) == 0
        store = RunStore()
        run = store.list_runs()[0]
    finally:
        if old is None:
            os.environ.pop("CLAB_WORKSPACE")
        else:
            os.environ["CLAB_WORKSPACE"] = old
    return store, run


def test_the_cli_flag_trains_a_run_that_records_the_codes(coded_run):
    _, run = coded_run
    assert run.settings.missing_values == {"TotalVisits": [CODE]}
    assert FLAG in run.settings.columns


@pytest.mark.parametrize(
    "flag, problem",
    [
        ("TotalVisits", "not COLUMN=NUMBER"),
        ("=999", "not COLUMN=NUMBER"),
        ("TotalVisits=", "not COLUMN=NUMBER"),
        ("TotalVisits=abc", "not COLUMN=NUMBER"),
        ("TotalVisits=nan", "not COLUMN=NUMBER"),
        ("TotalVisits=inf", "not COLUMN=NUMBER"),
    ],
)
def test_a_malformed_flag_is_refused_before_anything_runs(flag, problem, workspace, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "leads", "--missing-value", flag])
    assert exit_info.value.code == 2
    assert problem in capsys.readouterr().err
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


def test_a_code_for_a_column_the_file_lacks_is_refused_by_name(workspace, tmp_path, capsys):
    path = tmp_path / "leads.csv"
    demo_leads(n=100, seed=1).to_csv(path, index=False)
    code = main(
        ["train", "leads", "--data", str(path), "--quiet", "--missing-value", "Nope=1", *cli_params(SMALL_STACK)]
    )
    err = capsys.readouterr().err
    assert code != 0 and "Nope" in err
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


def test_a_dashboard_job_hands_the_datasets_codes_to_the_training(workspace):
    from engine.jobs import JobRunner

    runner = JobRunner(workspace)
    job_id = runner.submit_train(TrainSpec("leads", "data.csv", "stacking", missing_values={"TotalVisits": [CODE]}))
    assert read_spec(runner.job_dir(job_id)).missing_values == {"TotalVisits": [CODE]}


def test_the_api_reads_the_code_as_missing_like_the_scoring_service(coded_run, monkeypatch):
    store, run = coded_run
    monkeypatch.delenv("CLAB_API_KEY", raising=False)
    client = TestClient(create_app(store))
    new = _with_code(30, 9)
    assert (new["TotalVisits"] == CODE).any()
    expected = score_frame(run, new, explain=0, rank=False).proba
    records = json.loads(new.to_json(orient="records"))
    one = client.post("/predict/lead", json={"run_id": run.id, "leads": records[0]})
    many = client.post("/predict/lead", json={"run_id": run.id, "leads": records})
    assert one.status_code == 200 and many.status_code == 200, (one.text, many.text)
    got = [p["probability"] for p in many.json()["predictions"]]
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose(one.json()["predictions"][0]["probability"], expected[0], atol=1e-6)
    # the code is not read as a real number: a coded lead scores unlike the same lead with TotalVisits 999 unread
    coded = int(np.flatnonzero(new["TotalVisits"].to_numpy() == CODE)[0])
    model = run.load_approach()
    from engine.data.leads import prepare_features

    as_number = prepare_features(new.iloc[[coded]], run.settings.columns, run.settings.kinds)
    assert as_number[FLAG].isna().all()  # without the setting the flag is unknown and 999 is a number
    assert abs(model.predict_proba(as_number)[0, 1] - expected[coded]) > 1e-6


def test_what_if_offers_the_column_not_its_flag(coded_run, monkeypatch):
    from dashboard_support import run_page

    store, run = coded_run
    monkeypatch.setenv("CLAB_WORKSPACE", str(store.root.parent))
    at = run_page("whatif")
    labels = [w.label for w in at.number_input] + [w.label for w in at.selectbox]
    assert "TotalVisits" in labels and FLAG not in labels
    said = "TotalVisits = 999 is read as unknown"
    assert not any(said in c.value for c in at.caption)
    next(w for w in at.number_input if w.label == "TotalVisits").set_value(CODE).run()
    assert not at.exception and any(said in c.value and FLAG in c.value for c in at.caption)


def test_the_scoring_report_says_which_codes_it_read_as_missing(coded_run):
    _, run = coded_run
    new = _with_code(50, 11)
    held = int((new["TotalVisits"] == CODE).sum())
    scored = score_frame(run, new, explain=0)
    assert scored.report.read_as_missing == {"TotalVisits": {"999": held}}
    assert f"TotalVisits: 999 in {held} row(s), read as unknown" in " ".join(scored.report.messages())
    clean = new[new["TotalVisits"] != CODE]
    assert score_frame(run, clean, explain=0).report.read_as_missing == {}


def test_reasons_read_as_a_person_reads_them():
    from engine.scoring import points, reason_text, top_factors

    assert [points(c) for c in (0.2143, -0.0099, -0.0102, 0.003)] == [
        "+21 points",
        "-1 point",
        "-1 point",
        "+0.3 points",
    ]
    flags = {FLAG: ("TotalVisits", "999")}
    assert reason_text(FLAG, "1", -0.02, flags) == "TotalVisits is 999, read as unknown (-2 points)"
    assert reason_text(FLAG, "0.0", 0.02, flags) == "TotalVisits is not 999 (+2 points)"
    assert reason_text("Lead Source", "Google", 0.05) == "Lead Source = Google (+5 points)"
    table = pd.DataFrame(
        {
            "row": [0, 0, 0, 0],
            "feature": ["a", "b", "c", "d"],
            "value": ["1", "2", "3", "4"],
            "contribution": [0.2, 0.004, -0.001, -0.1],
        }
    )
    found = top_factors(table)[0]  # moves under half a point of the score are no reasons
    assert [f["feature"] for f in found["for"]] == ["a"] and [f["feature"] for f in found["against"]] == ["d"]


def test_a_text_cell_in_new_rows_does_not_hide_the_codes(coded_run):
    """A coded column that arrives as text (one cell 'unknown') is read as numbers, so its codes still count."""
    _, run = coded_run
    new = _with_code(40, 13)
    held = int((new["TotalVisits"] == CODE).sum())
    as_text = new.assign(TotalVisits=new["TotalVisits"].astype(object))
    as_text.loc[as_text.index[0], "TotalVisits"] = "unknown"
    from engine.scoring import prepare_rows

    X, report = prepare_rows(run, as_text)
    coded_rows = (new["TotalVisits"] == CODE).to_numpy().copy()
    coded_rows[0] = False  # that cell is now text, read as missing without the code
    assert report.read_as_missing == {"TotalVisits": {"999": held - int((new["TotalVisits"] == CODE).iloc[0])}}
    np.testing.assert_array_equal(X[FLAG].to_numpy(), coded_rows.astype(float))
    assert X["TotalVisits"].isna().sum() == coded_rows.sum() + 1 + int(new["TotalVisits"].isna().sum())


@pytest.mark.parametrize(
    "setting",
    [{"TotalVisits": [10**400]}, {"TotalVisits": "999"}, {"TotalVisits": ["x"]}, {"TotalVisits": [float("nan")]}],
)
def test_a_damaged_setting_in_a_runs_spec_is_refused_everywhere(coded_run, tmp_path, monkeypatch, setting):
    """Checked once, when the run is loaded: the run is skipped by listings, named with the field, refused by id
    (the store, the API), and never reaches scoring."""
    from support import copy_run

    from engine.runs import BrokenRun

    store, run = coded_run
    path = copy_run(run.path, tmp_path / "runs")
    spec = json.loads((path / "spec.json").read_text())
    spec["missing_values"] = setting
    (path / "spec.json").write_text(json.dumps(spec))
    damaged = RunStore(tmp_path / "runs")
    assert damaged.list_runs() == [] and damaged.latest() is None
    assert "missing_values" in damaged.problems[run.id] and "spec.json" in damaged.problems[run.id]
    with pytest.raises(BrokenRun, match="missing_values"):
        damaged.get(run.id)
    monkeypatch.delenv("CLAB_API_KEY", raising=False)
    client = TestClient(create_app(RunStore(tmp_path / "runs")))
    for leads in ({"TotalVisits": 3}, [{"TotalVisits": 3}, {"TotalVisits": 999}]):
        answer = client.post("/predict/lead", json={"run_id": run.id, "leads": leads})
        assert answer.status_code == 409 and "missing_values" in answer.text and run.id in answer.text, answer.text
    models = client.get("/models").json()
    assert models["models"] == [] and [s["run_id"] for s in models["skipped"]] == [run.id]


def test_the_api_makes_the_flag_and_never_takes_it_from_the_client(coded_run, monkeypatch):
    store, run = coded_run
    monkeypatch.delenv("CLAB_API_KEY", raising=False)
    client = TestClient(create_app(store))
    only_flag = client.post("/predict/lead", json={"run_id": run.id, "leads": {FLAG: 1}})
    assert only_flag.status_code == 422 and "None of the lead's fields" in only_flag.text
    lead = json.loads(_with_code(1, 2).to_json(orient="records"))[0]
    lead["TotalVisits"] = 3
    plain = client.post("/predict/lead", json={"run_id": run.id, "leads": lead}).json()
    sent = client.post("/predict/lead", json={"run_id": run.id, "leads": {**lead, FLAG: 1}}).json()
    assert sent["predictions"][0]["probability"] == plain["predictions"][0]["probability"]
    assert FLAG in sent["ignored_fields"]


def test_only_the_runs_own_flags_read_as_codes():
    from engine.runspec import RunSpec
    from engine.scoring import flag_columns, reason_text

    flags = flag_columns(
        RunSpec.new(approach="stacking", columns=["a"], missing_values={"TotalVisits": [999], "Amount": [1e20]})
    )
    assert flags[FLAG] == ("TotalVisits", "999") and ("Amount", "100,000,000,000,000,000,000") in flags.values()
    assert reason_text("Plan was 2", "1", 0.04) == "Plan was 2 = 1 (+4 points)"  # a real column, not a flag
    assert reason_text(FLAG, "1", -0.02, flags) == "TotalVisits is 999, read as unknown (-2 points)"
    assert (
        flag_columns(RunSpec.new(approach="stacking", columns=["a"])) == {}
    )  # a run without codes (a damaged setting never loads: engine.runspec)


def test_damaged_quartiles_give_no_tiers(coded_run):
    from engine.scoring import run_tiers

    _, run = coded_run
    for quartiles in ([float("nan")] * 3, [0.2, 0.5, 7.0], ["a", "b", "c"]):
        assert run_tiers(run, [0.1, 0.9], {"train_score_quartiles": quartiles}) is None
    assert list(run_tiers(run, [0.1, 0.9], {"train_score_quartiles": [0.2, 0.4, 0.6]})) == ["D", "A"]


def test_what_if_shapes_the_lead_for_each_run_as_it_was_trained(tmp_path, monkeypatch):
    """Two approaches on one dataset, one trained with 999 read as missing and one without: each card scores the
    lead as its own run saw its rows (the flag exists for one of them only)."""
    from dashboard_support import run_page

    from engine.pipeline import train_leads

    root = tmp_path / "workspace"
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    frame = _with_code(300, 21)
    train_leads(frame, params=SMALL_STACK, missing_values={"TotalVisits": [CODE]}, dataset_name="coded")
    train_leads(
        frame, approach="embeddings", params={"fine_tune": False, "classifier_type": "logistic"}, dataset_name="coded"
    )
    at = run_page("whatif")
    assert not at.error, [e.value for e in at.error]
    assert len([m for m in at.metric if m.label == "Score (1-99)"]) == 2  # both runs scored the lead


def test_what_ifs_typical_lead_carries_the_code_most_leads_carry(tmp_path, monkeypatch):
    """pdays = 999 for 96 % of a bank's leads: the typical lead is one with the code (read as unknown), not the
    median of the few contacted ones. Where few leads carry the code, the median of the column stays."""
    from dashboard_support import run_page

    from engine.pipeline import train_leads

    monkeypatch.setenv("CLAB_WORKSPACE", str(tmp_path / "workspace"))
    frame = demo_leads(n=300, seed=23)
    frame.loc[np.random.default_rng(23).random(len(frame)) < 0.8, "TotalVisits"] = CODE
    run = train_leads(frame, params=SMALL_STACK, missing_values={"TotalVisits": [CODE]}, dataset_name="mostly coded")
    at = run_page("whatif")
    assert not at.exception and at.selectbox(key="whatif_start").value == "typical"
    assert next(w for w in at.number_input if w.label == "TotalVisits").value == CODE
    assert any("TotalVisits = 999 is read as unknown" in c.value for c in at.caption)
    from engine.scoring import load_training_profile

    median = load_training_profile(run)["columns"]["Page Views Per Visit"]["quantiles"][5]  # the training leads'
    assert next(w for w in at.number_input if w.label == "Page Views Per Visit").value == pytest.approx(median)
