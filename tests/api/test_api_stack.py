"""The scoring API over a real stored stack: a lead sent as JSON scores exactly as in training."""

import json

import numpy as np
from fastapi.testclient import TestClient

from engine.api import create_app
from engine.runs import RunStore


def test_lead_json_scores_like_the_stored_test_predictions(small_stack_run):
    run, leads = small_stack_run
    preds = run.predictions().head(5)
    # Raw rows as a CRM would send them: strings, 'Select', extra fields, no target.
    rows = leads.drop(columns=["Converted"]).iloc[preds["row_id"]].astype(object)
    payload = json.loads(rows.to_json(orient="records"))
    client = TestClient(create_app(RunStore(run.path.parent)))
    r = client.post("/predict/lead", json={"leads": payload, "run_id": run.id, "explain": True})
    assert r.status_code == 200, r.text
    body = r.json()
    got = np.array([p["probability"] for p in body["predictions"]])
    np.testing.assert_allclose(got, preds["proba"].to_numpy(), atol=1e-6)
    assert "Prospect ID" in body["ignored_fields"] and "Tags" in body["ignored_fields"]
    assert all(1 <= p["score"] <= 99 and p["tier"] in "ABCD" for p in body["predictions"])
    assert body["predictions"][0]["factors"]
