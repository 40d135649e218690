"""The one scoring service: (a stored run, a table of new rows) -> the ranked, explained, checked table.

The dashboard's Score page, the API (``/predict/*``) and the CLI (``python -m engine score``) all call
:func:`score_frame`, so they give the same numbers for the same rows.

What a scored table holds, in this order: the input's own columns (identifiers included, unchanged), then
``rank`` (1 = call first), ``probability`` (of conversion), ``score`` (1-99: the share of this run's
*training* leads the lead scores at least as high as, so 80 = above 80 % of them, at any conversion rate),
``tier`` (A-D: the quarter of the training leads the score falls in, so A means "as likely as the top quarter of
the leads this model learned from", not a fixed probability; see :class:`engine.evaluate.ScoreScale`),
``reasons_for`` and ``reasons_against`` (the top three factors each way in plain words, in percentage points of
the probability: ``Total Time Spent on Website = 1,250 (+21 points)``)
and ``has_reasons``. Rows are ranked by probability, best first.

Explanations cost what the approach's ``explain`` costs, so a whole file gets reasons within a budget
(:func:`explain_budget`: the top rows by score; ``explain=`` asks for more or fewer) and ``has_reasons`` says
which rows have them.

Before scoring, the rows are checked against the run's columns (:class:`ValidationReport`): missing columns
are scored as missing values and counted, unexpected ones ignored and listed, category values never seen in
training listed per column with counts, numbers that do not parse coerced to missing and counted. A table
that shares no column with the run is refused (:class:`ScoringError`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.approaches.registry import approach_hook
from engine.data.leads import map_target, prepare_features, read_table, treat_missing
from engine.data.missing_values import MISSING_TOKENS, PLACEHOLDERS
from engine.data.transcripts import load_transcripts
from engine.drift import shift_report
from engine.evaluate import ScoreScale, compute_metrics, to_score
from engine.storage import CorruptFile, export_csv, export_excel, neutralise_frame, read_json, write_bytes

if TYPE_CHECKING:
    from engine.runs import Run
    from engine.runspec import RunSpec

TIERS = ("A", "B", "C", "D")
#: What the score means, in the help of every page that shows it.
SCORE_HELP = (
    "Score 1-99: how this lead ranks among the leads the model was trained on. 80 means it scores at least as "
    "high as 80 % of them; 99 is the top 1 %. It ranks leads at any conversion rate; the probability beside it "
    "is the model's chance that the lead converts. Tier A is the training leads' top quarter (score 75 or more), "
    "B the second (50-74), C the third (25-49), D the bottom quarter."
)
TIER_MEANING = {"A": "top quarter", "B": "second quarter", "C": "third quarter", "D": "bottom quarter"}
TOP_REASONS = 3
#: the smallest move (percentage points of the probability) a reason may have (smaller ones would be noise)
MIN_REASON_POINTS = 0.5
#: Rows given reasons when the caller does not say (the top rows by score) for a run whose approach is not
#: registered; a registered one's is its ``explain_budget`` hook, from what its ``explain`` costs (the stack's
#: fast exact path ~2-3 ms a lead: every row of a file up to 10,000; the LLM re-scores a lead once per field,
#: ~1-3 s; the embeddings re-embed a transcript once per sentence: 20).
DEFAULT_EXPLAIN_BUDGET = 20
#: The columns scoring adds after the input's own.
SCORE_COLUMNS = ["rank", "probability", "score", "tier", "reasons_for", "reasons_against", "has_reasons"]
#: Decimals a probability is ranked by: a model's arithmetic can differ in the last bits with the size of the batch
#: (5e-16 for the stack), which would reorder equal leads between a file read whole and one read in chunks.
PROBA_DECIMALS = 12
PROFILE_FILE = "training_profile.json"
TRAIN_SAMPLE_FILE = "train_sample.csv"
TRAIN_SAMPLE_ROWS = 5000
MAX_PROFILE_CATEGORIES = 1000


class ScoringError(ValueError):
    """Rows that cannot be scored by this run; the message names the problem and the fix."""


# -- score and tier ---------------------------------------------------------------------------------
def run_scale(run: Run, metrics: dict | None = None) -> ScoreScale | None:
    """``run``'s score scale (:class:`engine.evaluate.ScoreScale`; None for a run that stored none or a damaged
    one: its scores are then on the older probability scale, without tiers)."""
    return ScoreScale.from_metrics(metrics if metrics is not None else run.metrics)


def run_scores(run: Run, proba, metrics: dict | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The 1-99 scores and the A-D tiers (None without a scale) of ``proba`` on ``run``'s scale."""
    scale = run_scale(run, metrics)
    if scale is None:
        return to_score(proba), None
    return scale.score(proba), scale.tier(proba)


def run_tiers(run: Run, proba, metrics: dict | None = None) -> np.ndarray | None:
    """Tiers of ``proba`` on ``run``'s scale (None for a run that stored none)."""
    return run_scores(run, proba, metrics)[1]


# -- reasons ----------------------------------------------------------------------------------------
def display_value(value: Any) -> str:
    """A field's value as a person reads it on a page or in a reason: ``1,250``, ``3.5``, ``Google``. (The text
    the LLM reads writes values its own way, without thousands separators: engine.data.text.format_value.)"""
    text = str(value)
    try:
        number = float(text.replace(",", "")) if text.strip() else None
    except ValueError:
        return text
    if number is None or not np.isfinite(number):
        return text
    return f"{int(number):,}" if float(number).is_integer() else f"{number:,.2f}".rstrip("0").rstrip(".")


def points(contribution: float) -> str:
    """A contribution to the probability in percentage points: ``+21 points`` (0.21); whole points from one
    point up (``-1 point``, never ``-1.0``), one decimal below (``+0.6 points``)."""
    p = float(contribution) * 100
    if abs(p) < 0.95:
        return f"{p:+.1f} points"
    whole = round(p)
    return f"{whole:+d} point" + ("" if abs(whole) == 1 else "s")


def flag_columns(settings: RunSpec) -> dict[str, tuple[str, str]]:
    """The 0/1 columns a run made for its numbers read as missing, with the number as a person reads it:
    ``{"TotalVisits was 999": ("TotalVisits", "999")}`` (:attr:`engine.runspec.RunSpec.flags`; none for a run
    without them). ``settings`` is a run's checked spec (``run.settings``)."""
    return {flag: (column, display_value(code)) for flag, (column, code) in settings.flags.items()}


#: What a reason citing a column the leak finder flagged (the run's ``flagged``) carries.
FLAGGED_NOTE = " [check: the leak finder flagged this field as likely filled in after contact]"


def reason_text(
    feature: str,
    value: str,
    contribution: float,
    flags: dict | None = None,
    flagged: dict | None = None,
    words: str | None = None,
) -> str:
    """``Field = value (+21 points)``; a phrase whose value repeats it (transcripts) is shown once; one of the
    run's ``flags`` (:func:`flag_columns`) says what it means: ``TotalVisits is 999, read as unknown (-2 points)``;
    a free-text field says its ``words`` (the explanation table's, the stack's text columns): ``Notes: mentions
    'budget approved' (+9 points)``; a field the run's leak check flagged (``flagged``) carries
    :data:`FLAGGED_NOTE`."""
    if isinstance(words, str) and words:
        text = f"{feature}{' ' if words.startswith('is ') else ': '}{words} ({points(contribution)})"
        return text + FLAGGED_NOTE if flagged and str(feature) in flagged else text
    text = _reason_text(str(feature), str(value), contribution, flags)
    return text + FLAGGED_NOTE if flagged and str(feature) in flagged else text


def _reason_text(feature: str, value: str, contribution: float, flags: dict | None) -> str:
    if flags and feature in flags and value in ("1", "1.0", "0", "0.0"):
        column, code = flags[feature]
        said = f"{column} is {code}, read as unknown" if value.startswith("1") else f"{column} is not {code}"
        return f"{said} ({points(contribution)})"
    if not value.strip() or value.strip().casefold() == "nan":
        return f"{feature} is blank ({points(contribution)})"
    phrase = " ".join(value.split())
    # a phrase of a transcript is its own feature (shortened with "…" for display): shown once. Any other
    # value is named, even one whose text is inside the field's name ("Do Not Email = No", not "Do Not Email")
    if phrase == feature or (feature.endswith("…") and phrase.startswith(feature[:-1])):
        return f"{feature} ({points(contribution)})"
    return f"{feature} = {display_value(value)} ({points(contribution)})"


def largest_factors(table: pd.DataFrame, n: int) -> dict[int, list[dict]]:
    """From an ``explain`` table: per row, the ``n`` factors of largest size either way."""
    out = {}
    for r, group in table.groupby("row", sort=False):
        top = group.reindex(group["contribution"].abs().sort_values(ascending=False).index).head(n)
        out[int(r)] = [
            {"feature": f, "value": v, "contribution": float(c)}
            for f, v, c in zip(top["feature"], top["value"], top["contribution"])
        ]
    return out


def top_factors(
    table: pd.DataFrame, n: int = TOP_REASONS, flags: dict | None = None, flagged: dict | None = None
) -> dict[int, dict[str, list[dict]]]:
    """From an ``explain`` table: per row, the ``n`` largest factors raising (``for``) and lowering
    (``against``) the score by at least :data:`MIN_REASON_POINTS`, each ``{"feature", "value", "contribution",
    "text"}`` (``flags``: the run's :func:`flag_columns`). Vectorised: 10,000 explained leads take a fraction of
    a second."""
    if table.empty:
        return {}
    rows = table["row"].to_numpy(dtype=np.int64)
    contribution = table["contribution"].to_numpy(dtype=np.float64)
    features, values = table["feature"].to_numpy(dtype=object), table["value"].to_numpy(dtype=object)
    said = table["words"].to_numpy(dtype=object) if "words" in table.columns else np.full(len(table), None)
    out: dict[int, dict[str, list[dict]]] = {int(r): {"for": [], "against": []} for r in np.unique(rows)}
    least = MIN_REASON_POINTS / 100  # a factor that moves the probability by less than half a point is no reason
    for side, mask, key in (
        ("for", contribution >= least, -contribution),
        ("against", contribution <= -least, contribution),
    ):
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        order = idx[np.lexsort((key[idx], rows[idx]))]  # by row, then the largest effect first
        ordered_rows = rows[order]
        starts = np.r_[0, np.flatnonzero(np.diff(ordered_rows)) + 1]
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        for i in order[rank < n]:
            f, v, c = features[i], values[i], float(contribution[i])
            out[int(rows[i])][side].append(
                {"feature": f, "value": v, "contribution": c, "text": reason_text(f, v, c, flags, flagged, said[i])}
            )
    return out


# -- what training saw ------------------------------------------------------------------------------
def training_profile(X: pd.DataFrame, kinds: dict[str, str] | None = None) -> dict:
    """Per column of the training rows: its kind, the category values seen (with counts) or number
    quantiles. Stored with each run, so scoring can say which values are new."""
    kinds = kinds or {}
    columns = {}
    for col in X.columns:
        s = X[col]
        kind = kinds.get(col) or ("numeric" if pd.api.types.is_numeric_dtype(s) else "categorical")
        entry: dict[str, Any] = {"kind": kind, "missing": int(s.isna().sum())}
        if pd.api.types.is_numeric_dtype(s):
            values = s.dropna().to_numpy(dtype=float)
            if values.size:
                entry["quantiles"] = np.quantile(values, np.linspace(0, 1, 11)).tolist()
        if kind != "numeric" and kind != "text":
            counts = s.dropna().astype(str).value_counts()
            entry["categories"] = {str(k): int(v) for k, v in counts.head(MAX_PROFILE_CATEGORIES).items()}
            entry["categories_complete"] = bool(len(counts) <= MAX_PROFILE_CATEGORIES)
        columns[str(col)] = entry
    return {"rows": int(len(X)), "columns": columns}


def save_training_profile(run: Run, X_train: pd.DataFrame, kinds: dict[str, str] | None = None, seed: int = 0) -> None:
    """Store the training rows' profile and a sample of them (the shift check's reference)."""
    run.save_json(PROFILE_FILE, training_profile(X_train, kinds))
    n = min(len(X_train), TRAIN_SAMPLE_ROWS)
    sample = X_train.iloc[np.random.default_rng(seed).permutation(len(X_train))[:n]]
    run.save_file(TRAIN_SAMPLE_FILE, lambda tmp: sample.to_csv(tmp, index=False))


def load_training_profile(run: Run) -> dict | None:
    """The run's :func:`training_profile` (None for runs without one); a damaged one (not JSON, or not shaped as
    the profile: ``columns`` a table of per-column tables, ``categories`` a table of counts) raises
    :class:`engine.storage.CorruptFile` naming the file and the problem."""
    f = run.path / PROFILE_FILE
    if not f.exists():
        return None
    profile = read_json(f, dict)
    columns = profile.get("columns")
    if not isinstance(columns, dict):
        raise CorruptFile(f, "'columns' is not a table of the training columns")
    for name, entry in columns.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("categories", {}), dict):
            raise CorruptFile(f, f"the entry of column {str(name)[:80]!r} is not shaped as a column's profile")
    return profile


def load_training_sample(run: Run) -> pd.DataFrame | None:
    """The stored sample of training rows, shaped as the run's features; None for runs without one. A damaged
    sample (unreadable, no rows, none of the run's columns) raises :class:`engine.storage.CorruptFile`."""
    f = run.path / TRAIN_SAMPLE_FILE
    if not f.exists():
        return None
    try:
        frame = pd.read_csv(f, keep_default_na=True)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:  # EmptyDataError: a ValueError
        raise CorruptFile(f, f"cannot be read as a table ({type(exc).__name__}: {str(exc).strip()[:200]})") from None
    settings = run.settings
    columns = settings.columns
    if settings.input_kind == "leads" and columns:
        if len(frame) == 0 or not set(columns) & set(frame.columns):
            raise CorruptFile(f, "holds no training rows of the run's columns")
        return prepare_features(frame, columns, settings.kinds)
    return frame


def shift_reference(run: Run) -> tuple[pd.DataFrame | None, str | None]:
    """``(sample, None)``: the training rows the shift check compares new leads with (:func:`load_training_sample`);
    ``(None, None)`` for a run with none (a run of calls, or one trained before samples were stored);
    ``(None, problem)`` when the sample is damaged: the leads are then scored without the shift check, and
    ``problem`` says so in words."""
    if run.settings.input_kind != "leads":
        return None, None
    try:
        return load_training_sample(run), None
    except CorruptFile as exc:
        return None, (
            f"scored without the shift check: run {run.id}'s {TRAIN_SAMPLE_FILE} is damaged ({exc.problem}). "
            "Fix: train the run again to store a new sample."
        )


def shift_check(run: Run, raw: pd.DataFrame, source: str = "the file") -> tuple[dict | None, str | None]:
    """The shift check of the rows ``raw`` against ``run``'s training sample (:func:`engine.drift.shift_report`), the
    one both ``score`` (the CLI) and the Score page run:
    ``(report, None)``, ``(None, None)`` for a run without a sample, or ``(None, problem)`` when it could not
    be made (a damaged sample, nothing to compare): the rows are scored all the same."""
    reference, problem = shift_reference(run)
    if reference is None:
        return None, problem
    X_new, _ = prepare_rows(run, raw, source)
    try:
        return shift_report(reference, X_new, run.settings.kinds), None
    except ValueError as exc:  # LeadDataError: e.g. a sample sharing no compared column with the rows
        return None, f"scored without the shift check: {exc}"


# -- validation -------------------------------------------------------------------------------------
@dataclass
class ValidationReport:
    """How the new rows fit the run's columns (see the module docstring)."""

    rows: int
    used_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    unseen_values: dict[str, dict[str, int]] = field(default_factory=dict)
    unparsed: dict[str, int] = field(default_factory=dict)
    #: rows holding each number the run reads as missing: ``{column: {number: rows}}``
    read_as_missing: dict[str, dict[str, int]] = field(default_factory=dict)
    #: checks not made, and why (a damaged training profile: values never seen in training not listed)
    unchecked: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def messages(self) -> list[str]:
        """The report in plain words, one line a finding (empty when the rows fit the run exactly)."""
        lines = []
        if self.missing_columns:
            lines.append(
                f"{len(self.missing_columns)} column(s) the model uses are not in the file and are scored "
                f"as missing: {', '.join(self.missing_columns[:12])}"
                f"{' ...' if len(self.missing_columns) > 12 else ''}."
            )
        if self.ignored_columns:
            lines.append(
                f"{len(self.ignored_columns)} column(s) of the file were not in the training data and are "
                f"not used by the model (kept in the output): {', '.join(self.ignored_columns[:12])}"
                f"{' ...' if len(self.ignored_columns) > 12 else ''}."
            )
        for col, values in self.unseen_values.items():
            total = sum(values.values())
            shown = ", ".join(f"{v!r} ({n})" for v, n in list(values.items())[:5])
            lines.append(
                f"{col}: {total} row(s) have values never seen in training ({shown}); the model treats "
                "them as rare values."
            )
        for col, n in self.unparsed.items():
            lines.append(f"{col}: {n} value(s) are not numbers and are scored as missing.")
        for col, codes in self.read_as_missing.items():
            said = ", ".join(f"{code} in {n:,} row(s)" for code, n in codes.items())
            lines.append(f"{col}: {said}, read as unknown (with its yes/no flag), as in training.")
        return lines + list(self.unchecked)


def _unparsed_counts(raw: pd.DataFrame, X: pd.DataFrame, kinds: dict[str, str]) -> dict[str, int]:
    out = {}
    for col in X.columns:
        if col not in raw.columns or kinds.get(col) != "numeric":
            continue
        before = raw[col]
        text = before.astype(str).str.strip()  # engine.data.missing_values.is_missing_text, column-wise
        filled = before.notna() & ~(text.isin(MISSING_TOKENS) | text.str.casefold().isin(PLACEHOLDERS))
        n = int((filled.to_numpy() & X[col].isna().to_numpy()).sum())
        if n:
            out[col] = n
    return out


def _unseen_counts(X: pd.DataFrame, profile: dict | None, max_values: int = 10) -> dict[str, dict[str, int]]:
    if not profile:
        return {}
    out = {}
    for col, entry in (profile.get("columns") or {}).items():
        seen = entry.get("categories")
        if col not in X.columns or seen is None or not entry.get("categories_complete", True):
            continue
        values = X[col].dropna().astype(str)
        new = values[~values.isin(set(seen))]
        if len(new):
            counts = new.value_counts().head(max_values)
            out[col] = {str(k): int(v) for k, v in counts.items()}
    return out


def prepare_rows(
    run: Run, raw: pd.DataFrame, source: str = "the file", kinds: dict[str, str] | None = None
) -> tuple[pd.DataFrame, ValidationReport]:
    """Shape raw new rows as the run's features and report how they fit. Raises :class:`ScoringError`
    when they share no column with the run or hold no rows. ``kinds``: the run's column kinds as decided once
    for a whole file read in chunks (:mod:`engine.scoring_chunks`); default the run's own."""
    settings = run.settings
    if len(raw) == 0:
        raise ScoringError(f"{source} has no rows to score (a header only?). Fix: give a file with at least one row.")
    if settings.input_kind == "transcripts":
        if "transcript" not in raw.columns:
            raise ScoringError(
                f"{source} has no 'transcript' field, so run {run.id} (a transcripts run) cannot "
                "score it. Send records with the call text in 'transcript'."
            )
        expected = settings.columns or list(raw.columns)
        columns = [c for c in expected if c in raw.columns]
        X = raw.reindex(columns=expected)
        report = ValidationReport(
            rows=len(raw),
            used_columns=columns,
            missing_columns=[c for c in settings.columns if c not in raw.columns],
            ignored_columns=[c for c in raw.columns if c not in X.columns],
        )
        return X, report
    columns, kinds = settings.columns, settings.kinds if kinds is None else kinds
    missing_values = settings.missing_values  # checked when the run was loaded (engine.runspec)
    flags = settings.flags  # made here, not read
    given = [str(c) for c in raw.columns]
    expected = [c for c in columns if c not in flags]
    used = [c for c in expected if c in given]
    if not used:
        shown = ", ".join(expected[:12]) + (f" ... ({len(expected)} in all)" if len(expected) > 12 else "")
        raise ScoringError(
            f"None of the columns of {source} are used by run {run.id}, so every row would get the "
            f"same score. The run scores leads with the columns: {shown}. Fix: give a lead table with "
            "those columns, or a run trained on this kind of file."
        )
    # columns training knew and left out (identifiers, leak policy, constants) are expected, not "unexpected"
    known = settings.known_columns
    raw = raw.copy()
    raw.columns = given
    shaped = prepare_features(raw, columns, kinds)
    report = ValidationReport(
        rows=len(raw),
        used_columns=used,
        missing_columns=[c for c in expected if c not in given],
        ignored_columns=[c for c in given if c not in known or c in flags],  # a flag is made, not read
        unparsed=_unparsed_counts(raw, shaped, kinds),  # before the codes read as missing (not junk)
    )
    for col, codes in missing_values.items():
        if col in shaped.columns:
            held = {display_value(v): int((shaped[col] == v).sum()) for v in codes}
            if any(held.values()):
                report.read_as_missing[col] = {code: n for code, n in held.items() if n}
    X = treat_missing(shaped, missing_values, columns)  # the training's codes read as missing, flags made
    try:
        report.unseen_values = _unseen_counts(X, load_training_profile(run))
    except CorruptFile as exc:  # the rows are scored all the same; only this check is not made
        report.unchecked.append(
            f"Values never seen in training were not looked for: run {run.id}'s {PROFILE_FILE} is damaged "
            f"({exc.problem}). Fix: train the run again."
        )
    return X, report


def _outcomes(run: Run, raw: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The 0/1 outcomes when the file carries the run's target (y for the filled rows, their mask)."""
    target = run.settings.outcome
    if not target or target not in raw.columns:
        return None
    try:
        y, mask = map_target(raw[target], target)
    except ValueError:
        return None
    if mask.sum() == 0:
        return None
    return y.astype(int), mask


# -- scoring ----------------------------------------------------------------------------------------
@dataclass
class Scored:
    """A scored file: the ranked table, its validation report, and metrics when the outcomes were given."""

    run_id: str
    approach: str
    table: pd.DataFrame
    report: ValidationReport
    explained_rows: int
    metrics: dict | None = None
    outcome_rows: int = 0
    #: by input position: ``{"for": [...], "against": [...]}`` factors of the rows that have reasons
    factors: dict[int, dict[str, list[dict]]] = field(default_factory=dict, repr=False)
    #: probabilities in the input's order
    proba: np.ndarray | None = field(default=None, repr=False)
    #: the input's columns the run left out as identifiers (what outcomes are matched back by)
    id_columns: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict:
        tiers = self.table["tier"].value_counts().to_dict() if "tier" in self.table else {}
        return {
            "run_id": self.run_id,
            "approach": self.approach,
            "rows": int(len(self.table)),
            "explained_rows": int(self.explained_rows),
            "tiers": {str(k): int(v) for k, v in tiers.items()},
            "report": self.report.to_dict(),
            "messages": self.report.messages(),
            "metrics": self.metrics,
            "outcome_rows": int(self.outcome_rows),
            "id_columns": list(self.id_columns),
        }

    def export_frame(self) -> pd.DataFrame:
        """The table as downloaded (CSV / Excel): spreadsheet-formula cells neutralised
        (:func:`engine.storage.neutralise_frame`, whatever the columns' dtypes)."""
        return neutralise_frame(self.table)

    def export_csv(self) -> bytes:
        """The CSV download (:func:`engine.storage.export_csv`): what ``score --out`` and the Score page write."""
        return export_csv(self.table)

    def export_excel(self) -> bytes:
        """The Excel download (:func:`engine.storage.export_excel`)."""
        return export_excel(self.table)

    def to_csv(self, path) -> None:
        write_bytes(path, self.export_csv())


def _output_name(name: str, taken: set[str]) -> str:
    out = name
    while out in taken:
        out = f"{out} (model)"
    return out


#: The column a scored table gains when the input has none of the run's identifier columns: the lead's data row
#: in the user's file (1 = the first row under the header), so the ranked list can be matched back.
ROW_COLUMN = "row in your file"


def identifier_columns(run: Run, columns) -> list[str]:
    """The columns of ``columns`` the run left out as identifiers (a CRM id such as ``Prospect ID``)."""
    present = {str(c) for c in columns}
    return [c for c in run.settings.identifiers if c in present]


def check_finite(run: Run, proba: np.ndarray) -> np.ndarray:
    """``proba``, or ScoringError naming the rows the model gave no finite probability (never a NaN score)."""
    bad = np.flatnonzero(~np.isfinite(proba))
    if len(bad):
        shown = ", ".join(str(i + 1) for i in bad[:10]) + (f" ... ({len(bad):,} in all)" if len(bad) > 10 else "")
        raise ScoringError(
            f"run {run.id} gave no probability for row(s) {shown}: check their numbers (a value far beyond "
            "what training saw?). Fix: correct or blank those values."
        )
    return proba


def explain_budget(approach: str) -> int:
    return int(approach_hook(approach, "explain_budget", DEFAULT_EXPLAIN_BUDGET))


def score_frame(
    run: Run,
    raw: pd.DataFrame,
    model=None,
    explain: int | str | None = None,
    batch_size: int = 10_000,
    progress: Callable[[int, int], None] | None = None,
    source: str = "the file",
    rank: bool = True,
) -> Scored:
    """Score ``raw`` (the rows as read from the user's file) with ``run``.

    ``explain``: how many of the best-scored rows get reasons: ``None`` = the approach's budget
    (:func:`explain_budget`), ``"all"`` = every row, ``0`` = none. ``progress(done, total)`` is called after
    each batch. ``rank=False`` keeps the input's order (the API answers in the order it was asked).
    """
    model = model if model is not None else run.load_approach()
    X, report = prepare_rows(run, raw, source)
    n = len(X)
    proba = np.empty(n, dtype=np.float64)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        proba[start:stop] = np.asarray(model.predict_proba(X.iloc[start:stop]))[:, 1]
        if progress:
            progress(stop, n)
    check_finite(run, proba)
    proba = np.round(proba, PROBA_DECIMALS)  # the same rows rank the same in batches of any size
    approach = run.settings.approach
    factors = _factors(model, X, proba, run, explain)
    out = _table(run, raw, proba, factors, rank)
    metrics, n_outcomes = None, 0
    outcomes = _outcomes(run, raw)
    if outcomes is not None:
        y, mask = outcomes
        n_outcomes = int(mask.sum())
        if len(np.unique(y)) == 2:
            metrics = compute_metrics(y, proba[mask], n_boot=500)
    return Scored(
        run_id=run.id,
        approach=approach,
        table=out,
        report=report,
        explained_rows=len(factors),
        metrics=metrics,
        outcome_rows=n_outcomes,
        factors=factors,
        proba=proba,
        id_columns=identifier_columns(run, raw.columns),
    )


def add_reasons(
    run: Run,
    raw: pd.DataFrame,
    scored: Scored,
    model=None,
    explain: int | str | None = None,
    source: str = "the file",
    progress: Callable[[int, int], None] | None = None,
) -> Scored:
    """``scored`` (``raw`` as :func:`score_frame` ranked it, with ``explain=0``) with reasons for its ``explain``
    best-scored rows, as :func:`score_frame` gives them; its probabilities are kept, not computed again.
    ``progress(done, total)``: the rows are then explained in chunks of about a second, and it is called after each."""
    model = model if model is not None else run.load_approach()
    X, _ = prepare_rows(run, raw, source)
    factors = _factors(model, X, scored.proba, run, explain, progress)
    return replace(scored, table=_table(run, raw, scored.proba, factors), factors=factors, explained_rows=len(factors))


def _factors(model, X: pd.DataFrame, proba: np.ndarray, run: Run, explain, progress=None) -> dict:
    """By input position, the top factors each way of the ``explain`` best-scored rows (see :func:`score_frame`);
    with ``progress``, explained in chunks sized to take about a second (each row's factors are its own)."""
    n, approach = len(X), run.settings.approach
    budget = n if explain == "all" else (explain_budget(approach) if explain is None else max(int(explain), 0))
    rows = np.argsort(-proba, kind="stable")[: min(budget, n)]
    out, done, chunk = {}, 0, len(rows) if progress is None else 5
    while done < len(rows):
        part, started = rows[done : done + chunk], time.perf_counter()
        found = top_factors(model.explain(X.iloc[part]), flags=flag_columns(run.settings), flagged=run.settings.flagged)
        out.update({int(part[r]): f for r, f in found.items()})
        done += len(part)
        chunk = int(min(500, max(1, len(part) / max(time.perf_counter() - started, 1e-3))))
        if progress is not None:
            progress(done, len(rows))
    return out


def _table(run: Run, raw: pd.DataFrame, proba: np.ndarray, factors: dict, rank: bool = True) -> pd.DataFrame:
    """``raw`` with the :data:`SCORE_COLUMNS` (renamed where the input has a column of that name), ranked
    best first unless ``rank=False``."""
    n = len(raw)
    order = np.argsort(-proba, kind="stable")
    scores, tiers = run_scores(run, proba)
    out = raw.reset_index(drop=True).copy()
    taken = {str(c) for c in out.columns}
    names = {c: _output_name(c, taken) for c in SCORE_COLUMNS}
    ranks = np.empty(n, dtype=int)
    ranks[order] = np.arange(1, n + 1)
    out[names["rank"]] = ranks
    out[names["probability"]] = np.round(proba, 6)
    out[names["score"]] = scores
    out[names["tier"]] = tiers if tiers is not None else None
    out[names["reasons_for"]] = [
        "; ".join(f["text"] for f in factors[i]["for"]) if i in factors else "" for i in range(n)
    ]
    out[names["reasons_against"]] = [
        "; ".join(f["text"] for f in factors[i]["against"]) if i in factors else "" for i in range(n)
    ]
    out[names["has_reasons"]] = [i in factors for i in range(n)]
    if not identifier_columns(run, raw.columns):  # nothing to match the ranked list back by: the row number
        out.insert(0, _output_name(ROW_COLUMN, taken), np.arange(1, n + 1))
    return out.iloc[order].reset_index(drop=True) if rank else out


def predict_rows(
    run: Run, model, X: pd.DataFrame, explain: bool = False, metrics: dict | None = None, lock=None, n_factors: int = 8
) -> list[dict]:
    """The API's answer for rows already shaped as the run's features, in their order: per row
    ``probability``, ``score``, ``tier`` and, with ``explain``, ``reasons_for`` / ``reasons_against`` (the same
    texts as :func:`score_frame`) and ``factors`` (the ``n_factors`` largest contributions). ``lock`` (a
    context manager) serialises the model's scoring; explanations run outside it."""
    from contextlib import nullcontext

    with lock if lock is not None else nullcontext():
        proba = check_finite(run, np.asarray(model.predict_proba(X))[:, 1])
    scores, tiers = run_scores(run, proba, metrics)
    reasons, largest = {}, {}
    if explain:
        table = model.explain(X)
        reasons = top_factors(table, flags=flag_columns(run.settings), flagged=run.settings.flagged)
        largest = largest_factors(table, n_factors)
    out = []
    for i, (p, sc) in enumerate(zip(proba, scores)):
        row = {"probability": float(p), "score": int(sc), "tier": None if tiers is None else str(tiers[i])}
        if explain:
            row["reasons_for"] = [f["text"] for f in reasons.get(i, {}).get("for", [])]
            row["reasons_against"] = [f["text"] for f in reasons.get(i, {}).get("against", [])]
            row["factors"] = largest.get(i, [])
        out.append(row)
    return out


def read_rows(run: Run, data, filename: str | None = None) -> pd.DataFrame:
    """Read a user's file (path, bytes, file-like) as raw rows for ``run``'s kind of input."""
    if run.settings.input_kind == "transcripts":
        table = load_transcripts(data, filename=filename, require_labels=False)
        frame = table.frame.copy()
        return frame
    return read_table(data, filename=filename)
