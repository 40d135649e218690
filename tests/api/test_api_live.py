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
    assert client.get("/live").json() == {"version": 0, "live": {}}
    live.deploy(deployable(store, OLD), note="Monday")
    body = client.post("/predict/lead", json={"leads": lead}).json()
    assert body["run_id"] == OLD and body["version"] == 1
    got = client.get("/live").json()
    assert got["version"] == 1 and got["live"]["leads"]["run_id"] == OLD and got["live"]["leads"]["note"] == "Monday"
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
