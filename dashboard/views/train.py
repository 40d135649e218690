"""Train: pick a dataset and an approach, set its main parameters, run it as a job and watch it."""


import inspect
import json

import streamlit as st

from dashboard.components import state, warmup, widgets
from engine.approaches.base import INPUT_KINDS

#: parameters shown first for each approach (the rest sit under "More parameters")
MAIN_PARAMS = {
    "lora": ["r", "lora_r", "alpha", "lora_alpha", "batch_size", "grad_accum", "epochs", "learning_rate",
             "train_rows", "max_length"],
    "embeddings": ["epochs", "n_pairs", "classifier_type", "batch_size"],
    "stacking": ["n_folds", "xgb_n_estimators", "rf_n_estimators", "meta_epochs"],
}
CHOICES = {"classifier_type": ["logistic", "xgboost"], "device": ["auto", "cpu", "cuda"],
           "loss": ["batch_all", "triplet"], "pooling": ["mean", "max"]}

st.title("🏋️ Train")
widgets.storage_warnings()
gpu = state.gpu_info()
if gpu["cuda"]:
    st.success(f"GPU available: {gpu['name']}. LLM fine-tuning jobs will use it.", icon="⚡")
else:
    st.info(f"No GPU here ({gpu['detail']}). Every job runs on the CPU; LLM fine-tuning starts from the CPU "
            "preset there, measured to train within about 30 minutes on 2 cores.", icon="🖥️")

runner = state.job_runner()


@st.cache_data(show_spinner=False)
def approach_params(name: str) -> list[dict]:
    """The approach's constructor parameters with their defaults (read from its signature)."""
    from engine.approaches.base import get_approach_class

    cls = get_approach_class(name)
    sig = inspect.signature(cls.__init__)
    out = []
    for p in sig.parameters.values():
        if p.name == "self" or p.kind != p.POSITIONAL_OR_KEYWORD:
            continue
        default = None if p.default is inspect.Parameter.empty else p.default
        out.append({"name": p.name, "default": default})
    return out


def param_widget(approach: str, name: str, default, key_prefix: str):
    key = f"{key_prefix}_{approach}_{name}"
    if name in CHOICES and (default is None or default in CHOICES[name]):
        options = CHOICES[name]
        return st.selectbox(name, options, index=options.index(default) if default in options else 0, key=key)
    if isinstance(default, bool):
        return st.checkbox(name, value=default, key=key)
    if isinstance(default, int):
        return int(st.number_input(name, value=default, step=1, key=key))
    if isinstance(default, float):
        return float(st.number_input(name, value=default, format="%g", key=key))
    text = st.text_input(name, value="" if default is None else str(default), key=key,
                         help="JSON value (numbers, true/false, \"text\") or plain text; empty = default")
    if text == ("" if default is None else str(default)):
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _as_param(value):
    """A parameter as it travels to the job (JSON): tuples and lists compare equal."""
    return list(value) if isinstance(value, tuple) else value


left, right = st.columns([1, 1])
with left:
    st.subheader("New job")
    ds = widgets.dataset_picker(key="train_dataset")
    if ds is None:
        st.info("No dataset yet: upload one on the Data page or load the demo data on Home.")
    else:
        meta = ds.meta
        widgets.synthetic_note(meta)
        names = [a for a, kinds in INPUT_KINDS.items() if ds.kind in kinds]
        approach = st.selectbox("Approach", names, key="train_approach",
                                format_func=lambda a: f"{state.APPROACH_LABELS.get(a, a)} ({a})")
        if not state.approach_available(approach):
            st.warning(f"The {approach} approach is not available in this installation yet.")
        else:
            try:
                params_spec = approach_params(approach)
            except Exception as exc:  # noqa: BLE001 - a broken module must not break the page
                st.error(f"Could not read the {approach} approach's parameters: {exc}")
                params_spec = None
            if params_spec is not None:
                spec_defaults = {p["name"]: p["default"] for p in params_spec}
                preset = {}
                if approach == "lora" and not gpu["cuda"] and st.toggle(
                        "CPU preset", value=True, key="train_lora_cpu_preset",
                        help="Settings measured to train SmolLM2 within 30 minutes on 2 CPU cores (adapters on the "
                             "top 10 layers; every row for 2 epochs where the CPU computes in bf16 natively, "
                             "4,000 rows for 1 epoch otherwise). Off: the reference setup (3 epochs on every row, "
                             "batch 2 x 8), which takes hours without a GPU."):
                    from engine.benchmarks.lora import cpu_preset

                    preset = {k: v for k, v in cpu_preset().items() if k in spec_defaults}
                defaults = {**spec_defaults, **preset}
                prefix = "preset" if preset else "main"
                main = [p for p in params_spec if p["name"] in MAIN_PARAMS.get(approach, [])]
                main.sort(key=lambda p: MAIN_PARAMS[approach].index(p["name"]))
                rest = [p for p in params_spec if p not in main]
                chosen = {}
                cols = st.columns(2)
                for i, p in enumerate(main):
                    with cols[i % 2]:
                        chosen[p["name"]] = param_widget(approach, p["name"], defaults[p["name"]], prefix)
                # the long tail of parameters is drawn only on request: dozens of inputs slow the page down
                if rest and st.toggle(f"More parameters ({len(rest)})", key=f"train_more_{approach}"):
                    more = st.columns(2)
                    for i, p in enumerate(rest):
                        with more[i % 2]:
                            chosen[p["name"]] = param_widget(approach, p["name"], defaults[p["name"]],
                                                             f"{prefix}_more")
                # what differs from the approach's own defaults: the preset's values and the user's edits
                changed = {k: v for k, v in {**defaults, **chosen}.items()
                           if _as_param(v) != _as_param(spec_defaults[k])}
                use_gpu = approach == "lora" and gpu["cuda"]
                if ds.kind == "leads" and not meta.get("target"):
                    st.caption("Target: found by itself (set it on the Data page to choose).")
                st.caption("Changed parameters: " + (", ".join(f"{k}={v}" for k, v in changed.items()) or "none"))
                if st.button("Launch training", type="primary", key="train_launch"):
                    job_id = runner.submit_train(
                        ds.kind, ds.raw_path, approach, params=changed,
                        target=meta.get("target") if ds.kind == "leads" else None,
                        leak_policy=meta.get("leak_policy") if ds.kind == "leads" else None,
                        exclude=meta.get("exclude") if ds.kind == "leads" else None,
                        include=meta.get("include") if ds.kind == "leads" else None,
                        dataset_name=meta.get("name"), gpu=use_gpu)
                    runner.tick()
                    st.session_state["train_job"] = job_id
                    st.success(f"Job {job_id} queued.")

with right:
    st.subheader("Jobs")

    running_at_draw = any(not j.done for j in runner.list(limit=50))

    # refreshed every 2 s only while a job runs: a periodic rerun delays a click on the navigation
    @st.fragment(run_every=2 if running_at_draw else None)
    @warmup.guarded
    def live_jobs() -> None:
        runner.tick()
        jobs = runner.list(limit=50)
        active = [j for j in jobs if not j.done]
        if running_at_draw and not active:
            st.rerun(scope="app")  # the last job ended: redraw the page without the timer
        focus = st.session_state.get("train_job")
        shown = active or [j for j in jobs if j.id == focus]
        if not jobs:
            st.caption("No jobs yet.")
            return
        for job in shown[:3]:
            with st.container(border=True):
                widgets.job_panel(job, runner)
        st.markdown("**History**")
        widgets.jobs_table(jobs)
        finished = [j for j in jobs if j.done]
        if finished:
            pick = st.selectbox("Show a finished job", [j.id for j in finished], key="train_history_pick",
                                format_func=lambda i: f"job {i}: " + next(j.name for j in finished if j.id == i))
            job = runner.get(pick)
            if job.id not in [j.id for j in shown]:
                with st.container(border=True):
                    widgets.job_panel(job, runner)

    live_jobs()
