"""The scoring API against real runs (the shipped MiniLM) in a temporary workspace."""

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from engine.api import create_app
from engine.approaches.embeddings import EmbeddingApproach
from engine.data.transcripts import load_transcripts
from engine.runs import RunStore

SHORT_CALLS = [
    (
        "Customer: We need this fixed this quarter and I own the budget. Agent: Shall we book the demo Friday? "
        "Customer: Yes, send the invite.",
        1,
    ),
    ("Customer: We're happy with what we have. Agent: Can I book a follow-up? Customer: Please don't.", 0),
]


def _store_run(store, model, spec, X, y):
    run = store.new_run(spec)
    run.save_model(model)
    proba = model.predict_proba(X)[:, 1]
    run.save_metrics(
        {
            "metrics": {"roc_auc": {"value": 1.0, "low": 1.0, "high": 1.0}},
            "train_score_quartiles": np.quantile(proba, [0.25, 0.5, 0.75]).tolist(),
        }
    )
    return run


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("ws") / "runs")
    # A transcript run: short demo-like calls (one chunk each) keep this quick.
    records = [
        {"transcript": t, "label": label, "metadata": {"industry": ["retail", "finance"][i % 2]}}
        for i in range(8)
        for t, label in SHORT_CALLS
    ]
    table = load_transcripts(records)
    model = EmbeddingApproach(fine_tune=False, C=1.0).fit(table.X, table.y)
    transcript_run = _store_run(
        store,
        model,
        {"approach": "embeddings", "input_kind": "transcripts", "dataset": "api test calls"},
        table.X,
        table.y,
    )
    # A lead run: the same approach on a lead table (rows serialized to text).
    rng = np.random.default_rng(0)
    leads = pd.DataFrame(
        {
            "Lead Source": rng.choice(["Google", "Referral"], 16),
            "Total Time Spent on Website": rng.integers(0, 2000, 16).astype(float),
        }
    )
    y = (leads["Lead Source"] == "Referral").astype(int).to_numpy().copy()
    y[:2] = 1 - y[:2]
    lead_model = EmbeddingApproach(fine_tune=False, C=1.0).fit(leads, y)
    lead_run = _store_run(
        store,
        lead_model,
        {
            "approach": "embeddings",
            "input_kind": "leads",
            "dataset": "api leads",
            "columns": list(leads.columns),
            "kinds": {"Lead Source": "categorical", "Total Time Spent on Website": "numeric"},
        },
        leads,
        y,
    )
    store.transcript_run, store.lead_run = transcript_run, lead_run
    return store


@pytest.fixture
def client(store, monkeypatch):
    monkeypatch.delenv("CLAB_API_KEY", raising=False)
    return TestClient(create_app(store, max_batch=5, max_transcript_chars=2000, max_body_bytes=50_000))


def test_health_and_models(client, store):
    assert client.get("/health").json() == {"status": "ok", "runs": 2, "skipped": 0}
    ids = {m["run_id"]: m for m in client.get("/models").json()["models"]}
    assert set(ids) == {store.transcript_run.id, store.lead_run.id}
    assert ids[store.lead_run.id]["input_kind"] == "leads"


def test_predict_transcript_one_and_batch(client, store):
    one = client.post(
        "/predict/transcript",
        json={"transcripts": {"transcript": SHORT_CALLS[0][0], "metadata": {"industry": "retail"}}},
    )
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["run_id"] == store.transcript_run.id and len(body["predictions"]) == 1
    p = body["predictions"][0]
    assert 0 <= p["probability"] <= 1 and 1 <= p["score"] <= 99 and p["label"] in (0, 1) and p["tier"] in "ABCD"
    batch = client.post(
        "/predict/transcript",
        json={
            "transcripts": [{"transcript": t} for t, _ in SHORT_CALLS],
            "run_id": store.transcript_run.id,
            "explain": True,
        },
    )
    assert batch.status_code == 200, batch.text
    preds = batch.json()["predictions"]
    assert len(preds) == 2 and preds[0]["probability"] > preds[1]["probability"]  # it learned these two calls
    assert preds[0]["factors"] and {"feature", "value", "contribution"} <= set(preds[0]["factors"][0])
    # the API returns what the stored model computes
    model = store.transcript_run.load_approach()
    expected = model.predict_proba(pd.DataFrame({"transcript": [t for t, _ in SHORT_CALLS]}))[:, 1]
    assert np.allclose([p["probability"] for p in preds], expected, atol=1e-6)
    text_only = client.post("/predict/transcript", json={"transcripts": SHORT_CALLS[1][0]})
    assert text_only.status_code == 200


def test_predict_lead(client, store):
    r = client.post(
        "/predict/lead",
        json={
            "leads": {"Lead Source": "Referral", "Total Time Spent on Website": "300", "Unknown": 1},
            "explain": True,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["run_id"] == store.lead_run.id and body["ignored_fields"] == ["Unknown"]
    assert body["predictions"][0]["factors"]
    many = client.post("/predict/lead", json={"leads": [{"Lead Source": "Google"}, {"Lead Source": "Referral"}]})
    assert many.status_code == 200 and len(many.json()["predictions"]) == 2
    wrong = client.post("/predict/lead", json={"leads": {"Colour": "red"}})
    assert wrong.status_code == 422 and "Lead Source" in wrong.json()["detail"]["message"]


def test_bad_payloads_get_422_with_a_message(client, store):
    for payload in (
        {"transcript": "missing the transcripts key"},
        {"transcripts": [{"metadata": {}}]},
        {"transcripts": {"transcript": ""}},
        {"transcripts": [], "explain": True},
    ):
        r = client.post("/predict/transcript", json=payload)
        assert r.status_code == 422, (payload, r.text)
        message = r.json().get("message") or r.json()["detail"]["message"]
        assert message
    r = client.post("/predict/transcript", json={"transcripts": "hi", "run_id": store.lead_run.id})
    assert r.status_code == 422 and "scores leads" in r.json()["detail"]["message"]
    assert client.post("/predict/transcript", json={"transcripts": "hi", "run_id": "nope"}).status_code == 404


def test_api_key_required_when_set(store, monkeypatch):
    monkeypatch.setenv("CLAB_API_KEY", "s3cret")
    client = TestClient(create_app(store))
    assert client.get("/health").status_code == 200
    assert client.get("/models").status_code == 401
    assert (
        client.post("/predict/transcript", json={"transcripts": "hi"}, headers={"X-API-Key": "wrong"}).status_code
        == 401
    )
    assert client.get("/models", headers={"X-API-Key": "s3cret"}).status_code == 200


def test_too_large_requests_get_413(client):
    too_many = client.post("/predict/transcript", json={"transcripts": [{"transcript": "call"}] * 6})
    assert too_many.status_code == 413 and "limit is 5" in too_many.json()["detail"]["message"]
    too_long = client.post("/predict/transcript", json={"transcripts": {"transcript": "x" * 2001}})
    assert too_long.status_code == 413
    too_big = client.post("/predict/transcript", json={"transcripts": {"transcript": "y" * 60_000}})
    assert too_big.status_code == 413 and "bytes" in too_big.json()["message"]


@pytest.mark.parametrize("key", [None, "s3cret"])
def test_a_loopback_server_without_a_key_answers_only_loopback_hosts(tmp_path, monkeypatch, key):
    """DNS rebinding: a page on evil.example that re-resolves its name to 127.0.0.1 reaches a loopback server
    with ``Host: evil.example``. Served on loopback without CLAB_API_KEY, such a request gets 400 and loopback
    names are answered; with a key set the key decides, as before (the rebound page does not know it)."""
    import uvicorn

    from engine import api

    if key:
        monkeypatch.setenv("CLAB_API_KEY", key)
    else:
        monkeypatch.delenv("CLAB_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # the default workspace of create_app(): an empty one here
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.append((app, kw)))
    api.serve("127.0.0.1", 8000)
    app = served[0][0]
    auth = {"X-API-Key": key} if key else {}
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", "localhost.evil.example:8000"):
        r = TestClient(app, base_url=f"http://{host}").get("/models", headers=auth)
        assert r.status_code == (200 if key else 400), (host, r.text)
    for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "127.0.0.2", "LOCALHOST"):
        assert TestClient(app, base_url=f"http://{host}").get("/models", headers=auth).status_code == 200, host
    if key:  # as before: no key, no models, whatever the host
        assert TestClient(app, base_url="http://127.0.0.1:8000").get("/models").status_code == 401
    api.serve("127.0.0.1", 8000, workers=2)  # each worker process builds the same loopback-only app
    assert served[1][0] == "engine.api:create_local_app" and served[1][1]["factory"]
    api.serve("0.0.0.0", 8000, no_auth=True)  # served beyond loopback: other names are expected
    assert TestClient(served[2][0], base_url="http://lab.example.com").get("/models", headers=auth).status_code == 200
