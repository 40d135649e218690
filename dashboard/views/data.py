"""Data: upload lead tables or transcripts, check them, choose the target and the leak policy."""

import pandas as pd
import streamlit as st

from dashboard.components import state, tasks, widgets
from dashboard.components.join_panel import join_panel
from engine.audit import audit_leads
from engine.data.leads import (
    LEAK_PRESETS,
    SETTABLE_KINDS,
    LeadDataError,
    describe_policy,
    find_sentinels,
    find_target,
    flag_name,
    infer_kinds,
    load_leads,
    number_text,
    read_header,
    read_table,
)
from engine.data.leak_policy import effective_policy, leak_presets_for
from engine.data.transcripts import load_transcripts
from engine.datasets import check_upload as check_limits

LEAD_TYPES = ["csv", "tsv", "txt", "xlsx", "xls", "parquet"]
TRANSCRIPT_TYPES = ["json", "jsonl", "ndjson", "csv"]

st.title("Data")
widgets.storage_warnings()
st.caption(
    "Every upload is kept as it is: an upload never replaces another, and nothing is removed unless you "
    "delete it here.",
    help="Files are stored under the sha256 of their bytes in the workspace's dataset "
    "store; `python -m engine delete dataset SHA` deletes one from the command line.",
)

#: outcome column names recognised here besides engine.data.leads.TARGET_CANDIDATES (matched case-insensitively)
EXTRA_TARGETS = ("y",)


@st.cache_data(show_spinner=False, max_entries=8)
def read_raw(path: str, mtime: float) -> pd.DataFrame:
    return read_table(path)


@st.cache_data(show_spinner=False, max_entries=8)
def kinds_of(path: str, mtime: float) -> dict:
    return infer_kinds(read_raw(path, mtime))


def read_transcripts(source, filename=None):
    try:
        return load_transcripts(source, filename=filename)
    except TypeError:  # a loader without filename=
        return load_transcripts(source)


def named(filename: str, exc: Exception) -> str:
    """An upload's error message that names the user's file once (not the store's internal ``data.csv``)."""
    message = str(exc).strip()
    for prefix in (f"{filename}: ", f"'{filename}': "):
        while message.startswith(prefix + filename) or message.startswith(prefix + f"'{filename}'"):
            message = message[len(prefix) :]
    return message if filename in message else f"{filename}: {message}"


def guess_target(columns: list[str], chosen: str | None = None) -> str | None:
    """The outcome column: the one chosen, a usual name (Converted, target, label...), or one of
    :data:`EXTRA_TARGETS`; None when there is none."""
    try:
        return find_target(columns, chosen)
    except LeadDataError:
        pass
    by_key = {c.strip().casefold(): c for c in columns}
    return next((by_key[t] for t in EXTRA_TARGETS if t in by_key), None)


def check_upload(raw: bytes, name: str, kind: str) -> dict:
    """Refuse an upload before anything is stored: the engine's size and row limits (read from the file's
    metadata or a count of its lines, before a full parse), then a read of the file; a lead table must have
    rows, and its outcome column (when it has one) both outcomes. Returns the settings to store with it:
    ``target`` and ``purpose`` (``scoring`` for a lead table without an outcome column). Raises ValueError."""
    check_limits(raw, name, kind)
    if kind != "leads":
        read_transcripts(raw, filename=name)
        return {}
    columns, has_rows = read_header(raw, filename=name)  # the header only: the table is built once, below
    if not has_rows:
        raise LeadDataError(
            f"{name} has a header but no rows ({len(columns)} columns, 0 leads): there is nothing "
            "to train on or score. Export the table again with its data rows."
        )
    target = guess_target(columns)
    if target is None:
        return {"purpose": "scoring", "target": None}
    load_leads(raw, target=target, leak_policy="none", filename=name)  # one outcome only, no usable column...
    return {"purpose": "training", "target": target}


def store_upload(upload, kind: str) -> tuple[str, str]:
    """Validate the upload (limits first, then that it can be trained on or scored) and store it only when it
    passes; the stored dataset becomes the selected one. Returns (level, message) for the page to show."""
    raw = upload.getvalue()
    name = upload.name
    try:
        settings = check_upload(raw, name, kind)
    except ValueError as exc:  # LeadDataError and the transcript loader's errors are ValueErrors
        return "error", named(name, exc) + " Nothing was stored."
    try:
        ds = state.dataset_store().add(raw, filename=name, kind=kind, **settings)
    except (ValueError, OSError) as exc:
        return "error", named(name, exc) + " Nothing was stored."
    st.session_state["dataset_sha"] = ds.sha
    st.session_state["data_dataset"] = ds.sha  # the picker below shows the upload
    if settings.get("purpose") == "scoring":
        return "info", (
            f"Stored {name} as new leads to score: it has no outcome column (none is named Converted, "
            "target, label, won or outcome), so it cannot be trained on. Score it with a trained model "
            "on **Score new leads**; if one of its columns is the outcome, choose it below."
        )
    return "success", f"Stored {name}" + (
        f" (outcome column: {settings['target']})." if settings.get("target") else "."
    )


def read_in_next_run() -> None:
    """Run the page again a moment after this run ends (a fragment's timer, as the browser keeps it)."""
    drawn = []

    @st.fragment(run_every=0.2)
    def _next() -> None:
        if drawn:  # the timer's rerun, not the page's own run
            st.rerun(scope="app")
        drawn.append(True)

    _next()


with st.expander("Upload a file", expanded=not state.dataset_store().list()):
    kind = st.radio(
        "What is in the file?",
        ["leads", "transcripts"],
        horizontal=True,
        key="upload_kind",
        format_func=lambda k: {
            "leads": "Lead table (CSV, Excel, Parquet)",
            "transcripts": "Call transcripts (JSON, JSONL, CSV)",
        }[k],
    )
    upload = st.file_uploader("File", type=LEAD_TYPES if kind == "leads" else TRANSCRIPT_TYPES, key="upload_file")
    if upload is not None:
        if st.session_state.get("_stored_upload") != (upload.file_id, kind):
            if st.session_state.get("_reading_upload") != (upload.file_id, kind):
                # a new file: this run says so and ends at once, so that the previous dataset's numbers leave the
                # screen (a run that ends clears what it did not draw); the next run, a moment later, reads it
                st.session_state["_reading_upload"] = (upload.file_id, kind)
                st.info(f"Reading {upload.name}...", icon=":material/hourglass_top:")
                read_in_next_run()
                st.stop()
            st.session_state["_stored_upload"] = (upload.file_id, kind)
            with st.spinner(f"Reading {upload.name}..."):
                st.session_state["_upload_result"] = store_upload(upload, kind)
        level, message = st.session_state.get("_upload_result", ("", ""))
        if message:  # shown while the file sits in the uploader
            getattr(st, level)(message)
    if st.button("Load the synthetic demo data", key="data_demo"):
        loaded = widgets.load_demo_data()
        st.session_state["dataset_sha"] = next(iter(loaded.values())).sha
        st.session_state["data_dataset"] = st.session_state["dataset_sha"]
        st.success("Demo data loaded: " + ", ".join(d.meta["name"] for d in loaded.values()))

join_panel()  # a lead table and its calls joined into a new dataset (dashboard/components/join_panel.py)

if st.session_state.get("_deleted_message"):
    st.success(st.session_state.pop("_deleted_message"), icon=":material/delete:")


def delete_dataset(sha: str, label: str) -> None:
    """Button callback: delete the dataset (after the confirmation box was ticked)."""
    try:
        state.dataset_store().delete(sha)
    except KeyError:
        st.session_state["_deleted_message"] = f"{label} was already deleted."
    else:
        st.session_state["_deleted_message"] = (
            f"Deleted {label}. Runs trained on it stay on the metric board; "
            "Explain and What-if need the file uploaded again."
        )
    # the file may still sit in the uploader: it is not stored again (``_stored_upload`` stays)
    for key in ("dataset_sha", "data_dataset", "_upload_result"):
        st.session_state.pop(key, None)


ds = widgets.dataset_picker(key="data_dataset")
if ds is None:
    st.info("No dataset yet: upload a file above, or load the demo data.")
    st.stop()

try:
    meta = ds.meta
except (KeyError, ValueError) as exc:  # deleted (NoSuchDataset) or damaged since the store was listed: another tab
    st.warning(f"{exc} Choose another dataset.", icon=":material/warning:")
    st.stop()
label = f"{meta.get('name') or ds.sha[:12]} ({meta.get('filename')})"
widgets.synthetic_note(meta)
top_left, top_right = st.columns([4, 1])
top_left.caption(
    f"File {meta.get('filename')} · {meta.get('bytes', 0) / 1e6:.2f} MB",
    help=f"sha256 of the file: {ds.sha} (its id in the store and for the command line)",
)
widgets.confirm_delete(
    top_right,
    "Delete this dataset",
    f"Delete **{label}** from the store? The file and its settings go; runs trained on it stay on the "
    "board, but Explain and What-if need the file again. This cannot be undone.",
    (f"confirm_delete_{ds.sha}", "data_delete"),
    delete_dataset,
    (ds.sha, label),
    width="stretch",
)
new_name = st.text_input("Name shown on the board", value=meta.get("name") or "", key=f"name_{ds.sha}")
if new_name and new_name != meta.get("name"):
    state.dataset_store().update(ds.sha, name=new_name)

if ds.kind == "transcripts":
    try:
        table = read_transcripts(ds.raw_path)
    except ValueError as exc:
        st.error(named(meta.get("filename") or "the file", exc))
        st.stop()
    frame = table.X.copy()
    frame.insert(0, "label", table.y)
    c1, c2, c3 = st.columns(3)
    c1.metric("Transcripts", f"{len(frame):,}")
    c2.metric("Converted", f"{float(pd.Series(table.y).mean()):.1%}")
    c3.metric("Metadata fields", max(frame.shape[1] - 2, 0))
    if meta.get("rows") != len(frame):
        state.dataset_store().update(ds.sha, rows=int(len(frame)))
    st.dataframe(frame.head(50), width="stretch")
    for w in getattr(table, "warnings", []) or []:
        st.warning(w)
    st.stop()

# -- lead tables --------------------------------------------------------------------------------
filename = meta.get("filename") or "the file"
mtime = ds.raw_path.stat().st_mtime
try:
    raw = read_raw(str(ds.raw_path), mtime)
except LeadDataError as exc:
    st.error(named(filename, exc))
    st.stop()
if len(raw) == 0:
    st.error(
        f"{filename} has a header but no rows ({raw.shape[1]} columns, 0 leads): there is nothing to train on "
        "or score. Delete it (button above) and upload the export with its data rows."
    )
    st.stop()
scoring = ds.purpose == "scoring"

st.subheader("Preview")
st.dataframe(raw.head(50), width="stretch")


columns = [str(c) for c in raw.columns]
default_target = guess_target(columns, meta.get("target") if meta.get("target") in columns else None)
left, right = st.columns(2)
with left:
    if scoring:
        st.info(
            "This file is kept **to be scored**: it has no outcome column, so a model cannot learn from it. "
            "Score it on **Score new leads**. If one of its columns does say whether each lead converted, "
            "choose it here to train on the file.",
            icon=":material/format_list_numbered:",
        )
    target = st.selectbox(
        "Outcome column (did the lead convert?)" + (" — if the file has one" if scoring else ""),
        columns,
        index=columns.index(default_target) if default_target in columns else None,
        placeholder="Choose the outcome column",
        key=f"target_{ds.sha}",
        help="The column that says whether each lead converted (1/0, yes/no, won/lost). "
        "Found by itself when it is called Converted, target, label, won, outcome or y.",
    )
    policies = [p for p in LEAK_PRESETS if p in leak_presets_for(columns)]  # X Education's presets: its columns
    policy_words = {
        "default": "Usual (leave out the X Education fields filled in after contact)",
        "strict": "Strict (also the last activity)",
        "none": "None (keep every column; exclude the leak finder's columns below)",
    }
    saved_policy = effective_policy(columns, meta.get("leak_policy", "default"))
    policy = st.radio(
        "Columns that give the outcome away",
        policies,
        horizontal=False,
        key=f"policy_{ds.sha}",
        index=policies.index(saved_policy) if saved_policy in policies else 0,
        format_func=lambda k: policy_words.get(k, k),
        help="Fields the sales team fills in after contacting a lead (Tags, Lead Quality...) leak the "
        "outcome: a model using them looks good here and fails on new leads. Leak policy preset "
        "(`--leak-policy default|strict|none`).",
    )
    preset_cols = describe_policy(columns, policy)
    saved_exclude = [c for c in meta.get("exclude", []) if c in columns]
    saved_include = [c for c in meta.get("include", []) if c in columns]
    default_excluded = [c for c in columns if (c in preset_cols and c not in saved_include) or c in saved_exclude]
    excluded = st.multiselect(
        "Excluded columns (edit freely)",
        [c for c in columns if c != target],
        default=[c for c in default_excluded if c != target],
        key=f"exclude_{ds.sha}_{policy}",
    )

extra_exclude = [c for c in excluded if c not in preset_cols]
include = [c for c in preset_cols if c not in excluded and c != target]
try:
    treated, treated_problem = ds.missing_values, None
except ValueError as exc:  # a hand-edited meta.json: refused, said below, never used
    treated, treated_problem = None, str(exc)
try:
    kinds_set, kinds_problem = ds.kinds, None
except ValueError as exc:  # a hand-edited meta.json: refused, said beside the kinds, never used
    kinds_set, kinds_problem = {}, str(exc)
settings = {"leak_policy": policy, "exclude": extra_exclude, "include": include}
table, problem = None, None
if target is not None:
    try:
        table = load_leads(
            ds.raw_path, target=target, filename=filename, missing_values=treated, kinds=kinds_set, **settings
        )
    except LeadDataError as exc:
        problem = named(filename, exc)
if not scoring or table is not None:  # a scoring file keeps no outcome until a usable one is chosen
    settings["target"] = target
if scoring and table is not None:
    settings["purpose"] = "training"  # the chosen column is a usable outcome: the file can be trained on
if any(meta.get(k) != v for k, v in settings.items()):
    state.dataset_store().update(ds.sha, **settings)


def clear_kinds(sha: str) -> None:
    """Button callback: drop a damaged kinds setting."""
    state.dataset_store().update(sha, kinds={})


def set_kinds(sha: str, columns: list[str], inferred: dict[str, str], numeric: set, target, key: str) -> None:
    """The kinds editor's callback: each edited row's kind saved in the dataset's ``kinds`` setting (one entry at a
    time, under the store's lock); the inferred kind again clears the entry. A kind that follows from the values
    (numeric, binary, date) cannot be set, and numbers can only be set to identifier: said, nothing saved."""
    store = state.dataset_store()
    problems = []
    for row, change in (st.session_state.get(key) or {}).get("edited_rows", {}).items():
        if "kind" not in change or not 0 <= int(row) < len(columns):
            continue
        column, kind = columns[int(row)], change["kind"]
        if column == target:
            problems.append(f"{column} is the outcome column: its kind is not a setting")
            continue
        if kind == inferred.get(column):
            kind = None  # back to the inferred kind
        elif kind not in SETTABLE_KINDS:
            problems.append(f"{column}: {kind} follows from the values and cannot be set")
            continue
        elif inferred.get(column) in ("numeric", "binary") and kind != "identifier" and column in numeric:
            problems.append(f"{column} holds numbers: it can be set to identifier only")
            continue
        try:
            store.set_kind(sha, column, kind)
        except (KeyError, ValueError) as exc:  # deleted or damaged meanwhile (another tab, a hand edit)
            problems.append(f"{column}: not changed: {exc}")
    if problems:
        st.session_state["_kinds_problem"] = "; ".join(problems) + "."


with right:
    kinds = kinds_of(str(ds.raw_path), mtime)
    numeric_columns = {c for c in raw.columns if pd.api.types.is_numeric_dtype(raw[c]) or kinds[c] == "numeric"}
    kinds_frame = pd.DataFrame(
        {
            "column": list(kinds),
            "kind": [kinds_set.get(c, k) for c, k in kinds.items()],
            "inferred": list(kinds.values()),
        }
    )
    dropped = dict(table.dropped) if table is not None else {}
    used_columns = set(table.X.columns) if table is not None else None

    def used(c: str) -> str:
        if c == target:
            return "outcome"
        if c in excluded:
            return "no: excluded"
        if c in dropped:
            return f"no: {dropped[c]}"
        kind = kinds_set.get(c, kinds.get(c))
        if kind in ("identifier", "empty"):
            return "no: " + ("identifier" if kind == "identifier" else "empty")
        if used_columns is not None:
            return "yes" if c in used_columns else "no"
        return "yes"

    kinds_frame["used"] = [used(c) for c in kinds_frame["column"]]
    st.markdown(
        "**Column kinds**",
        help="Inferred from the values; change a kind in the *kind* column (saved with the dataset, used by every "
        "training of it from the Train page; the file itself is never changed). `--kind COLUMN=KIND` on "
        "`train leads` does the same from the command line.",
    )
    if kinds_problem:
        st.error(kinds_problem, icon=":material/report:")
        st.button("Clear the damaged kinds", key=f"clear_kinds_{ds.sha}", on_click=clear_kinds, args=(ds.sha,))
    if st.session_state.get("_kinds_problem"):
        st.error(st.session_state.pop("_kinds_problem"), icon=":material/block:")
    kinds_key = f"kinds_{ds.sha}_{hash(tuple(sorted(kinds_set.items())))}"
    present = [k for k in ("numeric", "binary", "date", "empty") if k in kinds.values()]
    st.data_editor(
        kinds_frame,
        key=kinds_key,
        hide_index=True,
        height=min(320, 35 * (len(kinds_frame) + 1) + 3),
        width="stretch",
        disabled=["column", "inferred", "used"],
        on_change=set_kinds,
        args=(ds.sha, list(kinds_frame["column"]), dict(kinds), numeric_columns, target, kinds_key),
        column_config={
            "column": st.column_config.TextColumn("column", width="medium"),
            "kind": st.column_config.SelectboxColumn(
                "kind",
                width="small",
                options=[*SETTABLE_KINDS, *present],
                required=True,
                help="text (free text: notes, call transcripts), categorical, high_cardinality (many values), "
                "identifier (one per lead: left out of training) can be chosen; numeric, binary, date and empty "
                "follow from the values",
            ),
            "inferred": st.column_config.TextColumn("inferred", width="small"),
            "used": st.column_config.TextColumn("used for training", width="large"),
        },
    )
    if kinds_set:
        st.caption("Set by you: " + ", ".join(f"**{c}** {k}" for c, k in kinds_set.items()))


def set_missing(sha: str, column: str, value: float, key: str) -> None:
    """Checkbox callback: read ``value`` of ``column`` as missing (ticked) or as a number again (unticked)."""
    try:
        state.dataset_store().treat_as_missing(sha, column, value, missing=st.session_state[key])
    except (KeyError, ValueError) as exc:  # deleted or damaged meanwhile (another tab, a hand edit)
        st.session_state["_missing_problem"] = f"Not changed: {exc}"


def clear_missing(sha: str) -> None:
    """Button callback: drop a damaged numbers-read-as-missing setting."""
    state.dataset_store().update(sha, missing_values={})


codes = [(s["column"], s["value"], s) for s in find_sentinels(raw, kinds)]
if st.session_state.get("_missing_problem"):
    st.error(st.session_state.pop("_missing_problem"))
if treated is None:
    st.error(treated_problem, icon=":material/report:")
    st.button("Clear the damaged setting", key=f"clear_missing_{ds.sha}", on_click=clear_missing, args=(ds.sha,))
else:  # codes chosen before and not found now stay listed, so that they can be undone
    found_codes = {(c, v) for c, v, _ in codes}
    codes += [(c, v, None) for c, values in treated.items() for v in values if (c, v) not in found_codes]
for column, value, found in codes:
    on = treated is not None and value in treated.get(column, [])
    seen = (
        f"fills {found['rows']:,} rows ({found['share']:.0%}) and lies far outside the column's other values "
        f"({number_text(found['low'])} to {number_text(found['high'])})"
        if found
        else "was chosen to be read as missing"
    )
    flag = flag_name(column, value)
    if on:
        st.info(
            f"**{column}**: the value {number_text(value)} {seen}. It is read as missing for training and scoring, "
            f"and the yes/no column **{flag}** says where it was. Untick below to read it as a number again.",
            icon=":material/check_circle:",
        )
    else:
        st.warning(
            f"**{column}**: the value {number_text(value)} {seen}. It looks like a code for 'never' or 'unknown', "
            "which a model would read as a real, very large number. Tick below to read it as missing, with a "
            "yes/no column that keeps where it was, or exclude the column above.",
            icon=":material/report:",
        )
    key = f"missing_{ds.sha}_{column}_{value}"
    st.checkbox(
        f"Treat {number_text(value)} in {column} as missing, with a yes/no flag column",
        value=on,
        key=key,
        disabled=treated is None,
        on_change=set_missing,
        args=(ds.sha, column, value, key),
        help=f"Training and scoring read {number_text(value)} in {column} as missing and add the 0/1 column "
        f"'{flag}' (`missing_values` in the dataset's settings). The file itself is never changed.",
    )

st.subheader("Check")
if target is None:
    if not scoring:
        st.info(
            "Choose the outcome column above: the column that says whether each lead converted (1/0, yes/no).",
            icon=":material/ads_click:",
        )
    st.stop()
if problem is not None:
    st.error(problem)
    st.stop()
if meta.get("rows") != len(table.y):
    state.dataset_store().update(ds.sha, rows=int(len(table.y)))
c1, c2, c3, c4 = st.columns(4)
c1.metric("Leads", f"{len(table.y):,}")
c2.metric("Converted", f"{table.conversion_rate:.1%}")
c3.metric("Features used", table.X.shape[1])
c4.metric("Left out", len(table.excluded) + len(table.dropped))
if table.excluded:
    st.markdown("**Left out as giving the outcome away:** " + ", ".join(f"`{c}`" for c in table.excluded))
if table.dropped:
    st.markdown("**Dropped:** " + "; ".join(f"`{c}`: {why}" for c, why in table.dropped.items()))
for w in table.warnings:
    st.warning(w)


#: the leak finder's settings, fixed: the same file and outcome column always give the same numbers
AUDIT_SETTINGS = {"leak_policy": "none", "seed": 0, "max_rows": 50_000}


@st.cache_resource(show_spinner=False)
def finished_audits() -> dict:
    """Leak audits done in this process, by (the file's sha256, outcome column, settings): a later render shows
    the numbers of the first, however many other computations ran since (the background tasks are let go)."""
    return {}


def leak_audit_task(sha: str, path: str, target: str):
    """The leak finder in the background (seconds on a large export): the page never waits for it; computed
    once per file content, outcome column and :data:`AUDIT_SETTINGS`."""
    key = ("leak audit", sha, target, tuple(sorted(AUDIT_SETTINGS.items())))
    done = finished_audits()

    def audit() -> dict:
        report = audit_leads(path, target=target, **AUDIT_SETTINGS)
        done[key] = report
        return report

    if key in done and tasks.get(key) is None:
        tasks.remember(key, done[key])
    return tasks.start_step(key, "Leak finder", "one small model per column, one of all", audit)


def accept_flagged(sha: str, key: str, flagged: list[str]) -> None:
    """Button callback: add the flagged columns to the exclusions (the widget's own state and the dataset's)."""
    current = list(st.session_state.get(key, []))
    st.session_state[key] = current + [c for c in flagged if c not in current]


audit_task = leak_audit_task(ds.sha, str(ds.raw_path), target)
audit = tasks.result_or_progress(
    audit_task,
    "Looking for columns that give the outcome away (one small model per column, then one of all)...",
    "leak_poll",
    "Leak finder not run",
    plain=(LeadDataError,),
)
if audit is not None:
    flagged = [c for c in audit["columns"] if c.get("flagged")]
    pending = [c["column"] for c in flagged if c["column"] not in excluded]
    if flagged:
        st.markdown(
            "**Leak finder** — these columns predict the outcome far too well, on their own or beside "
            "all the others, the mark of a field filled in after contact (it would make the model look good "
            "and fail on new leads):"
        )
        for c in flagged:
            state_word = "excluded" if c["column"] not in pending else "**still used**"
            st.markdown(f"- `{c['column']}` ({state_word}): {c['reason']}")
        if pending:
            st.button(
                f"Exclude {', '.join(pending)}",
                key=f"accept_leaks_{ds.sha}",
                type="primary",
                on_click=accept_flagged,
                args=(ds.sha, f"exclude_{ds.sha}_{policy}", pending),
                help="Adds the flagged columns to the excluded columns above. Nothing is excluded until you click.",
            )
    else:
        st.caption(
            f"Leak finder: no column gives the outcome away on its own ({len(audit['columns'])} columns "
            f"checked in {audit['seconds']:.1f} s)."
        )
    to_check = [c for c in audit["columns"] if c.get("check") and c["column"] in audit.get("check", [])]
    if to_check:
        st.markdown(
            "**Check how these are filled in** — softer signs, not proof: if a column is only known after "
            "contact, exclude it above."
        )
        for c in sorted(to_check, key=lambda c: audit["check"].index(c["column"])):
            state_word = " (excluded)" if c["column"] in excluded else ""
            st.markdown(f"- `{c['column']}`{state_word}: {c['check']}")
st.success("This table is ready to train on. Go to **Train**.")
