"""An attacker's pass over the scoring API (see docs/SECURITY.md): error answers never carry the server's own
paths, JSON bodies with a field given twice are refused, ``explain`` takes only true/false, and a run id with a
trailing line break is not one of the store's. One small real stack (trained once a session) copied per test."""

import json
import os

import pytest
from fastapi.testclient import TestClient
from support import store_with

from engine.api import create_app
from engine.live import LiveStore
from engine.runs import RUN_ID_PATTERN

LEAD = "/predict/lead"
MISSING = "20990101T000000-stacking-abcdef"


@pytest.fixture
def store(small_stack_run, tmp_path):
    return store_with(small_stack_run[0], tmp_path / "secret_ws" / "runs")


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("CLAB_API_KEY", raising=False)


def _post(client, body, raw: bool = False):
    content = body if raw else json.dumps(body)
    return client.post(LEAD, content=content, headers={"Content-Type": "application/json"})


def _no_server_path(r, store) -> None:
    text = r.text
    for root in {str(store.root.parent), str(store.root.parent.resolve())}:
        assert root not in text, f"the answer names the server's folder {root}: {text[:300]}"
    assert "Traceback" not in text


def test_an_unknown_run_id_is_a_404_that_does_not_name_the_servers_folder(store):
    r = _post(TestClient(create_app(store)), {"leads": {"TotalVisits": 1}, "run_id": MISSING})
    assert r.status_code == 404
    assert MISSING in r.json()["message"] and "GET /models" in r.json()["message"]
    _no_server_path(r, store)


def test_a_model_file_that_is_a_folder_is_a_409_without_the_servers_path(store):
    run = store.latest()
    approach_json = run.model_dir / "approach.json"
    approach_json.unlink()
    approach_json.mkdir()
    client = TestClient(create_app(store))
    r = _post(client, {"leads": {"TotalVisits": 1}, "run_id": run.id})
    assert r.status_code == 409 and run.id in r.json()["message"]
    _no_server_path(r, store)
    models = client.get("/models")
    assert models.status_code == 200
    _no_server_path(models, store)


@pytest.mark.parametrize("content", ["{not json", '{"format": 2, "version": 1, "live": {"leads": 5}}'])
def test_a_damaged_live_file_is_a_503_naming_it_without_the_servers_path(store, content):
    LiveStore.beside(store).live_path.write_text(content)
    client = TestClient(create_app(store))
    for r in (_post(client, {"leads": {"TotalVisits": 1}}), client.get("/live")):
        assert r.status_code == 503
        assert "live.json" in r.json()["message"] and "Fix:" in r.json()["message"]
        _no_server_path(r, store)


@pytest.mark.parametrize(
    "raw, key",
    [
        ('{"leads": {"TotalVisits": 1}, "run_id": null, "run_id": "%s"}', "run_id"),
        ('{"leads": {"TotalVisits": 1, "TotalVisits": "many"}}', "TotalVisits"),
        ('{"leads": [{"City": "a"}, {"City": "b", "City": "c"}]}', "City"),
        ('{"explain": false, "leads": {"TotalVisits": 1}, "explain": true}', "explain"),
    ],
)
def test_a_field_given_twice_is_a_422_naming_it(store, raw, key):
    raw = raw.replace("%s", store.latest().id)
    r = _post(TestClient(create_app(store)), raw, raw=True)
    assert r.status_code == 422, r.text[:300]
    message = r.json()["message"]
    assert repr(key) in message and "twice" in message


def test_a_transcript_body_with_a_field_given_twice_is_a_422(store):
    raw = '{"transcripts": {"transcript": "hello", "transcript": "bye"}}'
    r = TestClient(create_app(store)).post(
        "/predict/transcript", content=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422 and "'transcript'" in r.json()["message"]


@pytest.mark.parametrize("value", ["yes", "true", 1, "1", "on"])
def test_explain_takes_only_true_or_false(store, value):
    r = _post(TestClient(create_app(store)), {"leads": {"TotalVisits": 1}, "explain": value})
    assert r.status_code == 422 and "explain" in r.json()["message"]


def test_a_run_id_with_a_trailing_line_break_is_not_an_id(store):
    run = store.latest()
    assert RUN_ID_PATTERN.match(run.id)
    assert not RUN_ID_PATTERN.fullmatch(run.id + "\n")
    os.rename(run.path, store.root / (run.id + "\n"))  # planted under that name
    assert store.list_runs() == []
    r = _post(TestClient(create_app(store)), {"leads": {"TotalVisits": 1}, "run_id": run.id + "\n"})
    assert r.status_code == 404 and "a run id looks like" in r.json()["message"]
