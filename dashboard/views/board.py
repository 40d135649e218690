"""Metric board: every run on one dataset and split, side by side, with intervals and curves."""


import numpy as np
import pandas as pd
import streamlit as st

from dashboard.components import charts, state, widgets

st.title("📊 Metric board")
widgets.storage_warnings()
runs = state.list_runs()
if not runs:
    st.info("No finished runs yet. Train a model on the Train page, or load the demo on Home.")
    st.stop()


def split_key(spec: dict) -> tuple:
    split = spec.get("split") or {}
    return (spec.get("data_hash"), split.get("test_size"), split.get("seed"))


groups: dict[tuple, list] = {}
for run in runs:
    groups.setdefault(split_key(run.spec), []).append(run)


def group_label(key: tuple) -> str:
    spec = groups[key][0].spec
    return (f"{spec.get('dataset', '?')} ({spec.get('input_kind', '?')}, {spec.get('rows', '?')} rows, test "
            f"{key[1]}, seed {key[2]}) · {len(groups[key])} run(s) · {str(key[0])[:8]}")


keys = list(groups)
current = st.session_state.get("board_group")
key = st.selectbox("Dataset and split", keys, index=keys.index(current) if current in keys else 0,
                   format_func=group_label, key="board_group_select")
st.session_state["board_group"] = key
group = groups[key]
all_labels = {r.id: f"{r.spec.get('approach')} · {r.id.split('-')[0][-6:]}-{r.id[-6:]}" for r in group}
chosen = st.multiselect("Runs", [r.id for r in group], default=[r.id for r in group][:8],
                        format_func=lambda i: all_labels[i], key="board_runs")
group = [r for r in group if r.id in chosen]
if not group:
    st.info("Choose at least one run.")
    st.stop()
labels = {r.id: all_labels[r.id] for r in group}

def export_csv(table: pd.DataFrame) -> bytes:
    """The board as CSV, with every text cell a spreadsheet would run as a formula (a dataset named
    ``=HYPERLINK(...)``) neutralised."""
    from engine.storage import neutralise_frame

    return neutralise_frame(table).to_csv(index=False).encode("utf-8")


# -- metrics table ------------------------------------------------------------------------------
rows, numeric = [], []
for run in group:
    m = run.metrics
    mm = m.get("metrics", {})
    num = {"run_id": run.id, "approach": run.spec.get("approach"), "dataset": run.spec.get("dataset")}
    for name in state.METRICS:
        v = mm.get(name)
        if isinstance(v, dict):
            num[name], num[f"{name}_low"], num[f"{name}_high"] = v.get("value"), v.get("low"), v.get("high")
        else:
            num[name] = v
    for name in ("fit_seconds", "score_rows_per_second", "score_one_ms"):
        num[name] = m.get(name)
    numeric.append(num)
best = {}
frame = pd.DataFrame(numeric)
for name in state.METRICS:
    if name in frame and frame[name].notna().any():
        best[name] = frame[name].min() if name in state.LOWER_IS_BETTER else frame[name].max()
for num in numeric:
    row = {"run": labels[num["run_id"]]}
    for name in state.METRICS:
        v = num.get(name)
        if v is None or (isinstance(v, float) and np.isnan(v)):
            row[name] = "-"
            continue
        star = " ★" if len(numeric) > 1 and np.isclose(v, best.get(name, np.nan)) else ""
        ci = f" [{num[f'{name}_low']:.3f}, {num[f'{name}_high']:.3f}]" if num.get(f"{name}_low") is not None else ""
        row[name] = f"{v:.3f}{ci}{star}"
    rows.append(row)
st.subheader("Test-split metrics (95% bootstrap intervals; ★ best per column)")
st.caption("Lower is better for brier, log_loss and ece; higher for the rest. Every run here was scored on the "
           "same test rows.")
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
st.download_button("Export as CSV", export_csv(frame), file_name="metric_board.csv", mime="text/csv",
                   key="board_export")

# -- the rest in tabs: only the open tab is computed and drawn (a quicker first view) ----------------
tab_ranking, tab_calibration, tab_decisions, tab_bands = st.tabs(
    ["ROC and precision-recall", "Calibration and gains", "Decisions at a threshold", "Score bands, speed and parts"],
    key="board_tab", on_change="rerun")


def curves_section(kinds: tuple[str, ...], key: str) -> None:
    st.plotly_chart(charts.curve_grid({labels[r.id]: state.run_curves(r) for r in group}, kinds), key=key)


def decisions_section() -> None:
    from engine.evaluate import choose_threshold, confusion_at

    method = st.radio("Threshold", ["manual", "f1", "youden", "cost"], horizontal=True, key="board_method",
                      format_func={"manual": "Set it myself", "f1": "Best F1", "youden": "Youden's J",
                                   "cost": "Best profit (cost per call, value per conversion)"}.get)
    manual = cost = value = None
    if method == "manual":
        manual = st.slider("Call leads with P(convert) at or above", 0.0, 1.0, 0.5, 0.01, key="board_threshold")
    elif method == "cost":
        k1, k2 = st.columns(2)
        cost = k1.number_input("Cost per call", min_value=0.0, value=1.0, step=0.5, key="board_cost")
        value = k2.number_input("Value per conversion", min_value=0.0, value=10.0, step=1.0, key="board_value")
    summary, matrices = [], []
    for run in group:
        try:
            preds = state.predictions(run)
            y, p = preds["y_true"].to_numpy(dtype=int), preds["proba"].to_numpy(dtype=float)
        except (OSError, ValueError, KeyError) as exc:  # a missing or damaged predictions.csv
            st.caption(f"Run {run.id} has no readable predictions.csv ({type(exc).__name__}); left out here.")
            continue
        costs = {"cost_per_call": cost, "value_per_conversion": value} if method == "cost" else {}
        thr = manual if method == "manual" else choose_threshold(y, p, method=method, **costs)
        cm = confusion_at(y, p, thr)
        profit = (value or 10.0) * cm["tp"] - (cost or 1.0) * (cm["tp"] + cm["fp"])
        summary.append({"run": labels[run.id], "threshold": round(thr, 3), "precision": cm["precision"],
                        "recall": cm["recall"], "called": cm["called_share"], "accuracy": cm["accuracy"],
                        "profit (cost model)": profit})
        matrices.append((cm, f"{labels[run.id]} @ {thr:.2f}"))
    for start in range(0, len(matrices), 3):  # one figure per row of three: one chart for the browser to draw
        st.plotly_chart(charts.confusion_grid(matrices[start:start + 3]), key=f"board_cm_{start}")
    if summary:
        st.dataframe(pd.DataFrame(summary), hide_index=True, width="stretch",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in ("precision", "recall", "called", "accuracy")})


def bands_section() -> None:
    b1, b2 = st.columns(2)
    bands = {labels[r.id]: c["score_bands"] for r in group if (c := state.run_curves(r)).get("score_bands")}
    if bands:
        b1.plotly_chart(charts.score_bands_figure(bands), key="board_bands")
    speed = pd.DataFrame([{"run": labels[n["run_id"]], "fit time (s)": n.get("fit_seconds"),
                           "scoring (rows/s)": n.get("score_rows_per_second"),
                           "one lead (ms)": n.get("score_one_ms")} for n in numeric])
    with b2:
        st.markdown("**Fit time and scoring speed**")
        st.dataframe(speed, hide_index=True, width="stretch",
                     column_config={"fit time (s)": st.column_config.NumberColumn(format="%.1f"),
                                    "scoring (rows/s)": st.column_config.NumberColumn(format="%.0f"),
                                    "one lead (ms)": st.column_config.NumberColumn(format="%.2f")})
    variants = [(labels[r.id], name, vm) for r in group for name, vm in (r.metrics.get("variants") or {}).items()]
    if variants:
        with st.expander("Parts of each approach (base models of the stack, generic embeddings)"):
            st.dataframe(pd.DataFrame([{"run": lab, "part": name,
                                        **{k: v.get("value") for k, v in vm.items() if isinstance(v, dict)}}
                                       for lab, name, vm in variants]), hide_index=True, width="stretch")


sections = ((tab_ranking, lambda: curves_section(("roc", "pr"), "board_ranking")),
            (tab_calibration, lambda: curves_section(("calibration", "gains"), "board_calibration")),
            (tab_decisions, decisions_section), (tab_bands, bands_section))
for tab, section in sections:
    if tab.open:
        with tab:
            section()
