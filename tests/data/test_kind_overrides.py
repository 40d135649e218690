"""The user's column kinds on every path: load_leads, the typed training request, ``train leads --kind`` (hostile
values too), the dataset's stored setting (concurrent changes kept, the upload never touched) and the stack, which
must read a column as the user set it."""

from __future__ import annotations

import hashlib
import json
import threading

import pandas as pd
import pytest
from support import SMALL_STACK, cli_params
from text_tables import lead_table

from engine.cli import main
from engine.data.column_kinds import SETTABLE_KINDS, parse_kinds
from engine.data.leads import LeadDataError, load_leads
from engine.datasets import DatasetStore
from engine.jobspec import TrainSpec
from engine.runs import RunStore


@pytest.fixture(scope="module")
def crm_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("crm") / "crm_export.csv"
    lead_table(240, seed=2).to_csv(path, index=False)
    return path


def test_load_leads_applies_the_kinds_set(crm_csv):
    inferred = load_leads(crm_csv, target="label")
    assert inferred.kinds["City"] == "high_cardinality" and inferred.kinds_set == {}
    table = load_leads(crm_csv, target="label", kinds={"city": "TEXT", "Channel": "identifier"})
    assert table.kinds["City"] == "text" and "Channel" not in table.kinds  # spelled as the table spells it
    assert table.dropped["Channel"] == "identifier (set by the user)"
    assert table.kinds_set == {"City": "text", "Channel": "identifier"}
    assert table.summary()["kinds_set"] == table.kinds_set
    # a column the leak policy leaves out: said, not used
    left = load_leads(crm_csv, target="label", exclude=["City"], kinds={"City": "text"})
    assert left.kinds_set == {} and any("City: left out" in w for w in left.warnings)


@pytest.mark.parametrize(
    "kinds, words",
    [
        ({"Nope": "text"}, ["'Nope'", "not a column", "'City'", "Fix"]),
        ({"label": "text"}, ["'label'", "outcome"]),
        ({"Visits": "text"}, ["'Visits'", "numbers", "identifier only"]),
        ({"City": "numeric"}, ["'City'", "'numeric'", "text, categorical, high_cardinality, identifier"]),
        ({"City": "date"}, ["'date'", "Fix"]),
        ({"City": ""}, ["'City'", "Fix"]),
        ({"City": 3}, ["'City'", "'3'"]),
        ({"City": None}, ["'City'", "NoneType"]),
        ({"": "text"}, ["not a column name"]),
        ({"x" * 600: "text"}, ["not a column name"]),
        (["City=text"], ["mapping", "list"]),
        ("City=text", ["mapping", "str"]),
        ({f"c{i}": "text" for i in range(2001)}, ["2,001 columns"]),
    ],
)
def test_hostile_kinds_are_refused_by_name(crm_csv, kinds, words):
    with pytest.raises(LeadDataError) as caught:
        load_leads(crm_csv, target="label", kinds=kinds)
    for word in words:
        assert word in str(caught.value)


def test_numbers_can_be_set_to_identifier(crm_csv):
    table = load_leads(crm_csv, target="label", kinds={"Visits": "identifier"})
    assert "Visits" not in table.X.columns and table.dropped["Visits"].startswith("identifier")


def test_the_training_request_checks_kinds(crm_csv):
    spec = TrainSpec(input_kind="leads", data=str(crm_csv), target="label", kinds={"City": "Text"})
    assert spec.kinds == {"City": "text"} and spec.kinds_source == "request"
    assert TrainSpec.from_dict(json.loads(json.dumps(spec.to_dict()))).kinds == {"City": "text"}
    with pytest.raises(ValueError, match=r"'Nope' is not a column of the file \(its columns: 'Lead Ref', 'City'"):
        TrainSpec(input_kind="leads", data=str(crm_csv), kinds={"Nope": "text"})
    with pytest.raises(ValueError, match="one of text, categorical, high_cardinality, identifier"):
        TrainSpec(input_kind="leads", data=str(crm_csv), kinds={"City": "free text"})
    with pytest.raises(ValueError, match="kinds_source"):
        TrainSpec(input_kind="leads", data=str(crm_csv), kinds={"City": "text"}, kinds_source="elsewhere")
    with pytest.raises(ValueError, match="lead tables"):
        TrainSpec(input_kind="transcripts", kinds={"transcript": "text"})


@pytest.mark.parametrize(
    "flag, words",
    [
        ("City=bogus", ["--kind", "'bogus'", "text, categorical, high_cardinality, identifier", "'City'"]),
        ("City", ["'City' is not COLUMN=KIND"]),
        ("=text", ["'=text' is not COLUMN=KIND"]),
        ("Nope=text", ["'Nope' is not a column of the file"]),
        ("Visits=categorical", ["'Visits' holds numbers"]),
    ],
)
def test_cli_refuses_a_bad_kind_flag(crm_csv, workspace, capsys, flag, words):
    try:
        code = main(["train", "leads", "--data", str(crm_csv), "--target", "label", "--quiet", "--kind", flag])
    except SystemExit as exc:  # argparse's refusal
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())


def test_cli_kind_reaches_the_run_and_the_stack(crm_csv, workspace, capsys):
    flags = ["--kind", "City=text", "--kind", "Channel=identifier", *cli_params(SMALL_STACK)]
    assert main(["train", "leads", "--data", str(crm_csv), "--target", "label", "--quiet", *flags]) == 0
    (run,) = RunStore(workspace / "runs").list_runs()
    assert run.settings.kinds_set == {"City": "text", "Channel": "identifier"}
    assert run.settings.kinds_source == "request"
    assert run.settings.kinds["City"] == "text" and run.settings.kinds["Call transcript"] == "text"
    assert "Channel" not in run.settings.columns
    stored = json.loads((run.model_dir / "approach.json").read_text())
    assert stored["kinds"]["City"] == "text"  # the stack read the column as the user set it
    # a retrain of the run (retrain --live) trains with the same kinds, from the same source
    from engine.retrain import retrain_spec

    dataset = DatasetStore(workspace / "datasets").add(crm_csv, kind="leads", target="label")
    again = retrain_spec(run, dataset)
    assert again.kinds == {"City": "text", "Channel": "identifier"} and again.kinds_source == "request"


def test_dataset_kinds_setting_is_saved_beside_the_untouched_upload(crm_csv, tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    raw = crm_csv.read_bytes()
    ds = store.add(raw, filename="crm_export.csv", kind="leads", target="label")
    assert ds.kinds == {}
    assert store.set_kind(ds.sha, "City", "text") == {"City": "text"}
    assert store.set_kind(ds.sha, "Channel", "identifier") == {"City": "text", "Channel": "identifier"}
    assert store.set_kind(ds.sha, "City", None) == {"Channel": "identifier"}  # back to the inferred kind
    assert hashlib.sha256(ds.raw_path.read_bytes()).hexdigest() == ds.sha == hashlib.sha256(raw).hexdigest()
    with pytest.raises(ValueError, match="one of text, categorical"):
        store.set_kind(ds.sha, "City", "numeric")
    with pytest.raises(ValueError, match="kinds"):
        store.update(ds.sha, kinds={"City": ["text"]})
    assert store.get(ds.sha).kinds == {"Channel": "identifier"}
    # a hand-edited meta.json: named, with the fix, never used
    meta = json.loads((ds.path / "meta.json").read_text())
    (ds.path / "meta.json").write_text(json.dumps({**meta, "kinds": {"City": "sentence"}}))
    with pytest.raises(ValueError, match="Data page"):
        _ = store.get(ds.sha).kinds


def test_concurrent_kind_changes_are_all_kept(crm_csv, tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    ds = store.add(crm_csv, kind="leads", target="label")
    columns = [f"col {i}" for i in range(16)]
    start = threading.Barrier(len(columns))
    errors = []

    def change(column: str, kind: str) -> None:
        try:
            start.wait()
            DatasetStore(store.root).set_kind(ds.sha, column, kind)
        except Exception as exc:  # noqa: BLE001 - collected, asserted below
            errors.append(exc)

    threads = [
        threading.Thread(target=change, args=(c, SETTABLE_KINDS[i % len(SETTABLE_KINDS)]))
        for i, c in enumerate(columns)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.get(ds.sha).kinds == {c: SETTABLE_KINDS[i % len(SETTABLE_KINDS)] for i, c in enumerate(columns)}


def test_parse_kinds_normalises():
    assert parse_kinds(None) == {} and parse_kinds({" City ": " High_Cardinality "}) == {" City ": "high_cardinality"}
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(LeadDataError):
        parse_kinds({"a": frame})
