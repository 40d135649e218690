"""One serializer of a lead row to text, shared by the LLM (LoRA) and the embedding approach.

``row_to_text`` writes one short sentence per filled field, in the given column order::

    >>> row_to_text({"Lead Source": "Google", "Total Time Spent on Website": 674.0, "City": "Select"})
    'The lead source is Google. Total time spent on the website is 674 seconds.'

Known X Education columns get a natural phrasing (:data:`PHRASES`); any other column reads
"The <column> is <value>.". Missing fields (None, NaN, '', 'Select') are left out. Numbers are written
cleanly (674, not 674.0; 2.33, not 2.3333333).

``style="compact"`` writes the same facts as short ``label: value`` pairs ("source: Google; time on
site: 674 s."), which costs far fewer tokens for an LLM.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from numbers import Number
from typing import Any

import numpy as np
import pandas as pd

from engine.data.missing_values import is_missing_text

#: Normalised column name -> (sentence template, compact label, compact unit).
#: Templates use ``{v}`` for the value.
PHRASES: dict[str, tuple[str, str, str]] = {
    "lead origin": ("The lead origin is {v}.", "origin", ""),
    "lead source": ("The lead source is {v}.", "source", ""),
    "do not email": ("Do not email: {v}.", "do not email", ""),
    "do not call": ("Do not call: {v}.", "do not call", ""),
    "totalvisits": ("The lead visited the website {v} times.", "visits", ""),
    "total visits": ("The lead visited the website {v} times.", "visits", ""),
    "total time spent on website": ("Total time spent on the website is {v} seconds.", "time on site", " s"),
    "page views per visit": ("Page views per visit is {v}.", "pages per visit", ""),
    "last activity": ("The last activity is {v}.", "last activity", ""),
    "country": ("The country is {v}.", "country", ""),
    "specialization": ("The specialization is {v}.", "specialization", ""),
    "how did you hear about x education": ("The lead heard about X Education through {v}.", "heard via", ""),
    "what is your current occupation": ("The current occupation is {v}.", "occupation", ""),
    "what matters most to you in choosing a course": ("What matters most in choosing a course is {v}.", "priority", ""),
    "search": ("Saw the ad in search: {v}.", "ad in search", ""),
    "magazine": ("Saw the ad in a magazine: {v}.", "ad in magazine", ""),
    "newspaper article": ("Saw the ad in a newspaper article: {v}.", "ad in newspaper article", ""),
    "x education forums": ("Saw the ad in X Education forums: {v}.", "ad in forums", ""),
    "newspaper": ("Saw the ad in a newspaper: {v}.", "ad in newspaper", ""),
    "digital advertisement": ("Saw a digital advertisement: {v}.", "digital ad", ""),
    "through recommendations": ("Came through recommendations: {v}.", "recommended", ""),
    "receive more updates about our courses": ("Wants more course updates: {v}.", "course updates", ""),
    "tags": ("The tags are {v}.", "tags", ""),
    "lead quality": ("The lead quality is {v}.", "lead quality", ""),
    "update me on supply chain content": ("Wants supply chain content updates: {v}.", "supply chain updates", ""),
    "get updates on dm content": ("Wants DM content updates: {v}.", "DM updates", ""),
    "lead profile": ("The lead profile is {v}.", "lead profile", ""),
    "city": ("The city is {v}.", "city", ""),
    "asymmetrique activity index": ("The Asymmetrique activity index is {v}.", "activity index", ""),
    "asymmetrique profile index": ("The Asymmetrique profile index is {v}.", "profile index", ""),
    "asymmetrique activity score": ("The Asymmetrique activity score is {v}.", "activity score", ""),
    "asymmetrique profile score": ("The Asymmetrique profile score is {v}.", "profile score", ""),
    "i agree to pay the amount through cheque": ("Agreed to pay by cheque: {v}.", "pays by cheque", ""),
    "a free copy of mastering the interview": (
        "Wants a free copy of Mastering The Interview: {v}.",
        "free interview book",
        "",
    ),
    "last notable activity": ("The last notable activity is {v}.", "last notable activity", ""),
}

STYLES = ("sentence", "compact")


def _normalise(column: str) -> str:
    return re.sub(r"\s+", " ", str(column).strip().lower())


def is_missing(value: Any) -> bool:
    """True for None, NaN/NA/NaT and the text cells the one rule reads as missing
    (:func:`engine.data.missing_values.is_missing_text`: empty, 'Select', 'N/A', 'NA'...)."""
    if value is None:
        return True
    if isinstance(value, str):
        return is_missing_text(value)
    try:
        missing = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return bool(missing) if isinstance(missing, (bool, np.bool_)) else False


def format_value(value: Any) -> str:
    """Write a value for a sentence: whole floats without '.0', other floats with at most 2 decimals."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Number) and not isinstance(value, bool):
        number = float(value)
        if math.isfinite(number) and number == int(number):
            return str(int(number))
        if math.isfinite(number):
            text = f"{number:.2f}".rstrip("0").rstrip(".")
            return text if text not in ("-0", "") else "0"
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        try:
            return format_value(value.item())
        except (ValueError, AttributeError):
            pass
    return re.sub(r"\s+", " ", str(value).strip())


def field_text(column: str, value: Any, style: str = "sentence") -> str:
    """The text of one filled field (assumes the value is not missing)."""
    shown = format_value(value)
    phrase = PHRASES.get(_normalise(column))
    if style == "compact":
        label, unit = (phrase[1], phrase[2]) if phrase else (str(column).strip(), "")
        return f"{label}: {shown}{unit}"
    if phrase:
        return phrase[0].format(v=shown)
    return f"The {str(column).strip()} is {shown}."


def row_fields(row: pd.Series | Mapping[str, Any], columns: Iterable[str] | None = None) -> list[tuple[str, Any]]:
    """The filled ``(column, value)`` pairs of a row, in the given column order (or the row's order)."""
    if columns is None:
        columns = list(row.index) if isinstance(row, pd.Series) else list(row.keys())
    out = []
    for column in columns:
        if column not in row:
            continue
        value = row[column]
        if not is_missing(value):
            out.append((column, value))
    return out


def fields_to_text(fields: Iterable[tuple[str, Any]], style: str = "sentence") -> str:
    """Join already-filtered ``(column, value)`` pairs into the text of a row."""
    if style not in STYLES:
        raise ValueError(f"Unknown text style {style!r}; choose one of {STYLES}")
    parts = [field_text(column, value, style) for column, value in fields]
    if style == "compact":
        return "; ".join(parts) + ("." if parts else "")
    return " ".join(parts)


#: What a cut text ends with (:func:`cut_text`).
ELLIPSIS = " …"


def valid_utf8(text: str) -> str:
    """``text`` as valid UTF-8: a lone surrogate (``"\\udcff"``: junk decoded with ``surrogateescape``, or a JSON
    escape without its pair), which tokenizers and Arrow strings refuse, becomes ``?``; valid text is returned as is."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", errors="replace").decode("utf-8")


def cut_text(text: str, budget: int | None) -> tuple[str, bool]:
    """``(text, cut)``: ``text`` within ``budget`` characters (the marker :data:`ELLIPSIS` included), cut at the last
    word boundary before it (inside a word only when the budget holds no boundary in its second half), whitespace
    runs read as one space; ``budget`` None or 0: the text as it is. Only the first ``4 * budget`` characters
    are read, so a megabyte cell costs what a short one does."""
    if not budget or budget <= 0:
        return text, False
    budget = int(budget)
    head = " ".join(str(text)[: 4 * budget + 1].split())
    if len(head) <= budget and len(str(text)) <= 4 * budget:
        return head, False
    room = max(budget - len(ELLIPSIS), 1)
    cut = head[: room + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space >= room // 2 else cut[:room]
    return cut.rstrip(" ,;:.-") + ELLIPSIS, True


def row_to_text(row: pd.Series | Mapping[str, Any], columns: list[str] | None = None, style: str = "sentence") -> str:
    """One readable sentence per filled field of ``row`` (missing fields left out), in column order.

    ``columns`` restricts and orders the fields (columns absent from the row are skipped); by default
    all fields of the row in their own order. ``style`` is ``"sentence"`` (default) or ``"compact"``.
    """
    if not isinstance(row, (pd.Series, Mapping)):
        raise TypeError(
            f"row_to_text needs a pandas Series or a dict, got {type(row).__name__}; pass one row, e.g. df.iloc[0]."
        )
    return fields_to_text(row_fields(row, columns), style)


def frame_to_texts(df: pd.DataFrame, columns: list[str] | None = None, style: str = "sentence") -> list[str]:
    """``row_to_text`` for every row of ``df`` (same column order for all rows)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"frame_to_texts needs a pandas DataFrame, got {type(df).__name__}.")
    cols = list(df.columns) if columns is None else [c for c in columns if c in df.columns]
    return [fields_to_text(row_fields(record, cols), style) for record in df[cols].to_dict("records")]
