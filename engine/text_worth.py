"""What the text of a lead table is worth: runs of one dataset and split that differ only by ``use`` (table | text |
both, :mod:`engine.data.uses`), side by side, with the paired bootstrap interval of ROC-AUC *both minus the better
part* on the same test rows (:func:`engine.evaluate.paired_difference`, as a blend is judged against its best part).
The board shows :func:`use_rows`; ``bench leads --use`` reports :func:`both_vs_best_part`."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.evaluate import paired_difference
from engine.verdicts import difference_verdict

PARTS = ("table", "text")


def both_vs_best_part(y, probas: dict[str, np.ndarray], n_boot: int = 1000) -> dict[str, Any] | None:
    """ROC-AUC of ``both`` minus that of the better of ``table`` and ``text`` on these rows, with its paired 95 %
    interval and the verdict (``better``, ``worse``, ``no clear difference``); None without ``both`` and a part."""
    from sklearn.metrics import roc_auc_score

    parts = [u for u in PARTS if u in probas]
    if "both" not in probas or not parts or len(np.unique(y)) < 2:
        return None
    best = max(parts, key=lambda u: roc_auc_score(y, probas[u]))
    diff = paired_difference(y, probas["both"], probas[best], "roc_auc", n_boot=n_boot)
    return {"metric": "roc_auc", "both_minus": best, **diff, "verdict": difference_verdict(diff)}


def use_groups(runs: list) -> list[dict[str, Any]]:
    """Lead runs that differ only by ``use`` (the same :attr:`engine.runspec.RunSpec.use_key`), with ``both`` and
    at least one part: ``[{"approach", "runs": {use: newest run}}]``."""
    groups: dict[tuple, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: r.settings.created or 0):  # the newest of a use wins
        settings = run.settings
        if settings.input_kind != "leads" or settings.approach == "blend":
            continue
        entry = groups.setdefault(settings.use_key, {"approach": settings.approach, "runs": {}})
        entry["runs"][settings.use] = run
    return [g for g in groups.values() if "both" in g["runs"] and any(u in g["runs"] for u in PARTS)]


def _aligned(runs: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """The runs' test predictions on the rows they share (by row id), or None when one cannot be read."""
    frames = {}
    for use, run in runs.items():
        try:
            frames[use] = run.predictions().set_index("row_id")
        except (OSError, ValueError, KeyError):
            return None
    common = None
    for frame in frames.values():
        common = frame.index if common is None else common.intersection(frame.index)
    if common is None or not len(common):
        return None
    first = next(iter(frames.values()))
    y = first.loc[common, "y_true"].to_numpy(dtype=int)
    return y, {use: frame.loc[common, "proba"].to_numpy(dtype=float) for use, frame in frames.items()}


USE_NAMES = {"table": "Table only", "text": "Text only", "both": "Both"}


def use_rows(runs: list, n_boot: int = 1000) -> list[dict[str, str]]:
    """The board's lines: per approach (by its name for people), the ROC-AUC with its 95 % interval of the newest run
    of each use, and both minus the better part (paired). Short cells: the runs are named in the board's tables."""
    from engine.approaches.registry import approach_hook

    out = []
    for group in use_groups(runs):
        aligned = _aligned(group["runs"])
        if aligned is None:
            continue
        y, probas = aligned
        name = group["approach"]
        row = {"Approach": approach_hook(name, "label", None) or name}
        for use in ("table", "text", "both"):
            run = group["runs"].get(use)
            auc = ((run.metrics.get("metrics") or {}).get("roc_auc") or {}) if run else {}
            row[f"{USE_NAMES[use]}: ROC-AUC"] = (
                f"{auc.get('value', float('nan')):.3f} [{auc.get('low', float('nan')):.3f}, "
                f"{auc.get('high', float('nan')):.3f}]"
                if run
                else "-"
            )
        worth = both_vs_best_part(y, probas, n_boot=n_boot)
        row["Both minus the better part"] = (
            f"{worth['value']:+.3f} [{worth['low']:+.3f}, {worth['high']:+.3f}] vs "
            f"{USE_NAMES[worth['both_minus']].lower()}: {worth['verdict']}"
            if worth
            else "-"
        )
        out.append(row)
    return out
