"""A learning curve read for people: the points of ``bench curve`` (one per approach, training size and seed)
summarised per approach and size (:func:`curve_table`), and where one approach overtakes another, in words
(:func:`crossings`, :func:`curve_summary`).

A point is ``{"approach", "size", "seed", "roc_auc", "roc_auc_ci": [low, high], ...}``; ``size`` is the number of
training rows (the full training set is stored as its row count). Several seeds at one size are averaged; their
spread is kept (``low_seed``/``high_seed``) beside the mean of their bootstrap intervals (``ci_low``/``ci_high``).
"""

from __future__ import annotations

import math
from collections import defaultdict

#: the names people read for the approaches (a plug-in approach keeps its own name)
APPROACH_WORDS = {"stacking": "the stack", "lora": "the LLM (LoRA)", "embeddings": "the embeddings approach"}


def _words(approach: str) -> str:
    return APPROACH_WORDS.get(approach, approach)


def curve_table(points: list[dict]) -> dict[str, list[dict]]:
    """Per approach, its sizes in increasing order, each ``{"size", "roc_auc" (mean over seeds), "ci_low",
    "ci_high" (the mean of the seeds' bootstrap bounds), "low_seed", "high_seed" (the seeds' spread), "seeds",
    "fit_seconds" (mean)}``. Points without a finite ROC-AUC (a subset with one class) are left out."""
    grouped: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for p in points:
        auc = p.get("roc_auc")
        if isinstance(auc, (int, float)) and math.isfinite(auc):
            grouped[(str(p["approach"]), int(p["size"]))].append(p)
    table: dict[str, list[dict]] = defaultdict(list)
    for (approach, size), group in sorted(grouped.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        aucs = [float(p["roc_auc"]) for p in group]
        cis = [p.get("roc_auc_ci") or [p["roc_auc"], p["roc_auc"]] for p in group]
        fits = [float(p["fit_seconds"]) for p in group if isinstance(p.get("fit_seconds"), (int, float))]
        table[approach].append(
            {
                "size": size,
                "roc_auc": sum(aucs) / len(aucs),
                "ci_low": sum(float(c[0]) for c in cis) / len(cis),
                "ci_high": sum(float(c[1]) for c in cis) / len(cis),
                "low_seed": min(aucs),
                "high_seed": max(aucs),
                "seeds": len(group),
                "fit_seconds": sum(fits) / len(fits) if fits else None,
            }
        )
    return dict(table)


def _crossing_size(s0: int, d0: float, s1: int, d1: float) -> int:
    """The training size where a difference going from ``d0`` at ``s0`` to ``d1`` at ``s1`` crosses zero, read on
    the log scale the curve is drawn on, rounded to two significant figures."""
    t = d0 / (d0 - d1)
    size = math.exp(math.log(s0) + t * (math.log(s1) - math.log(s0)))
    return int(float(f"{size:.2g}"))


def crossings(table: dict[str, list[dict]], a: str, b: str) -> list[str]:
    """Where ``a`` and ``b`` swap places on the sizes both were trained at, in words; an empty list when one leads
    at every shared size or they share fewer than two sizes. A swap is "within noise" when the two intervals
    overlap at both sizes around it."""
    at_a = {r["size"]: r for r in table.get(a, [])}
    at_b = {r["size"]: r for r in table.get(b, [])}
    shared = sorted(set(at_a) & set(at_b))
    if len(shared) < 2:
        return []
    out = []
    for s0, s1 in zip(shared, shared[1:]):
        d0 = at_a[s0]["roc_auc"] - at_b[s0]["roc_auc"]
        d1 = at_a[s1]["roc_auc"] - at_b[s1]["roc_auc"]
        if d0 == 0 or d1 == 0 or (d0 > 0) == (d1 > 0):
            continue
        size = _crossing_size(s0, d0, s1, d1)
        ahead, behind = (a, b) if d0 > 0 else (b, a)
        overlap = all(
            at_a[s]["ci_low"] <= at_b[s]["ci_high"] and at_b[s]["ci_low"] <= at_a[s]["ci_high"] for s in (s0, s1)
        )
        out.append(
            f"{_words(ahead)[0].upper()}{_words(ahead)[1:]} is ahead of {_words(behind)} below about {size:,} "
            f"training rows, {_words(behind)} from there on"
            + (" (within noise: their intervals overlap there)" if overlap else "")
            + "."
        )
    return out


def curve_summary(points: list[dict]) -> list[str]:
    """The curve in a few sentences: each pair's crossings, or which approach leads at every size shared."""
    table = curve_table(points)
    names = sorted(table)
    lines = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            said = crossings(table, a, b)
            if said:
                lines.extend(said)
                continue
            shared = sorted({r["size"] for r in table[a]} & {r["size"] for r in table[b]})
            if not shared:
                continue
            at_a = {r["size"]: r["roc_auc"] for r in table[a]}
            at_b = {r["size"]: r["roc_auc"] for r in table[b]}
            ahead = a if at_a[shared[-1]] >= at_b[shared[-1]] else b
            behind = b if ahead == a else a
            where = (
                f"at the one size shared ({shared[0]:,} rows)"
                if len(shared) == 1
                else (f"at every size from {shared[0]:,} to {shared[-1]:,} training rows")
            )
            lines.append(f"{_words(ahead)[0].upper()}{_words(ahead)[1:]} is ahead of {_words(behind)} {where}.")
    return lines
