"""Charts and helpers of the Explain, What-if and Embeddings pages.

* Lead names: a lead is named by its file's id column (the identifier the data layer dropped from training,
  e.g. ``Lead Number 660737``), or by its row in the file when the file has none (:func:`lead_namer`).
* Factors in percentage points of the probability, a phrase shown once (:func:`factor_lines`), sentences of a lead written as
  text mapped back to their field (:func:`field_factors`), and where two approaches disagree (:func:`disagreements`).
* The strip plot (numbers on a low-high scale, categories by category) and the one-lead waterfall in points.
* The work of explaining leads in chunks, as a background task (:mod:`dashboard.components.tasks`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.components import state
from dashboard.components.tasks import Task
from engine.data.leads import read_table
from engine.data.text import field_text, row_fields
from engine.scoring import display_value, points, top_factors

PALETTE = ["#2563eb", "#f97316", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777"]
OTHER_COLOUR = "#9ca3af"
GREEN, RED, BLUE = "#16a34a", "#dc2626", "#2563eb"
TIER_HELP = (
    "Score (1-99): how the lead ranks among the leads this model was trained on (80 = at least as high as "
    "80 % of them). Tier: the quarter of those leads the score falls in: A is their top quarter, D their "
    "bottom quarter. Both are relative to one model, so a 27 % lead can be tier A for a model whose leads "
    "rarely convert, and a 64 % lead tier B for another."
)


# -- lead names -----------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def _id_values(path: str, mtime: float, candidates: tuple) -> tuple[str | None, dict]:
    """(the id column used, row id -> its value) from the raw file; the shortest ids read best (a Lead Number
    before a 36-character Prospect ID)."""
    raw = read_table(path)
    present = [c for c in candidates if c in raw.columns]
    if not present:
        return None, {}

    def text(v) -> str:
        if isinstance(v, float) and float(v).is_integer():
            return str(int(v))
        return str(v).strip()

    length = {c: raw[c].dropna().astype(str).str.len().median() for c in present}
    column = min(present, key=lambda c: (length[c], present.index(c)))
    values = {int(i): text(v) for i, v in raw[column].items() if not pd.isna(v)}
    return column, values


def lead_namer(run, data: dict) -> tuple[Callable[[int], str], str]:
    """``(name(position), note)``: the name of the lead at ``position`` of ``data['X']`` and a line saying how
    leads are named. Transcripts are named by their record in the file."""
    row_ids = np.asarray(data["row_ids"])
    if run.settings.input_kind == "transcripts":
        return (lambda p: f"call {int(row_ids[p]) + 1}"), "Calls are numbered in the order of the file."
    column, values = None, {}
    candidates = tuple(run.settings.identifiers)  # the columns the data layer recognised as identifiers
    path = state.data_path_for_hash(run.settings.data_hash)
    if candidates and path is not None:
        try:
            column, values = _id_values(str(path), path.stat().st_mtime, candidates)
        except Exception:  # noqa: BLE001 - names are a nicety: fall back to the row in the file
            column, values = None, {}
    if column:

        def name(p: int) -> str:
            rid = int(row_ids[p])
            return f"{column} {values[rid]}" if rid in values else f"row {rid + 2} of the file"

        return name, f"Leads are named by the file's {column} column."
    return (
        (lambda p: f"row {int(row_ids[p]) + 2} of the file"),
        "The file has no id column, so leads are named by their row in the file (row 1 is the header).",
    )


# -- factors ----------------------------------------------------------------------------------------
def field_factors(table: pd.DataFrame, lead: pd.Series | None) -> pd.DataFrame:
    """An ``explain`` table whose sentences (a lead written as text, the embeddings approach) are mapped back to
    ``feature`` = their field and ``value`` = its value; rows that match no field are left as they are."""
    if lead is None or table.empty:
        return table
    sentences = {}
    for column, value in row_fields(lead):
        try:
            sentences[field_text(column, value).strip()] = (str(column), str(value))
        except Exception:  # noqa: BLE001
            continue
    out = table.copy()
    for i, (f, v) in enumerate(zip(out["feature"], out["value"])):
        hit = sentences.get(str(v).strip()) or sentences.get(str(f).strip())
        if hit:
            out.iloc[i, out.columns.get_loc("feature")] = hit[0]
            out.iloc[i, out.columns.get_loc("value")] = hit[1]
    return out


def factor_lines(
    table: pd.DataFrame, n: int = 3, flags: dict | None = None, flagged: dict | None = None
) -> dict[str, list[str]]:
    """The ``n`` largest factors raising (``for``) and lowering (``against``) the score of the table's first
    row, each as ``Field = value (+21 points)``, a phrase shown once (``flags``: the run's made 0/1 columns)."""
    if table.empty:
        return {"for": [], "against": []}
    found = top_factors(table, n, flags, flagged)
    first = found[next(iter(found))]
    return {side: [f["text"] for f in first[side]] for side in ("for", "against")}


def disagreements(tables: dict[str, pd.DataFrame], min_points: float = 1.0) -> list[str]:
    """For one lead explained by several approaches (label -> explain table of that lead): a sentence for each
    field that raises one approach's score and lowers another's, by at least ``min_points`` each."""
    per: dict[str, dict[str, tuple[str, float]]] = {}
    for label, table in tables.items():
        for f, v, c in zip(table["feature"], table["value"], table["contribution"]):
            per.setdefault(str(f), {})[label] = (str(v), float(c))
    lines = []
    for feature, by in per.items():
        up = {k: (v, c) for k, (v, c) in by.items() if c * 100 >= min_points}
        down = {k: (v, c) for k, (v, c) in by.items() if c * 100 <= -min_points}
        if not up or not down:
            continue
        value = next(iter(by.values()))[0]
        shown = f"{feature} = {display_value(value)}" if value and value != feature else feature
        raise_ = ", ".join(f"{k} ({points(c)})" for k, (_, c) in up.items())
        lower = ", ".join(f"{k} ({points(c)})" for k, (_, c) in down.items())
        lines.append(f"**{shown}** raises the score of {raise_} but lowers that of {lower}.")
    return lines


# -- charts -------------------------------------------------------------------------------------------
def _layout(fig: go.Figure, title: str, x: str, y: str, height: int) -> go.Figure:
    fig.update_layout(title=title, xaxis_title=x, yaxis_title=y, height=height, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def is_numeric_field(values: pd.Series, kind: str | None = None) -> bool:
    """Whether a field's values (as text in an explain table) are numbers: its kind when known, else whether
    most of them parse."""
    if kind:
        return kind == "numeric"
    parsed = pd.to_numeric(values.replace("", np.nan), errors="coerce")
    filled = values.replace("", np.nan).notna().sum()
    return bool(filled) and parsed.notna().sum() >= 0.9 * filled and parsed.nunique() > 2


def category_colours(values: pd.Series) -> dict[str, str]:
    """One palette colour per category (the most frequent first), grey for the rest and for missing values."""
    counts = values.astype(str).value_counts()
    named = [v for v in counts.index if v not in ("", "nan")][: len(PALETTE)]
    return {v: PALETTE[i] for i, v in enumerate(named)}


def strip_figure(contrib: pd.DataFrame, features: list[str], kinds: dict[str, str] | None = None) -> go.Figure:
    """One dot per lead and field, x = contribution in percentage points of the probability. Numeric fields are coloured on a
    low-high scale of their values; categorical ones by category (one colour per category, grey beyond the
    eight most frequent), so a category is never read as "high" or "low"."""
    kinds = kinds or {}
    rng = np.random.default_rng(0)
    num = {"x": [], "y": [], "c": [], "t": []}
    cat = {"x": [], "y": [], "c": [], "t": []}
    for i, feat in enumerate(features[::-1]):
        part = contrib[contrib["feature"] == feat]
        values = part["value"].astype(str)
        jitter = i + rng.uniform(-0.3, 0.3, len(part))
        x = part["contribution"].to_numpy(dtype=float) * 100
        if is_numeric_field(values, kinds.get(feat)):
            numbers = pd.to_numeric(values.replace("", np.nan), errors="coerce")
            shade = numbers.rank(pct=True).to_numpy()
            num["x"].append(x)
            num["y"].append(jitter)
            num["c"].append(np.where(np.isnan(shade), 0.5, shade))
            num["t"] += [f"{feat} = {v or 'missing'}" for v in values]
        else:
            colours = category_colours(values)
            cat["x"].append(x)
            cat["y"].append(jitter)
            cat["c"] += [colours.get(v, OTHER_COLOUR) for v in values]
            cat["t"] += [f"{feat} = {v or 'missing'}" for v in values]
    number_scale = dict(
        colorscale="RdBu_r",
        cmin=0,
        cmax=1,
        showscale=True,
        colorbar=dict(title="number", tickvals=[0, 1], ticktext=["low", "high"], thickness=12, len=0.6),
    )
    traces = [
        go.Scatter(
            x=np.concatenate(dots["x"]),
            y=np.concatenate(dots["y"]),
            mode="markers",
            name=name,
            marker=dict(size=6, color=colour, opacity=0.8, **scale),
            text=dots["t"],
            hovertemplate="%{text}: %{x:+.1f} points<extra></extra>",
            showlegend=False,
        )
        for name, dots, colour, scale in (
            ("numbers", num, np.concatenate(num["c"]) if num["c"] else None, number_scale),
            ("categories", cat, cat["c"], {}),
        )
        if dots["x"]
    ]
    fig = go.Figure(traces)
    fig.update_yaxes(tickvals=list(range(len(features))), ticktext=features[::-1], automargin=True)
    fig.add_vline(x=0, line_color=OTHER_COLOUR)
    return _layout(
        fig,
        "Each dot is a lead: how much the field moved its chance to convert",
        "percentage points of the probability",
        "",
        height=100 + 34 * len(features),
    )


def waterfall_figure(rows: pd.DataFrame, base: float, final: float, top: int = 12) -> go.Figure:
    """One lead's probability built from the model's average lead, field by field, in percentage points; a
    phrase that is its own value is shown once."""
    rows = rows.reindex(rows["contribution"].abs().sort_values(ascending=False).index)
    shown, rest = rows.head(top), rows.iloc[top:]

    def label(f, v) -> str:
        f, v = str(f), str(v)
        return f if not v or v == f else f"{f} = {display_value(v)}"

    labels = ["the model's average lead"] + [label(f, v) for f, v in zip(shown["feature"], shown["value"])]
    values = [base * 100] + (shown["contribution"] * 100).tolist()
    measures = ["absolute"] + ["relative"] * len(shown)
    if len(rest):
        labels.append(f"{len(rest)} other fields")
        values.append(float(rest["contribution"].sum()) * 100)
        measures.append("relative")
    labels.append("this lead's chance")
    values.append(final * 100)
    measures.append("total")
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            y=labels,
            x=values,
            measure=measures,
            increasing=dict(marker_color=GREEN),
            decreasing=dict(marker_color=RED),
            totals=dict(marker_color=BLUE),
            texttemplate="%{delta:+.1f}",
            hovertemplate="%{y}: %{delta:+.1f} points<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    return _layout(
        fig,
        "How this lead's chance to convert is built (percentage points)",
        "chance to convert, %",
        "",
        height=120 + 28 * len(labels),
    )


# -- explained leads, kept per run --------------------------------------------------------------------------
#: run folder -> {position in the run's data: (its explain rows without ``row``, its P(convert))}
_explained: dict[str, dict[int, tuple[pd.DataFrame, float]]] = {}


def explained(run_path: str) -> dict[int, tuple[pd.DataFrame, float]]:
    """The leads of a run explained so far in this process (the stored ones and those computed since)."""
    return _explained.setdefault(run_path, {})


def explain_work(cache: dict, model, X: pd.DataFrame, positions: list[int], target_s: float = 0.8):
    """The work of a :class:`Task` explaining ``positions`` of ``X`` into ``cache``, in chunks sized to take about
    ``target_s`` each, so the page shows the rows as they come. ``model`` may be a function giving the model
    (loaded in the task)."""

    def work(task: Task) -> int:
        nonlocal model
        if callable(model) and not hasattr(model, "explain"):
            task.phase = "loading the model"
            model = model()
        todo, chunk = [int(p) for p in positions], 1
        task.phase = "explaining"
        while todo:
            batch, todo = [p for p in todo[:chunk] if p not in cache], todo[chunk:]
            if batch:
                started = time.perf_counter()
                table = model.explain(X.iloc[batch])
                proba = np.asarray(model.predict_proba(X.iloc[batch]))[:, 1]
                for r, p in enumerate(batch):
                    cache[p] = (table[table["row"] == r].drop(columns="row").reset_index(drop=True), float(proba[r]))
                per_row = (time.perf_counter() - started) / len(batch)
                chunk = int(max(1, min(50, target_s / max(per_row, 1e-4))))
            task.done = task.total - len(todo)
        return task.total

    return work


def assemble(cache: dict, positions: list[int]) -> tuple[pd.DataFrame, np.ndarray]:
    """One ``explain`` table (``row`` = index in ``positions``) and the P(convert) of the cached ``positions``."""
    parts, proba = [], []
    for r, p in enumerate(positions):
        rows, pr = cache[p]
        parts.append(rows.assign(row=r))
        proba.append(pr)
    if not parts:
        return pd.DataFrame(columns=["row", "feature", "value", "contribution"]), np.zeros(0)
    table = pd.concat(parts, ignore_index=True)
    return table[["row"] + [c for c in table.columns if c != "row"]], np.asarray(proba)
