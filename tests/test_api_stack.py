"""The scoring API over a real stored stack: a lead sent as JSON scores exactly as in training."""

import json

import numpy as np
from fastapi.testclient import TestClient

from engine import pipeline
from engine.api import create_app
from engine.data.demo import demo_leads
from engine.runs import RunStore

FAST = {"n_folds": 2, "rf_n_estimators": 20, "xgb_n_estimators": 30, "meta_epochs": 5, "svc_max_rows": 200, "n_jobs": 1}


def test_lead_json_scores_like_the_stored_test_predictions(workspace):
    leads = demo_leads(n=400, seed=5)
    run = pipeline.train_leads(leads, params=FAST, dataset_name="api test")
    preds = run.predictions().head(5)
    # Raw rows as a CRM would send them: strings, 'Select', extra fields, no target.
    rows = leads.drop(columns=["Converted"]).iloc[preds["row_id"]].astype(object)
    payload = json.loads(rows.to_json(orient="records"))
    client = TestClient(create_app(RunStore()))
    r = client.post("/predict/lead", json={"leads": payload, "run_id": run.id, "explain": True})
    assert r.status_code == 200, r.text
    body = r.json()
    got = np.array([p["probability"] for p in body["predictions"]])
    np.testing.assert_allclose(got, preds["proba"].to_numpy(), atol=1e-6)
    assert "Prospect ID" in body["ignored_fields"] and "Tags" in body["ignored_fields"]
    assert all(1 <= p["score"] <= 99 and p["tier"] in "ABCD" for p in body["predictions"])
    assert body["predictions"][0]["factors"]
