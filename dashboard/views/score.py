"""Score: this week's new leads (or calls) -> a ranked list with tiers and reasons, checked against training."""

from __future__ import annotations

import hashlib
import io

import streamlit as st

from dashboard.components import state, widgets
from engine.live import LiveStore
from engine.scored_lists import ScoredStore
from engine.scoring import SCORE_HELP, add_reasons, read_rows, score_frame
from engine.scoring_chunks import MEMORY_ENV, STORE_TOP_ROWS, score_upload, store_top, upload_needs_chunks

st.title("Score new leads")
st.caption(
    "Upload this week's leads (or calls) and get them ranked: who to call first, and why. The file needs "
    "no outcome column; if it has one, you also see how the model did on it."
)
widgets.storage_warnings()

runs = state.list_runs()
if not runs:
    st.info("No trained model yet. Train one on the Train page (or load the demo on Home), then come back.")
    st.stop()

kinds = sorted({r.settings.input_kind for r in runs})
# the choices below are kept when the page is left and opened again (browser Back, the navigation)
kind = (
    widgets.persistent(
        st.radio,
        "What are you scoring?",
        kinds,
        horizontal=True,
        key="score_kind",
        fix=lambda k: k if k in kinds else None,
        format_func=lambda k: {"leads": "Leads (a CRM table)", "transcripts": "Sales calls"}.get(k, k),
    )
    if len(kinds) > 1
    else kinds[0]  # one kind of model trained: nothing to choose
)
kind_runs = [r for r in runs if r.settings.input_kind == kind]


def _auc(run) -> float:
    try:
        value = run.metrics.get("metrics", {}).get("roc_auc", {})
        return float(value.get("value") if isinstance(value, dict) else value)
    except (TypeError, ValueError):
        return float("-inf")


# the best on the board, among the models that use no column the leak finder flagged (its ROC-AUC is the leak's)
best = max([r for r in kind_runs if not r.settings.flagged] or kind_runs, key=_auc)
run_names = state.run_labels(kind_runs)  # runs whose names would read alike get the end of their id


def _family_changed() -> None:
    """Another family chosen: its live run is chosen for you (the models chosen before were the other's)."""
    try:
        entry = LiveStore.beside(state.run_store()).live(kind, st.session_state.get("score_family"))
    except ValueError:  # a damaged live.json: the page names it when it is drawn
        entry = None
    if entry is not None and entry["run_id"] in {r.id for r in kind_runs}:
        st.session_state["score_runs"] = st.session_state["_kept_score_runs"] = [entry["run_id"]]
    else:
        for key in ("score_runs", "_kept_score_runs"):
            st.session_state.pop(key, None)


live_entry = None
try:  # the live run (python -m engine deploy, or Make live on the board) is the default when one is set
    live_store = LiveStore.beside(state.run_store())
    families = live_store.families(kind)
    family = None
    if len(families) > 1:  # one live run per dataset family: which one these leads are for
        family = widgets.persistent(
            st.selectbox,
            "Live model of which dataset",
            families,
            key="score_family",
            fix=lambda f: f if f in families else None,
            on_change=_family_changed,
            help=f"{len(families)} datasets have a live {kind} model (one per dataset and its retrained versions); "
            "the one chosen here is preselected below. `score --family NAME` and the API's `family` do the same.",
        )
    live_entry = live_store.live(kind, family) if families else None
except ValueError as exc:  # a damaged live.json: named, with the fix; the page still works
    st.warning(f"The live model cannot be read: {exc}")
if live_entry and live_entry["run_id"] in run_names:
    best = next(r for r in kind_runs if r.id == live_entry["run_id"])
    run_names[best.id] += " · live"
elif live_entry:
    st.error(
        f"The live {kind} run {live_entry['run_id']} cannot be used (deleted or damaged): the API and `score` "
        f"refuse to score {live_entry['family']}'s {kind} until another run is made live (Make live on the Metric "
        "board)."
    )
ids = [r.id for r in kind_runs]
chosen_ids = widgets.persistent(
    st.multiselect,
    "Models",
    ids,
    default=[best.id],
    key="score_runs",
    # a run deleted since: the others stay (none left: the best); none chosen stays none
    fix=lambda chosen: [i for i in chosen if i in ids] or (None if chosen else []),
    format_func=lambda i: run_names[i],
    help="The live model (the one the API and `score` use; Make live on the Metric board) is chosen for you; "
    "when none is set, the best on the board (highest ROC-AUC; a model using a column the leak finder flagged "
    "only when every model does). Choose several to compare their rankings of the same file.",
)
if not chosen_ids:
    st.info("Choose at least one model.")
    st.stop()
chosen = [next(r for r in kind_runs if r.id == i) for i in chosen_ids]

SOURCES = ["Upload a file", "A stored dataset"]
source = widgets.persistent(
    st.radio, "Leads to score", SOURCES, horizontal=True, key="score_source", fix=lambda s: s if s in SOURCES else None
)
data, filename = None, None
if source == "Upload a file":

    def _keep_upload():
        upload = st.session_state.get("score_upload")
        st.session_state["score_file"] = (upload.getvalue(), upload.name) if upload is not None else None

    upload = st.file_uploader(
        "File of new leads (CSV, Excel, Parquet; calls: JSON, JSON Lines, CSV)",
        key="score_upload",
        on_change=_keep_upload,
    )
    if st.session_state.get("score_file"):
        data, filename = st.session_state["score_file"]
        if upload is None:  # the upload box empties when the page is left; the file it held is kept, and named
            kept_note, kept_remove = st.columns([5, 1], vertical_alignment="center")
            kept_note.info(
                f"Scoring **{filename}**, uploaded earlier in this session (the upload box empties when you "
                "leave the page). Upload another file to score it instead.",
                icon=":material/description:",
            )
            if kept_remove.button("Remove the file", key="score_forget_file"):
                st.session_state["score_file"] = None
                st.rerun()
else:
    datasets = state.dataset_store().list(kind=kind)
    if not datasets:
        st.info(f"No stored {kind} dataset. Upload a file instead.")
    else:
        by_sha = {d.sha: d for d in datasets}
        ds = widgets.persistent(
            st.selectbox,
            "Dataset",
            datasets,
            key="score_dataset",
            format_func=lambda d: d.label(),
            fix=lambda d: by_sha.get(getattr(d, "sha", None)),  # the same dataset as listed on this run
        )
        data, filename = ds.read_bytes(), ds.meta.get("filename") or ds.raw_path.name
if data is None:
    st.stop()
sha = hashlib.sha256(data).hexdigest()


@st.cache_data(show_spinner=False, max_entries=8)
def _read(run_id: str, sha: str, _data: bytes, filename: str):
    return read_rows(state.run_store().get(run_id), io.BytesIO(_data), filename=filename)


@st.cache_data(show_spinner=False, max_entries=16)
def _score(run_id: str, sha: str, _raw, filename: str):
    """The ranked list without reasons (they come after it is on screen, in the background)."""
    run = state.run_store().get(run_id)
    return score_frame(run, _raw, model=state.load_model(run), explain=0, source=filename)


if kind == "leads" and upload_needs_chunks(data, filename):  # over the memory budget: scored in chunks
    import pandas as pd

    big_run = chosen[0]

    @st.cache_data(show_spinner=False, max_entries=2)
    def _score_big(run_id: str, sha: str, _data: bytes, filename: str):
        run = state.run_store().get(run_id)
        return score_upload(run, _data, filename, model=state.load_model(run), top_rows=STORE_TOP_ROWS)

    try:
        with st.spinner(
            f"{filename} is over the memory budget: scoring it in chunks with {state.run_label(big_run)}..."
        ):
            big, ranked, top = _score_big(big_run.id, sha, data, filename)
    except ValueError as exc:  # bad file, no shared column, broken run: the message says the fix
        st.error(f"{state.run_label(big_run)}: {exc}")
        st.stop()
    if len(chosen) > 1:
        st.info("A file over the memory budget is scored by one model: the first one chosen.")
    st.subheader(f"Ranked list: {big.rows:,} leads")
    st.caption(
        f"Scored by {state.run_label(big_run)} in {big.chunks:,} chunks of {big.chunk_rows:,} rows (the file is over "
        f"the memory budget, {MEMORY_ENV}); reasons for the top {big.explained_rows:,}. The first 1,000 are shown; "
        "the download holds every lead.",
        help=SCORE_HELP,
    )
    if big.report.messages():
        st.warning("**Check before you trust the list**:\n" + "\n".join(f"- {m}" for m in big.report.messages()))
    st.dataframe(pd.read_csv(ranked, nrows=1000, dtype=str, keep_default_na=False), width="stretch", hide_index=True)
    with open(ranked, "rb") as handle:
        st.download_button("Download CSV", handle.read(), f"{filename.rsplit('.', 1)[0]}_scored.csv", "text/csv")
    stored = store_top(big, filename, top, big.shift)
    st.caption(f"Kept for outcomes: {stored['kept']} (Monitoring matches outcomes to them).")
    st.stop()

results = {}
for run in chosen:
    try:
        raw = _read(run.id, sha, data, filename)
        with st.spinner(f"Scoring {filename} with {state.run_label(run)}..."):
            results[run.id] = _score(run.id, sha, raw, filename)
    except ValueError as exc:  # bad file, no shared column, broken run: the message says the fix
        st.error(f"{state.run_label(run)}: {exc}")
if not results:
    st.stop()

main_run = chosen[0] if chosen[0].id in results else next(r for r in chosen if r.id in results)
widgets.flagged_warning(main_run)
scored = results[main_run.id]
table = scored.table

if len(results) > 1:
    import pandas as pd

    st.subheader("How the models rank this file")
    # each result's probabilities are in the file's row order, so they line up lead by lead
    names = state.run_labels([r for r in chosen if r.id in results])  # alike names get the end of their id
    probas = pd.DataFrame({names[r.id]: results[r.id].proba for r in chosen if r.id in results})
    st.caption(
        "Rank correlation (Spearman) between the models' orderings of the same leads: 1 = the same order, "
        "0 = unrelated."
    )
    st.dataframe(probas.corr(method="spearman").round(3), width="stretch")
    side = pd.DataFrame({name: probas[name].rank(ascending=False, method="first").astype(int) for name in probas})
    st.caption("Rank of each lead (row of your file) under each model:")
    st.dataframe(side.head(200), width="stretch")

st.subheader(f"Ranked list: {len(table):,} leads")
st.caption(f"Scored by {state.run_label(main_run)}.")
st.caption(
    "**Score** 1-99 ranks the lead among the leads this model learned from: 80 = it scores at least as high "
    "as 80 % of them (the **probability** column is the model's chance that it converts). **Tier**: A = the "
    "top quarter of those leads, D = the bottom quarter. Both are relative to this model's leads, so they "
    "separate leads even when few convert; reasons are in percentage points of the probability.",
    help=SCORE_HELP,
)

messages = scored.report.messages()
if messages:
    st.warning(
        "**Check before you trust the list** — how this file differs from what the model learned from:\n"
        + "\n".join(f"- {line}" for line in messages)
    )

if scored.metrics:
    m = scored.metrics
    cols = st.columns(3)
    for col, (name, label) in zip(cols, [("roc_auc", "ROC-AUC"), ("accuracy", "Accuracy"), ("pr_auc", "PR-AUC")]):
        if name in m:
            col.metric(
                label,
                f"{m[name]['value']:.3f}",
                delta=f"95 % interval {m[name]['low']:.3f} to {m[name]['high']:.3f}",
                delta_color="off",
                help=f"On the {scored.outcome_rows:,} rows with an outcome; the interval is a bootstrap of them.",
            )
    chance = "roc_auc" in m and m["roc_auc"]["low"] <= 0.5
    st.caption(
        "The file has the outcome column, so this is how the model did on these leads"
        + (": the ROC-AUC interval includes 0.5, so it is possibly no better than chance here." if chance else ".")
    )

# reasons for the top rows: computed after the list is on screen
from engine.scoring import explain_budget  # noqa: E402

budget_default = min(len(table), explain_budget(main_run.settings.approach))  # as the CLI and the API
n_reasons = st.number_input(
    "Leads to explain (from the top of the list)",
    min_value=0,
    max_value=len(table),
    value=budget_default,
    step=10,
    key="score_reasons",
    help="Reasons are the three factors that raise and lower each lead's score the most. "
    "They cost time per lead, so they are computed for the top of the list.",
)
from dashboard.components import tasks  # noqa: E402

ready = not n_reasons  # the list as it will be downloaded: with its reasons, once they are computed


def reasons_progress(task: tasks.Task, n: int) -> str:
    """What the reasons step says while it runs: how many of the leads are explained so far."""
    if not task.done and task.phase != f"explaining the top {n:,} leads":
        return f"Explaining the top {n:,} leads: {task.phase}..."
    left = task.seconds_left()
    return f"Explaining the top {n:,} leads: {task.done:,} of {task.total:,}" + (
        f" (about {left:.0f} s left)" if left is not None and task.done else ""
    )


if n_reasons:

    def reasons(task: tasks.Task, listed=scored, n=int(n_reasons)):
        task.phase = "loading the model"
        raw_rows, model = _read(main_run.id, sha, data, filename), state.load_model(main_run)
        task.phase = f"explaining the top {n:,} leads"

        def progress(done: int, total: int) -> None:
            task.done, task.total = done, max(total, 1)

        return add_reasons(main_run, raw_rows, listed, model=model, explain=n, source=filename, progress=progress)

    reasons_task = tasks.start(("reasons", main_run.id, sha, int(n_reasons)), reasons, int(n_reasons), "Reasons")
    if tasks.wait(reasons_task):
        if not tasks.show_failure(reasons_task, f"Reasons not computed: {reasons_task.error}", "reasons_retry"):
            scored, ready = reasons_task.result, True
            table = scored.table
    else:
        tasks.poll(
            [reasons_task],
            lambda: st.progress(reasons_task.fraction, text=reasons_progress(reasons_task, int(n_reasons))),
            key="reasons_poll",
            seen_running=True,
        )

tiers = sorted(table["tier"].dropna().unique().tolist()) if "tier" in table else []
f1, f2 = st.columns(2)
pick_tiers = f1.multiselect("Tiers", tiers, default=tiers, key="score_tiers")
low, high = f2.slider("Score range", 1, 99, (1, 99), key="score_range")
view = table[(table["score"] >= low) & (table["score"] <= high)]
if tiers:
    view = view[view["tier"].isin(pick_tiers)]

from engine.scoring import ROW_COLUMN, identifier_columns  # noqa: E402

id_columns = identifier_columns(main_run, table.columns) or [c for c in (ROW_COLUMN,) if c in table.columns]
shown = ["rank", *id_columns, "score", "tier", "probability", "reasons_for", "reasons_against"]
listed = view[[c for c in shown if c in view.columns]].reset_index(drop=True)
picked = st.dataframe(
    listed,
    width="stretch",
    hide_index=True,
    on_select="rerun",
    selection_mode="single-row",
    key="score_table",
    column_config={
        "probability": st.column_config.NumberColumn("probability", format="%.3f"),
        "reasons_for": st.column_config.TextColumn("raises the score", width="large"),
        "reasons_against": st.column_config.TextColumn("lowers the score", width="large"),
    },
)
if len(listed):  # a lead's reasons in full, one a line (a table cell shows only their start)
    rows = picked.selection.rows if picked is not None and hasattr(picked, "selection") else []
    lead = listed.iloc[rows[0] if rows else 0]
    named = ", ".join(f"{c} {lead[c]}" for c in id_columns) or f"rank {lead['rank']}"
    which = "the selected lead" if rows else "the top lead (select a row to read another's)"
    import numpy as np

    # the lead's factors as scoring gave them (keyed by the row's place in the file: rank r is the r-th best score)
    position = int(np.argsort(-scored.proba, kind="stable")[int(lead["rank"]) - 1])
    found = scored.factors.get(position)
    with st.container(border=True):
        st.markdown(f"**Reasons for {which}**: {named}, score {lead['score']}, tier {lead.get('tier', '-')}")
        if found is None and not ready:
            st.caption("Reasons are being computed for the top of the list; they appear here when ready.")
        elif found is None:
            st.caption(
                "No reasons for this lead: it is below the top leads explained (raise 'Leads to explain')."
                if n_reasons
                else "No reasons asked for: set 'Leads to explain' above 0."
            )
        elif not found.get("for") and not found.get("against"):
            st.caption(
                "Explained, but no field moves this lead's chance by half a point or more either way: the model "
                "sees it as close to its average lead."
            )
        for side, word in (("for", "Raises the score"), ("against", "Lowers the score")):
            items = [f["text"] for f in (found or {}).get(side, [])]
            if items:
                st.markdown(f"{word}:\n" + "\n".join(f"- {x}" for x in items))
explained = int(table["has_reasons"].sum())
with_words = int(((table["reasons_for"] != "") | (table["reasons_against"] != "")).sum())
if not ready:
    reasons_note = f"Reasons for the top {int(n_reasons):,} leads are being computed. "
elif explained:
    reasons_note = f"{explained:,} of {len(table):,} leads were explained (the top of the list)" + (
        f"; {explained - with_words:,} of them have no field that moves their chance by half a point or more. "
        if with_words < explained
        else ". "
    )
else:
    reasons_note = "No lead was explained. "
st.caption(reasons_note + "The downloads hold every column of your file, then the scores and reasons, ranked.")

import plotly.express as px

fig = px.histogram(
    table,
    x="score",
    color="tier" if tiers else None,
    nbins=33,
    range_x=[0, 100],
    category_orders={"tier": ["A", "B", "C", "D"]},
    title="Scores by tier",
    color_discrete_map={"A": "#1a7f37", "B": "#4ac26b", "C": "#d4a72c", "D": "#cf222e"},
)
fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10), bargap=0.05)
st.plotly_chart(fig, width="stretch")


@st.cache_data(show_spinner=False, max_entries=8)
def _exports(
    run_id: str, sha: str, explained: int, _scored, filename: str, shadow_ids: tuple = (), _shadows=None
) -> tuple[bytes, bytes]:
    """The downloads (CSV, Excel) of one scored list, rendered once (not on every rerun of the page), and the
    list stored with them: the other chosen models' scores are kept with it (shadow runs, compared with the live
    run on the Monitoring page once outcomes come back)."""
    csv_bytes = _scored.export_csv()  # formula cells neutralised, whatever the columns' dtypes
    ScoredStore().add(_scored, filename, csv_bytes=csv_bytes, shadows=_shadows)  # the shift verdict: added below
    return csv_bytes, _scored.export_excel()


if ready:
    shadows = {rid: result for rid, result in results.items() if rid != main_run.id}
    csv_bytes, excel_bytes = _exports(
        main_run.id, sha, scored.explained_rows, scored, filename, tuple(sorted(shadows)), shadows
    )
    stem = filename.rsplit(".", 1)[0]
    d1, d2 = st.columns(2)
    d1.download_button("Download CSV", csv_bytes, f"{stem}_scored.csv", "text/csv", key="score_csv")
    d2.download_button(
        "Download Excel",
        excel_bytes,
        f"{stem}_scored.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        key="score_xlsx",
    )
else:
    st.caption("The downloads appear when the reasons are ready.")


store = ScoredStore()

# shift check: do these leads look like the ones the model learned from? (seconds on a large file: in the
# background, so the ranked list above is usable at once)
from engine.scoring import shift_check  # noqa: E402 - the one shift check: the CLI's too


def draw_shift(report: dict) -> None:
    verdict = report["verdict"]
    auc = report.get("adversarial_auc")
    if auc is None:
        how = " (too few rows for the overall check)."
    elif auc <= 0.55:  # at or below chance (below it on a file holding the training leads themselves)
        how = f" (a model trained to tell the two apart cannot: ROC-AUC {auc:.2f}, where 0.5 or less = it cannot)."
    else:
        how = f" (a model trained to tell the two apart reaches ROC-AUC {auc:.2f}; 0.5 = it cannot, 1 = always can)."
    text = f"Compared with the leads this model learned from, this file **{verdict}**" + how
    show = st.success if verdict.startswith("looks like") else st.info if verdict.startswith("too few") else st.warning
    show(text)
    top = [c for c in report["columns"] if c["level"] != "stable"][:5]
    if top:
        st.caption(
            "Columns whose values moved most since training (population stability index; above 0.25 "
            "is large): " + ", ".join(f"{c['column']} ({c['psi']:.2f}, {c['level']})" for c in top)
        )


def shift_record(scored_store, list_csv: bytes, report: dict) -> None:
    """The shift verdict kept with the stored list (as `score` keeps it), so that Monitoring reads it beside the list."""
    try:
        scored_store.record(
            hashlib.sha256(list_csv).hexdigest(),
            {"shift": {"verdict": report.get("verdict"), "adversarial_auc": report.get("adversarial_auc")}},
        )
    except (KeyError, OSError, ValueError) as exc:  # deleted since, or a damaged record: said, the page goes on
        st.caption(f"The shift verdict could not be kept with the stored list: {exc}")


if kind == "leads":
    raw_rows = _read(main_run.id, sha, data, filename)
    shift_task = tasks.start_step(
        ("shift", main_run.id, sha),
        "Shift check",
        "comparing with the training leads",
        lambda: shift_check(main_run, raw_rows, filename),
    )
    outcome = tasks.result_or_progress(
        shift_task,
        "Checking whether these leads look like the training leads...",
        "shift_poll",
        "Shift check not run",
    )
    if outcome is not None:
        report, problem = outcome
        if problem:  # a damaged sample, nothing to compare: the list above is scored all the same
            st.warning(problem[:1].upper() + problem[1:])
        elif report is None:
            st.caption("This run was trained before training samples were stored, so the shift check is not available.")
        else:
            draw_shift(report)
            if ready:  # the list was stored before its check was done: the verdict is added to its record
                shift_record(store, csv_bytes, report)

with st.expander("Earlier scored lists"):
    earlier = store.list()  # damaged lists are skipped, and named here
    if store.problems:
        st.caption(
            f"{len(store.problems)} damaged scored list(s) skipped: "
            + "; ".join(f"{name[:12]} ({problem})" for name, problem in sorted(store.problems.items())[:5])
            + (" ..." if len(store.problems) > 5 else "")
        )
    for meta in earlier[:20]:
        import datetime as _dt

        try:
            listed_csv = store.path(meta["sha256"]).read_bytes()
        except (KeyError, OSError):  # deleted since it was listed
            continue
        when = _dt.datetime.fromtimestamp(meta["created"]).strftime("%Y-%m-%d %H:%M")
        c1, c2 = st.columns([4, 1])
        c1.write(f"{when} · {meta['source']} · {meta['rows']:,} rows · run {meta['run_id']}")
        c2.download_button(
            "CSV",
            listed_csv,
            f"scored_{meta['sha256'][:8]}.csv",
            "text/csv",
            key=f"earlier_{meta['sha256']}",
        )
