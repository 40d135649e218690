"""Realized performance of the scored lists once outcomes came back (:mod:`engine.outcomes`), beside what each run
promised on its test split, in words, with alerts.

* :func:`realized` — on matched leads: conversion by tier and by score band, lift of the top 10 % and 20 %, ROC-AUC,
  Brier score and expected calibration error with 95 % bootstrap intervals (:func:`engine.evaluate.compute_metrics`,
  whose values equal scikit-learn's), calibration (predicted against realized, ten bins).
* :func:`promised` — the same, as the run's ``metrics.json`` and test-split predictions give them.
* :func:`monitoring_report` — per scored list, per week (of the leads' own date where the list has its run's date
  column, such as a creation date; else the week the list was scored) and per run, and over all
  matched leads (each lead once, with the score of the newest list holding it); sentences and alerts: realized
  ROC-AUC below the run's interval, or the calibration error above it.
* :func:`upload_outcomes` — read, store and report an outcomes file: what the CLI and the Monitoring page call.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from engine.evaluate import SCORE_BANDS, TIERS, ScoreScale, compute_metrics
from engine.outcomes import OutcomeError, OutcomeStore, all_list_ids, id_hints, matched_lists, read_outcomes, safe_ids
from engine.runs import RunStore
from engine.scored_lists import ScoredStore

#: Fewest matched leads (and of each outcome) before a list's realized metrics can raise an alert: below it the
#: bootstrap interval is too wide to tell a decaying model from chance.
ALERT_MIN_LEADS = 50
ALERT_MIN_EACH = 5
#: Bootstrap resamples of the realized intervals.
N_BOOT = 500


def _num(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f} %"


def realized(rows: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Realized metrics of matched leads (``outcome`` 0/1, ``probability``, ``score``, ``tier``)."""
    y = rows["outcome"].to_numpy(dtype=int)
    p = rows["probability"].to_numpy(dtype=float)
    n = len(y)
    out: dict[str, Any] = {
        "matched": int(n),
        "converted": int(y.sum()),
        "conversion_rate": float(y.mean()) if n else None,
        "mean_predicted": float(p.mean()) if n else None,
    }
    for name in ("roc_auc", "brier", "ece"):
        out[name], out[f"{name}_ci"] = None, None
    if n:
        m = compute_metrics(y, p, n_boot=n_boot, seed=seed)
        for name in ("roc_auc", "brier", "ece"):
            value = _num(m[name]["value"])
            out[name] = value
            out[f"{name}_ci"] = None if value is None else [_num(m[name]["low"]), _num(m[name]["high"])]
    tiers = rows["tier"].astype(object).to_numpy() if "tier" in rows else np.full(n, None)
    out["by_tier"] = {}
    for tier in TIERS:
        mask = tiers == tier
        if mask.any():
            out["by_tier"][tier] = _group(y[mask], p[mask])
    scores = (
        pd.to_numeric(rows["score"], errors="coerce").to_numpy(dtype=float) if "score" in rows else np.full(n, np.nan)
    )
    out["by_band"] = {}
    for low, high in SCORE_BANDS:
        mask = (scores >= low) & (scores <= high)
        if mask.any():
            out["by_band"][f"{low}-{high}"] = _group(y[mask], p[mask])
    order = np.argsort(-p, kind="mergesort")
    for share in (10, 20):
        k = max(int(math.ceil(share / 100 * n)), 1) if n else 0
        rate = float(y[order[:k]].mean()) if k else None
        base = out["conversion_rate"]
        out[f"lift_top{share}"] = rate / base if rate is not None and base else None
    bins = np.minimum((p * 10).astype(int), 9)
    out["calibration"] = [
        {
            "bin": f"{b / 10:.1f}-{(b + 1) / 10:.1f}",
            "leads": int((bins == b).sum()),
            "predicted": float(p[bins == b].mean()),
            "realized": float(y[bins == b].mean()),
        }
        for b in range(10)
        if (bins == b).any()
    ]
    return out


def _group(y: np.ndarray, p: np.ndarray) -> dict:
    return {"leads": int(len(y)), "converted": int(y.sum()), "rate": float(y.mean()), "predicted": float(p.mean())}


def _interval(entry: Any) -> tuple[float | None, list[float | None] | None]:
    if isinstance(entry, dict):
        value = _num(entry.get("value"))
        return value, [_num(entry.get("low")), _num(entry.get("high"))]
    return _num(entry), None


def promised(run) -> dict:
    """What ``run`` promised on its test split: ROC-AUC, Brier score and calibration error with their intervals,
    conversion by tier (its test leads, tiered on its own scale) and the lift of its top 10 % and 20 %."""
    metrics = run.metrics.get("metrics", {}) if isinstance(run.metrics, dict) else {}
    out: dict[str, Any] = {"run_id": run.id}
    for name in ("roc_auc", "brier", "ece"):
        out[name], out[f"{name}_ci"] = _interval(metrics.get(name))
    out["by_tier"] = {}
    try:
        preds = run.predictions()
        scale = ScoreScale.from_metrics(run.metrics)
        if scale is not None:
            y, p = preds["y_true"].to_numpy(dtype=int), preds["proba"].to_numpy(dtype=float)
            tiers = scale.tier(p)
            out["by_tier"] = {t: _group(y[tiers == t], p[tiers == t]) for t in TIERS if (tiers == t).any()}
            out["conversion_rate"] = float(y.mean())
    except (OSError, KeyError, ValueError):  # an older run without predictions: the metrics alone
        pass
    try:
        lift = run.curves.get("deciles", {}).get("lift", [])
        out["lift_top10"], out["lift_top20"] = _num(lift[0]), _num(lift[1])
    except (AttributeError, IndexError, OSError, ValueError):
        out["lift_top10"] = out["lift_top20"] = None
    return out


def words(r: dict, promise: dict | None) -> list[str]:
    """What the realized numbers say beside the promise, in sentences."""
    if not r["matched"]:
        return ["No lead of this list has an outcome yet."]
    said = []
    tiers, pt = r["by_tier"], (promise or {}).get("by_tier", {})
    if "A" in tiers:
        a = tiers["A"]["rate"]
        text = f"A-tier leads converted at {_pct(a)} ({tiers['A']['converted']:,} of {tiers['A']['leads']:,})"
        if "D" in tiers:
            d = tiers["D"]["rate"]
            text += f", {a / d:.1f} times the D-tier" if d > 0 else ", while no D-tier lead converted"
        if "A" in pt:
            text += f"; the run promised {_pct(pt['A']['rate'])}"
        said.append(text + ".")
    if r["roc_auc"] is not None:
        low, high = r["roc_auc_ci"]
        text = f"ROC-AUC {r['roc_auc']:.2f} [{low:.2f}, {high:.2f}] on {r['matched']:,} matched leads"
        if promise and promise.get("roc_auc") is not None:
            text += f"; the run promised {promise['roc_auc']:.2f}" + (
                f" [{promise['roc_auc_ci'][0]:.2f}, {promise['roc_auc_ci'][1]:.2f}]"
                if promise.get("roc_auc_ci")
                else ""
            )
        said.append(text + ".")
    else:
        said.append(
            f"All {r['matched']:,} matched leads {'converted' if r['converted'] else 'did not convert'}: ROC-AUC needs "
            "both outcomes."
        )
    if r["lift_top10"] is not None:
        text = f"The top 10 % of the list converted at {r['lift_top10']:.1f} times the list's rate"
        if promise and promise.get("lift_top10") is not None:
            text += f" (the run promised {promise['lift_top10']:.1f})"
        said.append(text + ".")
    said.append(
        f"The list predicted {_pct(r['mean_predicted'])} on average; {_pct(r['conversion_rate'])} converted"
        + (f" (Brier score {r['brier']:.3f}, calibration error {r['ece']:.3f})." if r["brier"] is not None else ".")
    )
    return said


def alerts(r: dict, promise: dict | None, what: str) -> list[str]:
    """Alerts in words when ``r`` (realized, for ``what``) falls outside what the run promised: ROC-AUC below its
    interval, calibration error above it. Only on enough leads of each outcome to tell."""
    if promise is None or r["matched"] < ALERT_MIN_LEADS:
        return []
    if min(r["converted"], r["matched"] - r["converted"]) < ALERT_MIN_EACH:
        return []
    out = []
    ci = promise.get("roc_auc_ci")
    if r["roc_auc"] is not None and ci and ci[0] is not None and r["roc_auc"] < ci[0]:
        out.append(
            f"{what}: realized ROC-AUC {r['roc_auc']:.2f} is below the interval run {promise['run_id']} was measured "
            f"with ({ci[0]:.2f} to {ci[1]:.2f}): it ranks these leads worse than its test leads. Check the shift "
            "check, and consider training again on recent leads."
        )
    ci = promise.get("ece_ci")
    if r["ece"] is not None and ci and ci[1] is not None and r["ece"] > ci[1]:
        out.append(
            f"{what}: calibration moved: the list predicted {_pct(r['mean_predicted'])} on average and "
            f"{_pct(r['conversion_rate'])} converted; calibration error {r['ece']:.3f} is above run "
            f"{promise['run_id']}'s interval ({ci[0]:.3f} to {ci[1]:.3f}). Read its probabilities as a ranking, "
            "not as chances, until it is trained again."
        )
    return out


def _week(created: float) -> str:
    """The ISO week a list was scored in (``2026-W03``): the cohort its leads belong to."""
    import datetime

    year, week, _ = datetime.date.fromtimestamp(created).isocalendar()
    return f"{year}-W{week:02d}"


def monitoring_report(outcomes_store=None, scored_store=None, run_store=None, n_boot: int = N_BOOT) -> dict:
    """Realized performance of every stored list with every stored outcome (:mod:`engine.outcomes`)."""
    outcomes_store = outcomes_store if outcomes_store is not None else OutcomeStore()
    run_store = run_store if run_store is not None else RunStore()
    known, conflicting = outcomes_store.known()
    date_columns: dict[str, list[str]] = {}

    def date_columns_of(meta: dict) -> list[str]:
        """The list's run's date columns (never features; a creation date dates its leads)."""
        run_id = str(meta.get("run_id"))
        if run_id not in date_columns:
            try:
                dropped = run_store.get(run_id).settings.dropped
            except (KeyError, ValueError, OSError):
                dropped = {}
            date_columns[run_id] = [c for c, why in dropped.items() if str(why).startswith("date")]
        return date_columns[run_id]

    lists, skipped = matched_lists(known, scored_store, date_columns_of)
    promises: dict[str, dict | None] = {}

    def promise_of(run_id: str) -> dict | None:
        if run_id not in promises:
            try:
                promises[run_id] = promised(run_store.get(run_id))
            except (KeyError, ValueError, OSError):  # deleted or damaged since: nothing to compare with
                promises[run_id] = None
        return promises[run_id]

    entries, parts = [], []
    for m in lists:
        meta = m.meta
        run_id = str(meta.get("run_id"))
        r = realized(m.rows, n_boot=n_boot)
        promise = promise_of(run_id)
        shift = meta.get("shift") if isinstance(meta.get("shift"), dict) else {}
        what = f"list {meta.get('source')} scored {time.strftime('%Y-%m-%d', time.localtime(meta['created']))}"
        entries.append(
            {
                "sha256": meta["sha256"],
                "source": meta.get("source"),
                "created": meta["created"],
                "week": _week(meta["created"]),
                "run_id": run_id,
                "live_version": meta.get("live_version"),
                "family": meta.get("family"),
                "shift_verdict": shift.get("verdict"),
                "list_rows": m.list_ids,
                "id_column": m.id_column,
                **r,
                "promised": promise,
                "words": words(r, promise),
                "alerts": alerts(r, promise, what),
            }
        )
        if len(m.rows):  # a lead's week: that of its own date where the list has one, else the week it was scored
            lead_week = m.rows["lead_week"] if "lead_week" in m.rows else None
            week = lead_week.fillna(entries[-1]["week"]) if lead_week is not None else entries[-1]["week"]
            parts.append(m.rows.assign(week=week, run_id=run_id, list=meta["sha256"]))
    every = (
        pd.concat(parts, ignore_index=True).drop_duplicates("id", keep="first")  # lists come newest first
        if parts
        else pd.DataFrame(
            {"id": [], "outcome": [], "probability": [], "score": [], "tier": [], "week": [], "run_id": [], "list": []}
        )
    )
    run_ids = sorted(set(every["run_id"]))
    overall_promise = promise_of(run_ids[0]) if len(run_ids) == 1 else None
    overall = realized(every, n_boot=n_boot)
    weeks = [
        {"week": week, "lists": int(rows["list"].nunique()), **realized(rows, n_boot=n_boot)}
        for week, rows in sorted(every.groupby("week"), key=lambda kv: kv[0])
    ]
    runs = []
    for run_id, rows in every.groupby("run_id"):
        r = realized(rows, n_boot=n_boot)
        promise = promise_of(run_id)
        runs.append(
            {
                "run_id": run_id,
                **r,
                "promised": promise,
                "words": words(r, promise),
                "alerts": alerts(r, promise, f"run {run_id}"),
            }
        )
    return {
        **overall,
        "promised": overall_promise,
        "words": words(overall, overall_promise),
        "alerts": [a for e in entries for a in e["alerts"]] + [a for e in runs for a in e["alerts"]],
        "lists": entries,
        "weeks": weeks,
        "runs": runs,
        "outcomes": {
            "uploads": len(outcomes_store.list()),
            "ids": int(len(known)),
            "conflicting_between_uploads": len(conflicting),
            "conflicting_examples": safe_ids(conflicting[:5]),
            "damaged_uploads": dict(outcomes_store.problems),
        },
        "skipped_lists": {sha[:12]: why for sha, why in skipped.items()},
    }


def upload_outcomes(
    source,
    filename: str | None = None,
    id_column: str | None = None,
    outcome_column: str | None = None,
    date_column: str | None = None,
    *,
    outcomes_store=None,
    scored_store=None,
    run_store=None,
    n_boot: int = N_BOOT,
) -> dict:
    """Read an outcomes file, store it (unless the same outcomes are stored already: then nothing changes) and return
    :func:`monitoring_report` with ``upload``: this file's rows, matched and unmatched ids (with examples), duplicate
    and conflicting ids, ids whose outcome differs from an earlier upload, and whether it was ``added``.
    :class:`engine.outcomes.OutcomeError` (nothing stored) when no list is stored yet, or when none of its ids is in
    any stored list (another dataset's file, or the wrong id column)."""
    scored_store = scored_store if scored_store is not None else ScoredStore()
    lists = scored_store.list()
    if not lists:
        raise OutcomeError(
            "no scored list is stored yet, so there is nothing to match outcomes to. Fix: score the leads first "
            "(`python -m engine score` stores the list, as does the Score page), then upload their outcomes."
        )
    read = read_outcomes(source, filename, id_column, outcome_column, date_column, id_hints=id_hints(scored_store))
    ids = all_list_ids(scored_store)
    found = read.frame["id"].isin(ids)
    if not found.any():
        theirs = ", ".join(repr(i) for i in safe_ids(read.frame["id"].head(3)))
        ours = ", ".join(repr(i) for i in safe_ids(sorted(ids)[:3]))
        raise OutcomeError(
            f"none of the {len(read.frame):,} ids of {read.source} (column {read.id_column!r}: {theirs}) is in any of "
            f"the {len(lists):,} stored scored lists (ids such as {ours or 'none'}): is it another dataset's file, or "
            "the wrong id column? Nothing was stored. Fix: upload the outcomes of leads scored here, or name the id "
            "column with --id."
        )
    outcomes_store = outcomes_store if outcomes_store is not None else OutcomeStore()
    earlier, _ = outcomes_store.known()
    meta, added = outcomes_store.add(read)
    both = read.frame.merge(earlier[["id", "outcome"]], on="id", suffixes=("", "_before"))
    differs = both.loc[both["outcome"] != both["outcome_before"], "id"]
    unmatched = read.frame.loc[~found, "id"]
    upload = {
        **read.summary(),
        "sha256": meta["sha256"],
        "added": added,
        "matched": int(found.sum()),
        "unmatched": int((~found).sum()),
        "unmatched_examples": safe_ids(unmatched.head(5)),
        "differs_from_earlier": int(len(differs)),
        "differs_examples": safe_ids(differs.head(5)),
    }
    report = monitoring_report(outcomes_store, scored_store, run_store, n_boot=n_boot)
    return {**report, "upload": upload}


def upload_words(upload: dict) -> list[str]:
    """The upload's counts in sentences (the CLI prints them, the Monitoring page shows them)."""
    said = [
        f"{upload['source']}: {upload['rows']:,} rows, {upload['ids']:,} leads with an outcome (id column "
        f"{upload['id_column']!r}, outcome column {upload['outcome_column']!r}); {upload['matched']:,} matched a scored "
        f"list, {upload['unmatched']:,} did not"
        + (f" (e.g. {', '.join(upload['unmatched_examples'][:3])})" if upload["unmatched"] else "")
        + "."
    ]
    if upload["duplicates"]:
        said.append(f"{upload['duplicates']:,} ids appear more than once with the same outcome: each is counted once.")
    if upload["conflicting"]:
        said.append(
            f"{upload['conflicting']:,} ids appear with different outcomes (e.g. "
            f"{', '.join(upload['conflicting_examples'][:3])}): they are left out until one file says which."
        )
    if upload["differs_from_earlier"]:
        said.append(
            f"{upload['differs_from_earlier']:,} ids have another outcome in an earlier upload (e.g. "
            f"{', '.join(upload['differs_examples'][:3])}): both are kept, and these ids are left out of the metrics."
        )
    if upload["blank_ids"] or upload["no_outcome"]:
        said.append(
            f"Left out: {upload['blank_ids']:,} rows without an id, {upload['no_outcome']:,} without an outcome "
            "(still open?)."
        )
    said.append(
        "Stored as a new upload." if upload["added"] else "These outcomes were uploaded before: nothing changed."
    )
    return said
