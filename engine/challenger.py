"""Champion against challenger: the live run and each run scored beside it (a shadow run: several models on the
Score page, ``score --shadow RUN_ID``) compared on the same leads once their outcomes came back.

* :func:`paired_leads` — every stored list that holds the live run's and a challenger's probabilities
  (:meth:`engine.scored_lists.ScoredStore.shadow_scores`), joined by lead id to the known outcomes
  (:mod:`engine.outcomes`); a lead in several lists counts once, with the newest list's scores.
* :func:`compare` — on those leads: each run's ROC-AUC and a **paired bootstrap** of the difference (the same
  resampled leads for both runs, resampled within each list), and the conversions among the top N of each list (the
  leads a team can call), with the same resamples giving the difference's interval; a recommendation in words.
  The challenger is recommended only when its ROC-AUC difference interval lies above 0 or it converts clearly more
  in the top N (that interval above 0), and neither is clearly worse; otherwise: keep the live run.
* :func:`challenger_report` — the live run against every challenger with outcomes: the ``challengers`` block of
  ``python -m engine outcomes --json`` and the Monitoring page's section.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.live import LiveStore
from engine.outcomes import OutcomeStore, read_list
from engine.runs import RunStore
from engine.scored_lists import ScoredStore
from engine.storage import CorruptFile
from engine.words import plural

#: Leads a team calls from each list when none is said.
DEFAULT_TOP_N = 50
#: Paired bootstrap resamples.
N_BOOT = 500
#: Fewest leads with an outcome (and of each outcome) before a challenger can be recommended.
MIN_LEADS = 50
MIN_EACH = 5


class ChallengerError(ValueError):
    """A comparison that cannot be made as asked; the message names the problem and the fix."""


def check_top_n(value) -> int:
    """The N of "the top N leads a team can call": a whole number of at least 1; ChallengerError otherwise."""
    if isinstance(value, (bool, np.bool_)):
        value = str(value)
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        try:
            value = int(text)
        except ValueError:
            raise ChallengerError(
                f"the number of leads to call (top N) must be a whole number, not {value[:40]!r}. Fix: give e.g. 50."
            ) from None
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value) or not float(value).is_integer():
            raise ChallengerError(f"the number of leads to call (top N) must be a whole number, not {value}.")
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise ChallengerError(f"the number of leads to call (top N) must be a whole number, not {type(value).__name__}")
    if value < 1:
        raise ChallengerError(
            f"the number of leads to call (top N) must be at least 1, not {value}. Fix: give how many leads of each "
            "list the team calls, e.g. 50."
        )
    return int(value)


def _list_scores(store, meta: dict) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """A stored list's probabilities, one column per run (its own run and its shadow runs), and its id keys."""
    frame, keys = read_list(store, meta)
    if not keys:
        return pd.DataFrame(), {}
    runs = pd.DataFrame({str(meta["run_id"]): frame["probability"].to_numpy()})
    shadow = store.shadow_scores(meta)
    for run_id in shadow.columns:
        runs[run_id] = shadow[run_id].to_numpy()
    return runs, keys


def paired_leads(known: pd.DataFrame, live_id: str, scored_store=None) -> tuple[dict[str, pd.DataFrame], dict]:
    """``{challenger run id: leads}`` (``id``, ``outcome``, ``live``, ``challenger``, ``list``: the list's sha256) over
    every stored list scored by ``live_id`` and that challenger, and the lists left out with why."""
    store = scored_store if scored_store is not None else ScoredStore()
    outcomes = known[["id", "outcome"]]
    parts: dict[str, list[pd.DataFrame]] = {}
    skipped: dict[str, str] = dict(store.problems)
    for meta in store.list():  # newest first
        runs_in = {str(meta.get("run_id")), *[str(r) for r in meta.get("shadow_runs") or []]}
        if live_id not in runs_in or len(runs_in) < 2:
            continue
        try:
            runs, keys = _list_scores(store, meta)
        except (KeyError, OSError, ValueError, CorruptFile) as exc:
            skipped[meta["sha256"][:12]] = f"cannot be read ({getattr(exc, 'problem', exc)})"
            continue
        if not keys:
            continue
        best = None
        for values in keys.values():
            table = runs.assign(id=values.to_numpy())
            table = table[table["id"] != ""].drop_duplicates("id", keep="first")
            rows = table.merge(outcomes, on="id", how="inner")
            if best is None or len(rows) > len(best):
                best = rows
        for run_id in runs.columns:
            if run_id == live_id:
                continue
            pair = best[["id", "outcome", live_id, run_id]].dropna()
            pair = pair.rename(columns={live_id: "live", run_id: "challenger"}).assign(list=meta["sha256"])
            parts.setdefault(run_id, []).append(pair)
    out = {}
    for run_id, frames in parts.items():
        every = pd.concat(frames, ignore_index=True).drop_duplicates("id", keep="first")  # the newest list's scores
        out[run_id] = every.reset_index(drop=True)
    return out, skipped


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC-AUC by ranks (ties averaged: scikit-learn's value); None without both outcomes."""
    from scipy.stats import rankdata

    n1 = int(y.sum())
    n0 = len(y) - n1
    if not n1 or not n0:
        return None
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _top_converted(y: np.ndarray, p: np.ndarray, groups: list[np.ndarray], top_n: int) -> int:
    """Converted leads among the ``top_n`` best-scored of each group (positions into ``y``/``p``)."""
    total = 0
    for g in groups:
        order = g[np.argsort(-p[g], kind="stable")[:top_n]]
        total += int(y[order].sum())
    return total


def _interval(values: list[float]) -> list[float] | None:
    clean = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(clean) < 10:
        return None
    return [float(np.percentile(clean, 2.5)), float(np.percentile(clean, 97.5))]


def compare(
    pairs: pd.DataFrame, live_id: str, run_id: str, top_n: int = DEFAULT_TOP_N, n_boot: int = N_BOOT, seed: int = 0
) -> dict:
    """The live run ``live_id`` against the challenger ``run_id`` on ``pairs`` (:func:`paired_leads`)."""
    top_n = check_top_n(top_n)
    y = pairs["outcome"].to_numpy(dtype=int)
    a = pairs["live"].to_numpy(dtype=float)
    b = pairs["challenger"].to_numpy(dtype=float)
    groups = [np.flatnonzero(pairs["list"].to_numpy() == sha) for sha in pd.unique(pairs["list"])]
    out = {
        "run_id": run_id,
        "live_run_id": live_id,
        "leads": int(len(y)),
        "converted": int(y.sum()),
        "lists": len(groups),
        "top_n": top_n,
        "top_n_leads": int(sum(min(top_n, len(g)) for g in groups)),
        "roc_auc_live": _auc(y, a),
        "roc_auc_challenger": _auc(y, b),
        "roc_auc_difference": None,
        "roc_auc_difference_ci": None,
        "top_n_converted_live": _top_converted(y, a, groups, top_n),
        "top_n_converted_challenger": _top_converted(y, b, groups, top_n),
        "top_n_difference_ci": None,
    }
    out["top_n_difference"] = out["top_n_converted_challenger"] - out["top_n_converted_live"]
    if out["roc_auc_live"] is not None:
        out["roc_auc_difference"] = out["roc_auc_challenger"] - out["roc_auc_live"]
    if len(y):
        rng = np.random.default_rng(seed)
        auc_diffs, top_diffs = [], []
        for _ in range(n_boot):
            # the same resampled leads for both runs, each list resampled within itself
            picked = [g[rng.integers(0, len(g), len(g))] for g in groups]
            idx = np.concatenate(picked)
            ya, pa, pb = y[idx], a[idx], b[idx]
            live, chal = _auc(ya, pa), _auc(ya, pb)
            auc_diffs.append(None if live is None else chal - live)
            spans = np.cumsum([0, *[len(g) for g in picked]])
            local = [np.arange(spans[i], spans[i + 1]) for i in range(len(picked))]
            top_diffs.append(_top_converted(ya, pb, local, top_n) - _top_converted(ya, pa, local, top_n))
        if out["roc_auc_difference"] is not None:
            out["roc_auc_difference_ci"] = _interval(auc_diffs)
        out["top_n_difference_ci"] = _interval(top_diffs)
    out["recommendation"], out["words"] = _words(out)
    return out


def _signed(value: float, digits: int = 2) -> str:
    return f"{value:+.{digits}f}"


def _words(c: dict) -> tuple[str, list[str]]:
    """``("make live" | "keep the live run", sentences)``."""
    live, run = c["live_run_id"], c["run_id"]
    keep = f"Keep the live run {live}"
    if not c["leads"]:
        return "keep the live run", [
            f"Run {run} scored none of the leads with an outcome that the live run {live} scored, so they cannot be "
            f"compared. {keep}. Fix: score new leads with both (the Score page with both models chosen, or "
            f"`python -m engine score --shadow {run}`), then upload their outcomes."
        ]
    said = [
        f"Run {run} against the live run {live} on the same {c['leads']:,} leads with an outcome "
        f"({c['converted']:,} converted, {plural(c['lists'], 'list')})."
    ]
    ci = c["roc_auc_difference_ci"]
    if c["roc_auc_difference"] is not None:
        said.append(
            f"ROC-AUC {c['roc_auc_challenger']:.2f} against {c['roc_auc_live']:.2f}: a difference of "
            f"{_signed(c['roc_auc_difference'])}"
            + (f" (95 % interval {_signed(ci[0])} to {_signed(ci[1])})." if ci else ".")
        )
    tci = c["top_n_difference_ci"]
    said.append(
        f"Calling the top {c['top_n']:,} of each list ({c['top_n_leads']:,} leads), run {run} would have reached "
        f"{c['top_n_converted_challenger']:,} converted leads and the live run {c['top_n_converted_live']:,} "
        f"({c['top_n_difference']:+,d}" + (f", 95 % interval {tci[0]:+.0f} to {tci[1]:+.0f})." if tci else ").")
    )
    if c["leads"] < MIN_LEADS or min(c["converted"], c["leads"] - c["converted"]) < MIN_EACH:
        said.append(
            f"{keep}: {c['leads']:,} leads with an outcome ({c['converted']:,} converted) are too few to tell the two "
            f"apart (at least {MIN_LEADS} and {MIN_EACH} of each outcome). Upload more outcomes."
        )
        return "keep the live run", said
    auc_better = bool(ci and ci[0] > 0)
    auc_worse = bool(ci and ci[1] < 0)
    top_better = bool(tci and tci[0] > 0)
    top_worse = bool(tci and tci[1] < 0)
    if (auc_better or top_better) and not (auc_worse or top_worse):
        why = " and ".join(
            w
            for w, yes in (
                ("its ROC-AUC difference interval is above 0", auc_better),
                (f"it converts clearly more in the top {c['top_n']:,}", top_better),
            )
            if yes
        )
        said.append(f"Make run {run} live: on the same leads {why}.")
        return "make live", said
    if auc_worse or top_worse:
        said.append(f"{keep}: run {run} does clearly worse on these leads.")
    else:
        said.append(
            f"{keep}: the ROC-AUC difference interval includes 0 and the top {c['top_n']:,} conversions do not differ "
            "clearly; the challenger is not shown to be better."
        )
    return "keep the live run", said


def challenger_report(
    top_n=DEFAULT_TOP_N, kind: str = "leads", outcomes_store=None, scored_store=None, run_store=None, n_boot=N_BOOT
) -> dict:
    """The live run of ``kind`` of each dataset family against every run scored beside it whose leads have outcomes:
    ``{"top_n", "live_run_id" (the one live run's, None when several families are live), "live": {family: run id},
    "runs": [compare(...) with its "family"], "words", "skipped_lists"}``. A list is compared with the live run of
    its own family only: the lists that hold it. ChallengerError for a ``top_n`` that is not a whole number of at
    least 1, or more than the leads with an outcome of any list compared (every lead would be called, so the runs
    could not differ)."""
    top_n = check_top_n(top_n)
    run_store = run_store if run_store is not None else RunStore()
    outcomes_store = outcomes_store if outcomes_store is not None else OutcomeStore()
    live = {f: e["run_id"] for f, e in LiveStore.beside(run_store).state()["live"].get(kind, {}).items()}
    block = {
        "top_n": top_n,
        "live_run_id": next(iter(live.values())) if len(live) == 1 else None,
        "live": live,
        "runs": [],
        "skipped_lists": {},
    }
    if not live:
        block["words"] = [f"No live {kind} run is set, so there is no champion to compare challengers with."]
        return block
    known, _ = outcomes_store.known()
    every: list[tuple[str, str, str, pd.DataFrame]] = []
    for family, live_id in sorted(live.items()):
        pairs, skipped = paired_leads(known, live_id, scored_store)
        block["skipped_lists"].update(skipped)
        every += [(family, live_id, run_id, p) for run_id, p in sorted(pairs.items())]
    largest = max((int(p.groupby("list").size().max()) for *_, p in every if len(p)), default=0)
    if largest and top_n > largest:
        raise ChallengerError(
            f"the top {top_n:,} leads is more than any compared list holds with an outcome (the largest has "
            f"{largest:,}): every lead would be called and the runs could not differ. Fix: set N to at most {largest:,}."
        )
    block["runs"] = [{**compare(p, live_id, run_id, top_n, n_boot), "family": f} for f, live_id, run_id, p in every]
    block["runs"].sort(key=lambda c: (c["recommendation"] != "make live", -(c["roc_auc_difference"] or -9)))
    champions = " or ".join(f"{run_id} ({family})" for family, run_id in sorted(live.items()))
    block["words"] = (
        [f"{c['run_id']}: {c['words'][-1]}" for c in block["runs"]]
        if block["runs"]
        else [
            f"No run was scored beside the live run {champions} on leads that have an outcome. Score new leads "
            "with a challenger beside it (the Score page with several models, or `python -m engine score --shadow "
            "RUN_ID`) and upload their outcomes."
        ]
    )
    return block
