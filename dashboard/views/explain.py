"""Explain: what drives a run's scores, over a sample and for one lead or transcript."""
import pathlib


import numpy as np
import pandas as pd
import streamlit as st

from dashboard.components import charts, state, widgets
from engine.runs import Run, explain_rows, explain_sample

st.title("🔍 Explain")
widgets.storage_warnings()
runs = state.list_runs()
if not runs:
    st.info("No finished runs yet. Train a model first.")
    st.stop()
run = widgets.run_picker(runs, key="explain_run")
spec = run.spec
is_text = spec.get("input_kind") == "transcripts"
data, model = widgets.run_data_and_model(run)

rows = state.test_rows(run, data)
if len(rows) == 0:
    rows = np.arange(len(data["X"]))
default_n = explain_rows(spec.get("approach"), spec.get("input_kind"))
n = st.slider("Test rows to explain", min(3, len(rows)), min(200, len(rows)), min(default_n, len(rows)), 1, key="explain_n",
              help="Contributions are computed on a random sample of the run's test rows.")
sample = explain_sample(rows, n)


@st.cache_data(show_spinner="Computing contributions…", max_entries=16)
def contributions(run_id: str, positions: tuple, _model, _X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    X = _X.iloc[list(positions)]
    table = _model.explain(X)
    proba = np.asarray(_model.predict_proba(X))[:, 1]
    return table, proba


@st.cache_data(show_spinner=False, max_entries=16)
def stored_contributions(run_path: str, row_ids: tuple) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The contributions stored with the run at training time, when they cover exactly these rows."""
    frame = Run(pathlib.Path(run_path)).explanations()
    if frame is None:
        return None
    stored = frame.drop_duplicates("row").set_index("row")["row_id"].to_dict()
    if any(stored.get(i) != str(rid) for i, rid in enumerate(row_ids)):
        return None
    frame = frame[frame["row"] < len(row_ids)]
    proba = frame.drop_duplicates("row").sort_values("row")["proba"].to_numpy()
    return frame.drop(columns=["row_id", "proba"]).reset_index(drop=True), proba


X = data["X"]
try:
    found = stored_contributions(str(run.path), tuple(np.asarray(data["row_ids"])[sample].tolist()))
    table, proba = found if found is not None else contributions(run.id, tuple(int(i) for i in sample), model, X)
except Exception as exc:  # noqa: BLE001
    st.error(f"Explaining run {run.id} failed: {type(exc).__name__}: {exc}")
    st.stop()

importance = (table.assign(importance=table["contribution"].abs()).groupby("feature")["importance"].mean()
              .sort_values(ascending=False).rename_axis("feature").reset_index())
# only the open tab is computed and drawn (a quicker first view)
names = ["Global importance", "One at a time"] if is_text else ["Global importance", "Dependence", "One at a time"]
tabs = dict(zip(names, st.tabs(names, key="explain_tab", on_change="rerun")))


def global_section() -> None:
    g1, g2 = st.columns(2)
    g1.plotly_chart(charts.importance_figure(importance, top=15), key="explain_importance")
    if not is_text:
        g2.plotly_chart(charts.strip_figure(table, importance["feature"].head(10).tolist()), key="explain_strip")
        return
    with g2:
        st.markdown("**Phrases that move the score most (over the sample)**")
        signed = table.groupby("feature")["contribution"].mean().sort_values()
        st.dataframe(pd.DataFrame({"phrase": signed.index, "mean contribution": signed.values}).iloc[::-1],
                     hide_index=True, width="stretch", height=360)


def dependence_section() -> None:
    feature = st.selectbox("Dependence on", importance["feature"].tolist(), key="explain_dep")
    st.plotly_chart(charts.dependence_figure(table, feature), key="explain_dependence")


def one_section() -> None:
    labels = {i: f"{'transcript' if is_text else 'lead'} #{int(data['row_ids'][sample[i]])} — P(convert) "
                 f"{proba[i]:.2f}, actual {'converted' if data['y'][sample[i]] == 1 else 'not converted'}"
              for i in range(len(sample))}
    pick = st.selectbox("Row", list(labels), format_func=labels.get, key="explain_row")
    one = table[table["row"] == pick]
    if is_text:
        text = str(X.iloc[int(sample[pick])]["transcript"])
        st.markdown(f"P(convert) **{proba[pick]:.2f}** — phrases in :green[green] raise the score, in :red[red] "
                    "lower it.")
        st.markdown(charts.highlight_text(text, one), unsafe_allow_html=True)
        with st.expander("Contributions"):
            st.dataframe(one[["feature", "contribution"]], hide_index=True, width="stretch")
        return
    base = None
    if hasattr(model, "expected_value"):
        try:
            base = float(model.expected_value())
        except Exception:  # noqa: BLE001
            base = None
    if base is None:
        base = float(proba[pick] - one["contribution"].sum())
    st.plotly_chart(charts.waterfall_figure(one, base, float(proba[pick])), key="explain_waterfall")


sections = {"Global importance": global_section, "Dependence": dependence_section, "One at a time": one_section}
for name, tab in tabs.items():
    if tab.open:
        with tab:
            sections[name]()
