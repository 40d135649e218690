"""Every dashboard page under Streamlit's AppTest, on demo data and real stored runs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dashboard_support import APP, rerun_fragments, run_page, texts, upload
from streamlit.testing.v1 import AppTest
from support import demo_leads_csv


def test_home_shows_the_product_and_the_board_counts(stored):
    at = run_page("home")
    assert "Conversion Lab" in at.title[0].value
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Runs"] == "2" and metrics["Datasets"] in ("1", "2")
    assert at.button(key="demo_button").label.startswith("Load the demo data")
    assert "synthetic" in texts(at.caption)
    latest = next(m.value for m in at.markdown if m.value.startswith("| run |"))
    assert len(latest.splitlines()) == 2 + 2  # header, rule, the two runs
    assert not at.error


def test_data_page_previews_kinds_target_and_policy(stored):
    from engine.datasets import DatasetStore

    leads = DatasetStore().list(kind="leads")[0]
    DatasetStore().update(leads.sha, leak_policy="default", exclude=[], include=[])  # the page saves changes
    at = run_page("data")
    at.selectbox(key="data_dataset").set_value(leads.sha).run()
    assert at.selectbox(key=next(s.key for s in at.selectbox if s.key.startswith("target_"))).value == "Converted"
    excluded = next(m for m in at.multiselect if m.key.startswith("exclude_"))
    assert "Tags" in excluded.value and "Lead Quality" in excluded.value  # leak policy lists them
    kinds = at.dataframe[1].value
    assert set(kinds.columns) >= {"column", "kind", "used"}
    assert "Converted" not in excluded.options
    assert "ready to train" in texts(at.success)
    assert not at.error
    # choosing no leak policy puts the columns back
    at.radio(key=next(r.key for r in at.radio if r.key.startswith("policy_"))).set_value("none").run()
    excluded = next(m for m in at.multiselect if m.key.startswith("exclude_"))
    assert excluded.value == []
    assert DatasetStore().get(leads.sha).meta["leak_policy"] == "none"  # kept for the Train page
    DatasetStore().update(leads.sha, leak_policy="default", exclude=[], include=[])


def test_data_upload_bad_file_shows_its_error_and_stores_nothing(workspace):
    at = run_page("data")
    upload(at, "leads.xlsx", b"this is not a spreadsheet at all", "application/zip")
    assert at.error, "a broken upload must show an error"
    assert "leads.xlsx" in at.error[0].value
    assert not (workspace / "datasets").exists() or not any((workspace / "datasets").iterdir())


def test_data_upload_good_file_is_stored_and_checked(workspace):
    at = run_page("data")
    csv = demo_leads_csv(n=120)
    upload(at, "my_leads.csv", csv)
    assert not at.error, texts(at.error)
    stored = list((workspace / "datasets").iterdir())
    assert len(stored) == 1 and (stored[0] / "data.csv").read_bytes() == csv
    assert "Stored my_leads.csv" in texts(at.success)
    assert "ready to train" in texts(at.success)


def test_data_page_names_each_dropped_column_once(workspace):
    """Seen on the browser walk of a bank export: "`customer_id` (identifier (a different value in every row))"."""
    at = run_page("data")
    upload(at, "my_leads.csv", demo_leads_csv(n=120))
    dropped = next(m.value for m in at.markdown if m.value.startswith("**Dropped:**"))
    assert "`Prospect ID`: identifier (a different value in every row)" in dropped, dropped
    assert "((" not in dropped and "))" not in dropped


def test_data_page_explains_a_table_without_rows(workspace):
    from engine.datasets import DatasetStore

    DatasetStore().add(b"Lead Origin,Converted\n", filename="empty.csv", kind="leads")
    at = run_page("data")
    assert "no rows" in texts(at.error)


def test_train_page_starts_the_llm_from_the_cpu_preset_without_a_gpu(stored):
    from dashboard.components import state
    from engine.benchmarks.lora import cpu_preset
    from engine.datasets import DatasetStore

    at = run_page("train")
    at.selectbox(key="train_dataset").set_value(DatasetStore().list(kind="leads")[0].sha).run()
    at.selectbox(key="train_approach").set_value("lora").run()
    if state.gpu_info()["cuda"]:
        assert not [t for t in at.toggle if t.key == "train_lora_cpu_preset"]
        return
    preset = cpu_preset()
    epochs = next(n for n in at.number_input if n.key.endswith("_lora_epochs"))
    assert epochs.value == preset["epochs"]
    changed = next(c for c in at.caption if c.value.startswith("Changed settings:"))
    # nothing was changed by hand: the preset's values are the defaults here, said in the help (one click away)
    assert changed.value.startswith("Changed settings: none") and "layers with adapters" not in changed.value
    assert f"learning rate: {preset['learning_rate']:g}" in changed.proto.help
    assert "adapters on the top layers only: 10" in changed.proto.help
    assert "layers with adapters: q_proj, k_proj, v_proj, o_proj" in changed.proto.help  # not a raw tuple
    assert f"--param learning_rate={preset['learning_rate']}" in changed.proto.help  # the CLI form, in the help
    next(n for n in at.number_input if n.key.endswith("_lora_epochs")).set_value(preset["epochs"] + 1).run()
    changed = next(c for c in at.caption if c.value.startswith("Changed settings:"))
    assert f"passes over the training leads: {preset['epochs'] + 1}" in changed.value  # an edit is listed...
    assert "learning rate" not in changed.value  # ...alone
    at.toggle(key="train_lora_cpu_preset").set_value(False).run()  # the reference setup
    assert next(n for n in at.number_input if n.key.endswith("_lora_epochs")).value == 3
    assert "Changed settings: none" in texts(at.caption)


def test_train_page_offers_approaches_and_launches_a_job(stored, tmp_path, monkeypatch):
    from engine.datasets import DatasetStore

    at = run_page("train")
    at.selectbox(key="train_dataset").set_value(DatasetStore().list(kind="leads")[0].sha).run()
    assert "GPU" in texts(at.info) + texts(at.success)
    assert "Stacked ensemble (stacking)" in at.selectbox(key="train_approach").options
    assert at.button(key="train_launch")
    assert "Changed settings: none" in texts(at.caption)
    at.selectbox(key="train_approach").set_value("stacking").run()
    shown = len(at.number_input)
    at.toggle(key="train_more_stacking").set_value(True).run()
    assert len(at.number_input) > shown + 5  # the long tail of parameters, drawn on request
    next(n for n in at.number_input if n.key.endswith("_xgb_max_depth")).set_value(3).run()
    assert "xgboost: tree depth: 3" in texts(at.caption)
    # launching goes to the job table (in a fresh workspace, then cancelled: no CPU spent here)
    ws = tmp_path / "ws"
    monkeypatch.setenv("CLAB_WORKSPACE", str(ws))
    from engine.datasets import DatasetStore
    from engine.jobs import JobRunner

    DatasetStore().add(demo_leads_csv(n=100), filename="tiny.csv", kind="leads", target="Converted")
    at = run_page("train")
    next(n for n in at.number_input if n.key.endswith("_n_folds")).set_value(2)
    at.run()
    assert "cross-validation folds: 2" in texts(at.caption)
    at.button(key="train_launch").click().run()
    assert not at.exception
    runner = JobRunner(ws)
    jobs = runner.list()
    assert len(jobs) == 1 and jobs[0].params["approach"] == "stacking"
    assert jobs[0].params["params"]["n_folds"] == 2 and jobs[0].params["target"] == "Converted"
    runner.cancel(jobs[0].id, clean_stop=0)
    assert runner.get(jobs[0].id).state == "cancelled"


def test_train_page_offers_the_embedding_losses_as_choices(stored):
    from engine.approaches.embeddings import LOSSES
    from engine.datasets import DatasetStore

    transcripts = DatasetStore().list(kind="transcripts")
    if not transcripts:
        pytest.skip("data/demo_transcripts.jsonl is absent")
    at = run_page("train")
    at.selectbox(key="train_dataset").set_value(transcripts[0].sha).run()
    at.selectbox(key="train_approach").set_value("embeddings").run()
    at.toggle(key="train_more_embeddings").set_value(True).run()
    loss = next(s for s in at.selectbox if s.key.endswith("_embeddings_loss"))
    assert tuple(loss.options) == LOSSES and loss.value == "batch_all"
    loss.set_value("triplet").run()
    assert "tuning objective: triplet" in texts(at.caption)


def test_board_compares_runs_with_intervals_curves_and_thresholds(stored):
    at = run_page("board")
    ranking, calls, calibration = (at.dataframe[i].value for i in range(3))
    assert ranking["run"].tolist()[-1] == "Base rate (no model)" and len(ranking) == 3  # two runs + no model
    assert calls["run"].tolist()[-2:] == ["Call nobody (no model)", "Call everyone (no model)"]
    assert list(calibration.columns) == ["run", "brier", "log_loss", "ece"]
    runs = pd.concat(
        [ranking.iloc[:2], calls.iloc[:2].drop(columns="run"), calibration.iloc[:2].drop(columns="run")], axis=1
    )
    cells = runs.drop(columns="run").to_numpy().ravel().tolist()
    assert any("★" in c for c in cells) and all("[" in c for c in runs["roc_auc"])
    charts = at.get("plotly_chart")
    assert len(charts) == 1  # the first tab: ROC and PR curves in one figure (the other tabs are not computed)
    assert not at.get("radio")
    import json

    curves = json.loads(charts[0].proto.spec)
    assert [a["text"] for a in curves["layout"]["annotations"]] == ["ROC curve", "Precision-recall"]
    assert sum(t.get("showlegend", True) and t["name"] not in ("chance", "perfect") for t in curves["data"]) == 2
    at.session_state["board_tab"] = "Calibration and gains"
    at.run()
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert [a["text"] for a in curves["layout"]["annotations"]] == ["Calibration", "Cumulative gains"]
    assert [b.label for b in at.get("download_button")] == ["Export as CSV"]
    at.session_state["board_tab"] = "Score bands, speed and parts"
    at.run()
    assert len(at.get("plotly_chart")) == 1 and at.dataframe[3].value.shape[0] == 2  # bands; speed per run
    at.session_state["board_tab"] = "Decisions at a threshold"
    at.run()
    assert len(at.get("plotly_chart")) == 1  # the two confusion matrices in one figure
    for method in ("f1", "youden", "cost"):
        at.radio(key="board_method").set_value(method).run()
        assert not at.exception
        thresholds = at.dataframe[3].value["threshold"]
        assert ((thresholds >= 0) & (thresholds <= 1.000001)).all()
    at.radio(key="board_method").set_value("manual").run()
    at.slider(key="board_threshold").set_value(0.99).run()
    summary = at.dataframe[3].value
    models = summary[summary["run"] != "Call everyone (no model)"]
    assert len(models) == 2 and (models["threshold"] == 0.99).all() and (models["called"] < 0.5).all()
    everyone = summary[summary["run"] == "Call everyone (no model)"].iloc[0]
    assert everyone["recall"] == 1.0 and everyone["called"] == 1.0


def test_explain_page_global_and_one_lead(stored):
    at = run_page("explain")
    assert not at.warning and not at.error
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # the first tab: importance and strip (the other tabs are not computed)
    # the default sample's contributions were stored with the run at training time: the page shows them
    import base64
    import json

    from engine.runs import RunStore

    stored_table = RunStore().get(at.selectbox(key="explain_run").value).explanations()
    importance = stored_table["contribution"].abs().groupby(stored_table["feature"]).mean()
    bars = json.loads(charts[0].proto.spec)["data"][0]
    x = bars["x"]  # Plotly sends numeric arrays base64-encoded
    x = np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"]) if isinstance(x, dict) else np.asarray(x)
    np.testing.assert_allclose(x, 100 * importance.loc[list(bars["y"])].to_numpy(), rtol=1e-9)  # percentage points
    at.session_state["explain_tab"] = "Dependence"
    at.run()
    assert [c.proto.spec for c in at.get("plotly_chart")] and at.selectbox(key="explain_dep").value
    at.session_state["explain_tab"] = "One at a time"
    at.run()
    assert len(at.get("plotly_chart")) == 1  # the waterfall of one lead
    at.selectbox(key="explain_row").set_value(1).run()
    assert not at.exception and len(at.get("plotly_chart")) == 1


def test_whatif_rescores_every_lead_approach_live(stored):
    at = run_page("whatif")
    scores = [m for m in at.metric if m.label == "Score (1-99)"]
    assert len(scores) == 1  # one lead approach (stacking) trained: its latest run
    at.selectbox(key="whatif_start").set_value(0).run()
    before = [m.value for m in at.metric]
    source = next(s for s in at.selectbox if s.key.endswith("_Lead Source"))
    new_value = next(v for v in source.options if v not in (source.value, "(missing)"))
    time_box = next(n for n in at.number_input if n.key.endswith("_Total Time Spent on Website"))
    source.set_value(new_value)
    time_box.set_value(3000.0)
    at.run()
    assert not at.exception
    after = [m.value for m in at.metric]
    assert before != after
    assert 1 <= int(after[0]) <= 99
    assert "For" in texts(at.markdown) and "Priority tier" in texts(at.markdown)
    ms = float(next(c.value for c in at.caption if c.value.startswith("scored in")).split()[2])
    assert ms < 300, f"rescoring took {ms} ms"


def test_embeddings_page_without_an_embeddings_run(stored):
    at = run_page("embeddings")
    assert texts(at.info) and not at.error


def test_app_navigation_and_password_gate(stored, monkeypatch, throttle):
    from streamlit import config

    before = config.get_option("server.address")  # bound to localhost, as `make run` starts it
    config.set_option("server.address", "127.0.0.1")
    try:
        _navigation_and_password_gate(monkeypatch)
    finally:
        config.set_option("server.address", before)


def _navigation_and_password_gate(monkeypatch):
    monkeypatch.delenv("CLAB_PUBLIC", raising=False)
    monkeypatch.delenv("CLAB_DASHBOARD_PASSWORD", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception and "Conversion Lab" in at.title[0].value
    at.switch_page("views/board.py").run()
    assert not at.exception and at.title[0].value == "Metric board"

    monkeypatch.setenv("CLAB_PUBLIC", "1")
    monkeypatch.delenv("CLAB_DASHBOARD_PASSWORD", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert "no password is set" in texts(at.error)
    monkeypatch.setenv("CLAB_DASHBOARD_PASSWORD", "s3cret")
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert len(at.title) == 1 and not at.metric  # only the gate
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert "Wrong password" in texts(at.error)
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert not at.exception and {m.label for m in at.metric} >= {"Runs", "Datasets"}


def test_home_demo_button_loads_synthetic_data_and_queues_jobs(workspace):
    from engine.datasets import DatasetStore
    from engine.jobs import JobRunner

    at = run_page("home")
    at.button(key="demo_button").click().run()
    assert not at.exception
    datasets = DatasetStore().list()
    assert datasets and all(d.meta["synthetic"] for d in datasets)
    assert "leads" in {d.kind for d in datasets}
    runner = JobRunner(workspace)
    jobs = runner.list()
    try:
        assert jobs and jobs[-1].params["approach"] == "stacking"
        assert "queued" in texts(at.success)
        # the counters above the button count what the click just stored and queued (not the state before it)
        metrics = {m.label: m.value for m in at.metric}
        assert metrics["Datasets"] == str(len(datasets))
        active = [j for j in jobs if j.state in ("starting", "running")]
        assert active and metrics["Jobs running"] == str(len(active))
    finally:
        for job in jobs:
            runner.cancel(job.id, clean_stop=0)
    at.button(key="demo_button").click().run()  # a second click stores nothing new
    assert len(DatasetStore().list()) == len(datasets)
    for job in runner.list():
        runner.cancel(job.id, clean_stop=0)


def test_stack_rescoring_speed(stored):
    """What-if budget: the stack rescoring one lead in well under 300 ms."""
    from engine.runs import RunStore

    run = RunStore(stored / "runs").latest(approach="stacking")
    model = run.load_approach()
    import pandas as pd

    from engine.data.leads import load_leads

    table = load_leads(pd.read_csv(next((stored / "datasets").glob("*/data.csv"))), target="Converted")
    lead = table.X.iloc[[0]]
    model.predict_proba(lead)
    took = []
    for _ in range(5):
        t = time.perf_counter()
        p = model.predict_proba(lead)
        took.append(time.perf_counter() - t)
    assert np.isfinite(p).all() and np.median(took) < 0.3


@pytest.mark.slow
def test_embeddings_and_explain_pages_with_an_embeddings_run(workspace):
    """A real (small) embeddings run: the projection maps and the highlighted transcript."""
    from engine.datasets import DatasetStore
    from engine.pipeline import train_transcripts

    lines = (Path(__file__).resolve().parents[2] / "data" / "demo_transcripts.jsonl").read_bytes().splitlines()
    ds = DatasetStore().add(b"\n".join(lines[:60]) + b"\n", filename="t60.jsonl", kind="transcripts", name="t60")
    train_transcripts(
        ds.raw_path,
        "embeddings",
        dataset_name="t60",
        params=dict(epochs=1, n_pairs=1, max_triplets=20, train_tokens=32, chunk_tokens=128),
    )
    at = run_page("embeddings", timeout=600)
    assert len(at.get("plotly_chart")) == 2 and not at.error
    at.radio(key="emb_method").set_value("umap").run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    at = run_page("explain", timeout=600)
    assert not at.error
    at.session_state["explain_tab"] = "One at a time"
    at.run()
    assert any("<span" in m.value for m in at.markdown)  # phrases highlighted


def test_warm_up_imports_only_between_page_runs():
    """The background import waits while a page script runs, then imports the module."""
    import sys

    from dashboard.components import warmup

    module = "colorsys"
    sys.modules.pop(module, None)
    with warmup.page_run():
        import threading

        thread = threading.Thread(target=warmup._run, args=((module,), 0.0, 0.1), daemon=True)
        thread.start()
        time.sleep(0.4)
        assert module not in sys.modules, "imported while a page was running"
    thread.join(timeout=5)
    assert module in sys.modules and module in warmup.done


def test_a_page_run_waits_for_an_import_in_progress(tmp_path, monkeypatch):
    """A page that starts while the warm-up imports a module never sees it half imported."""
    import sys
    import threading

    from dashboard.components import warmup

    (tmp_path / "clab_slow_module.py").write_text("import time\ntime.sleep(0.6)\nREADY = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("clab_slow_module", None)
    thread = threading.Thread(target=warmup._run, args=(("clab_slow_module",), 0.0, 0.0), daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while "clab_slow_module" not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "clab_slow_module" in sys.modules, "the warm-up did not start the import"
    with warmup.page_run():
        assert getattr(sys.modules["clab_slow_module"], "READY", False), "page ran during the import"
    thread.join(timeout=5)


def test_an_upload_never_shows_the_previous_datasets_numbers(workspace):
    from engine.datasets import DatasetStore

    first = DatasetStore().add(demo_leads_csv(n=150), filename="march.csv", kind="leads", target="Converted")
    at = run_page("data")
    at.selectbox(key="data_dataset").set_value(first.sha).run()
    assert next(m for m in at.metric if m.label == "Leads").value == "150"
    # the run that starts when the file arrives ends at once with "Reading april.csv...": the browser drops what
    # it did not draw (the numbers of march.csv); the next run shows april.csv's
    at.file_uploader(key="upload_file").upload("april.csv", demo_leads_csv(n=90, seed=9), "text/csv").run()
    assert "Reading april.csv..." in texts(at.info) and not at.metric and not at.dataframe
    rerun_fragments(at)  # the timer's run
    assert not at.exception and "Stored april.csv" in texts(at.success)
    assert next(m for m in at.metric if m.label == "Leads").value == "90"
    april = next(d for d in DatasetStore().list() if d.filename == "april.csv")
    assert at.selectbox(key="data_dataset").value == april.sha
