"""Train: pick a dataset and an approach, set its main parameters, run it as a job and watch it."""

import inspect
import json

import streamlit as st

from dashboard.components import params, state, warmup, widgets
from engine.approaches.registry import approach_hook, get_approach_class, input_kinds
from engine.data.leads import LeadDataError, load_leads
from engine.data.leak_policy import effective_policy, left_out
from engine.data.transcripts import load_transcripts
from engine.jobspec import TrainSpec
from engine.words import plural

CHOICES = {
    "classifier_type": ["logistic", "xgboost", "hybrid"],
    "device": ["auto", "cpu", "cuda"],
    "loss": ["batch_all", "triplet"],
    "pooling": ["mean", "max"],
    "target_encoder": ["sklearn", "category_encoders"],
}
#: measured fits of the LLM's CPU preset (docs/RESULTS.md, SmolLM2-135M on Leads.csv, 2-core AMD EPYC machines):
#: the estimate before launch, with what it assumes (an idle 2-core CPU, the size of Leads.csv)
LORA_CPU_MEASURED = {
    True: "With the CPU preset the LLM trains on every training lead, twice: about 30 minutes on an idle 2-core "
    "CPU (measured 22.4 min on the 9,240 leads of Leads.csv); slower while other jobs run, and in proportion to "
    "the number of leads.",
    False: "With the CPU preset the LLM trains on 4,000 leads, once: measured 28.4 min on an idle 2-core CPU "
    "(Leads.csv); slower while other jobs run.",
}
#: the technical side of the same measurement, one click away
LORA_CPU_DETAILS = {
    True: "This processor computes in bf16 natively (AVX-512 with bf16), so the preset trains in bf16 on every "
    "row for 2 epochs. Measured on 2-core AMD EPYC machines, SmolLM2-135M, nothing else running (docs/RESULTS.md).",
    False: "This processor has no native bf16 arithmetic, so the preset trains in fp32 on 4,000 rows for 1 epoch "
    "(3.3 s a step on 2 AVX2 cores). Measured on 2-core AMD EPYC machines, SmolLM2-135M, nothing else running "
    "(docs/RESULTS.md).",
}
#: how the page names the leak-policy presets (the engine's names, ``--leak-policy``, are in the help)
POLICY_WORDS = {
    "default": "Usual: fields filled in after contacting the lead",
    "strict": "Strict: fields filled in after contact, and the last activity",
    "none": "none",
}
#: why the lead loader drops a column (the first word of its reason), in the page's words
DROPPED_WORDS = {
    "identifier": "Identifiers (a different value in every row)",
    "constant": "The same value in every row",
    "every": "Every value missing",
    "date": "Dates (never a feature; one can choose the test rows below)",
}

st.title("Train")
widgets.storage_warnings()
gpu = state.gpu_info()
if gpu["cuda"]:
    st.success(f"GPU available: {gpu['name']}. LLM fine-tuning jobs will use it.", icon=":material/bolt:")
else:
    st.info("No GPU here, so every job runs on the processor.", icon=":material/memory:")
    st.caption(f"Why: {gpu['detail']}")

runner = state.job_runner()


@st.cache_data(show_spinner=False)
def approach_params(name: str) -> list[dict]:
    """The approach's parameters a run's settings may name, with their defaults (``data_params``: the
    constructor's; the stack's base models' settings by their flat names)."""
    out = []
    for p in get_approach_class(name).data_params().values():
        default = None if p.default is inspect.Parameter.empty else p.default
        out.append({"name": p.name, "default": default})
    return out


@st.cache_data(show_spinner=False)
def cpu_has_bf16() -> bool:
    from engine.approaches.lora import cpu_supports_bf16  # heavy: loads scikit-learn

    return bool(cpu_supports_bf16())


@st.cache_data(show_spinner=False, max_entries=16)
def training_problem(
    path: str,
    mtime: float,
    kind: str,
    target: str | None,
    policy: str | None,
    exclude: tuple,
    include: tuple,
    missing: str = "{}",
    kinds: str = "{}",
) -> tuple[str | None, dict]:
    """``(problem, left out)``: why a job on this dataset cannot succeed (no outcome column, one outcome only, no
    usable column...) in the user's words, or None when it can be trained on; and, for a lead table, what the
    model will not use: ``policy`` (the leak-policy preset that applies to this table, see
    :func:`engine.data.leak_policy.effective_policy`), ``asked`` (the dataset's own), ``preset`` and ``user`` (the
    columns each leaves out) and ``dropped`` (``{column: why}``). ``missing``: the numbers read as missing, as JSON;
    ``kinds``: the column kinds set on the Data page, as JSON."""
    if kind == "leads":
        try:
            table = load_leads(
                path,
                target=target or None,
                leak_policy=policy or "default",
                exclude=list(exclude),
                include=list(include),
                missing_values=json.loads(missing) or None,
                kinds=json.loads(kinds) or None,
            )
        except LeadDataError as exc:
            if not target and "no target column" in str(exc):
                return (
                    "This file has no outcome column, so a model cannot learn from it. Choose the column that "
                    "says whether each lead converted on the **Data** page (or score the file on **Score new "
                    "leads**).",
                    {},
                )
            return plain(str(exc)) + " Fix it on the **Data** page.", {}
        # the same table as with the preset that applies to it (it differs only where the asked one leaves out nothing)
        columns = [*table.excluded, *table.dropped, *table.X.columns]
        applied = effective_policy(columns, policy or "default")
        by_preset, by_user = left_out(table.excluded, applied, list(exclude), list(include))
        info = {
            "policy": applied,
            "asked": policy or "default",
            "preset": by_preset,
            "user": by_user,
            "dropped": {**table.dropped, **dict.fromkeys(table.dates.columns, "date")},
            "dates": list(table.dates.columns),  # the columns the time split can order the rows by
            "text": [c for c in table.X.columns if table.kinds.get(c) == "text"],  # what 'Use' can keep or leave out
        }
        if table.X.shape[1] == 0:
            return (
                "No column is left to learn from: every column is excluded or dropped. Include some on **Data**.",
                info,
            )
        return None, info
    try:
        load_transcripts(path)
    except ValueError as exc:
        return plain(str(exc)), {}
    return None, {}


def show_left_out(info: dict) -> None:
    """Before launch: the columns the model will not use, in words (the leak policy's, the user's exclusions, the
    identifiers and other columns the loader drops)."""
    groups: dict[str, list[str]] = {}
    if info["preset"]:
        groups[f"Give the outcome away ({POLICY_WORDS[info['policy']]})"] = info["preset"]
    if info["user"]:
        groups["Excluded by you"] = info["user"]
    for column, why in info["dropped"].items():
        groups.setdefault(DROPPED_WORDS.get(why.split()[0], why), []).append(column)
    count = sum(len(v) for v in groups.values())
    lines = [f"- {title}: {', '.join(cols)}" for title, cols in groups.items()]
    st.markdown(
        f"**Not used by the model** ({plural(count, 'column')}):\n" + "\n".join(lines)
        if lines
        else "**Not used by the model:** none; every column is used."
    )
    if info["policy"] == "none":
        offered = "none"
        if info["asked"] != "none":
            offered += (
                " — this file has none of the columns the Usual and Strict presets leave out (they are X "
                "Education's after-contact fields: Tags, Lead Quality, Asymmetrique..., Last Activity)"
            )
        st.caption(
            f"Leak policy: {offered}. Columns filled in after contact give the outcome away; exclude them on "
            "**Data**, where the leak finder suggests which.",
            help="Leak-policy preset `none` (command line: `--leak-policy none --exclude COLUMN`).",
        )
    else:
        st.caption(
            f"Leak policy: {POLICY_WORDS[info['policy']]} (change it, and the exclusions, on the **Data** page).",
            help=f"Leak-policy preset `{info['policy']}` (command line: `--leak-policy {info['policy']}`).",
        )


def split_choice(dates: list[str]) -> tuple[str, str | None]:
    """The test rows: the stratified random split, or (offered only when the table has a date column) the
    newest 30 % by a date column. Returns ``(split, time column or None)`` as :class:`TrainSpec` takes them."""
    if not dates:
        return "stratified", None
    by_time = st.radio(
        "Test rows",
        ["Random (stratified)", "Newest 30 % (by date)"],
        key="train_split",
        horizontal=True,
        help="Random: 30 % of the leads drawn at random, the same rows for every run on this file. By date: the "
        "newest 30 % by a date column, never seen in training, which says what the model will do on next month's "
        "leads (on leads whose mix drifts, a random split promises too much). The board compares runs of one "
        "split only. Command line: `--split time --time-column COL`.",
    ).startswith("Newest")
    if not by_time:
        return "stratified", None
    column = st.selectbox("Date column", dates, key="train_time_column") if len(dates) > 1 else dates[0]
    st.caption(f"Test rows: the newest 30 % by {column}; every older lead trains the model.")
    return "time", column


def use_choice(text_columns: list[str]) -> str:
    """What the run trains on (engine.data.uses), offered only when the table has text columns: the table's
    fields, its text columns, or both. Runs that differ only by it sit together on the board, which says what the
    text is worth."""
    if not text_columns:
        return "both"
    choice = st.radio(
        "Use",
        ["Both", "Table only", "Text only"],
        key="train_use",
        horizontal=True,
        help=f"The text columns ({', '.join(text_columns)}) and the other fields (Both), the fields without the "
        "text (Table only), or the text alone (Text only). Train all three to see on the Metric board what the "
        "text is worth. Command line: `--use table|text|both`.",
    )
    return {"Both": "both", "Table only": "table", "Text only": "text"}[choice]


def plain(message: str) -> str:
    """A data error without the command-line advice (``--target COLUMN``) and internal file names."""
    import re

    sentences = re.split(r"(?<=[.!?])\s+", message.strip())
    kept = [re.sub(r"\s*\(or choose it in the dashboard\)", "", x) for x in sentences if "--" not in x]
    text = " ".join(kept) or message
    return re.sub(r"\bdata\.(csv|xlsx|xls|parquet|tsv|txt)\b", "the file", text)


def param_widget(approach: str, name: str, default, key_prefix: str):
    key = f"{key_prefix}_{approach}_{name}"
    label, help_line = params.label(approach, name), params.help_text(approach, name)
    if name in CHOICES and (default is None or default in CHOICES[name]):
        options = CHOICES[name]
        return st.selectbox(
            label, options, index=options.index(default) if default in options else 0, key=key, help=help_line
        )
    if isinstance(default, bool):
        return st.checkbox(label, value=default, key=key, help=help_line)
    if isinstance(default, int):
        return int(st.number_input(label, value=default, step=1, key=key, help=help_line))
    if isinstance(default, float):
        return float(st.number_input(label, value=default, format="%g", key=key, help=help_line))
    shown = (
        ""
        if default is None
        else (", ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default))
    )
    text = st.text_input(
        label, value=shown, key=key, help=help_line + " Several values: separate them with commas. Empty: the default."
    )
    if text == shown:
        return default
    if isinstance(default, (list, tuple)) and not text.strip().startswith("["):
        return [part.strip() for part in text.split(",") if part.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _as_param(value):
    """A parameter as it travels to the job (JSON): tuples and lists compare equal."""
    return list(value) if isinstance(value, tuple) else value


def follow_newest_finished(finished: list) -> None:
    """Point "Show a finished job" at the newest finished job this session launched (else the newest finished job)
    whenever a newer one has finished since it was last drawn: a page open in a second tab follows its own jobs
    instead of staying on an older one. A job picked by hand stays until then."""
    ids = [j.id for j in finished]
    mine = [i for i in ids if i in st.session_state.get("train_jobs_mine", [])]
    newest = mine[0] if mine else ids[0]
    if st.session_state.get("_train_history_newest") != newest or st.session_state.get("train_history_pick") not in ids:
        st.session_state["train_history_pick"] = newest
        st.session_state["_train_history_newest"] = newest


left, right = st.columns([1, 1])
with left:
    st.subheader("New job")
    ds = widgets.dataset_picker(
        key="train_dataset",
        purpose="training",
        help="Lead tables with an outcome column, and call transcripts. Files of new leads "
        "without an outcome are scored on Score new leads instead.",
    )
    if ds is None:
        st.info(
            "No dataset to train on yet: upload one with an outcome column on the Data page, or load the demo "
            "data on Home."
        )
    else:
        meta = ds.meta
        widgets.synthetic_note(meta)
        names = [a for a, kinds in input_kinds().items() if ds.kind in kinds]
        approach = st.selectbox(
            "Approach", names, key="train_approach", format_func=lambda a: f"{state.approach_label(a)} ({a})"
        )
        try:
            params_spec = approach_params(approach)
        except Exception as exc:  # noqa: BLE001 - a broken module must not break the page
            st.error(f"Could not read the {approach} approach's parameters: {exc}")
            params_spec = None
        if params_spec is not None:
            spec_defaults = {p["name"]: p["default"] for p in params_spec}
            preset = {}
            wants_gpu = bool(approach_hook(approach, "wants_gpu", False))
            if wants_gpu and not gpu["cuda"]:
                busy = sum(not j.done for j in widgets.read_jobs(runner, say=False))
                st.info(
                    LORA_CPU_MEASURED[cpu_has_bf16()]
                    + (f" {busy} job{'s are' if busy != 1 else ' is'} running or waiting now." if busy else ""),
                    icon=":material/timer:",
                )
                with st.expander("Advanced: how the CPU time was measured"):
                    st.caption(LORA_CPU_DETAILS[cpu_has_bf16()])
            if (
                "cpu" in approach_hook(approach, "presets", ())
                and not gpu["cuda"]
                and st.toggle(
                    "CPU preset",
                    value=True,
                    key="train_lora_cpu_preset",
                    help="Settings measured on 2 CPU cores (adapters on the top 10 layers; every row for 2 "
                    "epochs where the CPU computes in bf16 natively, 4,000 rows for 1 epoch otherwise). "
                    "Off: the reference setup (3 epochs on every row, batch 2 x 8), which takes hours "
                    "without a GPU. Command line: `train leads --approach lora --preset cpu`.",
                )
            ):
                preset_params = get_approach_class(approach).preset_params("cpu", {})
                preset = {k: v for k, v in preset_params.items() if k in spec_defaults}
            defaults = {**spec_defaults, **preset}
            prefix = "preset" if preset else "main"
            order = params.basic_order(approach)
            main = sorted((p for p in params_spec if p["name"] in order), key=lambda p: order.index(p["name"]))
            rest = [p for p in params_spec if p not in main]
            chosen = {}
            cols = st.columns(2)
            for i, p in enumerate(main):
                with cols[i % 2]:
                    chosen[p["name"]] = param_widget(approach, p["name"], defaults[p["name"]], prefix)
            # the long tail is drawn only on request: dozens of inputs slow the page down
            if rest and st.toggle(
                f"Advanced settings ({len(rest)})",
                key=f"train_more_{approach}",
                help="Every other setting of this approach; the defaults are the measured ones.",
            ):
                with st.container(border=True):
                    more = st.columns(2)
                    for i, p in enumerate(rest):
                        with more[i % 2]:
                            chosen[p["name"]] = param_widget(approach, p["name"], defaults[p["name"]], f"{prefix}_more")
            # what the job gets: what differs from the approach's own defaults (the preset's values and the edits)
            changed = {k: v for k, v in {**defaults, **chosen}.items() if _as_param(v) != _as_param(spec_defaults[k])}
            # what the user changed: only what differs from the defaults shown (the preset's values count as those)
            edited = {k: v for k, v in chosen.items() if _as_param(v) != _as_param(defaults[k])}
            use_gpu = wants_gpu and gpu["cuda"]
            cli = " ".join(f"--param {k}={json.dumps(_as_param(v))}" for k, v in changed.items())
            from_preset = {k: v for k, v in preset.items() if _as_param(v) != _as_param(spec_defaults[k])}
            st.caption(
                "Changed settings: "
                + params.describe_changes(approach, edited)
                + (" (the CPU preset's settings are the defaults here)" if preset else ""),
                help=(f"The CPU preset sets {params.describe_changes(approach, from_preset)}. " if from_preset else "")
                + (f"Command line: `{cli}`" if cli else "Every setting at its default."),
            )
            try:
                missing_values = ds.missing_values if ds.kind == "leads" else {}
                column_kinds = ds.kinds if ds.kind == "leads" else {}
                problem, left_out = (
                    training_problem(
                        str(ds.raw_path),
                        ds.raw_path.stat().st_mtime,
                        ds.kind,
                        meta.get("target") if ds.kind == "leads" else None,
                        meta.get("leak_policy"),
                        tuple(meta.get("exclude") or ()),
                        tuple(meta.get("include") or ()),
                        json.dumps(missing_values, sort_keys=True),
                        json.dumps(column_kinds, sort_keys=True),
                    )
                    if ds.kind in ("leads", "transcripts")
                    else (None, {})
                )
            except ValueError as exc:  # a damaged "numbers read as missing" setting: named, never trained on
                missing_values, column_kinds, problem, left_out = {}, {}, f"{exc}", {}
            if left_out:
                show_left_out(left_out)
            split, time_column = split_choice(left_out.get("dates") or [])
            use = use_choice(left_out.get("text") or []) if ds.kind == "leads" else "both"
            if problem:
                st.warning(f"This job cannot succeed, so it is not launched. {problem}", icon=":material/block:")
                widgets.page_link("views/data.py", label="Go to Data", icon=":material/table_view:")
            elif ds.kind == "leads" and meta.get("target"):
                codes = "; ".join(f"{c} {', '.join(f'{v:g}' for v in vs)}" for c, vs in missing_values.items())
                st.caption(
                    f"Outcome column: {meta.get('target')}"
                    + (f"; numbers read as unknown: {codes}" if codes else "")
                    + ("; kinds set: " + ", ".join(f"{c} {k}" for c, k in column_kinds.items()) if column_kinds else "")
                    + " (change them on the Data page)."
                )
            if st.button(
                "Launch training",
                type="primary",
                key="train_launch",
                disabled=bool(problem),
                icon=":material/play_arrow:",
            ):
                try:  # the job's spec checks the settings (names, types, ranges) before the job is queued
                    leads = ds.kind == "leads"
                    spec = TrainSpec(
                        input_kind=ds.kind,
                        data=str(ds.raw_path),
                        approach=approach,
                        params={k: v for k, v in changed.items() if v is not None},
                        target=meta.get("target") if leads else None,
                        leak_policy=(left_out.get("policy") or "default") if leads else "default",
                        exclude=list(meta.get("exclude") or []) if leads else [],
                        include=list(meta.get("include") or []) if leads else [],
                        dataset_name=meta.get("name"),
                        missing_values=missing_values or {},
                        kinds=column_kinds or {},
                        kinds_source="dataset",
                        split=split,
                        time_column=time_column,
                        use=use,
                    )
                    job_id = runner.submit_train(spec, gpu=use_gpu)
                except ValueError as exc:
                    st.error(f"Not launched: {exc}", icon=":material/block:")
                else:
                    runner.tick()
                    st.session_state["train_job"] = job_id  # its message and panel follow its state (Jobs)
                    st.session_state.setdefault("train_jobs_mine", []).append(job_id)
with right:
    st.subheader("Jobs")

    running_at_draw = any(not j.done for j in widgets.read_jobs(runner, say=False))

    # refreshed every 2 s only while a job runs: a periodic rerun delays a click on the navigation
    @st.fragment(run_every=2 if running_at_draw else None)
    @warmup.guarded
    def live_jobs() -> None:
        runner.tick()
        jobs = widgets.read_jobs(runner)  # damaged rows named, an unreadable table said with its fix
        active = [j for j in jobs if not j.done]
        if running_at_draw and not active:
            st.rerun(scope="app")  # the last job ended: redraw the page without the timer
        focus = st.session_state.get("train_job")
        focus_job = next((j for j in jobs if j.id == focus), None)
        if focus_job is not None and not focus_job.done:  # said while it is so: gone once the job ends
            now = widgets.STATE_WORDS.get(focus_job.state, focus_job.state)
            st.success(
                f"Job {focus} queued: waiting for a free slot."
                if focus_job.state == "queued"
                else f"Job {focus} queued — now {now}."
            )
        shown = active or [j for j in jobs if j.id == focus]
        if not jobs:
            if runner.problem is None:
                st.caption("No jobs yet.")
            return
        for job in shown[:3]:
            with st.container(border=True):
                widgets.job_panel(job, runner)
        st.markdown("**History**")
        widgets.jobs_table(jobs)
        finished = [j for j in jobs if j.done]
        if finished:
            follow_newest_finished(finished)
            pick = st.selectbox(
                "Show a finished job",
                [j.id for j in finished],
                key="train_history_pick",
                format_func=lambda i: (
                    f"job {i}: "
                    + next(f"{j.name} ({widgets.STATE_WORDS.get(j.state, j.state)})" for j in finished if j.id == i)
                ),
                help="Opens on the newest finished job launched here (or the newest finished job); it moves on "
                "when a newer one finishes.",
            )
            job = runner.get(pick)
            if job.id not in [j.id for j in shown]:
                with st.container(border=True):
                    widgets.job_panel(job, runner)

    live_jobs()


def delete_run(run_id: str, label: str) -> None:
    """Button callback: delete the run (after the confirmation box was ticked)."""
    try:
        state.run_store().delete(run_id)
        st.session_state["_run_deleted"] = f"Deleted run {label}."
    except KeyError:
        st.session_state["_run_deleted"] = f"Run {label} was already deleted."


with right:
    st.subheader("Stored runs")
    if st.session_state.get("_run_deleted"):
        st.success(st.session_state.pop("_run_deleted"), icon=":material/delete:")
    stored_runs = state.list_runs()
    if not stored_runs:
        st.caption("No stored runs yet.")
    else:
        pick = st.selectbox(
            "Run",
            [r.id for r in stored_runs],
            key="train_run_pick",
            format_func=lambda i: state.run_label(next(r for r in stored_runs if r.id == i)),
        )
        picked = next(r for r in stored_runs if r.id == pick)
        widgets.confirm_delete(
            st,
            "Delete this run",
            f"Delete run **{state.run_label(picked)}**? Its model, metrics and explanations go, and it leaves the "
            "metric board. This cannot be undone.",
            (f"confirm_delete_run_{pick}", "train_delete_run"),
            delete_run,
            (pick, state.run_label(picked)),
        )
