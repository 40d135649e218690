"""The scoring API's service: what the routes share, one object per app (``app.state.service``): the run store,
the live runs, the model cache and the run catalog, the limits, and the steps of a prediction (pick the run,
check the batch, shape the rows through :func:`engine.data.leads.prepare_features`, score through
:func:`engine.scoring.predict_rows`). The routes (:mod:`engine.api.routes_leads`, ...) get it with the dependency
:func:`engine.api.guards.service`."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time

import pandas as pd
from fastapi import HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from engine.api.bodies import LeadRequest, TranscriptRequest
from engine.api.body import StrictJSONResponse, message_body
from engine.api.cache import _Loaded, _ModelCache
from engine.api.catalog import Catalog
from engine.api.settings import (  # noqa: F401 - the defaults, importable from here as before
    EXPLAIN_SECONDS,
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_TRANSCRIPT_CHARS,
    REFRESH_SECONDS,
    ApiSettings,
)
from engine.data.leads import prepare_features
from engine.data.transcripts import TranscriptDataError, load_transcripts
from engine.live import FamilyChoice, LiveFileProblem, LiveRunUnusable, LiveStore, NoLiveRun, family_of
from engine.runs import BrokenRun, RunStore
from engine.runspec import RunSpec
from engine.scoring import ScoringError, predict_rows

#: Most leads / transcripts one ``explain=true`` request may ask explanations for.
MAX_EXPLAIN_LEADS = 20
MAX_EXPLAIN_TRANSCRIPTS = 5
TOP_FACTORS = 8
#: An absolute path left in a message once the workspace is replaced (a library's message about a file): ``/a/b/c``.
_ABSOLUTE_PATH = re.compile(r"(?<![\w<>.:/])/(?:[^\s'\"/:]+/)+([^\s'\":/]+)")


def lead_frame(leads: list[dict], settings: RunSpec) -> tuple[pd.DataFrame, list[str]]:
    """The leads of a request shaped as the run's features (:func:`engine.data.leads.prepare_features`: one lead
    cell by cell, a batch as a frame), and the fields the run does not use. 422 when none of the fields is used."""
    columns = settings.columns
    # numbers the run reads as missing (checked when the run was loaded: a damaged setting is a run the store
    # refuses, a 409 naming it), with their flag columns (made by prepare_features, never taken from the client)
    flags = settings.flags
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
    if not columns:
        return pd.DataFrame(leads), ignored
    return prepare_features(leads, columns, settings.kinds, settings.missing_values), ignored


async def watching(request: Request, work, body) -> Response:
    """``work(body, stop)`` in the thread pool; for an explained request, ``stop`` (a threading.Event) is set
    as soon as the client disconnects, so the explanations stop instead of running on for nobody."""
    if not getattr(body, "explain", False):
        return await run_in_threadpool(work, body)
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


class Service:
    """What the routes of one app share (see the module docstring), under its :class:`ApiSettings` (``settings``,
    the defaults when None, with ``overrides``: keyword arguments named like its fields)."""

    def __init__(self, store: RunStore | None = None, settings: ApiSettings | None = None, **overrides):
        self.settings = ApiSettings.build(settings, "Service", **overrides)
        self.store = store or RunStore()
        self.live = LiveStore.beside(self.store)
        self.cache = _ModelCache(self.settings.max_models)
        self.catalog = Catalog(self.store, self.cache, self.settings.refresh_seconds)
        folders = {str(f) for root in (self.store.root.parent, self.live.root) for f in (root, root.resolve())}
        self._folders = sorted(folders, key=len, reverse=True)

    def public(self, text: str) -> str:
        """``text`` (an error message) without the server's own paths, which tell a client how the server is laid
        out: the workspace is said as ``<workspace>`` (``<workspace>/live.json``), any other absolute path by its
        last part. The command line and the dashboard say the full paths to the user who runs them."""
        for folder in self._folders:
            text = text.replace(folder, "<workspace>")
        return _ABSOLUTE_PATH.sub(r"\1", text)

    def live_entry(self, input_kind: str, family: str | None = None) -> dict | None:
        """The live entry of ``input_kind`` (and ``family``): 400 for a family that cannot be one, none named while
        several are live (the families listed), 404 for a family without a live run, 503 for a damaged live file."""
        try:
            return self.live.pick(input_kind, family, where='"family"')
        except LiveFileProblem as exc:
            raise HTTPException(503, detail={"message": str(exc)}) from None
        except FamilyChoice as exc:
            message = f"{exc}".replace(
                "Fix: ", 'Fix: send "family" with one of them (GET /live lists them); on the command line: '
            )
            raise HTTPException(400, detail={"message": message, "families": exc.families}) from None
        except NoLiveRun as exc:
            raise HTTPException(404, detail={"message": str(exc), "families": exc.families}) from None
        except ValueError as exc:  # the family is not a name (empty, too long, control characters)
            raise HTTPException(400, detail={"message": str(exc)}) from None

    def pick_run(self, run_id: str | None, input_kind: str, family: str | None = None):
        """``(run, _Loaded, live version or None, family)`` for ``run_id``, else the live run of ``input_kind`` and
        ``family`` (the only live family when none is named: 400 when several are; 503 when it no longer loads:
        never another run instead), else, while no run of the kind is live, the newest loadable one."""
        if run_id and family is not None:
            raise HTTPException(
                400,
                detail={
                    "message": 'Send "run_id" or "family", not both: "family" picks the live run of a dataset '
                    "family, run_id names a run."
                },
            )
        entry = self.live_entry(input_kind, family) if not run_id else None
        if entry is not None:
            self.catalog.refresh()
            try:
                run = (
                    self.catalog.runs.get(entry["run_id"])
                    or self.live.live_run(self.store, input_kind, entry["family"])[0]
                )
                return run, self.cache.entry(run), entry["version"], entry["family"]
            except BrokenRun as exc:
                message = str(LiveRunUnusable(input_kind, entry["run_id"], exc.problem, entry["family"]))
                raise HTTPException(503, detail={"message": message}) from None
            except LiveRunUnusable as exc:
                raise HTTPException(503, detail={"message": str(exc)}) from None
        if not run_id:
            found = self.catalog.latest(input_kind)
            if found is None:
                raise HTTPException(
                    404,
                    detail={
                        "message": f"No trained {input_kind} run that loads. Train one "
                        f"with `python -m engine train {input_kind}`."
                    },
                )
            return (*found, None, family_of(found[0].settings))
        self.catalog.refresh()
        run = self.catalog.runs.get(run_id)
        if run is None:  # not a usable finished run: let the store say why (and check the id)
            try:
                run = self.store.get(run_id)
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
        try:  # the live version (and the family it is live for) when the run named is a live one
            version, family = self.live.version_of(run.id) or (None, family_of(run.settings))
        except LiveFileProblem:  # the run was named: a damaged live file only means its version is unknown
            version, family = None, family_of(run.settings)
        try:
            return run, self.cache.entry(run), version, family
        except BrokenRun as exc:
            raise HTTPException(
                409,
                detail={"message": f"Run {run_id} cannot be used: {exc.problem}. Pick another run from GET /models."},
            ) from None

    def respond(
        self,
        run,
        loaded: _Loaded,
        X: pd.DataFrame,
        explain: bool,
        ignored: list[str] | None = None,
        stop=None,
        version: int | None = None,
        family: str | None = None,
    ) -> Response:
        """Scores through :func:`engine.scoring.predict_rows`: the CLI's and the dashboard's numbers. With
        ``explain``, rows are explained one by one until ``explain_seconds`` have passed (the rest keep their
        scores, without reasons, said in ``notes``) or ``stop`` (a threading.Event: the client has gone) is set."""
        metrics = self.catalog.metrics.get(run.id)
        if metrics is None:
            metrics = run.metrics
        threshold = 0.5  # runs store no threshold of their own
        lock = loaded.lock if self.settings.serialize_scoring else None
        notes: list[str] = []
        try:
            if self.settings.serialize_scoring and not explain:  # concurrent requests for one model scored as one batch
                batcher = loaded.batcher(run.id, lambda frame: predict_rows(run, loaded.model, frame, metrics=metrics))
                predictions = batcher(X)
            else:
                predictions = predict_rows(run, loaded.model, X, metrics=metrics, lock=lock)
            explained, deadline = 0, time.monotonic() + self.settings.explain_seconds
            for i in range(len(X) if explain else 0):
                if stop is not None and stop.is_set():
                    message = f"The client disconnected: explanations stopped after {explained} of {len(X)}."
                    return StrictJSONResponse(message_body(message), status_code=499)
                if time.monotonic() >= deadline:
                    notes.append(
                        f"Explanations stopped at the time budget of {self.settings.explain_seconds:g} s: {explained} of "
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
            "family": family or family_of(run.settings),
            "version": version,
            "approach": run.settings.approach,
            "threshold": threshold,
            "predictions": predictions,
            "ignored_fields": ignored or [],
            "explained": explained if explain else None,
            "notes": notes,
        }
        return Response(json.dumps(payload, allow_nan=False).encode(), media_type="application/json")

    def check_batch(self, n: int, explain: bool, explain_cap: int, what: str) -> None:
        if n == 0:
            raise HTTPException(422, detail={"message": "The batch is empty: send at least one item."})
        if n > self.settings.max_batch:
            raise HTTPException(
                413,
                detail={
                    "message": f"Batch of {n} items; the limit is {self.settings.max_batch} per request. "
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

    def score_transcripts(self, body: TranscriptRequest, stop=None) -> Response:
        items = body.transcripts
        self.check_batch(len(items), body.explain, MAX_EXPLAIN_TRANSCRIPTS, "transcripts")
        for i, item in enumerate(items):
            if len(item.transcript) > self.settings.max_transcript_chars:
                raise HTTPException(
                    413,
                    detail={
                        "message": f"Transcript {i} has {len(item.transcript):,} characters; "
                        f"the limit is {self.settings.max_transcript_chars:,}."
                    },
                )
        run, loaded, version, family = self.pick_run(body.run_id, "transcripts", body.family)
        try:
            table = load_transcripts(
                [{"transcript": it.transcript, "metadata": it.metadata} for it in items], require_labels=False
            )
        except TranscriptDataError as exc:
            raise HTTPException(422, detail={"message": str(exc)}) from None
        return self.respond(run, loaded, table.X, body.explain, stop=stop, version=version, family=family)

    def score_leads(self, body: LeadRequest, stop=None) -> Response:
        leads = body.leads
        self.check_batch(len(leads), body.explain, MAX_EXPLAIN_LEADS, "leads")
        run, loaded, version, family = self.pick_run(body.run_id, "leads", body.family)
        X, ignored = lead_frame(leads, run.settings)
        return self.respond(run, loaded, X, body.explain, ignored, stop=stop, version=version, family=family)

    # -- the catalog's answers --------------------------------------------------------------------
    def health(self) -> dict:
        self.catalog.refresh()
        return {"status": "ok", "runs": len(self.catalog.runs), "skipped": len(self.catalog.skipped)}

    def models(self) -> dict:
        self.catalog.refresh()
        out = []
        for run in self.catalog.runs.values():
            settings = run.settings
            roc = self.catalog.metrics[run.id].get("metrics", {}).get("roc_auc", {})
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
        skipped = [{**item, "problem": self.public(item["problem"])} for item in self.catalog.skipped]
        return {"models": out, "skipped": skipped}

    def live_runs(self) -> dict:
        try:
            state = self.live.state()
        except LiveFileProblem as exc:
            raise HTTPException(503, detail={"message": str(exc)}) from None
        return {"format": state["format"], "version": state["version"], "live": state["live"]}
