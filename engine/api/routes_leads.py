"""``POST /predict/lead``: leads scored (and explained) by a lead run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from engine.api.bodies import LeadRequest, PredictionResponse, request_body
from engine.api.guards import GUARDED, lead_body, service
from engine.api.service import Service, watching

router = APIRouter(tags=["scoring"], dependencies=GUARDED)


@router.post("/predict/lead", response_model=PredictionResponse, openapi_extra=request_body(LeadRequest))
async def predict_lead(
    request: Request,
    body: Annotated[LeadRequest, Depends(lead_body)],
    svc: Annotated[Service, Depends(service)],
) -> Response:
    """Body ``{"leads": {...} | [{...}, ...], "run_id": optional, "explain": false}``: fields are the lead
    table's columns; missing fields are missing values, unknown ones are listed in ``ignored_fields``."""
    return await watching(request, svc.score_leads, body)
