"""A new user's journey through Data and Train under AppTest, and the rules behind it: the upload is the
selected dataset and shows only its own messages; only what can be trained on or scored is stored; jobs that
cannot succeed are not launched; a finished job shows its metrics and a link to the board; datasets and runs
are deleted only after a confirmation; every approach parameter has words; progress names every phase."""

from __future__ import annotations

import dashboard_support
import pytest
from dashboard_support import run_page, texts
from streamlit.testing.v1 import AppTest
from support import SMALL_STACK, demo_leads_csv

ONE_CLASS = b"Lead Origin,TotalVisits,Converted\nAPI,3,1\nWeb,4,1\nAPI,5,1\n"


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    return dashboard_support.upload(at, name, data)


def stored():
    from engine.datasets import DatasetStore

    return {d.filename: d for d in DatasetStore().list()}


# -- words ------------------------------------------------------------------------------------------
def test_every_approach_parameter_has_a_label_and_help():
    from dashboard.components import params
    from engine.approaches.registry import REGISTRY, get_approach_class

    for approach in REGISTRY:
        names = list(get_approach_class(approach).data_params())  # what the form shows
        missing = [n for n in names if n not in params.PARAMS.get(approach, {})]
        assert not missing, f"{approach}: parameters without a label in dashboard/components/params.py: {missing}"
        stale = [n for n in params.PARAMS[approach] if n not in names]
        assert not stale, f"{approach}: labels for parameters the constructor does not have: {stale}"
        for name in names:
            label, help_line, group = params.PARAMS[approach][name]
            assert label and label != name and help_line and group in (params.BASIC, params.ADVANCED)
            assert f"--param {name}=" in params.help_text(approach, name)  # the real name, for the CLI
        assert params.basic_order(approach), f"{approach} shows no basic parameter"
    assert (
        params.describe_changes("lora", {"target_modules": ("q_proj", "v_proj")})
        == "layers with adapters: q_proj, v_proj"
    )


# -- uploads -----------------------------------------------------------------------------------------
def test_the_latest_upload_is_selected_and_shows_only_its_own_messages(workspace):
    at = run_page("data")
    first = demo_leads_csv(n=80)
    upload(at, "first.csv", first)
    assert at.selectbox(key="data_dataset").value == stored()["first.csv"].sha
    assert "Stored first.csv" in texts(at.success) and not at.error
    second = b"Account,Region,Seats,Converted\n" + b"".join(
        f"a{i},{'north' if i % 3 else 'south'},{i % 7},{i % 2}\n".encode() for i in range(60)
    )
    upload(at, "second.csv", second)
    assert at.selectbox(key="data_dataset").value == stored()["second.csv"].sha
    assert list(at.dataframe[0].value.columns) == ["Account", "Region", "Seats", "Converted"]  # its preview
    assert "Stored second.csv" in texts(at.success) and "first.csv" not in texts(at.success)
    # a one-class file: its own error only, nothing stored, the selection stays on the last stored upload
    upload(at, "one_class.csv", ONE_CLASS)
    assert len(at.error) == 1, texts(at.error)
    assert at.error[0].value.startswith("one_class.csv") and "single class" in at.error[0].value
    assert "Nothing was stored" in at.error[0].value
    assert "one_class.csv" not in stored()
    assert at.selectbox(key="data_dataset").value == stored()["second.csv"].sha


def test_unusable_uploads_are_refused_and_a_file_without_outcome_is_kept_for_scoring(workspace):
    at = run_page("data")
    upload(at, "header_only.csv", b"Lead Origin,Converted\n")
    assert "header_only.csv has a header but no rows" in texts(at.error)
    upload(at, "empty.csv", b"")
    message = texts(at.error)
    assert message.count("empty.csv") == 1, message  # named once, not "empty.csv: empty.csv is empty"
    assert stored() == {}
    upload(at, "new_leads.csv", b"Lead Origin,TotalVisits\nAPI,3\nWeb,4\nAPI,1\n")
    assert not at.error, texts(at.error)
    assert "to be scored" in texts(at.info) and "Score new leads" in texts(at.info)
    ds = stored()["new_leads.csv"]
    assert ds.purpose == "scoring" and ds.meta["target"] is None
    # the Train page does not offer it
    train = run_page("train")
    assert not [s for s in train.selectbox if s.key == "train_dataset"]
    assert "No dataset to train on" in texts(train.info)
    assert not train.error


def test_a_target_named_y_is_found_and_no_red_error_shows_first(workspace):
    rows = "".join(f"{i},{'API' if i % 2 else 'Web'},{i % 9},{int(i % 3 == 0)}\n" for i in range(90))
    at = run_page("data")
    upload(at, "export.csv", ("id,origin,visits,y\n" + rows).encode())
    assert not at.error, texts(at.error)
    assert at.selectbox(key=next(s.key for s in at.selectbox if s.key.startswith("target_"))).value == "y"
    assert stored()["export.csv"].meta["target"] == "y"
    kinds = at.dataframe[1].value.set_index("column")["used"]
    assert kinds["y"] == "outcome" and kinds["id"].startswith("no") and kinds["visits"] == "yes"


def test_column_kinds_say_identifiers_and_constants_are_not_used(workspace):
    rows = "".join(f"P{i:04d},{i},same,{'API' if i % 2 else 'Web'},{i % 5},{i % 2}\n" for i in range(80))
    at = run_page("data")
    upload(at, "ids.csv", ("Prospect ID,Lead Number,Constant,Lead Origin,TotalVisits,Converted\n" + rows).encode())
    used = at.dataframe[1].value.set_index("column")["used"]
    dropped = texts(at.markdown)
    for column in ("Prospect ID", "Lead Number", "Constant"):
        assert used[column].startswith("no"), (column, used[column])
        assert f"`{column}`" in dropped  # and the section below lists it as dropped
    assert used["TotalVisits"] == "yes"


def test_a_sentinel_value_is_flagged(workspace):
    rows = "".join(f"{'API' if i % 2 else 'Web'},{999 if i % 5 == 0 else i % 40},{i % 2}\n" for i in range(200))
    at = run_page("data")
    upload(at, "sentinel.csv", ("Lead Origin,Days Since Contact,Converted\n" + rows).encode())
    warning = texts(at.warning)
    assert "Days Since Contact" in warning and "999" in warning and "40 rows" in warning
    assert "read it as missing" in warning  # offered as a tick box (tests/data/test_missing_values.py follows it)
    plain = "".join(f"{'API' if i % 2 else 'Web'},{i % 40},{i % 2}\n" for i in range(200))
    upload(at, "plain.csv", ("Lead Origin,Days Since Contact,Converted\n" + plain).encode())
    assert "far outside" not in texts(at.warning)


def test_train_refuses_a_job_that_cannot_succeed(workspace):
    from engine.datasets import DatasetStore

    # stored before uploads were checked: one outcome only
    DatasetStore().add(ONE_CLASS, filename="old_one_class.csv", kind="leads", target="Converted")
    at = run_page("train")
    warning = texts(at.warning)
    assert "cannot succeed" in warning and "single class" in warning
    assert "--target" not in warning and "data.csv" not in warning
    assert at.button(key="train_launch").disabled


def test_lora_banner_follows_the_processor(workspace):
    from dashboard.components import state
    from engine.approaches.lora import cpu_supports_bf16
    from engine.datasets import DatasetStore

    if state.gpu_info()["cuda"]:
        pytest.skip("the CPU banner is shown without a GPU only")
    DatasetStore().add(demo_leads_csv(n=80), filename="l.csv", kind="leads", target="Converted")
    at = run_page("train")
    at.selectbox(key="train_approach").set_value("lora").run()
    banner = next(i.value for i in at.info if "CPU preset" in i.value)
    if cpu_supports_bf16():
        assert "about 30 minutes" in banner
    else:
        assert "about 30 minutes" not in banner and "28.4 min" in banner and "4,000 leads" in banner


# -- progress ----------------------------------------------------------------------------------------
def test_progress_names_the_phase_and_never_shows_zero_seconds_left():
    from dashboard.components.widgets import progress_text

    frac, text = progress_text(
        {
            "phase": "fit",
            "phase_index": 0,
            "phases": 4,
            "stage": "fold 1/5 xgboost",
            "step": 3,
            "total": 20,
            "seconds_left": 40.0,
            "fraction": 0.12,
        }
    )
    assert frac == 0.12 and "Training" in text and "fold 1/5 xgboost 3/20" in text and "40 s left" in text
    frac, text = progress_text(
        {
            "phase": "fit",
            "phase_index": 0,
            "phases": 4,
            "stage": "meta network",
            "step": 20,
            "total": 20,
            "seconds_left": 0.0,
            "fraction": 0.8,
        }
    )
    assert "left" not in text
    frac, text = progress_text(
        {
            "phase": "explain",
            "phase_index": 3,
            "phases": 4,
            "stage": "explaining sample test leads",
            "step": 0,
            "total": 1,
            "seconds_left": 0.0,
            "fraction": 0.92,
        }
    )
    assert frac == 0.92 and "Step 4 of 4: Explaining sample leads" in text and "left" not in text


# -- the journey ---------------------------------------------------------------------------------------
def test_journey_upload_train_see_metrics_and_board_link_then_delete(workspace):
    from engine.jobs import JobRunner
    from engine.runs import RunStore

    data = run_page("data")
    upload(data, "my_crm_export.csv", demo_leads_csv(n=300))
    ds = stored()["my_crm_export.csv"]
    assert data.selectbox(key="data_dataset").value == ds.sha and "ready to train" in texts(data.success)

    train = run_page("train")
    assert train.selectbox(key="train_dataset").value == ds.sha  # the upload is the dataset to train

    def small_stack(*names: str) -> None:  # the small stack's values typed into the page's number boxes
        for name in names:
            next(n for n in train.number_input if n.key.endswith(f"_stacking_{name}")).set_value(SMALL_STACK[name])
        train.run()

    small_stack("n_folds", "xgb_n_estimators", "rf_n_estimators", "meta_epochs")
    train.toggle(key="train_more_stacking").set_value(True).run()  # the other parameters
    small_stack("svc_max_rows", "explain_background", "explain_permutations")
    assert "cross-validation folds: 2" in texts(train.caption) and not train.warning
    train.button(key="train_launch").click().run()
    assert not train.exception and "queued" in texts(train.success)
    job_id = train.session_state["train_job"]
    job = JobRunner(workspace).wait(job_id, timeout=600, interval=0.5)
    assert job.state == "succeeded", job.error
    assert job.progress["fraction"] == 1.0 and job.progress["phase"] == "done"  # the bar at its end

    train.run()
    assert not train.exception and not train.error, texts(train.error)
    metrics = {m.label: m.value for m in train.metric}
    assert {"ROC-AUC", "Accuracy"} <= set(metrics)
    run = RunStore().get(job.run_id)
    assert metrics["ROC-AUC"] == f"{run.metrics['metrics']['roc_auc']['value']:.3f}"
    assert "95 % interval" in texts(train.caption)
    assert "See it on the metric board" in texts(train.markdown) or train.get("page_link")
    split = run.settings.split  # the board's group: the same file, split method, test share and seed
    expected = (run.settings.data_hash, "stratified holdout", None, split.test_size, split.seed)
    assert train.session_state["board_group"] == expected == run.settings.split_key
    assert train.session_state["board_focus_run"] == run.id

    data = run_page("data")
    data.selectbox(key="data_dataset").set_value(ds.sha).run()
    assert data.button(key="data_delete").disabled  # not before the confirmation
    data.checkbox(key=f"confirm_delete_{ds.sha}").check().run()
    data.button(key="data_delete").click().run()
    assert not data.exception and not data.error, texts(data.error)
    assert "Deleted" in texts(data.success) and ds.sha not in {d.sha for d in stored().values()}
    assert RunStore().get(run.id)  # the run stays

    # and the run goes from the Train page, after its confirmation
    train = run_page("train")
    train.selectbox(key="train_run_pick").set_value(run.id).run()
    train.checkbox(key=f"confirm_delete_run_{run.id}").check().run()
    train.button(key="train_delete_run").click().run()
    from dashboard.components.state import run_label

    assert not train.exception and f"Deleted run {run_label(run)}." in texts(train.success)  # its name, not its id
    assert RunStore().list_runs() == []
