"""``POST /predict/transcript``: sales-call transcripts scored (and explained) by a transcripts run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from engine.api.bodies import PredictionResponse, TranscriptRequest, request_body
from engine.api.guards import GUARDED, service, transcript_body
from engine.api.service import Service, watching

router = APIRouter(tags=["scoring"], dependencies=GUARDED)


@router.post("/predict/transcript", response_model=PredictionResponse, openapi_extra=request_body(TranscriptRequest))
async def predict_transcript(
    request: Request,
    body: Annotated[TranscriptRequest, Depends(transcript_body)],
    svc: Annotated[Service, Depends(service)],
) -> Response:
    """Body ``{"transcripts": {"transcript": "...", "metadata": {...}} | [...] | "text", "run_id": optional,
    "explain": false}``."""
    return await watching(request, svc.score_transcripts, body)
