"""Embeddings: the generic and the fine-tuned embedding spaces of a run, side by side (t-SNE / UMAP)."""


import numpy as np
import pandas as pd
import streamlit as st

from dashboard.components import charts, state, widgets

st.title("🗺️ Embeddings")
widgets.storage_warnings()
st.caption("Each dot is a transcript (or a lead written as text), placed so that similar embeddings sit close. "
           "Fine-tuning should pull converted and lost calls apart.")
runs = [r for r in state.list_runs() if r.spec.get("approach") == "embeddings"]
if not runs:
    if not state.approach_available("embeddings"):
        st.info("The embeddings approach is not available in this installation yet.")
    else:
        st.info("No embeddings run yet. Train the embeddings approach on transcripts (Train page, or the demo "
                "on Home).")
    st.stop()
run = widgets.run_picker(runs, key="emb_run")
data, model = widgets.run_data_and_model(run)

X, y = data["X"], np.asarray(data["y"])
c1, c2, c3 = st.columns(3)
method = c1.radio("Projection", ["tsne", "umap"], horizontal=True, key="emb_method",
                  format_func={"tsne": "t-SNE", "umap": "UMAP"}.get)
n = c2.slider("Points", min(20, len(X)), min(1000, len(X)), min(100, len(X)), 10, key="emb_n",
              help="Embedding long transcripts on a CPU takes a while; the result is cached.")
meta_cols = [c for c in X.columns if c != "transcript" and X[c].nunique(dropna=True) <= 20]
colour = c3.selectbox("Colour by", ["label"] + meta_cols, key="emb_colour")
sample = np.sort(np.random.default_rng(0).permutation(len(X))[:n])


def embed(model, frame: pd.DataFrame, which: str) -> np.ndarray:
    """Embeddings of ``frame`` from the generic or the fine-tuned encoder."""
    if not hasattr(model, "embed"):
        raise AttributeError(f"{type(model).__name__} has no embed(X, which='generic'|'fine_tuned') method")
    return np.asarray(model.embed(frame, which=which))


@st.cache_data(show_spinner="Embedding the transcripts (generic and fine-tuned)…", max_entries=8, persist="disk")
def vectors(run_id: str, positions: tuple, _model, _X: pd.DataFrame) -> dict:
    frame = _X.iloc[list(positions)]
    return {which: embed(_model, frame, which) for which in ("generic", "fine_tuned")}


@st.cache_data(show_spinner="Projecting…", max_entries=16)
def coordinates(run_id: str, positions: tuple, method: str, _model, _X: pd.DataFrame) -> dict:
    out = {}
    for which, vecs in vectors(run_id, positions, _model, _X).items():
        try:
            from engine.projection import project

            out[which] = np.asarray(project(vecs, method=method, seed=0))
        except ImportError:
            from sklearn.manifold import TSNE

            out[which] = TSNE(n_components=2, random_state=0, perplexity=min(30, len(vecs) - 1),
                              init="pca").fit_transform(vecs)
    return out


try:
    coords = coordinates(run.id, tuple(int(i) for i in sample), method, model, X)
except Exception as exc:  # noqa: BLE001
    st.error(f"Could not compute the embedding maps: {type(exc).__name__}: {exc}")
    st.stop()

part = X.iloc[sample]
labels = np.where(y[sample] == 1, "converted", "not converted") if colour == "label" else \
    part[colour].fillna("(missing)").astype(str).to_numpy()
text_col = "transcript" if "transcript" in part else part.columns[0]
hover = [str(t)[:160].replace("\n", " ") + ("…" if len(str(t)) > 160 else "") for t in part[text_col]]
left, right = st.columns(2)
left.plotly_chart(charts.projection_figure(coords["generic"], list(labels), hover, "Generic MiniLM"),
                  key="emb_generic")
right.plotly_chart(charts.projection_figure(coords["fine_tuned"], list(labels), hover, "Fine-tuned"),
                   key="emb_finetuned")
