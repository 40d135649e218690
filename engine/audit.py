"""Leak finder for a lead table: which columns give the outcome away on their own?

A column that the sales team fills in *after* contacting a lead (a status tag, a quality rating,
the call's length) predicts conversion far better than anything known before contact, so a model
trained with it looks excellent and fails on new leads. Like H2O Driverless AI's leakage check,
:func:`audit_frame` fits one small cross-validated model per column, on that column alone:

* numbers (and 0/1 flags stored as numbers): a depth-limited decision tree (``max_depth=4``,
  leaves of at least 0.5 % of the rows; missing values handled by the tree itself);
* everything else (categories, yes/no text, high-cardinality and free text): scikit-learn's
  ``TargetEncoder`` fitted on the training folds (each value's conversion rate, shrunk towards the
  overall rate by empirical-Bayes smoothing; missing is a value of its own; unseen values get the
  overall rate), whose encoding of the held-out fold is the score (a logistic regression on one
  encoded column would rank the leads the same way, so none is fitted);

scored by stratified 3-fold ROC-AUC (``auc``). It also measures, without any model, the ROC-AUC
of the column's is-blank indicator (``missing_auc``, read in whichever direction is higher, so
0.5 = blank and filled leads convert alike, 1.0 = blank exactly for one outcome), and the
cross-validated ROC-AUC on the filled rows only (``filled_auc``, for columns blank in >= 10 % of
the rows with >= 25 leads of each outcome among the filled ones).

A column is flagged as a likely post-outcome field when any of these holds (constants below):

1. ``auc >= 0.85`` — alone it predicts the outcome almost perfectly. No field known before
   contact does that in lead data (the best clean X Education column, Total Time Spent on Website,
   reaches 0.77; Tags reaches 0.92; a call's duration, recorded after the call, is the textbook
   post-contact field of this kind).
2. ``auc >= 0.80`` and at least ``0.12`` above the next best column — far ahead of everything else.
3. ``missing_auc >= 0.80`` — whether the field is filled in gives the outcome away (a field that is
   only filled for won, or only for lost, leads). Clean X Education columns stay below 0.66.
4. ``auc >= 0.75``, blank for at least 20 % of the rows and ``filled_auc >= 0.83`` — the pattern of
   a field the sales team fills in: often blank, and where filled it nearly settles the outcome.
   This is the rule that catches X Education's Lead Quality (auc 0.80, filled 0.86, blank 52 %);
   the clean columns with that much blank stay at filled 0.60 or below.

5. no other column stands in for it (the *unique contribution*; see :mod:`engine.audit_model`): one quick
   gradient-boosting model of all the audited columns is fitted on two thirds of the rows; the four columns
   whose permutation costs it most on the held-out third are refitted without, one at a time. A column is
   flagged when the ROC-AUC lost without it (``drop_cost``) is at least 0.04, at least 15 % of the model's
   lift over chance (10 % when its name suggests a field filled in after contact), at least 3 times the
   loss without any other column, its own ``auc`` at least 0.65, and the model without it still at
   0.65 or more (a clean table's one real driver is most of its model; a leak far ahead of weak columns
   is rule 2's), and only when the held-out third holds at least 100 leads of each outcome: with fewer, the
   drop cost's noise is the size of its threshold (a clean column was flagged on 1 in 20 random 300-lead and 2 in
   20 600-lead subsamples of the demo leads), so the column is only listed to check. This catches a post-call field that
   the calendar's echoes hide from rules 1 and 2 (a call's duration at 0.81 beside economic indicators at
   0.77-0.78, which stand in for each other and lose about nothing when dropped). It complements rules 1-4:
   on X Education, Tags loses 0.039 (8 % of the lift) and Lead Quality, once Tags is gone, 0.014, while the
   clean Total Time Spent on Website loses 0.023 there (0.050, 12 %, under the default policy).
6. **A group of after-contact fields** (rule 6): fields named like after-contact ones that no rule flagged
   and that stand in for each other (a call's duration and its status) each lose the model little when
   dropped alone; dropped together they are measured as one, against rule 5's tests, and each member with
   its own ``auc`` of 0.65 is flagged, the others listed to check. On the browser walk's bank export the
   duration alone lost 0.040 (under 0.04's line, the status standing in) and the pair 0.084 +/- 0.023.

Dates stored as text are read as days (after the creation date when one column is named like it), and a
column's name is checked for the words of fields a CRM fills in after contact (duration or length of a
call, status, stage, outcome, result, won/lost, closed, reason, disposition, tags, quality, score, the
date of a later contact or change). A name is never evidence on its own: it lowers rule 5's share and is
added to a flag's reason. Softer signs are listed under ``check`` ("check how these are filled in"): a
drop cost of 0.02 and 8 % of the lift, or a telling name with a single-column ROC-AUC of 0.65 (or a
drop cost of 0.01). Measurements behind every threshold: docs/RESULTS.md, "Leak finder on any schema".

The thresholds are deliberately conservative: on the real X Education export (leak policy
``none``) they flag Tags and Lead Quality and no clean column, and on the synthetic demo leads
(policy ``default``) nothing. A flag is a prompt to check how the field is filled in, not proof.

Speed: above ``max_rows`` (default 50,000) rows the per-column models run on a stratified random
subsample of that size (``rows_used`` in the result), the model of all columns on at most 30,000 rows.
Measured on 2 shared cores (2026-12-05): 50,000 demo leads take 9.7 s, against 5.4 s before rule 5 (same load).

Public surface: :func:`audit_leads` (any table :func:`engine.data.leads.load_leads` reads) and
:func:`audit_frame` (an already loaded feature frame and target). Unusable input raises
:class:`engine.data.leads.LeadDataError` (a ``ValueError``) naming the problem and the fix.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from engine.audit_model import after_contact_name, date_days, group_cost, unique_costs
from engine.data.leads import LeadDataError, infer_kinds, load_leads, map_target, prepare_features

__all__ = [
    "audit_leads",
    "audit_frame",
    "AUC_LEAK",
    "GAP_LEAK",
    "GAP_FLOOR",
    "MISSING_LEAK",
    "FILLED_AUC_LEAK",
    "FILLED_RULE_AUC",
    "FILLED_RULE_BLANK",
    "UNIQUE_MIN",
    "UNIQUE_SHARE",
    "UNIQUE_SHARE_NAMED",
    "UNIQUE_RATIO",
    "UNIQUE_RULE_AUC",
    "UNIQUE_REST_AUC",
    "UNIQUE_HELD_OUT",
]

#: Rule 1: single-column ROC-AUC from which a column is flagged outright.
AUC_LEAK = 0.85
#: Rule 2: margin over the next best column, and the ROC-AUC the column must reach for it to count.
GAP_LEAK = 0.12
GAP_FLOOR = 0.80
#: Rule 3: ROC-AUC of the is-blank indicator from which a column is flagged.
MISSING_LEAK = 0.80
#: Rule 4: filled-rows ROC-AUC, overall ROC-AUC and blank share that together flag a column.
FILLED_AUC_LEAK = 0.83
FILLED_RULE_AUC = 0.75
FILLED_RULE_BLANK = 0.20
#: Rule 5 (unique contribution): what the model of all columns loses without the column (``drop_cost``), at least
#: UNIQUE_MIN, UNIQUE_SHARE of the model's lift over chance (UNIQUE_SHARE_NAMED when the column's name suggests a
#: field filled in after contact), UNIQUE_RATIO times the largest loss without any other column, and a
#: single-column ROC-AUC of at least UNIQUE_RULE_AUC.
UNIQUE_MIN = 0.04
UNIQUE_SHARE = 0.15
UNIQUE_SHARE_NAMED = 0.10
UNIQUE_RATIO = 3.0
UNIQUE_RULE_AUC = 0.65
#: ... and only when the other columns, without it, still reach this ROC-AUC: a table whose one real driver
#: is the whole model (or a leak far ahead of weak columns, which rule 2 catches) is not this pattern.
UNIQUE_REST_AUC = 0.65
#: ... and only when the held-out third holds at least this many leads of each outcome. The drop cost is measured
#: on that third; with fewer leads its noise (standard error 0.02-0.05 at 100-200 held-out leads) is the size of
#: UNIQUE_MIN, and a clean column's share of the lift crosses UNIQUE_SHARE by chance (docs/RESULTS.md). Below it,
#: rule 5 can only list the column to check.
UNIQUE_HELD_OUT = 100
#: Softer signs ("check how these are filled in"): a drop cost of CHECK_DROP and CHECK_SHARE of the lift, or
#: a telling name with a single-column (or blank/filled) ROC-AUC of CHECK_NAMED_AUC or a drop cost of
#: CHECK_NAMED_DROP. At most CHECK_MAX columns are listed.
CHECK_DROP = 0.02
CHECK_SHARE = 0.08
CHECK_NAMED_AUC = 0.65
CHECK_NAMED_DROP = 0.01
CHECK_MAX = 5

_FOLDS = 3
_RATIO_FLOOR = 0.005  # drop costs below this are noise: the ratio is taken against at least this
_MIN_PER_CLASS = 10  # leads of each outcome the audit needs at all
_FILLED_MIN_BLANK = 0.10  # filled_auc is measured for columns blank in at least this share
_FILLED_MIN_PER_CLASS = 25  # ... with at least this many leads of each outcome among the filled


def audit_leads(
    data: Any, *, leak_policy: str = "none", max_rows: int = 50_000, seed: int = 0, **load_options: Any
) -> dict[str, Any]:
    """Audit every column of a lead table for leaks.

    ``data``: a path, bytes, file-like or DataFrame, read by :func:`engine.data.leads.load_leads`
    with ``leak_policy`` (default ``"none"``: audit every column) and ``load_options`` (``target``, ``exclude``,
    ``include``, ``filename``...), so target detection, cleaning, identifier dropping and column kinds are the
    product's own. Columns that loading leaves out (leak policy, identifiers, empty or constant)
    are listed with ``auc`` None and the reason.

    Returns ``{"columns": [{"column", "kind", "auc", "missing_auc", "filled_auc", "missing_share",
    "unique_cost", "drop_cost", "drop_se", "name_hint", "flagged", "reason", "check"}] (highest auc first),
    "flagged": [names], "check": [names, strongest first], "model_auc": full model ROC-AUC, "held_out": [not
    converted, converted] leads in the third the model is scored on, "rows": n,
    "rows_used": m, "target": name, "policy": policy, "seconds": t}``. ``unique_cost``: ROC-AUC the model of
    all columns loses when the column is permuted; ``drop_cost``: when refitted without it (the costliest
    few only, else None), ``drop_se`` its standard error; ``name_hint``: the words of its name that suggest an
    after-contact field. See the module docstring for the rules.
    """
    start = time.perf_counter()
    table = load_leads(data, leak_policy=leak_policy, **load_options)
    # the rows shaped as audit_frame, scoring and the models read them: ``inf`` in a number column is missing
    X = prepare_features(table.X, list(table.X.columns), table.kinds)
    # date columns are never features, but a date set after contact is a leak worth naming: audited as days
    X = pd.concat([X, table.dates.set_axis(X.index)], axis=1) if len(table.dates.columns) else X
    report = _audit(
        X, table.y, {**table.kinds, **dict.fromkeys(table.dates.columns, "date")}, max_rows=max_rows, seed=seed
    )
    skipped = [_skipped(c, f"left out by the leak policy {table.policy!r}; not audited") for c in table.excluded]
    skipped += [_skipped(c, f"{why}; not audited") for c, why in table.dropped.items()]
    report["columns"] += skipped
    report.update(target=table.target, policy=table.policy, seconds=round(time.perf_counter() - start, 3))
    return report


def audit_frame(
    X: pd.DataFrame, y: Any, kinds: dict[str, str] | None = None, *, max_rows: int = 50_000, seed: int = 0
) -> dict[str, Any]:
    """Audit an already loaded table: feature frame ``X`` and outcome ``y`` (one per row).

    ``y``: 0/1, booleans or yes/no-style values (as :func:`engine.data.leads.map_target` reads
    them), no blanks. ``kinds``: column kinds as in ``LeadTable.kinds``; inferred with
    :func:`engine.data.leads.infer_kinds` when None. ``X`` is cleaned with
    :func:`engine.data.leads.prepare_features` ('Select' and blanks missing, numeric columns
    numbers). Returns the same dict as :func:`audit_leads` without ``target``/``policy``.
    """
    start = time.perf_counter()
    if not isinstance(X, pd.DataFrame):
        raise LeadDataError(
            f"X must be a pandas DataFrame of lead features, not a {type(X).__name__}. "
            "Pass the table without its target column, e.g. LeadTable.X."
        )
    if X.shape[1] == 0:
        raise LeadDataError("the table has no feature columns to audit. Pass the lead table with its columns.")
    if len(X) == 0:
        raise LeadDataError("the table has no rows (0 leads). Audit a table with its data rows.")
    y_series = y.reset_index(drop=True) if isinstance(y, pd.Series) else pd.Series(np.asarray(y))
    if len(y_series) != len(X):
        raise LeadDataError(
            f"y has {len(y_series):,} values but X has {len(X):,} rows. Pass one outcome per "
            "lead, in the same order as the rows of X."
        )
    y01, filled = map_target(y_series, "y")
    if not filled.all():
        raise LeadDataError(
            f"y has {int((~filled).sum()):,} blank values. Drop those leads (or fill in their "
            "outcome) before the audit."
        )
    if kinds is None:
        kinds = infer_kinds(X)
    kinds = {str(c): kinds.get(str(c), kinds.get(c, "categorical")) for c in X.columns}
    clean = prepare_features(X.rename(columns=str), [str(c) for c in X.columns], kinds)
    report = _audit(clean, y01.astype(int), kinds, max_rows=max_rows, seed=seed)
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report


# --------------------------------------------------------------------------------------------
def _skipped(column: str, reason: str, kind: str | None = None) -> dict[str, Any]:
    return {
        "column": str(column),
        "kind": kind,
        "auc": None,
        "missing_auc": None,
        "filled_auc": None,
        "missing_share": None,
        "unique_cost": None,
        "drop_cost": None,
        "drop_se": None,
        "name_hint": None,
        "flagged": False,
        "check": None,
        "reason": reason,
    }


def _cv_auc(x: pd.DataFrame, y: np.ndarray, numeric: bool, seed: int) -> float:
    """Stratified 3-fold ROC-AUC of the single-column model (see the module docstring)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import TargetEncoder
    from sklearn.tree import DecisionTreeClassifier

    scores = []
    for train, test in StratifiedKFold(_FOLDS, shuffle=True, random_state=seed).split(x, y):
        if numeric:
            tree = DecisionTreeClassifier(
                max_depth=4, min_samples_leaf=max(5, len(train) // 200), random_state=seed
            ).fit(x.iloc[train], y[train])
            score = tree.predict_proba(x.iloc[test])[:, 1]
        else:
            # the encoding is the category's smoothed conversion rate, learnt on the training folds only
            score = TargetEncoder(target_type="binary").fit(x.iloc[train], y[train]).transform(x.iloc[test])[:, 0]
        scores.append(roc_auc_score(y[test], score))
    return float(np.mean(scores))


def _audit(X: pd.DataFrame, y: np.ndarray, kinds: dict[str, str], *, max_rows: int, seed: int) -> dict[str, Any]:
    """The audit proper on a clean frame and a 0/1 target."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    start = time.perf_counter()
    y = np.asarray(y, dtype=int)
    n = len(y)
    counts = np.bincount(y, minlength=2)
    if counts.min() == 0:
        only = "converted" if counts[1] else "not converted"
        raise LeadDataError(
            f"the target has a single class: every one of the {n:,} leads is {only}. The audit "
            "compares converted with not-converted leads; add leads of the other outcome."
        )
    if counts.min() < _MIN_PER_CLASS:
        raise LeadDataError(
            f"too few leads to audit: {counts[1]:,} converted and {counts[0]:,} not converted; "
            f"the cross-validated audit needs at least {_MIN_PER_CLASS} of each. Add leads."
        )
    if max_rows < 100:
        raise LeadDataError(f"max_rows={max_rows} is too small for a cross-validated audit; use at least 100.")
    idx = np.arange(n)
    if n > max_rows:
        idx, _ = train_test_split(idx, train_size=max_rows, stratify=y, random_state=seed)
        idx = np.sort(idx)
    Xs, ys = X.iloc[idx].reset_index(drop=True), y[idx]
    dates = date_days(Xs)
    for col, days in dates.items():
        Xs[col] = days.to_numpy()

    rows: list[dict[str, Any]] = []
    for col in X.columns:
        kind = "date" if str(col) in dates else kinds.get(col, "categorical")
        s = Xs[col]
        if kind == "identifier":
            rows.append(_skipped(col, "identifier (a different value in every row); not audited", kind))
            continue
        blank = s.isna().to_numpy()
        if blank.all():
            rows.append(_skipped(col, "every value missing; not audited", kind))
            continue
        if s.nunique(dropna=True) <= 1 and not blank.any():
            rows.append(_skipped(col, "constant (one value in every row); not audited", kind))
            continue
        numeric = pd.api.types.is_numeric_dtype(s)
        x = s.to_frame() if numeric else s.astype(object).to_frame()
        auc = _cv_auc(x, ys, numeric, seed)
        missing_auc = filled_auc = None
        share = float(blank.mean())
        if blank.any():
            a = float(roc_auc_score(ys, blank))
            missing_auc = max(a, 1.0 - a)
            filled_counts = np.bincount(ys[~blank], minlength=2)
            if share >= _FILLED_MIN_BLANK and filled_counts.min() >= _FILLED_MIN_PER_CLASS:
                filled_auc = _cv_auc(x[~blank], ys[~blank], numeric, seed)
        rows.append(
            {
                "column": str(col),
                "kind": kind,
                "auc": round(auc, 4),
                "missing_auc": None if missing_auc is None else round(missing_auc, 4),
                "filled_auc": None if filled_auc is None else round(filled_auc, 4),
                "missing_share": round(share, 4),
                "unique_cost": None,
                "drop_cost": None,
                "drop_se": None,
                "name_hint": after_contact_name(str(col)),
                "flagged": False,
                "check": None,
                "reason": None,
            }
        )

    audited = [r["column"] for r in rows if r["auc"] is not None]
    model_auc, held_out = None, [0, 0]
    if len(audited) >= 2:  # with one column, that column is the whole model: rules 1-4 say all there is
        unique = unique_costs(Xs[audited], ys, seed=seed)
        model_auc, held_out = round(unique["auc"], 4), unique["held_out"]
        for r in rows:
            if r["auc"] is not None:
                r["unique_cost"] = round(unique["costs"][r["column"]], 4)
                drop = unique["drop_costs"].get(r["column"])
                r["drop_cost"] = None if drop is None else round(drop, 4)
                se = unique["drop_se"].get(r["column"])
                r["drop_se"] = None if se is None else round(se, 4)
    _flag(rows, model_auc, held_out)
    named = [r["column"] for r in rows if r["auc"] is not None and r["name_hint"] and not r["flagged"]]
    if len(named) >= 2 and model_auc is not None and min(held_out) >= UNIQUE_HELD_OUT:
        _flag_group(rows, model_auc, named, *group_cost(unique, named))
    rows.sort(key=lambda r: -1.0 if r["auc"] is None else -r["auc"])
    return {
        "columns": rows,
        "flagged": [r["column"] for r in rows if r["flagged"]],
        "check": [
            r["column"]
            for r in sorted((r for r in rows if r["check"]), key=lambda r: (-(r["drop_cost"] or 0.0), -r["auc"]))
        ][:CHECK_MAX],
        "rows": int(n),
        "rows_used": int(len(idx)),
        "model_auc": model_auc,
        "held_out": held_out,
        "seconds": round(time.perf_counter() - start, 3),
    }


def _flag(rows: list[dict[str, Any]], model_auc: float | None = None, held_out: Any = None) -> None:
    """Apply the five rules of the module docstring; each flag gets a one-line reason, each softer sign a
    ``check`` line. ``held_out``: leads of each outcome (not converted, converted) in the third the drop costs
    are measured on; rule 5 flags firmly only with UNIQUE_HELD_OUT of each (None: enough)."""
    few = held_out is not None and min(held_out) < UNIQUE_HELD_OUT
    scored = [r for r in rows if r["auc"] is not None]
    for r in scored:
        auc, miss, filled = r["auc"], r["missing_auc"], r["filled_auc"]
        others = [o for o in scored if o is not r]
        runner = max(others, key=lambda o: o["auc"]) if others else None
        reasons = []
        if auc >= AUC_LEAK:
            reasons.append(f"alone it predicts the outcome almost perfectly (ROC-AUC {auc:.2f} >= {AUC_LEAK:.2f})")
        elif runner is not None and auc >= GAP_FLOOR and auc - runner["auc"] >= GAP_LEAK:
            reasons.append(
                f"alone it predicts the outcome far better than any other column (ROC-AUC {auc:.2f}; "
                f"next best {runner['column']!r} {runner['auc']:.2f})"
            )
        if miss is not None and miss >= MISSING_LEAK:
            reasons.append(
                f"whether it is filled in predicts the outcome (blank/filled ROC-AUC {miss:.2f} >= {MISSING_LEAK:.2f})"
            )
        if (
            not reasons
            and filled is not None
            and auc >= FILLED_RULE_AUC
            and r["missing_share"] >= FILLED_RULE_BLANK
            and filled >= FILLED_AUC_LEAK
        ):
            reasons.append(
                f"blank for {r['missing_share']:.0%} of leads and, where filled, it nearly settles the "
                f"outcome (ROC-AUC {filled:.2f} on filled rows, {auc:.2f} overall), like a field the "
                "sales team fills in after contact"
            )
        unique = _unique(r, others, model_auc)
        too_few = False
        if unique is not None:
            drop, share, runner_drop, runner_name = unique
            firm_share = UNIQUE_SHARE_NAMED if r["name_hint"] else UNIQUE_SHARE
            if (
                not reasons
                and model_auc - drop >= UNIQUE_REST_AUC
                and drop >= UNIQUE_MIN
                and auc >= UNIQUE_RULE_AUC
                and share >= firm_share
                and drop >= UNIQUE_RATIO * max(runner_drop, _RATIO_FLOOR)
            ):
                if few:  # the same numbers on too few held-out leads: a sign to check, not a flag
                    too_few = True
                else:
                    se = f" +/- {r['drop_se']:.3f}" if r.get("drop_se") is not None else ""
                    reasons.append(
                        f"no other column stands in for it: the model of all columns loses {drop:.3f}{se} ROC-AUC "
                        f"without it ({share:.0%} of its lift over chance; {model_auc:.3f} with it, "
                        f"{model_auc - drop:.3f} without), against {runner_drop:.3f} at most without any other "
                        f"({runner_name!r}); alone {auc:.2f}"
                    )
        if reasons and r["name_hint"]:
            reasons.append(f"its name suggests it is filled in after contact ({r['name_hint']!r})")
        if reasons:
            r["flagged"] = True
            r["reason"] = "likely filled in after the outcome: " + "; ".join(reasons)
            continue
        signs = []
        if (
            unique is not None
            and unique[0] >= CHECK_DROP
            and unique[1] >= CHECK_SHARE
            and model_auc - unique[0] >= UNIQUE_REST_AUC
        ):
            signs.append(
                f"the model of all columns loses {unique[0]:.3f} ROC-AUC without it ({unique[1]:.0%} of its lift)"
                + (
                    f", measured on too few held-out leads to flag it ({min(held_out)} of one outcome; "
                    f"{UNIQUE_HELD_OUT} needed)"
                    if too_few
                    else ""
                )
            )
        strength = max(auc, miss or 0.0)
        if r["name_hint"] and (strength >= CHECK_NAMED_AUC or (r["drop_cost"] or 0.0) >= CHECK_NAMED_DROP):
            signs.append(f"its name suggests it is filled in after contact ({r['name_hint']!r})")
        if signs:
            r["check"] = "; ".join(signs) + f"; alone ROC-AUC {auc:.2f}"


def _flag_group(rows: list[dict[str, Any]], model_auc: float, members: list[str], cost: float, se: float) -> None:
    """Rule 6: fields named like after-contact ones, none flagged by rules 1-5, that stand in for each other (a
    call's duration and its status) each cost little when dropped alone, so rule 5 misses them. Dropped together
    they are measured as one: when the group passes rule 5's tests, each member strong on its own (ROC-AUC
    UNIQUE_RULE_AUC) is flagged and the others are listed to check. The names only pick the group; the evidence is
    what the model loses without it and each member's own strength."""
    scored = [r for r in rows if r["auc"] is not None]
    outside = [r["drop_cost"] for r in scored if r["column"] not in members and r.get("drop_cost") is not None]
    runner = max([0.0, *outside])
    share = cost / (model_auc - 0.5) if model_auc > 0.5 else 0.0
    if not (
        cost >= UNIQUE_MIN
        and share >= UNIQUE_SHARE_NAMED
        and model_auc - cost >= UNIQUE_REST_AUC
        and cost >= UNIQUE_RATIO * max(runner, _RATIO_FLOOR)
    ):
        return
    for r in scored:
        if r["column"] not in members:
            continue
        others = ", ".join(repr(c) for c in members if c != r["column"])
        said = (
            f"with the other fields named like after-contact ones ({others}) it carries what no other column does: "
            f"the model of all columns loses {cost:.3f} +/- {se:.3f} ROC-AUC without them ({share:.0%} of its "
            f"lift), against {runner:.3f} at most without any other column"
        )
        if r["auc"] >= UNIQUE_RULE_AUC:
            r["flagged"], r["check"] = True, None
            r["reason"] = (
                f"likely filled in after the outcome: {said}; alone {r['auc']:.2f}; its name suggests it is filled "
                f"in after contact ({r['name_hint']!r})"
            )
        else:
            r["check"] = said.replace(" it carries ", " it may carry ", 1) + f"; alone ROC-AUC {r['auc']:.2f}"


def _unique(r: dict[str, Any], others: list[dict[str, Any]], model_auc: float | None):
    """(drop cost, its share of the model's lift over 0.5, the largest other drop cost, its column), or None."""
    if r.get("drop_cost") is None or model_auc is None or model_auc <= 0.5:
        return None
    measured = [o for o in others if o.get("drop_cost") is not None]
    runner = max(measured, key=lambda o: o["drop_cost"]) if measured else None
    runner_drop = max(runner["drop_cost"], 0.0) if runner else 0.0
    return r["drop_cost"], r["drop_cost"] / (model_auc - 0.5), runner_drop, runner["column"] if runner else None
