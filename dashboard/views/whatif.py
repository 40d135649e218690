"""What-if: edit one lead's fields and watch every trained lead approach rescore it live.

The lead starts as a typical lead of the dataset (the most common value of each category, the median of each
number) or as a real test lead, named by the file's id column; each card shows the change from that start.
"""

import time

import pandas as pd
import streamlit as st

from dashboard.components import explain_charts as ec
from dashboard.components import state, widgets
from engine import whatif
from engine.scoring import SCORE_HELP, TIER_MEANING, flag_columns, load_training_profile, run_scores, run_tiers
from engine.whatif import MISSING, is_blank

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
# numbers the runs read as missing, each with a 0/1 flag column (checked when the run was loaded)
flags = settings.flags
fields = whatif.form_fields(settings)  # a flag is made from its column's value, not typed
data = state.run_data(reference)
X = data["X"] if data is not None else None
dataset_name = settings.dataset or "the dataset"


# cached per run and per source (the dataset's leads, or the stored profile when the file is not in the store)
@st.cache_data(show_spinner=False, max_entries=8)
def field_options(run_id: str, from_file: bool, _X: pd.DataFrame | None, _profile: dict | None) -> dict:
    return whatif.field_options(settings, _X, _profile)


@st.cache_data(show_spinner=False, max_entries=8)
def typical_lead(run_id: str, from_file: bool, _X: pd.DataFrame | None, _profile: dict | None) -> dict:
    return whatif.typical_lead(settings, _X, _profile)


profile = load_training_profile(reference) if X is None else None
typical = typical_lead(reference.id, X is not None, X, profile)
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


if start == TYPICAL:
    starting = typical
elif start == "blank" or X is None:
    starting = {}
else:  # a code read as missing shows as the code the file held
    starting = whatif.file_values(settings, X.iloc[test_positions[int(start)]])


def start_value(col: str):
    return starting.get(col)


options = field_options(reference.id, X is not None, X, profile)
values: dict = {}
st.subheader("The lead")
grid = st.columns(3)
for i, col in enumerate(fields):
    key = f"whatif_{data_hash[:8]}_{start}_{col}"
    current_value = start_value(col)
    with grid[i % 3]:
        if whatif.is_number_field(settings, col, options):
            default = None if is_blank(current_value) else float(current_value)
            values[col] = st.number_input(col, value=default, key=key, placeholder="missing", format="%g")
        elif options.get(col, {}).get("text"):  # free text: edit the note and see the score move
            values[col] = st.text_area(col, value="" if is_blank(current_value) else str(current_value), key=key)
        elif "values" in options.get(col, {}) and options[col]["values"]:
            choices = [MISSING] + options[col]["values"]
            cur = MISSING if is_blank(current_value) else str(current_value)
            if cur not in choices:
                choices.append(cur)
            values[col] = st.selectbox(col, choices, index=choices.index(cur), key=key)
        else:
            values[col] = st.text_input(col, value="" if is_blank(current_value) else str(current_value), key=key)


start_values = whatif.form_values(settings, starting, options)
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
    tiers = run_tiers(run, [p])
    if tiers is None:
        return "-"
    return f"{tiers[0]} ({TIER_MEANING[str(tiers[0])]} of this model's training leads)"


def start_probability(run, model) -> float:
    """P(convert) of the unedited starting lead, remembered for the session."""
    memo = st.session_state.setdefault("whatif_start_scores", {})
    key = (run.id, data_hash, str(start))
    if key not in memo:
        memo[key] = whatif.lead_probability(run, model, start_values)
    return memo[key]


explained_tables: dict[str, pd.DataFrame] = {}
cards = st.columns(max(len(latest), 1))
for card, (approach, run) in zip(cards, latest.items()):
    label = state.approach_label(approach)
    with card, st.container(border=True):
        st.markdown(f"**{label}**  \n{state.run_label(run)}", help=state.run_help(run))
        try:
            model = models[run.id]
            run_lead = whatif.lead_frame(run.settings, values)  # as this run saw its rows (its own codes, flags)
            started = time.perf_counter()
            p = whatif.lead_probability(run, model, run_lead)
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
