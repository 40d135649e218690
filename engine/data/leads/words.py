"""Words shared by the sections: column-name matching and the yes/no values an outcome or a flag takes."""

from __future__ import annotations

from typing import Any

#: Names tried, in order, when no target is given (after ``Converted``), case-insensitively.
TARGET_CANDIDATES = [
    "converted",
    "target",
    "label",
    "won",
    "outcome",
    "is_converted",
    "conversion",
    "is converted",
    "subscribed",  # a subscription or term-deposit campaign's outcome (bank marketing exports)
    "purchased",
    "signed_up",
    "is_won",
    "closed_won",
    "deal_won",
    "y",
]


POSITIVE = {
    "1",
    "1.0",
    "yes",
    "y",
    "true",
    "t",
    "won",
    "win",
    "converted",
    "convert",
    "positive",
    "pos",
    "success",
    "closed won",
    "closed-won",
    "closed_won",
    "paid",
    "signed",
    "customer",
}


NEGATIVE = {
    "0",
    "0.0",
    "no",
    "n",
    "false",
    "f",
    "lost",
    "lose",
    "loss",
    "not converted",
    "not_converted",
    "not-converted",
    "unconverted",
    "negative",
    "neg",
    "failure",
    "fail",
    "closed lost",
    "closed-lost",
    "closed_lost",
    "not paid",
    "unpaid",
}


YES_NO = POSITIVE | NEGATIVE


def _norm(name: Any) -> str:
    """Column-name key for matching: case-folded, whitespace collapsed."""
    return " ".join(str(name).split()).casefold()
