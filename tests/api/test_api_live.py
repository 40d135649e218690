"""The API scores with the live run (engine/live.py): GET /live, run_id and version in every answer, 503 when the
live run no longer loads or live.json is damaged, never a fall-back to another run."""

import json

import pytest
from fastapi.testclient import TestClient
from support import copy_run

from engine.api import create_app
from engine.live import LiveStore, deployable
from engine.runs import RunStore

OLD, NEW = "20260101T120000-stacking-aaaaaa", "20260102T120000-stacking-bbbbbb"


@pytest.fixture
def api(small_stack_run, tmp_path):
    run, leads = small_stack_run
    for run_id in (OLD, NEW):
        copy_run(run.path, tmp_path / "runs", run_id)
    store = RunStore(tmp_path / "runs")
    lead = json.loads(leads.drop(columns=["Converted"]).head(2).to_json(orient="records"))
    return TestClient(create_app(store, refresh_seconds=0)), store, LiveStore.beside(store), lead


def test_predictions_use_the_live_run_and_say_its_version(api):
    client, store, live, lead = api
    r = client.post("/predict/lead", json={"leads": lead})
    assert r.status_code == 200 and r.json()["run_id"] == NEW and r.json()["version"] is None  # nothing live yet
    assert client.get("/live").json() == {"format": 2, "version": 0, "live": {}}
    live.deploy(deployable(store, OLD), note="Monday")
    body = client.post("/predict/lead", json={"leads": lead}).json()
    assert body["run_id"] == OLD and body["version"] == 1 and body["family"] == "demo leads"
    got = client.get("/live").json()
    entry = got["live"]["leads"]["demo leads"]
    assert (
        got["version"] == 1 and entry["run_id"] == OLD and entry["note"] == "Monday" and entry["family"] == "demo leads"
    )
    named = client.post("/predict/lead", json={"leads": lead, "run_id": NEW}).json()
    assert named["run_id"] == NEW and named["version"] is None  # asked for by id, not the live one
    assert client.post("/predict/lead", json={"leads": lead, "run_id": OLD}).json()["version"] == 1


def test_a_live_run_that_no_longer_loads_is_a_503_naming_it(api):
    client, store, live, lead = api
    live.deploy(deployable(store, OLD))
    for f in (store.root / OLD / "model").iterdir():
        if f.is_file():
            f.write_bytes(b"garbage")
    r = client.post("/predict/lead", json={"leads": lead})
    assert r.status_code == 503 and f"the live leads run {OLD} cannot be used" in r.json()["message"]
    store.delete(OLD)
    r = client.post("/predict/lead", json={"leads": lead})
    assert r.status_code == 503 and "no longer in" in r.json()["message"]
    assert client.post("/predict/lead", json={"leads": lead, "run_id": NEW}).status_code == 200


def test_a_damaged_live_file_is_a_503_naming_it(api):
    client, store, live, lead = api
    live.live_path.write_text("[1, 2")
    for r in (client.post("/predict/lead", json={"leads": lead}), client.get("/live")):
        assert r.status_code == 503 and "live.json is not valid JSON" in r.json()["message"]
        assert "Fix: move live.json aside" in r.json()["message"]
    r = client.post("/predict/lead", json={"leads": lead, "run_id": NEW})
    assert r.status_code == 200 and r.json()["version"] is None
    assert client.get("/health").status_code == 200


OTHER = "20260103T120000-stacking-cccccc"


def _two_families(api):
    """OLD live for "demo leads", OTHER (a copy trained on the same rows, named "crm b") live for "crm b"."""
    client, store, live, lead = api
    folder = store.root / OTHER
    copy_run(store.root / OLD, store.root, OTHER)
    spec = json.loads((folder / "spec.json").read_text())
    (folder / "spec.json").write_text(json.dumps({**spec, "dataset": "crm b"}))
    live.deploy(deployable(store, OLD))
    live.deploy(deployable(store, OTHER))
    return client, lead


def test_two_live_families_need_a_family_and_each_answer_names_it(api):
    client, lead = _two_families(api)
    r = client.post("/predict/lead", json={"leads": lead})
    assert r.status_code == 400 and r.json()["families"] == ["crm b", "demo leads"]
    assert "'crm b', 'demo leads'" in r.json()["message"] and '"family"' in r.json()["message"]
    for family, run_id, version in (("crm b", OTHER, 2), ("demo leads", OLD, 1)):
        body = client.post("/predict/lead", json={"leads": lead, "family": family}).json()
        assert (body["run_id"], body["family"], body["version"]) == (run_id, family, version)
    named = client.post("/predict/lead", json={"leads": lead, "run_id": NEW}).json()  # not live: its family, no version
    assert (named["run_id"], named["family"], named["version"]) == (NEW, "demo leads", None)
    got = client.get("/live").json()["live"]["leads"]
    assert {f: e["run_id"] for f, e in got.items()} == {"crm b": OTHER, "demo leads": OLD}


@pytest.mark.parametrize(
    "family, status, said",
    [
        ("crm z", 404, "no live leads run of the dataset family 'crm z'; live leads families: 'crm b', 'demo leads'"),
        ("", 400, '"family" is empty'),
        ("x" * 10_000, 400, '"family" is 10,000 characters long'),
        ("crm\u0000b", 400, '"family" holds control characters'),
        ("calls", 404, "that family has a live transcripts run"),
        (7, 422, "family"),
    ],
)
def test_hostile_family_values_are_refused_with_the_fix(api, family, status, said):
    client, lead = _two_families(api)
    live = api[2]
    if family == "calls":
        state = json.loads(live.live_path.read_text())
        state["live"]["transcripts"] = {"calls": {"run_id": NEW, "family": "calls", "version": 3}}
        live.live_path.write_text(json.dumps(state))
    r = client.post("/predict/lead", json={"leads": lead, "family": family})
    assert r.status_code == status and said in r.json()["message"] and len(r.text) < 2_000
    both = client.post("/predict/lead", json={"leads": lead, "family": "crm b", "run_id": OLD})
    assert both.status_code == 400 and "not both" in both.json()["message"]
