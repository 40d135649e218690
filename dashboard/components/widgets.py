"""Widgets shared by the pages: dataset and run pickers, the demo loader, the job panel."""

from __future__ import annotations

import json
import time

import streamlit as st

from dashboard.components import state
from engine.callbacks import PHASES
from engine.job_store import DamagedJob, JobTableUnreadable
from engine.jobspec import TrainSpec
from engine.runs import BrokenRun

#: quick settings for the demo jobs (a full board in minutes on a laptop CPU)
DEMO_JOB_PARAMS = {
    "stacking": {},
    "embeddings": {"epochs": 1, "max_triplets": 200, "train_tokens": 96},
}


def dataset_picker(
    kind: str | None = None,
    key: str = "dataset",
    label: str = "Dataset",
    purpose: str | None = None,
    help: str | None = None,
):
    """A selectbox over the stored datasets (newest first; of one ``purpose`` when given: ``training`` leaves
    out the lead files kept for scoring); remembers the choice across pages."""
    datasets = state.dataset_store().list(kind=kind, purpose=purpose)
    if not datasets:
        return None
    shas = [d.sha for d in datasets]
    current = st.session_state.get("dataset_sha")
    index = shas.index(current) if current in shas else 0
    if st.session_state.get(key) not in (None, *shas):
        st.session_state.pop(key)  # the dataset it showed was deleted
    seen = f"_{key}_seen"  # the choice this picker last showed
    if current in shas and current != st.session_state.get(seen) and st.session_state.get(key) not in (None, current):
        st.session_state[key] = current  # chosen elsewhere since (an upload, another page): follow it
    sha = st.selectbox(
        label,
        shas,
        index=index,
        key=key,
        help=help,
        format_func=lambda s: next(d for d in datasets if d.sha == s).label(),
    )
    st.session_state["dataset_sha"] = st.session_state[seen] = sha
    return next(d for d in datasets if d.sha == sha)


def persistent(widget, *args, key: str, fix=None, **kwargs):
    """``widget(*args, key=key, **kwargs)`` (``st.radio``, ``st.multiselect``...) whose value survives leaving
    the page. Streamlit drops a widget's value when its page is not shown (browser Back, the navigation), so the
    page would come back with its defaults: the value is copied to a plain session key (``_kept_<key>``) on each
    run and given back from it before the widget is drawn. ``fix(value)``: the value made valid for the options
    of this run (None when none of it is: the widget's default then)."""
    kept = f"_kept_{key}"
    if key not in st.session_state and st.session_state.get(kept) is not None:
        st.session_state[key] = st.session_state[kept]
    if key in st.session_state and fix is not None:
        value = st.session_state[key]
        fixed = fix(value) if value is not None else None
        if fixed is None:
            del st.session_state[key]
        elif fixed != value:
            st.session_state[key] = fixed
    if key in st.session_state:  # the value comes from the session: a default as well would draw a warning
        kwargs.pop("default", None)
        kwargs.pop("index", None)
    value = widget(*args, key=key, **kwargs)
    st.session_state[kept] = value
    return value


def run_picker(runs: list, key: str, label: str = "Run"):
    if not runs:
        return None
    ids = [r.id for r in runs]
    current = st.session_state.get(f"{key}_last")
    run_id = st.selectbox(
        label,
        ids,
        index=ids.index(current) if current in ids else 0,
        key=key,
        format_func=lambda i: state.run_label(next(r for r in runs if r.id == i)),
    )
    st.session_state[f"{key}_last"] = run_id
    return next(r for r in runs if r.id == run_id)


def storage_warnings() -> None:
    """One warning naming every run and dataset the stores skip because a file of theirs is damaged."""
    lines = state.storage_problems()
    if lines:
        st.warning(
            "Left out because a file is damaged:\n" + "\n".join(f"- {line}" for line in lines),
            icon=":material/warning:",
        )


def model_error(run, exc: Exception, hint: str = "Choose another run, or train this one again.") -> str:
    """What to tell the user when a run's model does not load (``BrokenRun`` already names the run)."""
    what = (
        str(exc)
        if isinstance(exc, BrokenRun)
        else f"Cannot load the model of run {run.id}: {type(exc).__name__}: {exc}"
    )
    lines = what.strip().splitlines() or [""]
    first = lines[0] + (" …)" if len(lines) > 1 and lines[0].count("(") > lines[0].count(")") else "")
    return f"{first.rstrip('.')}. {hint}"


def flagged_warning(run) -> None:
    """Say it when the run uses columns the leak finder flagged at training time (its spec's ``flagged``)."""
    flagged = run.settings.flagged
    if flagged:
        them = "it" if len(flagged) == 1 else "them"
        st.warning(
            f"This model uses {', '.join(f'**{c}**' for c in flagged)}, which the leak finder flagged as likely "
            f"filled in after contact: its scores and any reason citing {them} may not hold for new leads. "
            f"Exclude {them} on the Data page and train again.",
            icon=":material/warning:",
        )


def text_facts(run) -> None:
    """Say how the run read its columns where the user set kinds (and from where), and how much free text the LLM's
    prompt kept: the text budget and how many training leads were cut (``metrics.json``'s ``text_budget``)."""
    settings, lines = run.settings, []
    if settings.kinds_set:
        where = "the dataset's setting (Data page)" if settings.kinds_source == "dataset" else "the training request"
        lines.append(
            "Column kinds set by you, from "
            + where
            + ": "
            + ", ".join(f"**{c}** {k}" for c, k in settings.kinds_set.items())
            + "; the others were inferred."
        )
    budget = (run.metrics or {}).get("text_budget")
    if isinstance(budget, dict) and budget.get("columns"):
        columns = ", ".join(f"**{c}**" for c in budget["columns"])
        if budget.get("chars"):
            lines.append(
                f"Free text in the prompt ({columns}): cut to {budget['chars']:,} characters at a word boundary; "
                f"{budget.get('truncated_leads', 0):,} of {budget.get('leads', 0):,} training leads were cut."
            )
        else:
            lines.append(f"Free text in the prompt ({columns}): no budget, whole texts.")
    if lines:
        st.caption("  \n".join(lines))


def synthetic_note(meta: dict) -> None:
    if meta.get("synthetic"):
        st.caption(":orange-badge[synthetic] This is generated demo data, not real leads or calls.")


def confirm_delete(place, title: str, warning: str, keys: tuple[str, str], on_delete, args: tuple, width="content"):
    """A "Delete ..." popover in ``place`` (a column, or ``st``): ``warning`` (what goes), a "Yes, delete it" box and
    a Delete button that stays off until the box is ticked and then calls ``on_delete(*args)``. ``keys``: the
    box's and the button's widget keys."""
    with place.popover(title, icon=":material/delete:", width=width):
        st.markdown(warning)
        sure = st.checkbox("Yes, delete it", key=keys[0])
        st.button(
            "Delete",
            key=keys[1],
            type="primary",
            disabled=not sure,
            icon=":material/delete_forever:",
            on_click=on_delete,
            args=args,
        )


def page_link(page: str, label: str, icon: str | None = None, query_params: dict | None = None) -> None:
    """A link to another page (with ``query_params`` in its address); plain text when the page runs on its own
    (tests, direct runs)."""
    try:
        st.page_link(page, label=label, icon=icon, query_params=query_params)
    except Exception:  # noqa: BLE001 - not inside st.navigation
        st.markdown(f"{icon or ''} {label}")


# -- demo ----------------------------------------------------------------------------------------
def load_demo_data() -> dict:
    """Put the synthetic demo leads and transcripts into the dataset store (the shipped files under data/, or the
    same data generated by engine.data.demo where they are missing); returns kind -> Dataset."""
    from engine.data.demo import demo_leads, demo_transcripts  # heavy: loads pandas (the first page stays light)

    store = state.dataset_store()
    if state.DEMO_LEADS.exists():
        leads = state.DEMO_LEADS.read_bytes()
    else:
        leads = demo_leads().to_csv(index=False).encode("utf-8")
    if state.DEMO_TRANSCRIPTS.exists():
        transcripts = state.DEMO_TRANSCRIPTS.read_bytes()
    else:
        transcripts = "".join(json.dumps(r) + "\n" for r in demo_transcripts()).encode("utf-8")
    return {
        "leads": store.add(
            leads,
            filename="demo_leads_synthetic.csv",
            kind="leads",
            name="Demo leads",
            synthetic=True,
            target="Converted",
        ),
        "transcripts": store.add(
            transcripts, filename="demo_transcripts.jsonl", kind="transcripts", name="Demo transcripts", synthetic=True
        ),
    }


def start_demo_jobs(datasets: dict) -> list[int]:
    """Queue the quick models on the demo data: the stack on the leads, embeddings on the transcripts."""
    runner = state.job_runner()
    jobs = []
    plan = [("leads", "stacking"), ("transcripts", "embeddings")]
    for kind, approach in plan:
        ds = datasets.get(kind)
        if ds is None:
            continue
        meta = ds.meta
        spec = TrainSpec(
            input_kind=kind,
            data=str(ds.raw_path),
            approach=approach,
            params=DEMO_JOB_PARAMS[approach],
            target=meta.get("target") if kind == "leads" else None,
            dataset_name=meta.get("name"),
        )
        jobs.append(runner.submit_train(spec, gpu=False, name=f"demo: {approach} on {meta.get('name')}"))
    runner.tick()
    return jobs


# -- jobs ------------------------------------------------------------------------------------------
#: job states in which a process is (being) started: ``starting`` comes from job runners that claim a job
#: before its process is recorded; older runners go from queued straight to running
ACTIVE_STATES = ("starting", "running")
STATE_ICONS = {
    "queued": ":material/schedule:",
    "starting": ":material/rocket_launch:",
    "running": ":material/directions_run:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/error:",
    "cancelled": ":material/cancel:",
}
#: the same states as words, for the job table (a data grid draws no icons)
STATE_WORDS = {
    "queued": "waiting",
    "starting": "starting",
    "running": "running",
    "succeeded": "finished",
    "failed": "failed",
    "cancelled": "cancelled",
}


def read_jobs(runner, limit: int = 50, say: bool = True) -> list:
    """The job table's jobs, newest first. With ``say``, a row that cannot be read is named in a warning (it is
    skipped), and a table that cannot be read at all is said in an error with the fix (no jobs then)."""
    try:
        jobs = runner.list(limit=limit)
    except JobTableUnreadable as exc:
        if say:
            st.error(f"Jobs cannot be shown. {exc}", icon=":material/error:")
        return []
    if say and runner.damaged:
        lines = [str(DamagedJob(i, why, runner.db_path)) for i, why in sorted(runner.damaged.items())]
        st.warning(
            f"{len(lines)} damaged job(s) left out of the list:\n" + "\n".join(f"- {line}" for line in lines),
            icon=":material/warning:",
        )
    return jobs


def _fmt_seconds(s) -> str:
    if s is None:
        return "-"
    s = float(s)
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def jobs_table(jobs: list):
    import pandas as pd

    rows = [
        {
            "job": j.id,
            "state": STATE_WORDS.get(j.state, j.state),
            "name": j.name,
            "started": time.strftime("%d %b %H:%M", time.localtime(j.started)) if j.started else "-",
            "took": _fmt_seconds(j.elapsed),
        }
        for j in jobs
    ]
    # fixed widths that add up to less than half of a 1400 px page: no column is cut
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={
            "job": st.column_config.NumberColumn("job", width=45, format="%d"),
            "state": st.column_config.TextColumn("state", width=75),
            "name": st.column_config.TextColumn("name", width=150),
            "started": st.column_config.TextColumn("started", width=105, help="Day and time the job's process started"),
            "took": st.column_config.TextColumn("took", width=65),
        },
    )


#: the stacked ensemble's four models, as the progress line names them
_BASE_WORDS = {
    "lr": "the logistic regression",
    "rf": "the random forest",
    "xgb": "the boosted trees (XGBoost)",
    "logistic_regression": "the logistic regression",
    "random_forest": "the random forest",
    "xgboost": "the boosted trees (XGBoost)",
    "svc": "the support-vector model",
}
#: embeddings a transcript model reads the calls with
_WHICH_WORDS = {"fine_tuned": "tuned", "generic": "generic"}


def stage_words(stage: str, noun: str = "leads") -> str:
    """A progress report's stage (the approach's technical name: ``out of fold svc (5 folds)``, ``meta network``,
    ``export to int8 ONNX``) in plain words; ``noun``: what the job's rows are (leads, calls)."""
    import re

    stage = str(stage or "").strip()
    if m := re.fullmatch(r"out of fold (\w+)(?: \((\d+) folds\))?", stage):
        return f"checking {_BASE_WORDS.get(m[1], m[1])} on held-out folds"
    if m := re.fullmatch(r"refit (\w+)", stage):
        return f"training {_BASE_WORDS.get(m[1], m[1])} on every training {noun[:-1] if noun.endswith('s') else noun}"
    if m := re.fullmatch(r"embed (\w+)", stage):
        return f"reading the {noun} with the {_WHICH_WORDS.get(m[1], m[1])} embeddings"
    if m := re.fullmatch(r"classifier head \((\w+)\)", stage):
        return f"training the classifier on the {_WHICH_WORDS.get(m[1], m[1])} embeddings"
    if m := re.fullmatch(r"scoring (\d+) test rows", stage):
        return f"scoring {m[1]} test {noun}"
    fixed = {
        "stacking": "training the four models",
        "meta network": "training the combining network",
        "export to int8 ONNX": "making the model faster to score",
        "fine-tune": f"tuning the embeddings on the {noun}",
        "train": "fine-tuning the language model",
        "calibrate": "turning the model's answers into probabilities",
        "done": "finishing",
        "test rows scored": f"test {noun} scored",
    }
    words = fixed.get(stage, stage)
    return words.replace("leads", noun) if noun != "leads" else words


def job_noun(job) -> str:
    """What a job's rows are: calls for a transcript job, leads otherwise."""
    kind = str(getattr(job, "kind", "") or "")
    params = getattr(job, "params", None) or {}
    return "calls" if kind.endswith("transcripts") or params.get("input_kind") == "transcripts" else "leads"


def progress_text(p: dict, noun: str = "leads") -> tuple[float, str]:
    """The bar's fraction and its words for a job's progress report: the step of the job ("Step 1 of 4:
    Training"), what runs in plain words and, while a training step runs, the time left for that step. A report
    without phases (an older job) shows its stage's own step. ``noun``: what the rows are (leads, calls)."""
    total = p.get("total") or 0
    step = p.get("step") or 0
    stage_frac = min(step / total, 1.0) if total else 0.0
    frac = p.get("fraction")
    frac = float(frac) if isinstance(frac, (int, float)) else stage_frac
    phase = p.get("phase")
    stage = stage_words(str(p.get("stage") or ""), noun)
    loss = f", loss {p['loss']:.4f}" if p.get("loss") is not None else ""
    left_s = p.get("seconds_left")
    running_step = total and step < total
    left = (
        f", about {_fmt_seconds(left_s)} left in this step"
        if (left_s is not None and running_step and left_s >= 1 and phase in (None, "fit"))
        else ""
    )
    if phase == "done":
        return 1.0, "Finished: storing the run"
    if phase in PHASES:
        name = PHASES[phase][0].replace("leads", noun)
        where = f"Step {int(p.get('phase_index', 0)) + 1} of {int(p.get('phases') or len(PHASES))}: {name}"
        detail = stage if stage and stage.lower() != name.lower() else ""
        if phase == "fit":
            counted = f" {step}/{total}" if total > 1 else ""
            text = f"{where} — {detail}{counted}{loss}{left}" if detail or counted else where
            if total and step >= total:
                text = f"{where} — {detail or 'finishing'}{loss}"
        else:
            text = f"{where} — {detail}" if detail else where
        return frac, text
    if not total:
        return frac, "starting…"
    return frac, f"{stage or 'training'}: step {step}/{total}{loss}{left}"


#: what the whole-job estimate assumes, said beside it
ETA_ASSUMES = "at the pace so far; slower while other jobs share the processor"


def job_eta(p: dict, elapsed: float | None) -> tuple[str, str] | None:
    """An estimate for the whole job (every step, not only the current one) and what it assumes: the time so far
    scaled by the share of the job done. That share comes from the job's steps (training, scoring, saving,
    explaining, each with its measured share) and, within training, from the parts the approach announces; None
    while too little is done to say (the first 3 %, the first 15 s) or for a report without steps."""
    frac = p.get("fraction")
    if p.get("phase") not in PHASES or not isinstance(frac, (int, float)) or elapsed is None:
        return None
    if not 0.03 <= frac < 1.0 or elapsed < 15:
        return None
    left = elapsed * (1.0 - frac) / frac
    shares = ", ".join(f"{name.lower()} {share:.0%}" for name, share in PHASES.values())
    text = f"Whole job: about {_fmt_seconds(max(left, 1.0))} left ({ETA_ASSUMES}); {_fmt_seconds(elapsed)} so far."
    why = (
        f"Estimated from the time so far and the share of the job done ({frac:.0%}). It assumes the rest goes at "
        f"the same pace and that each step takes its usual share of the job ({shares}; within training, the "
        "shares the approach announces for its parts, measured on an idle 2-core CPU). Other jobs running at the "
        "same time slow every job down."
    )
    return text, why


def headline_metrics(run_id: str) -> None:
    """ROC-AUC and accuracy of a finished run with their 95 % intervals, and its base rate."""
    try:
        run = state.run_store().get(run_id)
        metrics = run.metrics.get("metrics", {})
    except Exception:  # noqa: BLE001 - deleted or damaged since: say so instead of failing the panel
        st.caption(f"Run {run_id} is no longer stored (deleted, or a file of it is damaged).")
        return None
    cols = st.columns(2)
    for col, (name, title, help_line) in zip(
        cols,
        [
            (
                "roc_auc",
                "ROC-AUC",
                "Chance that a converting lead is ranked above one that does not (0.5: a coin "
                "toss, 1: perfect). Metric roc_auc, on the held-out test leads.",
            ),
            (
                "accuracy",
                "Accuracy",
                "Share of test leads called right at a 50 % threshold. Compare it with the "
                "share of the larger class: calling everyone the same gets that much.",
            ),
        ],
    ):
        m = metrics.get(name)
        value = m.get("value") if isinstance(m, dict) else m
        if not isinstance(value, (int, float)):
            continue
        interval = (
            f"95 % interval {m['low']:.3f}–{m['high']:.3f}"
            if isinstance(m, dict) and isinstance(m.get("low"), (int, float))
            else None
        )
        col.metric(title, f"{value:.3f}", help=help_line)
        if interval:
            col.caption(interval)
    return run


def select_on_board(run) -> None:
    """Make the metric board open on this run's dataset and split, with the run in focus
    (session keys ``board_group`` and ``board_focus_run``, read by dashboard/views/board.py)."""
    st.session_state["board_group"] = run.settings.split_key
    st.session_state["board_focus_run"] = run.id


def cancel_job(runner, job_id: int) -> None:
    """Button callback: mark the job cancelled at once (the page's next draw shows it) and stop its processes in
    the background."""
    runner.cancel(job_id, wait=False)


def job_panel(job, runner, show_log: bool = True, allow_cancel: bool = True) -> None:
    """Progress bar (every phase of the job), loss curve, log tail and cancel button of one job; a finished
    job's headline metrics and a link to the board with its run selected."""
    from dashboard.components import charts  # heavy: loads plotly

    p = job.progress or {}
    st.markdown(
        f"{STATE_ICONS.get(job.state, '')} **Job {job.id}: {job.name}** — {STATE_WORDS.get(job.state, job.state)}"
    )
    if job.state in ACTIVE_STATES:
        frac, text = progress_text(p, job_noun(job))
        st.progress(min(max(frac, 0.0), 1.0), text=text)
        if eta := job_eta(p, job.elapsed):
            st.caption(eta[0], help=eta[1])
        if p.get("stage"):
            with st.expander("Advanced: what the job is doing"):
                st.caption(f"Stage `{p.get('stage')}`, step {p.get('step')}/{p.get('total')}, kind `{job.kind}`.")
    elif job.state == "queued":
        st.caption("Waiting for a free slot: it starts when the jobs before it end.")
    if allow_cancel and (job.state in ACTIVE_STATES or job.state == "queued"):
        st.button(
            "Cancel",
            key=f"cancel_{job.id}",
            type="secondary",
            icon=":material/stop_circle:",
            help="A waiting job is taken off the queue and never starts; a running one is stopped.",
            on_click=cancel_job,
            args=(runner, job.id),
        )
    if p.get("history"):
        st.plotly_chart(charts.loss_figure(p["history"]), key=f"loss_{job.id}_{len(p['history'])}")
    if job.state == "failed" and job.error:
        lines = [line for line in str(job.error).strip().splitlines() if line.strip()] or [""]
        first = lines[-1] if lines[-1].startswith("error:") else lines[0]
        st.error(f"Job {job.id} failed: {first.removeprefix('error:').strip()}")
        if len(lines) > 1:
            with st.expander("Details of the failure"):
                st.code(str(job.error), language=None)
    if job.state == "succeeded" and job.run_id:
        run = headline_metrics(job.run_id)
        if run is not None:
            selected = st.session_state.setdefault("_board_selected_for", set())
            if job.id not in selected:  # once per job: later choices on the board stay
                selected.add(job.id)
                select_on_board(run)
            # the address names the run: the board opens with it selected whenever the link is followed
            page_link("views/board.py", "See it on the metric board", ":material/leaderboard:", {"run": run.id})
    if show_log:
        with st.expander("Log (last 40 lines)"):
            st.code(runner.log_tail(job.id, 40) or "(empty)", language=None)
