"""What-if: edit one lead's fields and watch every trained lead approach rescore it live."""


import time

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.components import state, widgets

MISSING = "(missing)"
NUMERIC_KINDS = {"numeric"}

st.title("🎛️ What-if")
widgets.storage_warnings()
lead_runs = [r for r in state.list_runs() if r.spec.get("input_kind", "leads") == "leads"]
if not lead_runs:
    st.info("No trained lead model yet. Train one on the Train page (or load the demo on Home).")
    st.stop()

by_data: dict[str, list] = {}
for r in lead_runs:
    by_data.setdefault(r.spec.get("data_hash"), []).append(r)
hashes = list(by_data)
current = st.session_state.get("dataset_sha")
data_hash = st.selectbox("Dataset", hashes, index=hashes.index(current) if current in hashes else 0,
                         format_func=lambda h: f"{by_data[h][0].spec.get('dataset')} [{str(h)[:8]}] · "
                                               f"{len(by_data[h])} run(s)", key="whatif_dataset")
latest: dict[str, object] = {}  # approach -> its newest run whose model loads
models: dict[str, object] = {}
for r in by_data[data_hash]:  # newest first
    approach = r.spec.get("approach")
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
spec = reference.spec
columns = list(spec.get("columns") or [])
kinds = dict(spec.get("kinds") or {})
data = state.run_data(reference)
X = data["X"] if data is not None else None

starts = ["blank"]
if X is not None:
    starts += [int(i) for i in range(min(len(X), 200))]
start = st.selectbox("Start from", starts, key="whatif_start",
                     format_func=lambda s: "a blank lead" if s == "blank" else
                     f"lead #{data['row_ids'][s]} ({'converted' if data['y'][s] == 1 else 'not converted'})")
if X is None:
    st.caption("The dataset file is not in the store, so only a blank lead can be edited here.")


@st.cache_data(show_spinner=False, max_entries=8)
def field_options(run_id: str, _X: pd.DataFrame) -> dict:
    out = {}
    for c in _X.columns:
        s = _X[c]
        if pd.api.types.is_numeric_dtype(s):
            out[c] = {"median": float(s.median()) if s.notna().any() else 0.0}
        else:
            values = s.dropna().astype(str).value_counts().index[:60].tolist()
            out[c] = {"values": values}
    return out


options = field_options(reference.id, X) if X is not None else {}
values: dict = {}
st.subheader("The lead")
grid = st.columns(3)
for i, col in enumerate(columns):
    kind = kinds.get(col, "categorical")
    key = f"whatif_{data_hash[:8]}_{start}_{col}"
    current_value = None if start == "blank" or X is None else X.iloc[int(start)][col]
    with grid[i % 3]:
        numeric = kind in NUMERIC_KINDS or "median" in options.get(col, {})
        if numeric:
            default = None if current_value is None or pd.isna(current_value) else float(current_value)
            values[col] = st.number_input(col, value=default, key=key, placeholder="missing", format="%g")
        elif "values" in options.get(col, {}):
            choices = [MISSING] + options[col]["values"]
            cur = MISSING if current_value is None or pd.isna(current_value) else str(current_value)
            if cur not in choices:
                choices.append(cur)
            values[col] = st.selectbox(col, choices, index=choices.index(cur), key=key)
        else:
            values[col] = st.text_input(col, value="" if current_value is None or pd.isna(current_value)
                                        else str(current_value), key=key)


def lead_frame() -> pd.DataFrame:
    """The edited lead, shaped exactly as the runs saw their training rows."""
    from engine.data.leads import prepare_features

    row = {}
    for col in columns:
        v = values.get(col)
        row[col] = np.nan if v is None or v == MISSING or v == "" else v
    return prepare_features(pd.DataFrame([row]), columns, kinds)


def tier_of(p: float, quartiles) -> str:
    if not quartiles:
        return "-"
    q25, q50, q75 = quartiles
    return "A (top quarter)" if p >= q75 else "B" if p >= q50 else "C" if p >= q25 else "D (bottom quarter)"


lead = lead_frame()
st.subheader("Scores")
show_factors = st.toggle("Top factors for and against", value=True, key="whatif_factors",
                         help="Per-field contributions from each approach's explain(); slower for the LLM.")
from engine.evaluate import to_score

cards = st.columns(max(len(latest), 1))
for card, (approach, run) in zip(cards, latest.items()):
    with card, st.container(border=True):
        st.markdown(f"**{state.APPROACH_LABELS.get(approach, approach)}**  \n`{run.id}`")
        try:
            model = models[run.id]
            started = time.perf_counter()
            p = float(np.asarray(model.predict_proba(lead))[0, 1])
            ms = (time.perf_counter() - started) * 1000
        except Exception as exc:  # noqa: BLE001 - one broken run must not hide the others
            st.error(f"Cannot score with this run: {type(exc).__name__}: {exc}")
            continue
        m1, m2 = st.columns(2)
        m1.metric("Score (1-99)", int(to_score([p])[0]))
        m2.metric("P(convert)", f"{p:.1%}")
        st.markdown(f"Priority tier: **{tier_of(p, run.metrics.get('train_score_quartiles'))}**")
        st.caption(f"scored in {ms:.0f} ms")
        if show_factors:
            try:
                table = model.explain(lead)
            except Exception as exc:  # noqa: BLE001
                st.caption(f"No factors: {exc}")
                continue
            up = table[table["contribution"] > 0].nlargest(3, "contribution")
            down = table[table["contribution"] < 0].nsmallest(3, "contribution")
            st.markdown("**For**  \n" + ("  \n".join(f":green[+{c:.3f}] {f} = {v}" for f, v, c in
                                                     zip(up["feature"], up["value"], up["contribution"])) or "none"))
            st.markdown("**Against**  \n" + ("  \n".join(f":red[{c:.3f}] {f} = {v}" for f, v, c in
                                                        zip(down["feature"], down["value"], down["contribution"]))
                                             or "none"))
