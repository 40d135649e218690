"""What-if: edit one lead's fields and watch every trained lead approach rescore it live.

The lead starts as a typical lead of the dataset (the most common value of each category, the median of each
number) or as a real test lead, named by the file's id column; each card shows the change from that start.
"""

import time

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.components import explain_charts as ec
from dashboard.components import state, widgets
from engine.scoring import SCORE_HELP, TIER_MEANING, flag_columns, run_scores

MISSING = "(missing)"
NUMERIC_KINDS = {"numeric"}
TYPICAL = "typical"

st.title("What-if")
widgets.storage_warnings()
lead_runs = [r for r in state.list_runs() if r.settings.input_kind == "leads"]
if not lead_runs:
    st.info("No trained lead model yet. Train one on the Train page (or load the demo on Home).")
    st.stop()

by_data: dict[str, list] = {}
for r in lead_runs:
    by_data.setdefault(r.settings.data_hash, []).append(r)
hashes = list(by_data)
current = st.session_state.get("dataset_sha")
data_hash = st.selectbox(
    "Dataset",
    hashes,
    index=hashes.index(current) if current in hashes else 0,
    format_func=lambda h: f"{by_data[h][0].settings.dataset} · {len(by_data[h])} run(s)",
    key="whatif_dataset",
    help="The dataset's fingerprint (sha256) starts with the runs' "
    "data_hash; every lead model trained on it rescores the lead.",
)
latest: dict[str, object] = {}  # approach -> its newest run whose model loads
models: dict[str, object] = {}
for r in by_data[data_hash]:  # newest first
    approach = r.settings.approach
    if approach in latest:
        continue
    try:
        models[r.id] = state.load_model(r)
    except Exception as exc:  # noqa: BLE001 - a damaged model (BrokenRun): say so and try the next run
        st.error(widgets.model_error(r, exc, hint="The approach's next newest run that loads is used here."))
        continue
    latest[approach] = r
if not latest:
    st.info("No run of this dataset has a model that loads; choose another dataset or train again.")
    st.stop()
reference = next(iter(latest.values()))
settings = reference.settings
columns = list(settings.columns)
kinds = dict(settings.kinds)
# numbers the runs read as missing, each with a 0/1 flag column (checked when the run was loaded)
missing_values = settings.missing_values
flags = settings.flags
fields = [c for c in columns if c not in flags]  # a flag is made from its column's value, not typed
data = state.run_data(reference)
X = data["X"] if data is not None else None
dataset_name = settings.dataset or "the dataset"


def _is_numeric(col: str, series: pd.Series | None = None) -> bool:
    if kinds.get(col) in NUMERIC_KINDS:
        return True
    return series is not None and kinds.get(col) is None and pd.api.types.is_numeric_dtype(series)


@st.cache_data(show_spinner=False, max_entries=8)
def field_options(run_id: str, _X: pd.DataFrame) -> dict:
    out = {}
    for c in _X.columns:
        s = _X[c]
        if _is_numeric(c, s):
            out[c] = {"median": float(s.median()) if s.notna().any() else 0.0}
        else:
            out[c] = {"values": s.dropna().astype(str).value_counts().index[:60].tolist()}
    return out


@st.cache_data(show_spinner=False, max_entries=8)
def typical_lead(run_id: str, _X: pd.DataFrame | None, _profile: dict | None) -> dict:
    """The most common value of each category and the median of each number, over the dataset's leads (or,
    when the file is not in the store, over the training leads' stored profile). A number missing for most leads
    starts missing, as most leads are: its code read as unknown when the runs have one (pdays = 999 where 96 %
    of leads carry it), else blank; the median of the few filled ones would be an untypical lead."""
    out = {}
    coded = {column: (flag, code) for flag, (column, code) in flags.items()}
    for col in columns:
        if _X is not None and col in _X.columns:
            s = _X[col].dropna()
            flag, code = coded.get(col, (None, None))
            if flag is not None and flag in _X.columns and float((_X[flag] == 1).mean()) > 0.5:
                out[col] = code
            elif s.empty or (_is_numeric(col, _X[col]) and float(_X[col].isna().mean()) > 0.5):
                out[col] = None
            elif _is_numeric(col, _X[col]):
                median = float(s.median())
                out[col] = float(round(median)) if np.all(np.mod(s.to_numpy(dtype=float), 1) == 0) else median
            else:
                out[col] = s.astype(str).value_counts().index[0]
            continue
        profiled = (_profile or {}).get("columns") or {}
        entry = profiled.get(col) or {}
        flag, code = coded.get(col, (None, None))
        flag_quantiles = (profiled.get(flag) or {}).get("quantiles") if flag is not None else None
        rows = (_profile or {}).get("rows") or 0
        if flag_quantiles and flag_quantiles[5] == 1:  # the flag's median: at least half the leads carry the code
            out[col] = code
        elif _is_numeric(col) and rows and entry.get("missing", 0) > rows / 2:
            out[col] = None
        elif entry.get("quantiles") and _is_numeric(col):
            out[col] = float(entry["quantiles"][5])
        elif entry.get("categories"):
            out[col] = max(entry["categories"], key=entry["categories"].get)
        else:
            out[col] = None
    return out


from engine.scoring import load_training_profile  # noqa: E402

profile = load_training_profile(reference) if X is None else None
typical = typical_lead(reference.id, X, profile)
has_typical = X is not None or profile is not None
test_positions: list[int] = []
name_of, naming_note = (lambda p: f"lead {p}"), ""
if X is not None:
    test_positions = [int(p) for p in state.test_rows(reference, data)][:200]
    name_of, naming_note = ec.lead_namer(reference, data)
starts: list = ([TYPICAL] if has_typical else ["blank"]) + list(range(len(test_positions)))


def start_label(s) -> str:
    if s == TYPICAL:
        return "a typical lead of the dataset"
    if s == "blank":
        return "a blank lead"
    p = test_positions[s]
    return f"{name_of(p)} (test lead, {'converted' if data['y'][p] == 1 else 'did not convert'})"


start = st.selectbox(
    "Start from",
    starts,
    key="whatif_start",
    format_func=start_label,
    help="A typical lead: the most common value of each category and the median of each number "
    f"in {dataset_name}. Or a real lead of the test split (leads the models did not learn "
    f"from). {naming_note}",
)
if start == TYPICAL:
    source = "the dataset's leads" if X is not None else "the training leads' stored profile"
    st.caption(
        f"Starting from **a typical lead** of {dataset_name}: the most common value of each category and "
        f"the median of each number over {source}. Edit any field; each card shows the change from this "
        "start."
    )
elif start == "blank":
    st.caption(
        "The dataset file is not in the store and the runs keep no profile of their leads, so the lead "
        "starts blank (every field missing)."
    )
else:
    st.caption(
        f"Starting from **{start_label(start)}**. Edit any field; each card shows the change from this "
        "lead as it is in the file."
    )


def start_value(col: str):
    if start == TYPICAL:
        return typical.get(col)
    if start == "blank" or X is None:
        return None
    row = X.iloc[test_positions[int(start)]]
    for flag, (column, code) in flags.items():  # a code read as missing shows as the code the file held
        if column == col and flag in row.index and row[flag] == 1:
            return code
    return row[col]


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (not isinstance(v, str) and pd.isna(v))


options = (
    field_options(reference.id, X)
    if X is not None
    else {
        c: (
            {"median": 0.0}
            if _is_numeric(c)
            else {"values": list(((profile or {}).get("columns") or {}).get(c, {}).get("categories") or {})[:60]}
        )
        for c in columns
    }
)
values: dict = {}
st.subheader("The lead")
grid = st.columns(3)
for i, col in enumerate(fields):
    key = f"whatif_{data_hash[:8]}_{start}_{col}"
    current_value = start_value(col)
    with grid[i % 3]:
        if _is_numeric(col) or "median" in options.get(col, {}):
            default = None if _blank(current_value) else float(current_value)
            values[col] = st.number_input(col, value=default, key=key, placeholder="missing", format="%g")
        elif "values" in options.get(col, {}) and options[col]["values"]:
            choices = [MISSING] + options[col]["values"]
            cur = MISSING if _blank(current_value) else str(current_value)
            if cur not in choices:
                choices.append(cur)
            values[col] = st.selectbox(col, choices, index=choices.index(cur), key=key)
        else:
            values[col] = st.text_input(col, value="" if _blank(current_value) else str(current_value), key=key)


def as_frame(given: dict, run) -> pd.DataFrame:
    """A lead shaped exactly as ``run`` saw its training rows: its columns, kinds and numbers read as missing
    (runs of one dataset may have been trained with different ones)."""
    from engine.data.leads import prepare_features

    row = {col: (np.nan if v is None or v == MISSING or v == "" else v) for col, v in given.items()}
    own = run.settings  # its numbers read as missing were checked when the run was loaded
    return prepare_features(pd.DataFrame([row]), own.columns, own.kinds, own.missing_values)


start_values = {}
for col in fields:
    v = start_value(col)
    start_values[col] = (
        None if _blank(v) else (float(v) if (_is_numeric(col) or "median" in options.get(col, {})) else str(v))
    )
for flag, (column, code) in flags.items():  # say it when a typed number is one the runs read as unknown
    if values.get(column) is not None and values.get(column) == code:
        st.caption(
            f"{column} = {code:g} is read as unknown, with its yes/no column '{flag}' set, as the runs were "
            "trained (the dataset's setting on the Data page)."
        )


def _shown(v) -> str:
    return "missing" if v is None or v == MISSING or v == "" else f"{v:g}" if isinstance(v, float) else str(v)


changed = [col for col in fields if _shown(values.get(col)) != _shown(start_values.get(col))]
if changed:
    st.caption(
        "Changed from the start: "
        + "; ".join(f"{c} {_shown(start_values.get(c))} → {_shown(values.get(c))}" for c in changed[:8])
        + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
    )

st.subheader("Scores")
st.caption(
    "**Score** 1-99: how the lead ranks among the leads this model was trained on (80 = above 80 % of them); "
    "**P(convert)** is the model's chance that it converts. **Priority tier**: the quarter of those training "
    "leads the score falls in (A: their top quarter … D: their bottom quarter). Scores and tiers are relative "
    "to each model, so a 27 % lead can be tier A for one model and a 64 % lead tier B for another.",
    help=ec.TIER_HELP,
)
show_factors = st.toggle(
    "Top factors for and against",
    value=True,
    key="whatif_factors",
    help="Each field's share of the score in points (Shapley-style contributions from each "
    "approach's explain()); slower for the LLM.",
)


def tier_of(run, p: float) -> str:
    """The tier the scoring service gives ``p`` for ``run`` (none for a run without usable training quartiles)."""
    from engine.scoring import run_tiers

    tiers = run_tiers(run, [p])
    if tiers is None:
        return "-"
    return f"{tiers[0]} ({TIER_MEANING[str(tiers[0])]} of this model's training leads)"


def start_probability(run, model) -> float:
    """P(convert) of the unedited starting lead, remembered for the session."""
    memo = st.session_state.setdefault("whatif_start_scores", {})
    key = (run.id, data_hash, str(start))
    if key not in memo:
        memo[key] = float(np.asarray(model.predict_proba(as_frame(start_values, run)))[0, 1])
    return memo[key]


explained_tables: dict[str, pd.DataFrame] = {}
cards = st.columns(max(len(latest), 1))
for card, (approach, run) in zip(cards, latest.items()):
    label = state.approach_label(approach)
    with card, st.container(border=True):
        st.markdown(f"**{label}**  \n{state.run_label(run)}", help=state.run_help(run))
        try:
            model = models[run.id]
            run_lead = as_frame(values, run)
            started = time.perf_counter()
            p = float(np.asarray(model.predict_proba(run_lead))[0, 1])
            ms = (time.perf_counter() - started) * 1000
            p0 = start_probability(run, model)
        except Exception as exc:  # noqa: BLE001 - one broken run must not hide the others
            st.error(f"Cannot score with this run: {type(exc).__name__}: {exc}")
            continue
        score, score0 = (int(v) for v in run_scores(run, [p, p0])[0])
        m1, m2 = st.columns(2)
        m1.metric(
            "Score (1-99)",
            score,
            delta=f"{score - score0:+d}" if changed else None,
            help=SCORE_HELP + " The change is from the starting lead.",
        )
        m2.metric(
            "P(convert)",
            f"{p:.1%}",
            delta=f"{(p - p0) * 100:+.1f} points" if changed else None,
            help="The model's chance that this lead converts; changes are in percentage points.",
        )
        if changed:
            st.markdown(
                f"Score {score0} → {score} ({score - score0:+d}); chance {p0:.1%} → {p:.1%} from the starting lead"
            )
        else:
            st.markdown(f"Starting lead: score {score0}")
        st.markdown(f"Priority tier: **{tier_of(run, p)}**")
        st.caption(f"scored in {ms:.0f} ms")
        if show_factors:
            try:
                table = model.explain(run_lead)
            except Exception as exc:  # noqa: BLE001
                st.caption(f"No factors: {exc}")
                continue
            table = ec.field_factors(table, run_lead.iloc[0])
            explained_tables[label] = table
            lines = ec.factor_lines(table, flags=flag_columns(run.settings), flagged=run.settings.flagged)
            st.markdown(
                "**For** (raises the score)  \n" + ("  \n".join(f":green[{t}]" for t in lines["for"]) or "none")
            )
            st.markdown(
                "**Against** (lowers the score)  \n" + ("  \n".join(f":red[{t}]" for t in lines["against"]) or "none")
            )
if len(explained_tables) >= 2:
    found = ec.disagreements(explained_tables)
    if found:
        st.info(
            "**The approaches disagree** on the direction of some fields for this lead:\n\n"
            + "\n".join(f"- {line}" for line in found[:6])
            + "\n\nEach model learned its own pattern; check such a field against what the sales team knows.",
            icon=":material/compare_arrows:",
        )
    else:
        st.caption(
            "The approaches agree on the direction of every field that moves this lead's score by a point or more."
        )
