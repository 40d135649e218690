"""FastAPI scoring service over the run store. Started by ``python -m engine serve`` (:func:`serve`).

Endpoints (JSON):

* ``GET /health`` — ``{"status": "ok", "runs": n}``; open without an API key.
* ``GET /models`` — the complete runs, newest first (id, approach, input kind, dataset, ROC-AUC).
* ``POST /predict/lead`` — body ``{"leads": {...} | [{...}, ...], "run_id": optional, "explain": false}``.
  Uses ``run_id`` or the newest lead run. Fields are the lead table's columns; missing ones are
  treated as missing values, unknown ones are listed in ``ignored_fields``.
* ``POST /predict/transcript`` — body ``{"transcripts": {"transcript": "...", "metadata": {...}} | [...] | "text",
  "run_id": optional, "explain": false}``. Uses ``run_id`` or the newest transcript run.

Each prediction: ``probability`` (of conversion), ``score`` (1-99), ``label`` (1 when probability >= the
run's threshold, 0.5 by default), ``tier`` (A-D, when the run stored its training-score quartiles) and,
with ``explain=true``, ``factors`` (top contributions in probability points).

Security and limits: when the environment variable ``CLAB_API_KEY`` is set, every endpoint but
``/health`` needs the header ``X-API-Key`` with that value (401 otherwise). Bodies larger than
``max_body_bytes``, batches larger than ``max_batch`` and transcripts longer than ``max_transcript_chars``
get 413. Invalid payloads get 422 with a readable ``message``. Models are loaded once per run
(``Run.load_approach()``) and cached.
"""
from __future__ import annotations

import os
import secrets
import threading
from typing import Any, Union

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

API_KEY_ENV = "CLAB_API_KEY"
MAX_BATCH = 500
MAX_TRANSCRIPT_CHARS = 200_000
MAX_BODY_BYTES = 10_000_000
TOP_FACTORS = 8


# -- payloads ------------------------------------------------------------------------------------
class TranscriptItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transcript: str = Field(..., min_length=1, description="the call text")
    metadata: dict[str, Any] = Field(default_factory=dict, description="industry, product, duration, ...")


class TranscriptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transcripts: Union[TranscriptItem, list[TranscriptItem], str] = Field(
        ..., description="one transcript (object or plain text) or a list of them")
    run_id: str | None = None
    explain: bool = False


class LeadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    leads: Union[dict[str, Any], list[dict[str, Any]]] = Field(..., description="one lead (field -> value) or a list")
    run_id: str | None = None
    explain: bool = False


class Factor(BaseModel):
    feature: str
    value: str
    contribution: float


class Prediction(BaseModel):
    probability: float
    score: int
    label: int
    tier: str | None = None
    factors: list[Factor] | None = None


class PredictionResponse(BaseModel):
    run_id: str
    approach: str
    threshold: float
    predictions: list[Prediction]
    ignored_fields: list[str] = Field(default_factory=list)


# -- helpers -------------------------------------------------------------------------------------
def _readable(errors: list[dict]) -> str:
    parts = []
    for err in errors[:10]:
        where = ".".join(str(p) for p in err.get("loc", []) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def _lead_frame(leads: list[dict], spec: dict) -> tuple[pd.DataFrame, list[str]]:
    columns = list(spec.get("columns") or [])
    kinds = spec.get("kinds") or {}
    known = set(columns)
    ignored = sorted({k for lead in leads for k in lead if k not in known})
    if columns and not any(k in known for lead in leads for k in lead):
        raise HTTPException(422, detail={"message": "None of the lead's fields are used by this run. Send fields "
                                                    f"named like its columns, e.g. {', '.join(columns[:8])}."})
    from engine.data.leads import prepare_features

    frame = pd.DataFrame(leads)
    if columns:
        frame = prepare_features(frame, columns, kinds)
    return frame, ignored


class _ModelCache:
    def __init__(self):
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, run):
        with self._lock:
            if run.id not in self._models:
                self._models[run.id] = run.load_approach()
            return self._models[run.id]


def create_app(store=None, max_batch: int = MAX_BATCH, max_transcript_chars: int = MAX_TRANSCRIPT_CHARS,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The scoring app over ``store`` (an :class:`engine.runs.RunStore`; the workspace's by default)."""
    from engine.runs import RunStore

    store = store or RunStore()
    cache = _ModelCache()
    app = FastAPI(title="Conversion Lab scoring API", version="1",
                  description="Scores leads and sales-call transcripts with the runs trained by Conversion Lab.")
    app.state.store = store
    app.state.cache = cache

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        return JSONResponse(status_code=422, content={
            "message": f"Invalid request: {_readable(errors)}. See GET /docs for the expected body.",
            "detail": [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]})

    @app.middleware("http")
    async def _limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return JSONResponse(status_code=413, content={
                "message": f"Request body is {int(length):,} bytes; the limit is {max_body_bytes:,}. "
                           "Send smaller batches."})
        return await call_next(request)

    def require_key(request: Request) -> None:
        expected = os.environ.get(API_KEY_ENV)
        if not expected:
            return
        given = request.headers.get("x-api-key", "")
        if not secrets.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(401, detail={"message": "Missing or wrong API key: send it in the X-API-Key header."})

    def pick_run(run_id: str | None, input_kind: str):
        if run_id:
            try:
                run = store.get(run_id)
            except KeyError:
                raise HTTPException(404, detail={"message": f"No run {run_id!r}. GET /models lists the runs."})
            if not run.complete:
                raise HTTPException(409, detail={"message": f"Run {run_id} is not complete yet (still training or failed)."})
            if run.spec.get("input_kind") != input_kind:
                raise HTTPException(422, detail={"message": f"Run {run_id} scores {run.spec.get('input_kind')}, "
                                                            f"not {input_kind}. Pick a {input_kind} run from GET /models."})
            return run
        run = store.latest(input_kind=input_kind)
        if run is None:
            raise HTTPException(404, detail={"message": f"No trained {input_kind} run yet. Train one with "
                                                        f"`python -m engine train {input_kind}`."})
        return run

    def respond(run, model, X: pd.DataFrame, explain: bool, ignored: list[str] | None = None) -> dict:
        from engine.evaluate import priority_tier, to_score

        metrics = run.metrics
        threshold = float(metrics.get("threshold", 0.5))
        proba = np.asarray(model.predict_proba(X))[:, 1]
        scores = to_score(proba)
        quartiles = metrics.get("train_score_quartiles")
        tiers = priority_tier(proba, quartiles) if quartiles else [None] * len(proba)
        factors: dict[int, list[dict]] = {}
        if explain:
            table = model.explain(X)
            for r, group in table.groupby("row"):
                top = group.reindex(group["contribution"].abs().sort_values(ascending=False).index).head(TOP_FACTORS)
                factors[int(r)] = [{"feature": f, "value": v, "contribution": float(c)}
                                   for f, v, c in zip(top["feature"], top["value"], top["contribution"])]
        predictions = [{"probability": float(p), "score": int(s), "label": int(p >= threshold),
                        "tier": None if t is None else str(t), "factors": factors.get(i, []) if explain else None}
                       for i, (p, s, t) in enumerate(zip(proba, scores, tiers))]
        return {"run_id": run.id, "approach": run.spec.get("approach", ""), "threshold": threshold,
                "predictions": predictions, "ignored_fields": ignored or []}

    def check_batch(n: int) -> None:
        if n == 0:
            raise HTTPException(422, detail={"message": "The batch is empty: send at least one item."})
        if n > max_batch:
            raise HTTPException(413, detail={"message": f"Batch of {n} items; the limit is {max_batch} per request. "
                                                        "Split it into smaller requests."})

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "runs": len(store.list_runs())}

    @app.get("/models", dependencies=[Depends(require_key)])
    def models() -> dict:
        out = []
        for run in store.list_runs():
            spec = run.spec
            roc = run.metrics.get("metrics", {}).get("roc_auc", {})
            out.append({"run_id": run.id, "approach": spec.get("approach"), "input_kind": spec.get("input_kind"),
                        "dataset": spec.get("dataset"), "created": spec.get("created"),
                        "roc_auc": roc.get("value") if isinstance(roc, dict) else roc})
        return {"models": out}

    @app.post("/predict/transcript", response_model=PredictionResponse, dependencies=[Depends(require_key)])
    def predict_transcript(body: TranscriptRequest) -> dict:
        items = body.transcripts
        if isinstance(items, str):
            items = [TranscriptItem(transcript=items)]
        elif isinstance(items, TranscriptItem):
            items = [items]
        check_batch(len(items))
        for i, item in enumerate(items):
            if len(item.transcript) > max_transcript_chars:
                raise HTTPException(413, detail={"message": f"Transcript {i} has {len(item.transcript):,} characters; "
                                                            f"the limit is {max_transcript_chars:,}."})
            if not item.transcript.strip():
                raise HTTPException(422, detail={"message": f"Transcript {i} is blank: send the call text."})
        run = pick_run(body.run_id, "transcripts")
        model = cache.get(run)
        from engine.data.transcripts import TranscriptDataError, load_transcripts

        try:
            table = load_transcripts([{"transcript": it.transcript, "metadata": it.metadata} for it in items],
                                     require_labels=False)
        except TranscriptDataError as exc:
            raise HTTPException(422, detail={"message": str(exc)})
        return respond(run, model, table.X, body.explain)

    @app.post("/predict/lead", response_model=PredictionResponse, dependencies=[Depends(require_key)])
    def predict_lead(body: LeadRequest) -> dict:
        leads = body.leads if isinstance(body.leads, list) else [body.leads]
        check_batch(len(leads))
        run = pick_run(body.run_id, "leads")
        model = cache.get(run)
        X, ignored = _lead_frame(leads, run.spec)
        return respond(run, model, X, body.explain, ignored)

    return app


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API with uvicorn (``python -m engine serve``)."""
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port)
