"""FastAPI scoring service over the run store. Started by ``python -m engine serve`` (:func:`serve`).

Endpoints (JSON):

* ``GET /health`` — ``{"status": "ok", "runs": n, "skipped": k}`` (``k`` run folders that cannot be used);
  open without an API key.
* ``GET /models`` — the complete runs, newest first (id, approach, input kind, dataset, ROC-AUC), and
  ``skipped``: ``[{"run_id", "problem"}]`` for the damaged run folders that are left out.
* ``POST /predict/lead`` — body ``{"leads": {...} | [{...}, ...], "run_id": optional, "family": optional,
  "explain": false}``. Uses ``run_id``, else the live lead run of ``family`` (:mod:`engine.live`: one per dataset
  family; without ``family`` the only live one, 400 listing the families when several are live, 404 for a family
  without one; 503 naming it when it no longer loads), else, while no lead run is live, the newest that loads. Fields are the lead table's columns; values are
  text, numbers, true/false or null; missing fields are treated as missing values, unknown ones are listed
  in ``ignored_fields``.
* ``POST /predict/transcript`` — body ``{"transcripts": {"transcript": "...", "metadata": {...}} | [...] | "text",
  "run_id": optional, "family": optional, "explain": false}``. Uses ``run_id``, else the live transcript run (as
  above), else the newest that loads.
* ``GET /live`` — the live run of each input kind and dataset family with its ``version``. Every prediction answer
  carries the ``run_id`` it used, its ``family`` and ``version``: the live version when that run is the live one,
  else null.

Each prediction: ``probability`` (of conversion), ``score`` (1-99), ``label`` (1 when probability >= 0.5: runs
store no threshold of their own; the board's threshold tools are for choosing one), ``tier`` (A-D: the quarter of
the run's training scores) and, with ``explain=true``, ``reasons_for`` / ``reasons_against`` (the scoring
service's texts) and ``factors`` (the largest contributions in probability points). Explanations stop when the
client disconnects (499) or after ``explain_seconds`` (:data:`EXPLAIN_SECONDS`): the rest keep their scores
without reasons, and ``explained`` / ``notes`` say so. ``serve`` refuses a non-loopback address without
``CLAB_API_KEY`` unless ``no_auth`` (:func:`check_exposure`); on loopback without it, only loopback ``Host``
names are answered (DNS rebinding; :mod:`engine.api_hosts`).

The package: :mod:`.service` (what the routes share, one :class:`~engine.api.service.Service` per app),
:mod:`.settings` (its settings, one :class:`~engine.api.settings.ApiSettings`, and the API key), :mod:`.guards` (the dependencies: host, key, body), :mod:`.bodies` (the pydantic bodies), :mod:`.body` (reading
and parsing a body, error answers), :mod:`.cache` (loaded models, batching), :mod:`.catalog` (which runs), and
one router a module: :mod:`.routes_catalog` (health, models, live), :mod:`.routes_leads`,
:mod:`.routes_transcripts`, :mod:`.routes_docs` (the documentation, under the host check too).

Security and limits (the checks run in this order, as the routes' dependencies: :mod:`engine.api.guards`):

0. **Host** — a loopback server without ``CLAB_API_KEY`` answers only a loopback ``Host``: 400 otherwise.
1. **API key** — when the environment variable ``CLAB_API_KEY`` is set, every route but ``/health`` and the
   documentation (``/docs``, ``/redoc``, ``/openapi.json``) needs the header ``X-API-Key`` with that value:
   401 otherwise, answered before a byte of the body is read (the body is read by a later dependency). A path
   that is no route is a 404, key or not: nothing is served there.
2. **Body size** — at most ``max_body_bytes`` (:data:`MAX_BODY_BYTES`, 10 MB), counted as the bytes arrive
   (chunked bodies without ``Content-Length`` too): 413 as soon as the count passes it.
3. **Body shape** — anything that is not the documented JSON (malformed or non-standard JSON such as
   ``NaN``, numbers out of range, nesting deeper than Python parses, lead values that are objects or
   lists, blank transcripts, unknown keys) gets 422 naming the field.
4. **Batch limits** — at most ``max_batch`` (:data:`MAX_BATCH`) items, counted as the list is read: 413 at
   item ``max_batch + 1``, before the rest of the body is parsed or any item checked
   (:func:`engine.api.body.parse_body`; step 3 runs on the items of a batch within the cap); transcripts of at most
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

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from engine.api import routes_catalog, routes_docs, routes_leads, routes_transcripts
from engine.api.bodies import (  # noqa: F401 - the bodies, importable from engine.api
    LeadRequest,
    Prediction,
    PredictionResponse,
    TranscriptItem,
    TranscriptRequest,
    body_schemas,
)
from engine.api.body import StrictJSONResponse, invalid, message_body
from engine.api.cache import MAX_CACHED_MODELS, _Batcher, _Loaded, _ModelCache  # noqa: F401
from engine.api.guards import OPEN_PATHS  # noqa: F401
from engine.api.service import (  # noqa: F401
    EXPLAIN_SECONDS,
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_EXPLAIN_LEADS,
    MAX_EXPLAIN_TRANSCRIPTS,
    MAX_TRANSCRIPT_CHARS,
    REFRESH_SECONDS,
    TOP_FACTORS,
    Service,
)
from engine.api.settings import API_KEY_ENV, ApiSettings, api_key  # noqa: F401
from engine.api_hosts import is_loopback

#: The routers of the app, in order.
ROUTERS = (
    routes_catalog.health_router,
    routes_catalog.router,
    routes_leads.router,
    routes_transcripts.router,
    routes_docs.router,
)


def create_app(store=None, settings: ApiSettings | None = None, **overrides) -> FastAPI:
    """The scoring app over ``store`` (an :class:`engine.runs.RunStore`; the workspace's by default): the
    :data:`ROUTERS`, each behind the dependencies of :mod:`engine.api.guards`. Its settings are ``settings`` (an
    :class:`~engine.api.settings.ApiSettings`; the defaults when None) with ``overrides``, keyword arguments named
    like its fields (``max_batch=100``, ``local_only=True``, ...): a bad value or an unknown name is refused here.
    ``app.state.service`` is its :class:`~engine.api.service.Service` (``.settings``: the settings); ``app.state``
    also holds the ``store``, the model ``cache`` and the run ``catalog``."""
    service = Service(store, ApiSettings.build(settings, "create_app", **overrides))
    api = FastAPI(
        title="Conversion Lab scoring API",
        version="1",
        description="Scores leads and sales-call transcripts with the runs trained by Conversion Lab.",
        default_response_class=StrictJSONResponse,
        docs_url=None,  # served by routes_docs.router, behind the host check
        redoc_url=None,
        openapi_url=None,
    )
    api.state.service = service
    api.state.store, api.state.cache, api.state.catalog = service.store, service.cache, service.catalog
    for router in ROUTERS:
        api.include_router(router)

    def openapi() -> dict:
        if not api.openapi_schema:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                body_schemas(LeadRequest, TranscriptRequest)
            )
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi

    @api.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return invalid(list(exc.errors()))

    @api.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        message = exc.detail.get("message") if isinstance(exc.detail, dict) else str(exc.detail)
        message = service.public(str(message))  # never the server's own paths (docs/SECURITY.md)
        more = (
            {k: v for k, v in exc.detail.items() if k not in ("message", "detail")}
            if isinstance(exc.detail, dict)
            else {}
        )
        return StrictJSONResponse(
            status_code=exc.status_code,
            content={**message_body(message), **more},
            headers=getattr(exc, "headers", None),
        )

    return api


def check_exposure(host: str, no_auth: bool = False) -> str | None:
    """Refuse (ValueError, one line naming the fix) to serve beyond loopback without ``CLAB_API_KEY``:
    ``/models`` and ``/predict/*`` would be open to the network. ``no_auth`` allows it and returns the warning
    to print; loopback needs no key."""
    if is_loopback(host) or api_key():
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
