"""Metric board: every run on one dataset and split, side by side, with intervals and curves.

Runs are compared (and ranked) only within one dataset and one split: a run tested on the newest 30 % by a date
column (the time split) is never ranked beside one tested on a random 30 %; each choice names its split.

What the numbers say comes first (engine.evaluate.board_findings), then the metrics in two tables (how well the
leads are ranked and called; how far the chances can be trusted) with the no-model baseline, then curves,
decisions at a threshold and score bands in tabs (only the open tab is computed).

Another page can open the board on one run: ``st.page_link("views/board.py", query_params={"run": run_id})`` or
``st.session_state["board_focus_run"] = run_id`` before switching here.
"""

import hashlib
import re

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.components import charts, curve_view, state, widgets
from engine.approaches.registry import approach_hook
from engine.blend import blend_findings, blend_rows
from engine.evaluate import (
    CALIBRATION_METRICS,
    CALL_METRICS,
    LOWER_IS_BETTER,
    METRIC_LABELS,
    PART_LABELS,
    RANKING_METRICS,
    baseline_calls,
    baseline_metrics,
    board_findings,
    choose_threshold,
    confusion_at,
)
from engine.live import LiveStore, deployable, family_of
from engine.runspec import Split
from engine.storage import export_csv as csv_download
from engine.text_worth import use_rows
from engine.words import plural

#: how many runs of a dataset the board shows at first (the best by ROC-AUC)
DEFAULT_RUNS = 6

st.title("Metric board")
widgets.storage_warnings()
runs = state.list_runs()
if not runs:
    st.info("No finished runs yet. Train a model on the Train page, or load the demo on Home.")
    st.stop()


def md(text: str) -> str:
    """``text`` with Markdown's special characters escaped (run and dataset names are the user's)."""
    return re.sub(r"([\\`*_{}\[\]<>#|~$:])", r"\\\1", str(text))


def split_words(run) -> str:
    """The run's split in a few words (the choice of dataset names it)."""
    split = run.settings.split
    return f"time split by {split.column}" if split is not None and split.method == "time" else "random split"


def group_id(key: tuple) -> str:
    return hashlib.sha1(repr(key).encode()).hexdigest()[:10]


groups: dict[tuple, list] = {}
for run in runs:
    groups.setdefault(run.settings.split_key, []).append(run)
keys = list(groups)
names = {k: str(groups[k][0].settings.dataset or "?") for k in keys}


def group_label(key: tuple) -> str:
    settings = groups[key][0].settings
    n = len(groups[key])
    versions = {k[0] for k in keys if names[k] == names[key]}
    version = f" · version {str(key[0])[:6]}" if len(versions) > 1 else ""
    split = f" · {split_words(groups[key][0])}" if any(k[1] == "time" for k in keys if names[k] == names[key]) else ""
    rows = "?" if settings.rows is None else settings.rows
    return f"{names[key]}{version}{split} · {rows} {settings.unit} · {plural(n, 'run')}"


def roc_auc_of(run) -> float:
    entry = (run.metrics.get("metrics") or {}).get("roc_auc")
    value = entry.get("value") if isinstance(entry, dict) else entry
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else -1.0


# -- which dataset and runs: a run asked for by another page, else the last choice, else the newest -------------
focus = st.session_state.pop("board_focus_run", None) or st.query_params.get("run")
if "run" in st.query_params:
    del st.query_params["run"]  # once: later reruns keep the user's own choices
focus_key = next((k for k in keys for r in groups[k] if r.id == focus), None)
if focus_key is not None:
    st.session_state["board_group_select"] = focus_key
elif st.session_state.get("board_group_select") not in keys:
    remembered = st.session_state.get("board_group")
    st.session_state["board_group_select"] = remembered if remembered in keys else keys[0]
key = st.selectbox(
    "Dataset",
    keys,
    format_func=group_label,
    key="board_group_select",
    help="Runs are compared only when they were scored on the same file and the same held-out test "
    "rows (the same split): a run tested on the newest leads (time split) is never ranked beside one tested on "
    "a random sample. Each choice is one file and one split; the runs trained on it are listed below.",
)
st.session_state["board_group"] = key  # kept across pages (a widget's own state is not)
group = groups[key]
gid = group_id(key)
all_labels = state.run_labels(group)
ids = [r.id for r in group]
chosen_memory: dict = st.session_state.setdefault("board_chosen", {})
runs_key = f"board_runs_{gid}"  # one selection per dataset: switching datasets never empties it
if focus_key is not None or runs_key not in st.session_state:
    initial = [i for i in chosen_memory.get(gid, []) if i in ids]
    if not initial:
        initial = [r.id for r in sorted(group, key=roc_auc_of, reverse=True)[:DEFAULT_RUNS]]
    if focus in ids and focus not in initial:
        initial = [focus] + initial
    st.session_state[runs_key] = [i for i in ids if i in initial]  # newest first, as listed
split = group[0].settings.split or Split()
split_said = split.describe() if group[0].settings.split else "stratified random split"
chosen = st.multiselect(
    "Runs",
    ids,
    format_func=lambda i: all_labels[i],
    key=runs_key,
    help=f"Every run on this file (the best {DEFAULT_RUNS} by ROC-AUC are shown at first). Name a run with "
    "'Rename runs'; its id is there too.",
)
chosen_memory[gid] = list(chosen)
n_test = split.n_test
st.caption(
    f"Every run here was scored on the same {n_test if n_test else 'held-out'} test "
    f"{group[0].settings.unit}, which none of them saw in "
    "training.",
    help=f"{split_said[0].upper()}{split_said[1:]}; data file sha256 {str(key[0])[:16]}…",
)
if key[1] == "time":
    st.caption(
        f"Split by time: tested on the newest leads by {split.column} (from {str(split.cutoff)[:10]}), "
        "what a model does on leads that come later. Runs on a random split of this file are under their own choice "
        "and not ranked with these."
    )
group = [r for r in group if r.id in chosen]
if not group:
    st.info("Choose at least one run.")
    st.stop()
labels = {r.id: all_labels[r.id] for r in group}


def save_label(run_id: str) -> None:
    state.run_store().get(run_id).set_label(st.session_state.get(f"board_label_{run_id}", ""))


with st.popover(
    "Rename runs",
    icon=":material/edit:",
    help="Give a run a name of your own; every page then shows it. Empty: the automatic name.",
):
    for run in group:
        st.text_input(
            f"{state.run_auto_label(run)} · {run.id[-6:]}",
            value=run.label or "",
            max_chars=80,
            placeholder="Your name for this run",
            key=f"board_label_{run.id}",
            on_change=save_label,
            args=(run.id,),
            help=state.run_help(run),
        )


def make_live(run_id: str) -> None:
    """Deploy ``run_id`` (engine.live), as ``python -m engine deploy`` does; the outcome is shown on the next run."""
    store = state.run_store()
    try:
        entry = LiveStore.beside(store).deploy(deployable(store, run_id), note=st.session_state.get("board_live_note"))
    except (ValueError, KeyError) as exc:  # damaged run or live files: the message names it and the fix
        st.session_state["board_live_outcome"] = ("error", str(exc.args[0] if isinstance(exc, KeyError) else exc))
    else:
        st.session_state["board_live_outcome"] = (
            "success",
            f"{labels[run_id]} is the live model of {entry['family']} (version {entry['version']}).",
        )


live_kind = group[0].settings.input_kind
try:  # one live run per input kind and dataset family (the dataset's name; retrained versions keep it)
    live_all = LiveStore.beside(state.run_store()).state()["live"].get(live_kind, {})
    live_problem = None
except ValueError as exc:  # a damaged live.json: named, never a crash
    live_all, live_problem = {}, str(exc)
live_ids = {e["run_id"] for e in live_all.values()}
with st.popover(
    "Make live",
    icon=":material/rocket_launch:",
    help="Choose the run that the API, `score` and the Score page use for "
    f"{live_kind} of this dataset (one live run per dataset and its retrained versions). Training a new run never "
    "changes it.",
):
    if live_problem:
        st.error(live_problem)
    live_run_id = st.selectbox(
        "Run",
        [r.id for r in group],
        format_func=lambda i: labels[i] + (" · live" if i in live_ids else ""),
        key="board_live_run",
    )
    family = family_of(next(r for r in group if r.id == live_run_id).settings)
    live_now = live_all.get(family)
    live_id = live_now["run_id"] if live_now else None
    if live_run_id == live_id:
        st.caption(
            f"{labels[live_run_id]} is already the live {live_kind} model of {md(family)} "
            f"(version {live_now['version']})."
        )
    else:
        # the live run may be another version's: named as every page names it, not by its id
        now = state.run_labels(runs).get(live_id, live_id) if live_id else f"the newest {live_kind} run that loads"
        st.markdown(
            f"This changes the live model of **{md(family)}**: the API, `score` and the Score page will use "
            f"**{md(labels[live_run_id])}** instead of {md(now)} for its {live_kind}"
            + (
                f" (the other live {live_kind} models, of {md(', '.join(sorted(set(live_all) - {family})))}, stay)."
                if set(live_all) - {family}
                else "."
            )
        )
        st.text_input("Note (why; kept in the history)", key="board_live_note", max_chars=200)
        st.button("Make live", key="board_make_live", type="primary", on_click=make_live, args=(live_run_id,))
outcome = st.session_state.pop("board_live_outcome", None)
if outcome:
    getattr(st, outcome[0])(outcome[1])


def export_csv(table: pd.DataFrame) -> bytes:
    """The board as CSV, with every text cell a spreadsheet would run as a formula (a dataset named
    ``=HYPERLINK(...)``) neutralised."""
    return csv_download(table)


def base_rate_of(runs_: list) -> float | None:
    """The share of converting test rows (the same for every run of a split)."""
    for run in runs_:
        c = state.run_curves(run)
        rate = (c.get("pr") or {}).get("base_rate")
        if isinstance(rate, (int, float)):
            return float(rate)
    for run in runs_:
        try:
            return float(state.predictions(run)["y_true"].mean())
        except (OSError, ValueError, KeyError):
            continue
    return None


# -- numbers of each run ------------------------------------------------------------------------------------------
numeric = []
for run in group:
    m = run.metrics
    mm = m.get("metrics", {})
    num = {
        "run_id": run.id,
        "run": labels[run.id],
        "approach": run.settings.approach,
        "dataset": run.settings.dataset,
    }
    for name in state.METRICS:
        v = mm.get(name)
        if isinstance(v, dict):
            num[name], num[f"{name}_low"], num[f"{name}_high"] = v.get("value"), v.get("low"), v.get("high")
        else:
            num[name] = v
    for name in ("fit_seconds", "score_rows_per_second", "score_one_ms"):
        num[name] = m.get(name)
    numeric.append(num)
frame = pd.DataFrame(numeric)
base_rate = base_rate_of(group)

# -- what the numbers say, first -----------------------------------------------------------------------------------
findings = board_findings(
    [
        {
            "label": labels[r.id],
            "approach": r.settings.approach,
            "untrained_part": approach_hook(r.settings.approach, "untrained_part"),
            "metrics": r.metrics.get("metrics") or {},
            "variants": (r.metrics.get("variants") or {}) if r.settings.approach != "blend" else {},
            "base_rate": base_rate,
            "columns": r.settings.columns,
            "flagged": r.settings.flagged,
        }
        for r in group
    ]
)
with st.container(border=True):
    st.markdown("**What the board says**")
    lines = [md(f) for f in findings + blend_findings(group, labels)]  # whether a blend adds anything
    if base_rate is not None:
        lines.append(
            md(
                f"{base_rate:.1%} of the test leads converted: with no model, calling every lead converts "
                f"{base_rate:.1%} of calls, and calling nobody is right for {1 - base_rate:.1%} of the leads "
                "(the no-model rows below)."
            )
        )
    st.markdown("\n".join(f"- {line}" for line in lines) or "No metrics to compare.")

# -- metrics tables: ranking and calls, then calibration; each with the no-model row --------------------------------
best = {}
for name in state.METRICS:
    if name in frame and frame[name].notna().any():
        best[name] = frame[name].min() if name in LOWER_IS_BETTER else frame[name].max()
baseline = baseline_metrics(base_rate) if base_rate is not None else None
BASELINE_LABEL = "Base rate (no model)"


def metric_rows(metrics: list[str], baselines: dict[str, dict] | None = None) -> pd.DataFrame:
    rows = []
    for num in numeric:
        row = {"run": num["run"]}
        for name in metrics:
            v = num.get(name)
            if v is None or (isinstance(v, float) and np.isnan(v)):
                row[name] = "-"
                continue
            star = " ★" if len(numeric) > 1 and np.isclose(v, best.get(name, np.nan)) else ""
            low, high = num.get(f"{name}_low"), num.get(f"{name}_high")
            ci = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
            row[name] = f"{v:.3f}{ci}{star}"
        rows.append(row)
    for label, values in (baselines or {}).items():
        rows.append({"run": label, **{name: f"{values[name]:.3f}" for name in metrics}})
    return pd.DataFrame(rows)


def metric_columns(metrics: list[str]) -> dict:
    config = {
        "run": st.column_config.TextColumn(
            "Run",
            help="The run's name (rename it with 'Rename runs'). "
            f"'{BASELINE_LABEL}': every lead gets the share that "
            "converted as its chance: what any model must beat.",
        )
    }
    for name in metrics:
        label, text = METRIC_LABELS[name]
        better = "lower is better" if name in LOWER_IS_BETTER else "higher is better"
        config[name] = st.column_config.TextColumn(
            label, help=f"{text} ({better}; 95 % bootstrap interval in brackets; ★ best of the runs)"
        )
    return config


calls = baseline_calls(base_rate) if base_rate is not None else None
no_model = {BASELINE_LABEL: baseline} if baseline else {}
calls_rows = (
    {"Call nobody (no model)": calls["nobody"], "Call everyone (no model)": calls["everyone"]} if calls else None
)
METRIC_TABLES = [
    (
        "Ranking",
        "How well each run puts converting leads before the others, whatever the threshold. "
        "Higher is better; ★ marks the best run, brackets the 95 % bootstrap interval.",
        RANKING_METRICS,
        no_model,
    ),
    (
        "Calls at the 50 % threshold",
        "How often each run is right when every lead with a chance of 50 % "
        "or more is called, beside calling nobody and calling everyone (no model). Other thresholds: the "
        "'Decisions at a threshold' tab.",
        CALL_METRICS,
        calls_rows,
    ),
    (
        "Calibration",
        "How far each run's chances can be taken at face value: of the leads given 30 %, "
        "3 in 10 should convert. Lower is better; ★ marks the best run.",
        CALIBRATION_METRICS,
        no_model,
    ),
]
for table_title, table_help, table_metrics, table_extra in METRIC_TABLES:
    st.subheader(table_title, help=table_help)
    st.dataframe(
        metric_rows(table_metrics, table_extra),
        hide_index=True,
        width="stretch",
        column_config=metric_columns(table_metrics),
    )
blends = blend_rows(group, labels)  # each blend's parts and its paired interval against the best single part
if blends:
    st.subheader(
        "Blends",
        help="A blend combines runs on their shared calibration slice (training rows none of them was fitted on), "
        "never on test rows; its ROC-AUC minus the best single part's on the same test leads, with a paired 95 % "
        "bootstrap interval. A blend adds something only when the whole interval is above 0.",
    )
    st.dataframe(pd.DataFrame(blends), hide_index=True, width="stretch")
text_rows = use_rows(group)  # runs that differ only by table / text / both, paired on the same test rows
if text_rows:
    st.subheader(
        "What the text is worth",
        help="Runs of this file and split that differ only in what they were trained on: the table's fields (table), "
        "its text columns (text: call notes, a joined call) or both; the newest run of each, named in the tables "
        "above. The last column is the ROC-AUC of both minus the better part's on the same test leads, with a "
        "paired 95 % bootstrap interval: the text adds something only when the whole interval is above 0. Train "
        "the parts with 'Use' on the Train page or --use.",
    )
    st.dataframe(pd.DataFrame(text_rows), hide_index=True, width="stretch")
st.download_button(
    "Export as CSV",
    export_csv(frame.drop(columns="run")),
    file_name="metric_board.csv",
    mime="text/csv",
    key="board_export",
    icon=":material/download:",
)

# -- the rest in tabs: only the open tab is computed and drawn (a quicker first view) ----------------
tab_ranking, tab_calibration, tab_decisions, tab_bands, tab_curves = st.tabs(
    [
        "ROC and precision-recall",
        "Calibration and gains",
        "Decisions at a threshold",
        "Score bands, speed and parts",
        "Learning curves",
    ],
    key="board_tab",
    on_change="rerun",
)


def curves_section(kinds: tuple[str, ...], key: str) -> None:
    st.plotly_chart(charts.curve_grid({labels[r.id]: state.run_curves(r) for r in group}, kinds), key=key)


METHODS = {
    "manual": "Set it myself",
    "f1": "Best F1",
    "youden": "Best balance of catches and false alarms",
    "cost": "Best profit",
}


def decisions_section() -> None:
    method = st.radio(
        "Threshold",
        list(METHODS),
        horizontal=True,
        key="board_method",
        format_func=METHODS.get,
        help="Which leads to call: those whose chance of converting is at or above the threshold. "
        "'Best F1' balances precision and recall; 'Best balance of catches and false alarms' "
        "maximises recall minus the false-alarm rate (Youden's J); 'Best profit' maximises "
        "value x conversions found - cost x calls.",
    )
    manual = None
    if method == "manual":
        manual = st.slider(
            "Call leads whose chance of converting is at least", 0.0, 1.0, 0.5, 0.01, key="board_threshold"
        )
    cost_help = "What one call costs, in any unit (time, money): used for the profit column and by 'Best profit'."
    value_help = "What one converted lead is worth, in the same unit as the cost."
    k1, k2, _ = st.columns([1, 1, 2])
    cost = k1.number_input("Cost per call", min_value=0.0, value=1.0, step=0.5, key="board_cost", help=cost_help)
    value = k2.number_input(
        "Value per conversion", min_value=0.0, value=10.0, step=1.0, key="board_value", help=value_help
    )
    summary, matrices = [], []
    base_y = None
    for run in group:
        try:
            preds = state.predictions(run)
            y, p = preds["y_true"].to_numpy(dtype=int), preds["proba"].to_numpy(dtype=float)
        except (OSError, ValueError, KeyError) as exc:  # a missing or damaged predictions.csv
            st.caption(
                f"Run {labels[run.id]} has no readable test predictions ({type(exc).__name__}); left out here.",
                help=f"Run id {run.id}: predictions.csv",
            )
            continue
        base_y = y if base_y is None else base_y
        costs = {"cost_per_call": cost, "value_per_conversion": value} if method == "cost" else {}
        thr = manual if method == "manual" else choose_threshold(y, p, method=method, **costs)
        cm = confusion_at(y, p, thr)
        profit = value * cm["tp"] - cost * (cm["tp"] + cm["fp"])
        summary.append(
            {
                "run": labels[run.id],
                "threshold": round(thr, 3),
                "precision": cm["precision"],
                "recall": cm["recall"],
                "called": cm["called_share"],
                "accuracy": cm["accuracy"],
                "profit": profit,
            }
        )
        matrices.append((cm, f"{labels[run.id]}<br>at {thr:.2f}"))
    if base_y is not None and len(base_y):
        rate = float(base_y.mean())
        summary.append(
            {
                "run": "Call everyone (no model)",
                "threshold": 0.0,
                "precision": rate,
                "recall": 1.0,
                "called": 1.0,
                "accuracy": rate,
                "profit": value * base_y.sum() - cost * len(base_y),
            }
        )
    for start in range(0, len(matrices), 3):  # one figure per row of three: one chart for the browser to draw
        st.plotly_chart(charts.confusion_grid(matrices[start : start + 3]), key=f"board_cm_{start}")
    if summary:
        pct = {
            c: st.column_config.NumberColumn(c.capitalize(), format="%.3f", help=h)
            for c, h in (
                ("precision", "Of the leads called, the share that converted."),
                ("recall", "Of the leads that converted, the share that were called."),
                ("accuracy", "Share of test leads where calling (or not) matched what happened."),
            )
        }
        st.dataframe(
            pd.DataFrame(summary),
            hide_index=True,
            width="stretch",
            column_config={
                "run": st.column_config.TextColumn("Run", help="'Call everyone': no model, every test lead is called."),
                "threshold": st.column_config.NumberColumn(
                    "Threshold", format="%.2f", help="Leads with a chance at or above it are called."
                ),
                "called": st.column_config.NumberColumn("Called", format="%.3f", help="Share of test leads called."),
                **pct,
                "profit": st.column_config.NumberColumn(
                    "Profit",
                    format="%.1f",
                    help=f"Value per conversion ({value:g}) x conversions found - cost per "
                    f"call ({cost:g}) x calls, on the test leads.",
                ),
            },
        )


#: the parts table's metrics (all nine do not fit at 1400 px)
PART_METRICS = ["roc_auc", "pr_auc", "accuracy", "f1", "brier", "ece"]


def bands_section() -> None:
    b1, b2 = st.columns([3, 2])
    bands = {labels[r.id]: c["score_bands"] for r in group if (c := state.run_curves(r)).get("score_bands")}
    if bands:
        b1.plotly_chart(charts.score_bands_figure(bands), key="board_bands")
    b2.markdown(
        "**How to read it**: leads are grouped by their score (1-99); each bar is the share of the test "
        "leads in that band that converted. A good model's bars grow from the bottom band to the top one."
    )
    st.markdown("**Fit time and scoring speed**")
    speed = pd.DataFrame(
        [
            {
                "run": n["run"],
                "fit time (s)": n.get("fit_seconds"),
                "scoring (rows/s)": n.get("score_rows_per_second"),
                "one lead (ms)": n.get("score_one_ms"),
            }
            for n in numeric
        ]
    )
    st.dataframe(
        speed,
        hide_index=True,
        width="stretch",
        column_config={
            "run": st.column_config.TextColumn("Run"),
            "fit time (s)": st.column_config.NumberColumn("Training time (s)", format="%.1f"),
            "scoring (rows/s)": st.column_config.NumberColumn("Scoring (leads a second)", format="%.0f"),
            "one lead (ms)": st.column_config.NumberColumn("One lead (ms)", format="%.2f"),
        },
    )
    variants = [(labels[r.id], name, vm) for r in group for name, vm in (r.metrics.get("variants") or {}).items()]
    if variants:
        st.markdown(
            "**Parts of each approach** (the stack's base models; generic embeddings beside fine-tuned ones)",
            help="Each part scored alone on the same test leads (95 % intervals from 200 "
            "resamples; not shown). The findings at the top compare them with the whole.",
        )
        shown = [m for m in PART_METRICS if any(isinstance(vm.get(m), dict) for _, _, vm in variants)]
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "run": lab,
                        "part": PART_LABELS.get(name, name.replace("_", " ")),
                        **{m: (vm.get(m) or {}).get("value") for m in shown},
                    }
                    for lab, name, vm in variants
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "run": st.column_config.TextColumn("Run"),
                "part": st.column_config.TextColumn("Part"),
                **{
                    m: st.column_config.NumberColumn(METRIC_LABELS[m][0], format="%.3f", help=METRIC_LABELS[m][1])
                    for m in shown
                },
            },
        )


sections = (
    (tab_ranking, lambda: curves_section(("roc", "pr"), "board_ranking")),
    (tab_calibration, lambda: curves_section(("calibration", "gains"), "board_calibration")),
    (tab_decisions, decisions_section),
    (tab_bands, bands_section),
    (
        tab_curves,
        lambda: curve_view.learning_curves_section(
            key, groups[key], random_entry=any(k[0] == key[0] and k[1] != "time" for k in keys)
        ),
    ),
)
for tab, section in sections:
    if tab.open:
        with tab:
            section()
