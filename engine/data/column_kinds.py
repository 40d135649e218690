"""The user's column kinds: ``{column: kind}``, a kind set by hand over the inferred one (``train leads --kind
COL=text``, a training request's ``kinds``, a dataset's ``kinds`` setting from the Data page), and its one check,
:func:`parse_kinds`.

A user may set the kinds a text column can be read as (:data:`SETTABLE_KINDS`): ``text`` (free text: notes, call
transcripts), ``categorical``, ``high_cardinality`` (many levels, target encoded) or ``identifier`` (left out of
training, carried through scoring). A column read as numbers can only be set to ``identifier``
(:func:`engine.data.leads.load_leads` says so); a setting naming a column that is not in the table, or the
outcome, is refused there with the table's columns. Kept apart from :mod:`engine.data.leads` (no NumPy or pandas),
so a stored run's spec can be checked with it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, TypeAdapter, ValidationError

from engine.data.missing_values import LeadDataError

#: The kinds a user may give a column (the others, ``numeric``, ``binary``, ``date``, follow from the values).
SETTABLE_KINDS = ("text", "categorical", "high_cardinality", "identifier")
#: The most columns one setting may name, and the longest column name it takes.
MAX_KIND_COLUMNS = 2000
MAX_COLUMN_NAME = 500

_HINT = "a column's kind is given as COLUMN=KIND (e.g. --kind Notes=text), KIND one of: " + ", ".join(SETTABLE_KINDS)


def _check(setting: Any) -> dict[str, str]:
    if setting is None:
        return {}
    if not isinstance(setting, dict):
        raise LeadDataError(f"the column kinds must be a mapping of column -> kind, not {type(setting).__name__}")
    if len(setting) > MAX_KIND_COLUMNS:
        raise LeadDataError(
            f"the column kinds name {len(setting):,} columns, more than {MAX_KIND_COLUMNS:,}. Fix: set the kinds "
            "of the columns that need it only."
        )
    out: dict[str, str] = {}
    for column, kind in setting.items():
        if not isinstance(column, str) or not column.strip() or len(column) > MAX_COLUMN_NAME:
            raise LeadDataError(
                f"the column kinds name a column {str(column)[:60]!r} that is not a column name. Fix: {_HINT}."
            )
        if not isinstance(kind, str) or kind.strip().lower() not in SETTABLE_KINDS:
            shown = str(kind)[:40] if isinstance(kind, (str, int, float)) else type(kind).__name__
            raise LeadDataError(
                f"column {column!r}: {shown!r} is not a kind a column can be set to. Fix: choose one of "
                f"{', '.join(SETTABLE_KINDS)} (the other kinds follow from the values)."
            )
        out[column] = kind.strip().lower()
    return out


def _validate(setting: Any) -> dict[str, str]:
    return _check(setting)


#: The pydantic type of the setting (a run's spec, a dataset's settings): the one check, :func:`_check`.
ColumnKinds = Annotated[dict[str, str], BeforeValidator(_validate)]
_ADAPTER = TypeAdapter(ColumnKinds)


def parse_kinds(setting: Any) -> dict[str, str]:
    """``setting`` checked: ``{column: kind}`` with kinds of :data:`SETTABLE_KINDS` (lower case), or the
    :class:`LeadDataError` naming the column, the value and the kinds allowed."""
    try:
        return _ADAPTER.validate_python(setting)
    except ValidationError as exc:
        error = (exc.errors(include_url=False)[0].get("ctx") or {}).get("error")
        if isinstance(error, LeadDataError):
            raise error from None
        raise LeadDataError(f"the column kinds are not usable: {_HINT}.") from None


def kind_flag(text: str) -> tuple[str, str]:
    """``--kind COLUMN=KIND`` -> (column, kind); a ValueError naming the problem, the column and the kinds."""
    column, sep, kind = str(text).rpartition("=")
    if not sep or not column.strip():
        raise ValueError(f"{text!r} is not COLUMN=KIND. Fix: {_HINT}")
    (name, value), *_ = parse_kinds({column.strip(): kind}).items()
    return name, value
