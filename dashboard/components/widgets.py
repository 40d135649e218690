"""Widgets shared by the pages: dataset and run pickers, the demo loader, the job panel."""
from __future__ import annotations

import io
import json
import time

import streamlit as st

from dashboard.components import state

#: quick settings for the demo jobs (a full board in minutes on a laptop CPU)
DEMO_JOB_PARAMS = {
    "stacking": {},
    "embeddings": {"epochs": 1, "max_triplets": 200, "train_tokens": 96},
}


def dataset_picker(kind: str | None = None, key: str = "dataset", label: str = "Dataset"):
    """A selectbox over the stored datasets (newest first); remembers the choice across pages."""
    datasets = state.dataset_store().list(kind=kind)
    if not datasets:
        return None
    shas = [d.sha for d in datasets]
    current = st.session_state.get("dataset_sha")
    index = shas.index(current) if current in shas else 0
    sha = st.selectbox(label, shas, index=index, key=key,
                       format_func=lambda s: next(d for d in datasets if d.sha == s).label())
    st.session_state["dataset_sha"] = sha
    return next(d for d in datasets if d.sha == sha)


def run_picker(runs: list, key: str, label: str = "Run"):
    if not runs:
        return None
    ids = [r.id for r in runs]
    current = st.session_state.get(f"{key}_last")
    run_id = st.selectbox(label, ids, index=ids.index(current) if current in ids else 0, key=key,
                          format_func=lambda i: state.run_label(next(r for r in runs if r.id == i)))
    st.session_state[f"{key}_last"] = run_id
    return next(r for r in runs if r.id == run_id)


def storage_warnings() -> None:
    """One warning naming every run and dataset the stores skip because a file of theirs is damaged."""
    lines = state.storage_problems()
    if lines:
        st.warning("Left out because a file is damaged:\n" + "\n".join(f"- {line}" for line in lines), icon="⚠️")


def model_error(run, exc: Exception, hint: str = "Choose another run, or train this one again.") -> str:
    """What to tell the user when a run's model does not load (``BrokenRun`` already names the run)."""
    from engine.runs import BrokenRun

    what = str(exc) if isinstance(exc, BrokenRun) else \
        f"Cannot load the model of run {run.id}: {type(exc).__name__}: {exc}"
    lines = what.strip().splitlines() or [""]
    first = lines[0] + (" …)" if len(lines) > 1 and lines[0].count("(") > lines[0].count(")") else "")
    return f"{first.rstrip('.')}. {hint}"


def run_data_and_model(run):
    """The run's dataset and fitted model, or a message on the page and a stop when either is unavailable
    (the widgets drawn before, the run picker among them, stay usable)."""
    data = state.run_data(run)
    if data is None:
        st.warning(state.missing_data_message(run))
        st.stop()
    try:
        model = state.load_model(run)
    except Exception as exc:  # noqa: BLE001 - a damaged model (BrokenRun) or an approach whose module is missing
        st.error(model_error(run, exc))
        st.stop()
    return data, model


def synthetic_note(meta: dict) -> None:
    if meta.get("synthetic"):
        st.caption(":orange-badge[synthetic] This is generated demo data, not real leads or calls.")


def page_link(page: str, label: str, icon: str | None = None) -> None:
    """A link to another page; plain text when the page runs on its own (tests, direct runs)."""
    try:
        st.page_link(page, label=label, icon=icon)
    except Exception:  # noqa: BLE001 - not inside st.navigation
        st.markdown(f"{icon or ''} {label}")


# -- demo ----------------------------------------------------------------------------------------
def _demo_leads_bytes() -> bytes | None:
    if state.DEMO_LEADS.exists():
        return state.DEMO_LEADS.read_bytes()
    try:
        from engine.data.demo import demo_leads
    except ImportError:
        try:
            from engine.data.demo_leads import demo_leads
        except ImportError:
            return None
    buf = io.StringIO()
    demo_leads().to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")


def _demo_transcripts_bytes() -> bytes | None:
    if state.DEMO_TRANSCRIPTS.exists():
        return state.DEMO_TRANSCRIPTS.read_bytes()
    try:
        from engine.data.demo import demo_transcripts
    except ImportError:
        try:
            from engine.data.demo_transcripts import demo_transcripts
        except ImportError:
            return None
    return "".join(json.dumps(r) + "\n" for r in demo_transcripts()).encode("utf-8")


def load_demo_data() -> dict:
    """Put the synthetic demo leads and transcripts into the dataset store; returns kind -> Dataset."""
    store = state.dataset_store()
    out = {}
    leads = _demo_leads_bytes()
    if leads is not None:
        out["leads"] = store.add(leads, filename="demo_leads_synthetic.csv", kind="leads", name="Demo leads",
                                 synthetic=True, target="Converted")
    transcripts = _demo_transcripts_bytes()
    if transcripts is not None:
        out["transcripts"] = store.add(transcripts, filename="demo_transcripts.jsonl", kind="transcripts",
                                       name="Demo transcripts", synthetic=True)
    return out


def start_demo_jobs(datasets: dict) -> list[int]:
    """Queue the quick models on the demo data: the stack on the leads, embeddings on the transcripts."""
    runner = state.job_runner()
    jobs = []
    plan = [("leads", "stacking"), ("transcripts", "embeddings")]
    for kind, approach in plan:
        ds = datasets.get(kind)
        if ds is None or not state.approach_available(approach):
            continue
        meta = ds.meta
        jobs.append(runner.submit_train(kind, ds.raw_path, approach, params=DEMO_JOB_PARAMS[approach],
                                        target=meta.get("target") if kind == "leads" else None,
                                        dataset_name=meta.get("name"), gpu=False,
                                        name=f"demo: {approach} on {meta.get('name')}"))
    runner.tick()
    return jobs


# -- jobs ------------------------------------------------------------------------------------------
#: job states in which a process is (being) started: ``starting`` comes from job runners that claim a job
#: before its process is recorded; older runners go from queued straight to running
ACTIVE_STATES = ("starting", "running")
STATE_ICONS = {"queued": "⏳", "starting": "🚀", "running": "🏃", "succeeded": "✅", "failed": "❌",
               "cancelled": "⏹️"}


def _fmt_seconds(s) -> str:
    if s is None:
        return "-"
    s = float(s)
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def jobs_table(jobs: list):
    import pandas as pd

    rows = [{"job": j.id, "": STATE_ICONS.get(j.state, ""), "state": j.state, "name": j.name,
             "started": time.strftime("%H:%M:%S", time.localtime(j.started)) if j.started else "-",
             "elapsed": _fmt_seconds(j.elapsed), "gpu": "yes" if j.gpu else "no", "executor": j.executor,
             "run": j.run_id or "-"} for j in jobs]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def job_panel(job, runner, show_log: bool = True, allow_cancel: bool = True) -> None:
    """Progress bar, loss curve, log tail and cancel button of one job."""
    from dashboard.components import charts

    p = job.progress or {}
    head = f"{STATE_ICONS.get(job.state, '')} **Job {job.id}: {job.name}** — {job.state}"
    st.markdown(head)
    if job.state in ACTIVE_STATES:
        total = p.get("total") or 0
        step = p.get("step") or 0
        frac = min(step / total, 1.0) if total else 0.0
        loss = f", loss {p['loss']:.4f}" if p.get("loss") is not None else ""
        left = f", about {_fmt_seconds(p.get('seconds_left'))} left" if p.get("seconds_left") is not None else ""
        st.progress(frac, text=f"{p.get('stage', 'train')}: step {step}/{total}{loss}{left}" if total
                    else "starting…")
        if allow_cancel and st.button("Cancel", key=f"cancel_{job.id}", type="secondary"):
            runner.cancel(job.id)
            st.rerun()
    if p.get("history"):
        st.plotly_chart(charts.loss_figure(p["history"]), key=f"loss_{job.id}_{len(p['history'])}")
    if job.state == "failed" and job.error:
        st.error(f"Job {job.id} failed: {job.error}")
    if job.state == "succeeded" and job.run_id:
        st.success(f"Run {job.run_id} is on the metric board.")
    if show_log:
        with st.expander("Log (last 40 lines)"):
            st.code(runner.log_tail(job.id, 40) or "(empty)", language=None)
