"""Explain: what drives a run's scores, over a sample and for one lead or transcript.

The run's default sample was explained at training time (``explanations.csv``) and opens at once; a larger
sample is explained in the background, and the charts fill in as the leads arrive (the page never waits on it).
"""

import pathlib

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.components import charts, state, tasks, widgets
from dashboard.components import explain_charts as ec
from engine.runs import Run, explain_rows, explain_sample

MODEL_WAIT_S = 2.0

st.title("Explain")
widgets.storage_warnings()
runs = state.list_runs()
if not runs:
    st.info("No finished runs yet. Train a model first.")
    st.stop()
run = widgets.run_picker(runs, key="explain_run")
widgets.flagged_warning(run)
widgets.text_facts(run)
settings = run.settings
is_text = settings.input_kind == "transcripts"
noun = settings.unit
data = state.run_data(run)
if data is None:
    st.warning(state.missing_data_message(run))
    st.stop()
X = data["X"]
# the model loads in the background (an embeddings model takes a while the first time): the stored explanations
# need none, and a damaged model is named as soon as its load fails
loading = tasks.start(
    ("model", str(run.path), state._model_stamp(run.model_dir)),
    lambda task: state.load_model(run),
    1,
    "Loading the model",
    exclusive=False,
)
tasks.wait(loading, MODEL_WAIT_S)
if loading.finished and loading.error:
    tasks.forget(loading.key)  # looked at again on the next visit (the files may have been repaired)
    st.error(widgets.model_error(run, loading.exception or RuntimeError(loading.error)))
    st.stop()
model = loading.result if loading.finished else None
name_of, naming_note = ec.lead_namer(run, data)

rows = state.test_rows(run, data)
if len(rows) == 0:
    rows = np.arange(len(X))
default_n = min(explain_rows(settings.approach, settings.input_kind), len(rows))
n = st.slider(
    f"Test {noun} to explain",
    min(3, len(rows)),
    min(200, len(rows)),
    default_n,
    1,
    key="explain_n",
    help=f"A random sample of the {noun} the model did not learn from (its test split). The first "
    f"{default_n} were explained when the model was trained and show at once; more are explained in "
    "the background while you use the page. Contributions: the SHAP-style share of each field in "
    "a lead's score.",
)
sample = [int(i) for i in explain_sample(rows, n)]


@st.cache_data(show_spinner=False, max_entries=16)
def stored_contributions(run_path: str, mtime: float) -> dict[str, tuple[pd.DataFrame, float]] | None:
    """Row id (as text) -> (its stored contributions, P(convert)): what training explained."""
    frame = Run(pathlib.Path(run_path)).explanations()
    if frame is None:
        return None
    out = {}
    for _, part in frame.groupby("row", sort=True):
        out[str(part["row_id"].iloc[0])] = (
            part.drop(columns=["row", "row_id", "proba"]).reset_index(drop=True),
            float(part["proba"].iloc[0]),
        )
    return out


cache = ec.explained(str(run.path))
stored_file = run.path / "explanations.csv"
if stored_file.exists() and not cache:
    try:
        stored = stored_contributions(str(run.path), stored_file.stat().st_mtime) or {}
    except Exception:  # noqa: BLE001 - a damaged file: the page computes instead
        stored = {}
    for pos, rid in enumerate(np.asarray(data["row_ids"]).tolist()):
        if str(rid) in stored:
            cache[pos] = stored[str(rid)]

missing = [p for p in sample if p not in cache]
task = None
if missing:
    task = tasks.start(
        ("explain", str(run.path), tuple(missing)),
        ec.explain_work(cache, lambda: loading.result if loading.finished else state.load_model(run), X, missing),
        len(missing),
        f"Explaining {len(missing)} more {noun}",
    )
    tasks.wait(task)
    tasks.show_failure(
        task,
        f"Explaining run {state.run_label(run)} failed: {task.error}. Choose fewer {noun}, or another run.",
        "explain_retry",
    )


def draw() -> None:
    have = [p for p in sample if p in cache]
    if task is not None and not task.finished:
        st.progress(task.fraction, text=task.progress_text())
        st.caption(
            f"The charts show the {len(have)} {noun} explained so far and fill in as the rest arrive; the "
            "page stays usable meanwhile."
        )
    if not have:
        return
    table, proba = ec.assemble(cache, have)
    importance = (
        table.assign(importance=table["contribution"].abs())
        .groupby("feature")["importance"]
        .mean()
        .sort_values(ascending=False)
        .rename_axis("feature")
        .reset_index()
    )
    # only the open tab is computed and drawn (a quicker first view)
    names = ["Global importance", "One at a time"] if is_text else ["Global importance", "Dependence", "One at a time"]
    tabs = dict(zip(names, st.tabs(names, key="explain_tab", on_change="rerun")))

    def global_section() -> None:
        st.plotly_chart(charts.importance_figure(importance, top=15), key="explain_importance")
        if not is_text:
            st.plotly_chart(
                ec.strip_figure(table, importance["feature"].head(10).tolist(), settings.kinds),
                key="explain_strip",
            )
            st.caption(
                "Numbers are coloured from low (blue) to high (red); categories each get their own colour "
                "(grey beyond the eight most frequent). Point at a dot to see its lead's value."
            )
            return
        st.markdown("**Phrases that move the score most (over the sample)**")
        signed = table.groupby("feature")["contribution"].mean().sort_values()
        st.dataframe(
            pd.DataFrame({"phrase": signed.index, "mean contribution to P(convert)": signed.values}).iloc[::-1],
            hide_index=True,
            width="stretch",
            height=360,
        )

    def dependence_section() -> None:
        feature = st.selectbox("Dependence on", importance["feature"].tolist(), key="explain_dep")
        st.plotly_chart(charts.dependence_figure(table, feature), key="explain_dependence")

    def one_section() -> None:
        y = np.asarray(data["y"])
        labels = {
            i: f"{name_of(have[i])} — chance {proba[i]:.1%}, {'converted' if y[have[i]] == 1 else 'did not convert'}"
            for i in range(len(have))
        }
        pick = st.selectbox(
            "Lead" if not is_text else "Call", list(labels), format_func=labels.get, key="explain_row", help=naming_note
        )
        one = table[table["row"] == pick]
        if is_text:
            text = str(X.iloc[have[pick]]["transcript"])
            st.markdown(
                f"Chance of conversion **{proba[pick]:.1%}** — phrases in "
                ":green[green] raise it, in :red[red] lower it (in percentage points)."
            )
            st.markdown(charts.highlight_text(text, one), unsafe_allow_html=True)
            with st.expander("Contributions"):
                st.dataframe(
                    one[["feature", "contribution"]].assign(points=(one["contribution"] * 100).round(1))[
                        ["feature", "points"]
                    ],
                    hide_index=True,
                    width="stretch",
                )
            return
        base = None
        if model is not None and hasattr(model, "expected_value"):
            try:
                base = float(model.expected_value())
            except Exception:  # noqa: BLE001
                base = None
        if base is None:
            base = float(proba[pick] - one["contribution"].sum())
        st.plotly_chart(ec.waterfall_figure(one, base, float(proba[pick])), key="explain_waterfall")

    sections = {"Global importance": global_section, "Dependence": dependence_section, "One at a time": one_section}
    for tab_name, tab in tabs.items():
        if tab.open:
            with tab:
                sections[tab_name]()


tasks.poll([t for t in (task, loading) if t is not None], draw, key="explain")
