"""FastAPI scoring service over the run store. Started by ``python -m engine serve`` (:func:`serve`).

Endpoints (JSON):

* ``GET /health`` — ``{"status": "ok", "runs": n, "skipped": k}`` (``k`` run folders that cannot be used);
  open without an API key.
* ``GET /models`` — the complete runs, newest first (id, approach, input kind, dataset, ROC-AUC), and
  ``skipped``: ``[{"run_id", "problem"}]`` for the damaged run folders that are left out.
* ``POST /predict/lead`` — body ``{"leads": {...} | [{...}, ...], "run_id": optional, "explain": false}``.
  Uses ``run_id``, else the live lead run (:mod:`engine.live`; 503 naming it when it no longer loads), else the
  newest lead run whose model loads. Fields are the lead table's columns; values are
  text, numbers, true/false or null; missing fields are treated as missing values, unknown ones are listed
  in ``ignored_fields``.
* ``POST /predict/transcript`` — body ``{"transcripts": {"transcript": "...", "metadata": {...}} | [...] | "text",
  "run_id": optional, "explain": false}``. Uses ``run_id``, else the live transcript run, else the newest that loads.
* ``GET /live`` — the live run of each input kind with its ``version``. Every prediction answer carries the
  ``run_id`` it used and ``version``: the live version when that run is the live one, else null.

Each prediction: ``probability`` (of conversion), ``score`` (1-99), ``label`` (1 when probability >= 0.5: runs
store no threshold of their own; the board's threshold tools are for choosing one), ``tier`` (A-D: the quarter of
the run's training scores) and, with ``explain=true``, ``reasons_for`` / ``reasons_against`` (the scoring
service's texts) and ``factors`` (the largest contributions in probability points). Explanations stop when the
client disconnects (499) or after ``explain_seconds`` (:data:`EXPLAIN_SECONDS`): the rest keep their scores
without reasons, and ``explained`` / ``notes`` say so. ``serve`` refuses a non-loopback address without
``CLAB_API_KEY`` unless ``no_auth`` (:func:`check_exposure`); on loopback without it, only loopback ``Host``
names are answered (DNS rebinding; :mod:`engine.api_hosts`).

Security and limits (the checks run in this order):

1. **API key** — when the environment variable ``CLAB_API_KEY`` is set, every path but ``/health`` and the
   documentation (``/docs``, ``/redoc``, ``/openapi.json``) needs the header ``X-API-Key`` with that value:
   401 otherwise, answered before a byte of the body is read.
2. **Body size** — at most ``max_body_bytes`` (:data:`MAX_BODY_BYTES`, 10 MB), counted as the bytes arrive
   (chunked bodies without ``Content-Length`` too): 413 as soon as the count passes it.
3. **Body shape** — anything that is not the documented JSON (malformed or non-standard JSON such as
   ``NaN``, numbers out of range, nesting deeper than Python parses, lead values that are objects or
   lists, blank transcripts, unknown keys) gets 422 naming the field.
4. **Batch limits** — at most ``max_batch`` (:data:`MAX_BATCH`) items, counted as the list is read: 413 at
   item ``max_batch + 1``, before the rest of the body is parsed or any item checked
   (:func:`engine.api_body.parse_body`; step 3 runs on the items of a batch within the cap); transcripts of at most
   ``max_transcript_chars`` characters, and with ``explain=true`` at most :data:`MAX_EXPLAIN_LEADS` leads or
   :data:`MAX_EXPLAIN_TRANSCRIPTS` transcripts (an explanation costs ~0.7 s of CPU a lead): 413 naming the cap.
5. **Run ids** — ``run_id`` goes through :meth:`engine.runs.RunStore.get`: only the store's own ids of
   folders inside the store are accepted (404 for any other text: absolute paths, ``..``); a damaged run
   gets 409 naming its problem.

Every error body has a readable ``message`` (also under ``detail``); a 422 lists at most 10 errors (``detail``)
and counts them all (``errors``). Every answer is strict JSON (never ``NaN``). Models are loaded once per run
(``Run.load_approach()``) into a cache of at most ``max_models`` (:data:`MAX_CACHED_MODELS`) models, least
recently used first out. Runs never change after they complete, so each run's spec and metrics are read
once; the run list is re-read when the runs folder changes (checked at most every ``refresh_seconds``).
"""

from __future__ import annotations

import gc
import json
import math
import os
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.api_body import Guard, StrictJSONResponse, invalid, message_body, parse_body
from engine.api_catalog import Catalog
from engine.api_hosts import is_loopback
from engine.runspec import RunSpec

API_KEY_ENV = "CLAB_API_KEY"
MAX_BATCH = 500
MAX_TRANSCRIPT_CHARS = 200_000
MAX_BODY_BYTES = 10_000_000
#: Most leads / transcripts one ``explain=true`` request may ask explanations for.
MAX_EXPLAIN_LEADS = 20
MAX_EXPLAIN_TRANSCRIPTS = 5
#: Seconds of explaining one request may take; rows past it are scored without reasons (said in ``notes``).
EXPLAIN_SECONDS = 20.0
#: Most models kept loaded at once (least recently used goes first).
MAX_CACHED_MODELS = 4
#: Seconds between looks at the runs folder for new, finished or removed runs.
REFRESH_SECONDS = 1.0
TOP_FACTORS = 8
#: Paths that answer without the API key.
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})

Scalar = str | int | float | bool | None


# -- payloads ------------------------------------------------------------------------------------
def _check_scalars(values: Any, where: str) -> None:
    """Raise ValueError naming ``where.<field>`` unless ``values`` maps names to text, finite numbers,
    true/false or null."""
    if not isinstance(values, dict):
        raise ValueError(f"{where} must be an object of field -> value, not {_json_type(values)}")
    for key, value in values.items():
        if value is None or isinstance(value, (str, bool)):
            continue
        if isinstance(value, int):
            try:
                float(value)
            except OverflowError:
                raise ValueError(
                    f"{where}.{key}: the number has {len(str(value)):,} digits, beyond the range "
                    "of a number; send it as text or a smaller number"
                ) from None
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"{where}.{key}: the number is out of range")
            continue
        raise ValueError(f"{where}.{key}: a value must be text, a number, true/false or null, not {_json_type(value)}")


def _json_type(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


class TranscriptItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transcript: str = Field(..., min_length=1, description="the call text")
    metadata: dict[str, Scalar] = Field(default_factory=dict, description="industry, product, duration, ...")

    @field_validator("transcript")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("the transcript is blank: send the call text")
        return text

    @field_validator("metadata", mode="before")
    @classmethod
    def _scalar_metadata(cls, values: Any) -> Any:
        """The files' rule (engine.data.transcripts.flatten_metadata): nested objects become dotted fields, lists
        of plain values one text; deeper nesting is refused naming the field."""
        from engine.data.transcripts import TranscriptDataError, flatten_metadata

        if isinstance(values, dict):
            try:
                values = flatten_metadata(values)
            except TranscriptDataError as exc:
                raise ValueError(str(exc)) from None
        _check_scalars(values, "metadata")
        return values


class TranscriptRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transcripts: list[TranscriptItem] = Field(
        ..., description="one transcript (an object, or the plain text) or a list of them"
    )
    run_id: str | None = None
    explain: bool = False

    @field_validator("transcripts", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("the transcript is blank: send the call text")
            return [{"transcript": value}]
        if isinstance(value, list):
            return [{"transcript": item} if isinstance(item, str) else item for item in value]
        return [value] if isinstance(value, dict) else value


class LeadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    leads: list[dict[str, Scalar]] = Field(..., description="one lead (an object of field -> value) or a list")
    run_id: str | None = None
    explain: bool = False

    @field_validator("leads", mode="before")
    @classmethod
    def _as_list(cls, value: Any) -> Any:
        leads = [value] if isinstance(value, dict) else value
        if not isinstance(leads, list):
            raise ValueError(f"leads must be one lead (an object) or a list of them, not {_json_type(value)}")
        for i, lead in enumerate(leads):
            _check_scalars(lead, f"leads[{i}]" if isinstance(value, list) else "leads")
        return leads


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
    reasons_for: list[str] | None = None
    reasons_against: list[str] | None = None


class PredictionResponse(BaseModel):
    run_id: str
    version: int | None = Field(None, description="the live version when the run is the live one, else null")
    approach: str
    threshold: float
    predictions: list[Prediction]
    ignored_fields: list[str] = Field(default_factory=list)
    explained: int | None = Field(None, description="with explain=true: the items that got reasons")
    notes: list[str] = Field(default_factory=list, description="e.g. explanations stopped at the time budget")


# -- helpers -------------------------------------------------------------------------------------
def _single_lead_frame(lead: dict, columns: list[str], kinds: dict[str, str]) -> pd.DataFrame:
    """``prepare_features(pd.DataFrame([lead]), columns, kinds)`` for one lead of JSON scalars, cell by cell
    (the same rules; ~40 times faster than the column-wise version on one row, which is what a single-lead
    request pays for). ``tests/api/test_api_hostile.py`` checks it equals ``prepare_features`` on every demo lead
    and on hostile values."""
    from engine.data.leads import _as_number, is_missing_text

    cells: dict[str, Any] = {}
    for col in columns:
        value, kind = lead.get(col), kinds.get(col)
        if value is None:  # an all-missing column
            cells[col] = np.array([np.nan]) if kind == "numeric" else pd.array([np.nan], dtype="str")
            continue
        text = str(value).strip()
        text = None if is_missing_text(text) else text
        number = None if text is None else _as_number(text)
        if kind == "numeric" or (kind == "binary" and (number is not None or text is None)):
            cells[col] = np.array([np.nan if number is None else float(number)])
        else:
            cells[col] = pd.array([np.nan if text is None else text], dtype="str")
    return pd.DataFrame(cells, index=range(1))


def _lead_frame(leads: list[dict], settings: RunSpec) -> tuple[pd.DataFrame, list[str]]:
    from engine.data.leads import prepare_features, treat_missing

    columns, kinds = settings.columns, settings.kinds
    # numbers the run reads as missing (checked when the run was loaded: a damaged setting is a run the store
    # refuses, a 409 naming it), with their flag columns (made here, never taken from the client)
    missing_values, flags = settings.missing_values, settings.flags
    known = set(columns) - set(flags)
    ignored = sorted({k for lead in leads for k in lead if k not in known})
    if columns and not any(k in known for lead in leads for k in lead):
        raise HTTPException(
            422,
            detail={
                "message": "None of the lead's fields are used by this run. Send fields "
                f"named like its columns, e.g. {', '.join([c for c in columns if c not in flags][:8])}."
            },
        )
    if columns and len(leads) == 1:
        return treat_missing(_single_lead_frame(leads[0], columns, kinds), missing_values, columns), ignored
    frame = pd.DataFrame(leads)
    if columns:
        frame = prepare_features(frame, columns, kinds, missing_values)
    return frame, ignored


class _Batcher:
    """Scores the requests that arrive for one model while it is busy as one batch (no waiting when it is
    idle): the first request in scores its rows; the ones that come meanwhile queue, and the next of them
    scores all queued rows at once. A stack scores 16 rows in about the time it scores one, so under many
    concurrent clients the model's cost per request falls to a fraction. One batch runs at a time."""

    def __init__(self, score):
        self._score = score  # frame of rows -> list of per-row results, in order
        self._cv = threading.Condition()
        self._pending: list[dict] = []
        self._busy = False

    def __call__(self, X: pd.DataFrame) -> list:
        slot = {"X": X, "done": False, "out": None, "error": None}
        with self._cv:
            self._pending.append(slot)
            while not slot["done"] and self._busy:
                self._cv.wait()
            if slot["done"]:
                return self._result(slot)
            self._busy = True  # this request leads the next batch: every queued slot, its own among them
            batch, self._pending = self._pending, []
        try:
            frame = batch[0]["X"] if len(batch) == 1 else pd.concat([b["X"] for b in batch], ignore_index=True)
            out = self._score(frame)
            start = 0
            for b in batch:
                b["out"], start = out[start : start + len(b["X"])], start + len(b["X"])
        except Exception as exc:  # noqa: BLE001 - every request of the batch gets the error
            for b in batch:
                b["error"] = exc
        finally:
            with self._cv:
                for b in batch:
                    b["done"] = True
                self._busy = False
                self._cv.notify_all()
        return self._result(slot)

    @staticmethod
    def _result(slot: dict) -> list:
        if slot["error"] is not None:
            raise slot["error"]
        return slot["out"]


class _Loaded:
    """A cached model, the lock its scoring runs under (one model scores one batch at a time) and the batcher
    that gathers concurrent requests into one batch."""

    def __init__(self, model):
        self.model = model
        self.lock = threading.Lock()
        self.batchers: dict[str, _Batcher] = {}

    def batcher(self, key: str, score) -> _Batcher:
        with self.lock:
            if key not in self.batchers:
                self.batchers[key] = _Batcher(score)
            return self.batchers[key]


_GC_LOCK = threading.Lock()


def _refreeze() -> None:
    """After a model load: collect, then freeze what is left. A loaded model is hundreds of thousands of
    long-lived objects; frozen (``gc.freeze``), the collector's full passes skip them, which otherwise stall
    every request now and then (the latency tail). Frozen objects are never collected, though, and a model
    is full of reference cycles: so everything is unfrozen first and the evicted models (and any model
    evicted while a request still held it, at a later load) are collected before the rest is frozen again.
    Costs one full collection a load (tens of ms), none per request."""
    with _GC_LOCK:
        gc.unfreeze()
        gc.collect()
        gc.freeze()


class _ModelCache:
    """Loaded models by run id: at most ``max_models``, the least recently used evicted first. A model
    is loaded once even when several requests ask for it together."""

    def __init__(self, max_models: int = MAX_CACHED_MODELS):
        if max_models < 1:
            raise ValueError("max_models must be at least 1")
        self.max_models = max_models
        self._models: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._models)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def entry(self, run) -> _Loaded:
        with self._lock:
            if run.id in self._models:
                self._models.move_to_end(run.id)
                return self._models[run.id]
            loading = self._loading.setdefault(run.id, threading.Lock())
        with loading:
            with self._lock:
                if run.id in self._models:
                    return self._models[run.id]
            loaded = _Loaded(run.load_approach())  # raises BrokenRun for damaged model files
            with self._lock:
                self._models[run.id] = loaded
                self._models.move_to_end(run.id)
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
                self._loading.pop(run.id, None)
            _refreeze()
            return loaded

    def get(self, run):
        """The run's fitted approach (loaded now or taken from the cache)."""
        return self.entry(run).model


async def _watching(request: Request, work, body) -> Response:
    """``work(body, stop)`` in the thread pool; for an explained request, ``stop`` (a threading.Event) is set
    as soon as the client disconnects, so the explanations stop instead of running on for nobody."""
    if not getattr(body, "explain", False):
        return await run_in_threadpool(work, body)
    import asyncio

    stop = threading.Event()

    async def watch() -> None:
        while not stop.is_set():
            if await request.is_disconnected():
                stop.set()
                return
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch())
    try:
        return await run_in_threadpool(work, body, stop)
    finally:
        stop.set()
        watcher.cancel()


def _body_schema(app: FastAPI, model: type[BaseModel]) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    app.state.extra_schemas.update(schema.pop("$defs", {}))
    app.state.extra_schemas[model.__name__] = schema
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def create_app(
    store=None,
    max_batch: int = MAX_BATCH,
    max_transcript_chars: int = MAX_TRANSCRIPT_CHARS,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_models: int = MAX_CACHED_MODELS,
    refresh_seconds: float = REFRESH_SECONDS,
    serialize_scoring: bool = True,
    explain_seconds: float = EXPLAIN_SECONDS,
    local_only: bool = False,
) -> FastAPI:
    """The scoring app over ``store`` (an :class:`engine.runs.RunStore`; the workspace's by default), behind
    :class:`_Guard`; ``app.state`` holds the ``store``, the model ``cache`` and the run ``catalog``.
    ``serialize_scoring`` scores one batch at a time per model (a lock per model):
    on few cores that keeps the tail latency low under many concurrent clients. ``local_only`` (a loopback
    server): while no API key is set, requests whose Host is not loopback get 400 (DNS rebinding)."""
    from engine.live import LiveFileProblem, LiveRunUnusable, LiveStore
    from engine.runs import BrokenRun, RunStore

    store = store or RunStore()
    live = LiveStore.beside(store)
    cache = _ModelCache(max_models)
    catalog = Catalog(store, cache, refresh_seconds)
    api = FastAPI(
        title="Conversion Lab scoring API",
        version="1",
        description="Scores leads and sales-call transcripts with the runs trained by Conversion Lab.",
        default_response_class=StrictJSONResponse,
    )
    api.state.store, api.state.cache, api.state.catalog, api.state.extra_schemas = store, cache, catalog, {}

    def openapi() -> dict:
        if not api.openapi_schema:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(api.state.extra_schemas)
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi

    @api.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return invalid(list(exc.errors()))

    @api.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        message = exc.detail.get("message") if isinstance(exc.detail, dict) else str(exc.detail)
        return StrictJSONResponse(
            status_code=exc.status_code,
            content=message_body(message),
            headers=getattr(exc, "headers", None),
        )

    def live_entry(input_kind: str) -> dict | None:
        try:
            return live.live(input_kind)
        except LiveFileProblem as exc:
            raise HTTPException(503, detail={"message": str(exc)}) from None

    def pick_run(run_id: str | None, input_kind: str):
        """``(run, _Loaded, live version or None)`` for ``run_id``, else the live run of ``input_kind`` (503 when it
        no longer loads: never another run instead), else the newest loadable one."""
        entry = live_entry(input_kind) if not run_id else None
        if entry is not None:
            catalog.refresh()
            try:
                run = catalog.runs.get(entry["run_id"]) or live.live_run(store, input_kind)[0]
                return run, cache.entry(run), entry["version"]
            except BrokenRun as exc:
                message = str(LiveRunUnusable(input_kind, entry["run_id"], exc.problem))
                raise HTTPException(503, detail={"message": message}) from None
            except LiveRunUnusable as exc:
                raise HTTPException(503, detail={"message": str(exc)}) from None
        if not run_id:
            found = catalog.latest(input_kind)
            if found is None:
                raise HTTPException(
                    404,
                    detail={
                        "message": f"No trained {input_kind} run that loads. Train one "
                        f"with `python -m engine train {input_kind}`."
                    },
                )
            return (*found, None)
        catalog.refresh()
        run = catalog.runs.get(run_id)
        if run is None:  # not a usable finished run: let the store say why (and check the id)
            try:
                run = store.get(run_id)
            except KeyError as exc:
                raise HTTPException(404, detail={"message": f"{exc.args[0]}. GET /models lists the runs."}) from None
            except BrokenRun as exc:
                raise HTTPException(
                    409,
                    detail={
                        "message": f"Run {run_id} cannot be used: {exc.problem}. Pick another run from GET /models."
                    },
                ) from None
            if not run.complete:
                raise HTTPException(
                    409, detail={"message": f"Run {run_id} is not complete yet (still training or failed)."}
                )
        if run.settings.input_kind != input_kind:
            raise HTTPException(
                422,
                detail={
                    "message": f"Run {run_id} scores {run.settings.input_kind}, "
                    f"not {input_kind}. Pick a {input_kind} run from GET /models."
                },
            )
        try:
            entry = live.live(input_kind)
        except LiveFileProblem:  # the run was named: a damaged live file only means its version is unknown
            entry = None
        try:
            return run, cache.entry(run), entry["version"] if entry and entry["run_id"] == run.id else None
        except BrokenRun as exc:
            raise HTTPException(
                409,
                detail={"message": f"Run {run_id} cannot be used: {exc.problem}. Pick another run from GET /models."},
            ) from None

    def respond(
        run,
        loaded: _Loaded,
        X: pd.DataFrame,
        explain: bool,
        ignored: list[str] | None = None,
        stop=None,
        version: int | None = None,
    ) -> Response:
        """Scores through :func:`engine.scoring.predict_rows`: the CLI's and the dashboard's numbers. With
        ``explain``, rows are explained one by one until ``explain_seconds`` have passed (the rest keep their
        scores, without reasons, said in ``notes``) or ``stop`` (a threading.Event: the client has gone) is set."""
        from engine.scoring import ScoringError, predict_rows

        metrics = catalog.metrics.get(run.id)
        if metrics is None:
            metrics = run.metrics
        threshold = 0.5  # runs store no threshold of their own
        lock = loaded.lock if serialize_scoring else None
        notes: list[str] = []
        try:
            if serialize_scoring and not explain:  # concurrent requests for one model scored as one batch
                batcher = loaded.batcher(run.id, lambda frame: predict_rows(run, loaded.model, frame, metrics=metrics))
                predictions = batcher(X)
            else:
                predictions = predict_rows(run, loaded.model, X, metrics=metrics, lock=lock)
            explained, deadline = 0, time.monotonic() + explain_seconds
            for i in range(len(X) if explain else 0):
                if stop is not None and stop.is_set():
                    message = f"The client disconnected: explanations stopped after {explained} of {len(X)}."
                    return StrictJSONResponse(message_body(message), status_code=499)
                if time.monotonic() >= deadline:
                    notes.append(
                        f"Explanations stopped at the time budget of {explain_seconds:g} s: {explained} of "
                        f"{len(X)} explained; the rest are scored without reasons. Send fewer per request."
                    )
                    break
                row = predict_rows(
                    run,
                    loaded.model,
                    X.iloc[i : i + 1],
                    explain=True,
                    metrics=metrics,
                    lock=lock,
                    n_factors=TOP_FACTORS,
                )[0]
                predictions[i].update({k: row[k] for k in ("reasons_for", "reasons_against", "factors")})
                explained += 1
        except ScoringError as exc:
            raise HTTPException(422, detail={"message": str(exc)}) from None
        for p in predictions:
            p["label"] = int(p["probability"] >= threshold)
            p.setdefault("factors", None)
            if explain:
                p.setdefault("reasons_for", None)
                p.setdefault("reasons_against", None)
        payload = {
            "run_id": run.id,
            "version": version,
            "approach": run.settings.approach,
            "threshold": threshold,
            "predictions": predictions,
            "ignored_fields": ignored or [],
            "explained": explained if explain else None,
            "notes": notes,
        }
        return Response(json.dumps(payload, allow_nan=False).encode(), media_type="application/json")

    def check_batch(n: int, explain: bool, explain_cap: int, what: str) -> None:
        if n == 0:
            raise HTTPException(422, detail={"message": "The batch is empty: send at least one item."})
        if n > max_batch:
            raise HTTPException(
                413,
                detail={
                    "message": f"Batch of {n} items; the limit is {max_batch} per request. "
                    "Split it into smaller requests."
                },
            )
        if explain and n > explain_cap:
            raise HTTPException(
                413,
                detail={
                    "message": f"explain=true for {n} {what}; the limit is {explain_cap} "
                    f"{what} per request with explanations (each costs seconds "
                    "of CPU). Split the batch or leave explain off."
                },
            )

    @api.get("/health")
    def health() -> dict:
        catalog.refresh()
        return {"status": "ok", "runs": len(catalog.runs), "skipped": len(catalog.skipped)}

    @api.get("/models")
    def models() -> dict:
        catalog.refresh()
        out = []
        for run in catalog.runs.values():
            settings = run.settings
            roc = catalog.metrics[run.id].get("metrics", {}).get("roc_auc", {})
            out.append(
                {
                    "run_id": run.id,
                    "approach": settings.approach,
                    "input_kind": settings.input_kind,
                    "dataset": settings.dataset,
                    "created": settings.created,
                    "roc_auc": roc.get("value") if isinstance(roc, dict) else roc,
                }
            )
        return {"models": out, "skipped": list(catalog.skipped)}

    @api.get("/live")
    def live_runs() -> dict:
        """The live run of each input kind (``run_id``, ``version``, ``time``, ``by``, ``note``) and the version."""
        try:
            state = live.state()
        except LiveFileProblem as exc:
            raise HTTPException(503, detail={"message": str(exc)}) from None
        return {"version": state["version"], "live": state["live"]}

    def score_transcripts(body: TranscriptRequest, stop=None) -> Response:
        items = body.transcripts
        check_batch(len(items), body.explain, MAX_EXPLAIN_TRANSCRIPTS, "transcripts")
        for i, item in enumerate(items):
            if len(item.transcript) > max_transcript_chars:
                raise HTTPException(
                    413,
                    detail={
                        "message": f"Transcript {i} has {len(item.transcript):,} characters; "
                        f"the limit is {max_transcript_chars:,}."
                    },
                )
        run, loaded, version = pick_run(body.run_id, "transcripts")
        from engine.data.transcripts import TranscriptDataError, load_transcripts

        try:
            table = load_transcripts(
                [{"transcript": it.transcript, "metadata": it.metadata} for it in items], require_labels=False
            )
        except TranscriptDataError as exc:
            raise HTTPException(422, detail={"message": str(exc)}) from None
        return respond(run, loaded, table.X, body.explain, stop=stop, version=version)

    def score_leads(body: LeadRequest, stop=None) -> Response:
        leads = body.leads
        check_batch(len(leads), body.explain, MAX_EXPLAIN_LEADS, "leads")
        run, loaded, version = pick_run(body.run_id, "leads")
        X, ignored = _lead_frame(leads, run.settings)
        return respond(run, loaded, X, body.explain, ignored, stop=stop, version=version)

    @api.post(
        "/predict/transcript", response_model=PredictionResponse, openapi_extra=_body_schema(api, TranscriptRequest)
    )
    async def predict_transcript(request: Request):
        body = await run_in_threadpool(parse_body, await request.body(), TranscriptRequest, "transcripts", max_batch)
        return body if isinstance(body, Response) else await _watching(request, score_transcripts, body)

    @api.post("/predict/lead", response_model=PredictionResponse, openapi_extra=_body_schema(api, LeadRequest))
    async def predict_lead(request: Request):
        body = await run_in_threadpool(parse_body, await request.body(), LeadRequest, "leads", max_batch)
        return body if isinstance(body, Response) else await _watching(request, score_leads, body)

    api.add_middleware(
        Guard, max_body_bytes=max_body_bytes, api_key_env=API_KEY_ENV, open_paths=OPEN_PATHS, local_only=local_only
    )
    return api


def check_exposure(host: str, no_auth: bool = False) -> str | None:
    """Refuse (ValueError, one line naming the fix) to serve beyond loopback without ``CLAB_API_KEY``:
    ``/models`` and ``/predict/*`` would be open to the network. ``no_auth`` allows it and returns the warning
    to print; loopback needs no key."""
    if is_loopback(host) or os.environ.get(API_KEY_ENV):
        return None
    if not no_auth:
        raise ValueError(
            f"refusing to serve on {host} without an API key: anyone who can reach it could list and use the "
            f"models. Set {API_KEY_ENV} (clients send it as X-API-Key), serve on 127.0.0.1, or pass --no-auth "
            "to serve it open anyway"
        )
    return f"warning: serving on {host} with no API key (--no-auth): /models and /predict/* are open to the network"


def create_local_app():
    """``create_app`` for a loopback server (uvicorn's factory when it starts several workers)."""
    return create_app(local_only=True)


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, no_auth: bool = False) -> None:
    """Run the API with uvicorn (``python -m engine serve``); ``workers`` > 1 starts that many processes,
    each with its own model cache. Beyond loopback it needs ``CLAB_API_KEY`` unless ``no_auth``
    (:func:`check_exposure`)."""
    import sys

    import uvicorn

    warning = check_exposure(host, no_auth)
    local = is_loopback(host)
    if warning:
        print(warning, file=sys.stderr)
    if workers > 1:
        factory = "engine.api:create_local_app" if local else "engine.api:create_app"
        uvicorn.run(factory, factory=True, host=host, port=port, workers=workers)
    else:
        uvicorn.run(create_app(local_only=local), host=host, port=port)
