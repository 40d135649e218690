"""What a paired interval of a difference says, in a word: the one verdict of a blend against its best part
(:mod:`engine.blend`) and of a run on both parts of a table against the better part (:mod:`engine.text_worth`).
The interval is :func:`engine.evaluate.paired_difference`'s (``{"value", "low", "high"}``); this module sits beside
it because ``evaluate.py`` is at its size limit."""

from __future__ import annotations


def difference_verdict(paired: dict) -> str:
    """``better`` when the whole interval of the difference is above 0, ``worse`` when it is all below, else ``no
    clear difference`` (an interval that holds 0, or a missing bound)."""
    if paired.get("low", 0) > 0:
        return "better"
    return "worse" if paired.get("high", 0) < 0 else "no clear difference"
