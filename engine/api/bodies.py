"""The scoring API's request and answer bodies as pydantic models. A request body is read by
:func:`engine.api.body.parse_body` (its batch counted as it streams in) and then validated as one of these, so a
422 names the field (``leads[1].City``, ``transcripts.0.transcript``)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from engine.data.transcripts import TranscriptDataError, flatten_metadata

Scalar = str | int | float | bool | None


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
    family: str | None = Field(
        None, description="the dataset family whose live run scores (GET /live); needed when several are live"
    )
    explain: StrictBool = False

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
    family: str | None = Field(
        None, description="the dataset family whose live run scores (GET /live); needed when several are live"
    )
    explain: StrictBool = False

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
    family: str = Field(description="the run's dataset family (the name of the dataset it was trained on)")
    version: int | None = Field(None, description="the live version when the run is the live one, else null")
    approach: str
    threshold: float
    predictions: list[Prediction]
    ignored_fields: list[str] = Field(default_factory=list)
    explained: int | None = Field(None, description="with explain=true: the items that got reasons")
    notes: list[str] = Field(default_factory=list, description="e.g. explanations stopped at the time budget")


def request_body(model: type[BaseModel]) -> dict:
    """The ``openapi_extra`` of a route whose body is read by a dependency (not declared as a parameter, so
    that it is counted while it streams in): the body documented as ``model``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def body_schemas(*models: type[BaseModel]) -> dict[str, Any]:
    """The component schemas of ``models`` (and of the models they hold), for the OpenAPI document."""
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out
