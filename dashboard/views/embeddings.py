"""Embeddings: the generic and the fine-tuned embedding spaces of a run, side by side (t-SNE / UMAP).

The default maps are stored with the run at training time (``projections.json``, see
:func:`engine.projection.store_projections`) and open at once; other maps (another number of points, a run
trained before maps were stored) are computed in the background with progress, and kept for the session.
"""

from pathlib import Path

import numpy as np
import streamlit as st

from dashboard.components import charts, state, tasks, widgets
from engine.approaches.registry import approach_hook
from engine.projection import ENCODERS, PROJECTION_ROWS, embed_both, load_projections, project, projection_sample
from engine.runs import Run
from engine.words import plural

METHOD_NAMES = {"tsne": "t-SNE", "umap": "UMAP"}

st.title("Embeddings")
widgets.storage_warnings()
st.caption(
    "Each dot is a transcript (or a lead written as text), placed so that similar embeddings sit close. "
    "Fine-tuning should pull converted and lost calls apart."
)
runs = [r for r in state.list_runs() if approach_hook(r.settings.approach, "has_embedding_maps", False)]
if not runs:
    st.info("No embeddings run yet. Train the embeddings approach on transcripts (Train page, or the demo on Home).")
    st.stop()
run = widgets.run_picker(runs, key="emb_run")
data = state.run_data(run)
if data is None:
    st.warning(state.missing_data_message(run))
    st.stop()

X, y = data["X"], np.asarray(data["y"])
c1, c2, c3 = st.columns(3)
method = c1.radio(
    "Map",
    ["tsne", "umap"],
    horizontal=True,
    key="emb_method",
    format_func=METHOD_NAMES.get,
    help="How the embeddings are laid out in two dimensions: t-SNE keeps close neighbours close; UMAP "
    "also keeps some of the larger structure.",
)
n = c2.slider(
    "Points",
    min(20, len(X)),
    min(1000, len(X)),
    min(PROJECTION_ROWS, len(X)),
    10,
    key="emb_n",
    help=f"The maps of {PROJECTION_ROWS} points are stored with the run and open at once; other numbers "
    "are computed in the background (embedding long transcripts on a CPU takes a while).",
)
meta_cols = [c for c in X.columns if c != "transcript" and X[c].nunique(dropna=True) <= 20]
colour = c3.selectbox(
    "Colour by", ["label"] + meta_cols, key="emb_colour", format_func=lambda c: "outcome" if c == "label" else c
)
sample = projection_sample(len(X), n)


@st.cache_data(show_spinner=False, max_entries=16)
def stored_maps(run_path: str, mtime: float) -> dict | None:
    return load_projections(Run(Path(run_path)))


coords, task, origin = None, None, ""
stored_file = run.path / "projections.json"
stored = stored_maps(str(run.path), stored_file.stat().st_mtime) if stored_file.exists() else None
row_ids = [str(r) for r in np.asarray(data["row_ids"])[sample]]
if stored and stored["positions"] == sample.tolist() and stored["row_ids"] == row_ids and method in stored["maps"]:
    coords = stored["maps"][method]
    origin = "Maps stored with the run when it was trained."
else:
    vectors_key = ("vectors", str(run.path), tuple(sample.tolist()))

    def work(task: tasks.Task) -> dict:
        task.phase = "loading the model"
        model = state.load_model(run)
        vectors = tasks.get(vectors_key)
        if vectors is not None and vectors.finished and vectors.result is not None:
            vecs = vectors.result
        else:
            task.phase = "embedding the texts (generic and fine-tuned)"

            def progress(done: int, total: int) -> None:
                task.done = done

            vecs = embed_both(model, X.iloc[sample], progress=progress)
            tasks.remember(vectors_key, vecs)
        out, task.eta = {}, False
        for which in ENCODERS:
            task.phase = f"{METHOD_NAMES[method]} of the {which.replace('_', '-')} embeddings"
            out[which] = np.asarray(project(vecs[which], method=method, seed=0))
            task.done += 1
        return out

    task = tasks.start(
        ("projection", str(run.path), tuple(sample.tolist()), method),
        work,
        2 * len(sample) + 2,
        f"{METHOD_NAMES[method]} map of {plural(len(sample), 'point')}",
    )
    tasks.wait(task)
    if tasks.show_failure(task, f"Could not compute the embedding maps: {task.error}", "emb_retry"):
        st.stop()
    if not stored:
        origin = "Computed for this session: this run has no stored maps (it was trained before they were stored)."
    elif stored["positions"] != sample.tolist():
        origin = f"Computed for this session: the maps stored with the run are of {len(stored['positions'])} points."
    else:
        origin = f"Computed for this session: the run stored no {METHOD_NAMES[method]} map."


def draw() -> None:
    shown = coords if coords is not None else (task.result if task is not None and task.finished else None)
    if shown is None:
        st.progress(task.fraction, text=task.progress_text())
        st.caption("The maps appear here when they are ready; the page stays usable meanwhile.")
        return
    part = X.iloc[sample]
    labels = (
        np.where(y[sample] == 1, "converted", "not converted")
        if colour == "label"
        else part[colour].fillna("(missing)").astype(str).to_numpy()
    )
    text_col = "transcript" if "transcript" in part else part.columns[0]
    hover = [str(t)[:160].replace("\n", " ") + ("…" if len(str(t)) > 160 else "") for t in part[text_col]]
    left, right = st.columns(2)
    left.plotly_chart(
        charts.projection_figure(shown["generic"], list(labels), hover, "Generic MiniLM"), key="emb_generic"
    )
    right.plotly_chart(
        charts.projection_figure(shown["fine_tuned"], list(labels), hover, "Fine-tuned"), key="emb_finetuned"
    )
    st.caption(origin)


tasks.poll([task] if task is not None else [], draw, key="embeddings")
