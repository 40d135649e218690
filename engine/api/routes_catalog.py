"""Routes over the run catalog: ``GET /health`` (open: no key), ``GET /models`` and ``GET /live``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from engine.api.guards import GUARDED, OPEN, service
from engine.api.service import Service

health_router = APIRouter(tags=["catalog"], dependencies=OPEN)
router = APIRouter(tags=["catalog"], dependencies=GUARDED)
Svc = Annotated[Service, Depends(service)]


@health_router.get("/health")
def health(svc: Svc) -> dict:
    """``{"status": "ok", "runs": n, "skipped": k}`` (``k`` run folders that cannot be used)."""
    return svc.health()


@router.get("/models")
def models(svc: Svc) -> dict:
    """The complete runs, newest first, and ``skipped``: the damaged run folders left out, with their problem."""
    return svc.models()


@router.get("/live")
def live_runs(svc: Svc) -> dict:
    """The live run of each input kind and dataset family (``{kind: {family: {run_id, family, version, time, by,
    note}}}``), the file format and the version."""
    return svc.live_runs()
