"""Monitoring: outcomes back from the CRM matched to the scored lists, and how the lists did over time beside what
their runs promised (engine/outcomes.py, engine/outcomes_report.py)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.components import state, widgets
from engine.live import LiveStore, deployable, family_of
from engine.outcomes import OutcomeError
from engine.outcomes_report import monitoring_report, upload_outcomes, upload_words
from engine.retrain import retrain_live
from engine.runs import RunStore
from engine.words import plural

st.title("Monitoring")
st.caption(
    "Upload the outcomes of leads you scored (a file of lead ids and won/lost, yes/no or 1/0; a close date is "
    "optional). They are matched by id to the lists stored when the leads were scored, and each list's realized "
    "performance is set beside what its model promised on its test leads. The same file twice changes nothing."
)
widgets.storage_warnings()


def _keep_upload():
    upload = st.session_state.get("monitoring_upload")
    st.session_state["monitoring_file"] = (upload.getvalue(), upload.name) if upload is not None else None


st.file_uploader("Outcomes file (CSV, Excel, Parquet)", key="monitoring_upload", on_change=_keep_upload)
with st.expander("Columns (found by themselves when left blank)"):
    c1, c2, c3 = st.columns(3)
    id_column = c1.text_input("Lead id column", key="monitoring_id", placeholder="e.g. Prospect ID")
    outcome_column = c2.text_input("Outcome column", key="monitoring_outcome", placeholder="e.g. Converted")
    date_column = c3.text_input("Close date column", key="monitoring_date", placeholder="optional")

kept = st.session_state.get("monitoring_file")
if kept and st.button(f"Match the outcomes in {kept[1]}", key="monitoring_match", type="primary"):
    data, name = kept
    try:
        result = upload_outcomes(
            data, name, id_column.strip() or None, outcome_column.strip() or None, date_column.strip() or None
        )
    except OutcomeError as exc:
        st.session_state["monitoring_said"] = ("error", [str(exc)])
    else:
        st.session_state["monitoring_said"] = (
            "success" if result["upload"]["added"] else "info",
            upload_words(result["upload"]),
        )
said = st.session_state.get("monitoring_said")
if said:
    {"error": st.error, "success": st.success, "info": st.info}[said[0]]("\n\n".join(said[1]))

report = monitoring_report()
_runs = state.list_runs()
LABELS = state.run_labels(_runs)  # how the board names runs; the id stays in a column of its own / the tooltip
RUNS = {r.id: r for r in _runs}


def label(run_id: str) -> str:
    """The board's name of a run (its id when it is gone or damaged)."""
    return LABELS.get(run_id, run_id)


for alert in report["alerts"]:
    st.error(alert, icon=":material/warning:")
if not report["lists"]:
    st.info(
        "No scored list is stored yet. Score leads on the Score page (or `python -m engine score`), then upload "
        "their outcomes here."
    )
    st.stop()
if not report["matched"]:
    st.info(f"{plural(len(report['lists']), 'scored list')} stored; no outcome matched yet. Upload the outcomes above.")
    st.stop()

st.subheader(f"All {report['matched']:,} leads with an outcome")
st.markdown("\n".join(f"- {line}" for line in report["words"]))

weeks = pd.DataFrame(report["weeks"])
promise = next((r["promised"] for r in report["runs"] if r.get("promised")), None)
fig = go.Figure()
ci = weeks["roc_auc_ci"].map(lambda c: c if c else [None, None])
fig.add_trace(
    go.Scatter(
        x=weeks["week"],
        y=weeks["roc_auc"],
        mode="lines+markers",
        name="realized ROC-AUC",
        error_y=dict(
            type="data",
            symmetric=False,
            array=[(h - v) if h is not None and v is not None else None for (_, h), v in zip(ci, weeks["roc_auc"])],
            arrayminus=[
                (v - lo) if lo is not None and v is not None else None for (lo, _), v in zip(ci, weeks["roc_auc"])
            ],
        ),
    )
)
for run in report["runs"]:
    p = run.get("promised") or {}
    if p.get("roc_auc_ci") and p["roc_auc_ci"][0] is not None:
        fig.add_hrect(
            y0=p["roc_auc_ci"][0],
            y1=p["roc_auc_ci"][1],
            opacity=0.12,
            line_width=0,
            annotation_text=f"promised by {label(run['run_id'])}",
            fillcolor="#1a7f37",
        )
fig.update_layout(
    title="Realized ROC-AUC by week scored (95 % interval), beside the runs' promise",
    height=320,
    yaxis_title="ROC-AUC",
    margin=dict(l=10, r=10, t=40, b=10),
)
st.plotly_chart(fig, width="stretch")

tier_rows = [
    {"week": w["week"], "tier": t, "conversion": v["rate"], "leads": v["leads"]}
    for w in report["weeks"]
    for t, v in w["by_tier"].items()
]
if tier_rows:
    import plotly.express as px

    fig = px.line(
        pd.DataFrame(tier_rows),
        x="week",
        y="conversion",
        color="tier",
        markers=True,
        category_orders={"tier": ["A", "B", "C", "D"]},
        title="Conversion by tier, by week scored",
        color_discrete_map={"A": "#1a7f37", "B": "#4ac26b", "C": "#d4a72c", "D": "#cf222e"},
    )
    fig.update_layout(height=300, yaxis_tickformat=".0%", margin=dict(l=10, r=10, t=40, b=10))
    st.plotly_chart(fig, width="stretch")

calib = pd.DataFrame(report["calibration"])
if not calib.empty:
    fig = go.Figure(
        [
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line=dict(dash="dot", color="grey")),
            go.Scatter(
                x=calib["predicted"],
                y=calib["realized"],
                mode="lines+markers",
                name="realized",
                text=calib["leads"].map(lambda n: f"{n:,} leads"),
            ),
        ]
    )
    fig.update_layout(
        title="Calibration: predicted against realized",
        xaxis_title="predicted",
        yaxis_title="converted",
        height=300,
        margin=dict(l=10, r=10, t=40, b=10),
    )
    st.plotly_chart(fig, width="stretch")


def _rate(entry: dict, tier: str):
    value = entry["by_tier"].get(tier)
    return None if value is None else round(100 * value["rate"], 1)


def _promised(e: dict):
    return None if not e.get("promised") else e["promised"].get("roc_auc")


st.subheader("Each scored list")
# narrow enough not to scroll sideways at 1,400 px: the model by the board's name (its run id is in its line below);
# Brier and the tiers in full are in each run's words below
st.dataframe(
    pd.DataFrame(
        [
            {
                "week": e["week"],
                "file": e["source"],
                "model": label(e["run_id"]),
                "live v.": e.get("live_version"),
                "shift": e.get("shift_verdict") or "not recorded",
                "outcomes": f"{e['matched']:,} of {e['list_rows']:,}",
                "ROC-AUC": None if e["roc_auc"] is None else round(e["roc_auc"], 3),
                "promised": _promised(e),
                "A / D %": f"{_rate(e, 'A')} / {_rate(e, 'D')}",
            }
            for e in report["lists"]
        ]
    ),
    hide_index=True,
    width="stretch",
    column_config={
        "week": st.column_config.TextColumn(width="small"),
        "file": st.column_config.TextColumn(width="medium"),
        "model": st.column_config.TextColumn(
            width="medium",
            help="The model that ranked the list, as the board names it; its run id is in its line below the table",
        ),
        "live v.": st.column_config.NumberColumn(
            width="small", help="The live version it was scored under (empty: not live)"
        ),
        "shift": st.column_config.TextColumn(width="small", help="The shift check's verdict when the list was scored"),
        "outcomes": st.column_config.TextColumn(width="small", help="Leads with an outcome back, of the list's leads"),
        "ROC-AUC": st.column_config.NumberColumn(
            width="small", format="%.3f", help="Realized on the leads with an outcome"
        ),
        "promised": st.column_config.NumberColumn(
            width="small", format="%.3f", help="The run's ROC-AUC on its test leads"
        ),
        "A / D %": st.column_config.TextColumn(width="small", help="Conversion in tier A and in tier D, per cent"),
    },
)
for entry in report["runs"]:
    with st.expander(f"{label(entry['run_id'])}: {plural(entry['matched'], 'lead')} with an outcome"):
        st.caption(f"Run id {entry['run_id']}")
        st.markdown("\n".join(f"- {line}" for line in entry["words"]))
if report["skipped_lists"]:
    st.caption("Lists outcomes cannot match: " + "; ".join(f"{k} ({v})" for k, v in report["skipped_lists"].items()))
if report["outcomes"]["conflicting_between_uploads"]:
    st.caption(
        f"{plural(report['outcomes']['conflicting_between_uploads'], 'lead id')} "
        f"{'has' if report['outcomes']['conflicting_between_uploads'] == 1 else 'have'} different outcomes in different "
        "uploads (e.g. " + ", ".join(report["outcomes"]["conflicting_examples"]) + "): they are left out."
    )


try:
    LIVE = LiveStore.beside(state.run_store()).state()["live"].get("leads", {})  # {family: entry}
except ValueError as exc:  # a damaged live.json: named with its fix
    LIVE = {}
    st.error(str(exc))


# -- retrain with outcomes (engine/retrain.py) ------------------------------------------------------------------------
def _retrain(family: str | None = None) -> None:
    """The live run's configuration trained again, as a job, on a new version of its dataset with the outcomes."""
    try:
        done = retrain_live(family=family, runner=state.job_runner())
    except (ValueError, KeyError) as exc:  # no live run, no outcomes, the data not stored: said with the fix
        st.session_state["monitoring_retrain_said"] = ("error", str(exc.args[0] if isinstance(exc, KeyError) else exc))
    else:
        st.session_state["monitoring_retrain_said"] = (
            "success",
            f"Dataset {done['dataset_name']}: {plural(done['rows_added'], 'lead')} with their outcome added (earlier "
            f"versions are kept). Job {done['job_id']} trains the configuration of live run {label(done['run_id'])} on "
            "it: follow it "
            "on the Train page. The new run is not live: compare it here once it has scored leads beside the live run.",
        )


st.subheader("Retrain with outcomes")
st.caption(
    "Adds the leads whose outcomes came back to the live run's dataset as a new version (earlier versions stay and can "
    "be scored against) and trains the live run's configuration on it as a job. Training never changes the live run."
)
retrain_family = None
if len(LIVE) > 1:  # one live run per dataset family: which one to train again
    retrain_family = st.selectbox(
        "Live model to retrain (one per dataset)",
        sorted(LIVE),
        key="monitoring_retrain_family",
        format_func=lambda f: f"{f}: {label(LIVE[f]['run_id'])}",
    )
st.button("Retrain with outcomes", key="monitoring_retrain", on_click=_retrain, args=(retrain_family,))
retrain_said = st.session_state.pop("monitoring_retrain_said", None)
if retrain_said:
    (st.success if retrain_said[0] == "success" else st.error)(retrain_said[1])


# -- champion vs challenger (engine/challenger.py) -------------------------------------------------------------------
def default_note(recommendation: str) -> str:
    """The history's note when none is typed: what the comparison said, never 'better' when it said to keep."""
    if recommendation == "make live":
        return "challenger: better on realized outcomes"
    return "challenger made live from Monitoring; the comparison said to keep the live run"


def _make_live(run_id: str, recommendation: str = "make live", family: str | None = None) -> None:
    """Deploy ``run_id`` as ``python -m engine deploy`` and the Metric board do; said on the next run."""
    store = RunStore()
    note = st.session_state.get(f"monitoring_live_note_{run_id}") or default_note(recommendation)
    try:
        entry = LiveStore.beside(store).deploy(deployable(store, run_id), note=note, family=family)
    except (ValueError, KeyError) as exc:  # damaged run or live files: the message names it and the fix
        st.session_state["monitoring_live_outcome"] = ("error", str(exc.args[0] if isinstance(exc, KeyError) else exc))
    else:
        st.session_state["monitoring_live_outcome"] = (
            "success",
            f"{label(run_id)} is the live model of {entry['family']} (version {entry['version']}).",
        )


def by_label(text: str) -> str:
    """``text`` (the engine's words, which name runs by id) with each known run named as the board names it."""
    for run_id, name in LABELS.items():
        text = text.replace(run_id, name)
    return text


def change_words(run_id: str, family: str | None) -> str:
    """What Make live changes: the live run of ``family`` (the one the challenger was compared with; else its own
    dataset's), from which run to it."""
    run = RUNS.get(run_id)
    family = family or (family_of(run.settings) if run is not None else None)
    now = LIVE.get(family) if family else None
    before = f"**{label(now['run_id'])}**" if now else "no live model (the newest run that loads)"
    return (
        f"Make live changes the live model of **{family or 'its dataset'}**: the API, `score` and the Score page will "
        f"use **{label(run_id)}** instead of {before} for those leads (the change is kept in the history; "
        f'`python -m engine deploy --rollback --kind leads --family "{family or "NAME"}"` goes back; the other '
        "datasets' live models stay)."
    )


st.subheader("Champion vs challenger")
st.caption(
    "Runs scored beside the live run (choose several models on the Score page, or `python -m engine score --shadow "
    "RUN_ID`) are compared with it on the same leads once their outcomes are back: the ROC-AUC difference with a "
    "paired bootstrap interval, and the converted leads among the top N of each list, the leads your team can call."
)
top_n = st.number_input(
    "Leads your team can call from each list (top N)", min_value=1, value=50, step=10, key="monitoring_top_n"
)
live_said = st.session_state.pop("monitoring_live_outcome", None)
if live_said:
    (st.success if live_said[0] == "success" else st.error)(live_said[1])
from engine.challenger import ChallengerError, challenger_report  # noqa: E402

try:
    block = challenger_report(top_n)
except (ChallengerError, ValueError) as exc:  # an N larger than the lists, a damaged live file: said with the fix
    st.error(str(exc))
    st.stop()
if not block["runs"]:
    st.info(" ".join(block["words"]))
for entry in block["runs"]:
    run_id = entry["run_id"]
    with st.container(border=True):
        st.markdown(
            f"**{label(run_id)}** against the live model of {entry.get('family') or 'its dataset'}, "
            f"**{label(entry['live_run_id'])}**",
            help=f"Run ids: {run_id} against {entry['live_run_id']}",
        )
        st.markdown("\n".join(f"- {by_label(line)}" for line in entry["words"]))
        if not entry["leads"]:
            continue
        st.markdown(change_words(run_id, entry.get("family")))
        st.text_input("Note (why; kept in the history)", key=f"monitoring_live_note_{run_id}", max_chars=200)
        st.button(
            "Make live",
            key=f"monitoring_make_live_{run_id}",
            type="primary" if entry["recommendation"] == "make live" else "secondary",
            on_click=_make_live,
            args=(run_id, entry["recommendation"], entry.get("family")),
        )
