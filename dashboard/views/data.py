"""Data: upload lead tables or transcripts, check them, choose the target and the leak policy."""


import pandas as pd
import streamlit as st

from dashboard.components import state, widgets

LEAD_TYPES = ["csv", "tsv", "txt", "xlsx", "xls", "parquet"]
TRANSCRIPT_TYPES = ["json", "jsonl", "ndjson", "csv"]

st.title("📄 Data")
widgets.storage_warnings()
st.caption("Every upload is kept as it is, under the sha256 of its bytes: an upload never replaces another.")


@st.cache_data(show_spinner=False, max_entries=8)
def read_raw(path: str, mtime: float) -> pd.DataFrame:
    from engine.data.leads import read_table

    return read_table(path)


@st.cache_data(show_spinner=False, max_entries=8)
def kinds_of(path: str, mtime: float) -> dict:
    from engine.data.leads import infer_kinds

    return infer_kinds(read_raw(path, mtime))


def read_transcripts(source, filename=None):
    from engine.data.transcripts import load_transcripts

    try:
        return load_transcripts(source, filename=filename)
    except TypeError:  # a loader without filename=
        return load_transcripts(source)


def named(filename: str, exc: Exception) -> str:
    """An upload's error message that names the user's file (not the store's internal ``data.csv``)."""
    message = str(exc)
    return message if filename in message else f"{filename}: {message}"


def check_upload(raw: bytes, name: str, kind: str) -> None:
    """Refuse an upload before anything is stored: the engine's size and row limits (read from the file's
    metadata or a count of its lines, before a full parse), then a read of the file. Raises ValueError."""
    try:
        from engine.data.sources import check_upload as check_limits
    except ImportError:  # an engine without the up-front limit check: DatasetStore.add is the last guard
        check_limits = None
    if check_limits is not None:
        check_limits(raw, name, kind)
    if kind == "leads":
        from engine.data.leads import read_table

        read_table(raw, filename=name)
    else:
        read_transcripts(raw, filename=name)


def store_upload(upload, kind: str) -> None:
    """Validate the upload (limits first, then that it is readable) and store it only when it passes."""
    raw = upload.getvalue()
    name = upload.name
    try:
        check_upload(raw, name, kind)
    except ImportError:
        st.error("Reading transcripts is not available in this installation yet (engine.data.transcripts).")
        return
    except ValueError as exc:  # LeadDataError and the transcript loader's errors are ValueErrors
        st.error(named(name, exc))
        return
    try:
        ds = state.dataset_store().add(raw, filename=name, kind=kind)
    except (ValueError, OSError) as exc:
        st.error(named(name, exc))
        return
    st.session_state["dataset_sha"] = ds.sha
    st.success(f"Stored {name} as dataset {ds.sha[:12]} ({kind}).")


with st.expander("Upload a file", expanded=not state.dataset_store().list()):
    kind = st.radio("What is in the file?", ["leads", "transcripts"], horizontal=True, key="upload_kind",
                    format_func=lambda k: {"leads": "Lead table (CSV, Excel, Parquet)",
                                           "transcripts": "Call transcripts (JSON, JSONL, CSV)"}[k])
    upload = st.file_uploader("File", type=LEAD_TYPES if kind == "leads" else TRANSCRIPT_TYPES, key="upload_file")
    if upload is not None and st.session_state.get("_stored_upload") != (upload.file_id, kind):
        st.session_state["_stored_upload"] = (upload.file_id, kind)
        store_upload(upload, kind)
    if st.button("Load the synthetic demo data", key="data_demo"):
        loaded = widgets.load_demo_data()
        if loaded:
            st.session_state["dataset_sha"] = next(iter(loaded.values())).sha
            st.success("Demo data loaded: " + ", ".join(d.meta["name"] for d in loaded.values()))
        else:
            st.error("The demo data is not available in this installation.")

ds = widgets.dataset_picker(key="data_dataset")
if ds is None:
    st.info("No dataset yet: upload a file above, or load the demo data.")
    st.stop()

meta = ds.meta
widgets.synthetic_note(meta)
st.caption(f"File {meta.get('filename')} · {meta.get('bytes', 0) / 1e6:.2f} MB · sha256 {ds.sha}")
new_name = st.text_input("Name shown on the board", value=meta.get("name") or "", key=f"name_{ds.sha}")
if new_name and new_name != meta.get("name"):
    state.dataset_store().update(ds.sha, name=new_name)

if ds.kind == "transcripts":
    try:
        table = read_transcripts(ds.raw_path)
    except ImportError:
        st.warning("Reading transcripts is not available in this installation yet (engine.data.transcripts).")
        st.stop()
    except ValueError as exc:
        st.error(str(exc))
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
from engine.data.leads import LEAK_PRESETS, LeadDataError, describe_policy, find_target, load_leads

mtime = ds.raw_path.stat().st_mtime
try:
    raw = read_raw(str(ds.raw_path), mtime)
except LeadDataError as exc:
    st.error(str(exc))
    st.stop()

st.subheader("Preview")
st.dataframe(raw.head(50), width="stretch")

columns = [str(c) for c in raw.columns]
try:
    default_target = find_target(columns, meta.get("target"))
except LeadDataError:
    default_target = None
left, right = st.columns(2)
with left:
    target = st.selectbox("Target (did the lead convert?)", columns,
                          index=columns.index(default_target) if default_target in columns else None,
                          placeholder="Choose the outcome column", key=f"target_{ds.sha}")
    policies = list(LEAK_PRESETS)
    policy = st.radio("Leak policy preset", policies, horizontal=True, key=f"policy_{ds.sha}",
                      index=policies.index(meta.get("leak_policy", "default")) if meta.get("leak_policy") in policies
                      else 0,
                      help="Columns filled in by sales staff after contact leak the outcome; the default preset "
                           "leaves them out.")
    preset_cols = describe_policy(columns, policy)
    saved_exclude = [c for c in meta.get("exclude", []) if c in columns]
    saved_include = [c for c in meta.get("include", []) if c in columns]
    default_excluded = [c for c in columns if (c in preset_cols and c not in saved_include) or c in saved_exclude]
    excluded = st.multiselect("Excluded columns (edit freely)", [c for c in columns if c != target],
                              default=[c for c in default_excluded if c != target], key=f"exclude_{ds.sha}_{policy}")
with right:
    kinds = kinds_of(str(ds.raw_path), mtime)
    kinds_frame = pd.DataFrame({"column": list(kinds), "kind": list(kinds.values())})
    kinds_frame["used"] = [("target" if c == target else "excluded" if c in excluded else "yes")
                           for c in kinds_frame["column"]]
    st.markdown("**Column kinds (inferred)**")
    st.dataframe(kinds_frame, hide_index=True, height=320, width="stretch")

extra_exclude = [c for c in excluded if c not in preset_cols]
include = [c for c in preset_cols if c not in excluded and c != target]
settings = {"target": target, "leak_policy": policy, "exclude": extra_exclude, "include": include}
if any(meta.get(k) != v for k, v in settings.items()):
    state.dataset_store().update(ds.sha, **settings)

st.subheader("Check")
if target is None:
    st.error("Choose the target column: the column that says whether each lead converted (1/0, Yes/No).")
    st.stop()
try:
    table = load_leads(ds.raw_path, target=target, leak_policy=policy, exclude=extra_exclude, include=include)
except LeadDataError as exc:
    st.error(str(exc))
    st.stop()
if meta.get("rows") != len(table.y):
    state.dataset_store().update(ds.sha, rows=int(len(table.y)))
c1, c2, c3, c4 = st.columns(4)
c1.metric("Leads", f"{len(table.y):,}")
c2.metric("Converted", f"{table.conversion_rate:.1%}")
c3.metric("Features used", table.X.shape[1])
c4.metric("Left out", len(table.excluded) + len(table.dropped))
if table.excluded:
    st.markdown("**Left out by the leak policy:** " + ", ".join(f"`{c}`" for c in table.excluded))
if table.dropped:
    st.markdown("**Dropped:** " + "; ".join(f"`{c}` ({why})" for c, why in table.dropped.items()))
for w in table.warnings:
    st.warning(w)


@st.cache_data(show_spinner=False, max_entries=8)
def leak_audit(path: str, mtime: float, target: str) -> dict:
    from engine.audit import audit_leads

    return audit_leads(path, target=target, leak_policy="none")


def accept_flagged(sha: str, key: str, flagged: list[str]) -> None:
    """Button callback: add the flagged columns to the exclusions (the widget's own state and the dataset's)."""
    current = list(st.session_state.get(key, []))
    st.session_state[key] = current + [c for c in flagged if c not in current]


with st.spinner("Looking for columns that give the outcome away..."):
    try:
        audit = leak_audit(str(ds.raw_path), mtime, target)
    except LeadDataError as exc:
        audit = None
        st.caption(f"Leak finder not run: {exc}")
if audit is not None:
    flagged = [c for c in audit["columns"] if c.get("flagged")]
    pending = [c["column"] for c in flagged if c["column"] not in excluded]
    if flagged:
        st.markdown("**Leak finder** — these columns predict the outcome far too well on their own, the mark of "
                    "a field filled in after contact (it would make the model look good and fail on new leads):")
        for c in flagged:
            state_word = "excluded" if c["column"] not in pending else "**still used**"
            st.markdown(f"- `{c['column']}` ({state_word}): {c['reason']}")
        if pending:
            st.button(f"Exclude {', '.join(pending)}", key=f"accept_leaks_{ds.sha}", type="primary",
                      on_click=accept_flagged, args=(ds.sha, f"exclude_{ds.sha}_{policy}", pending),
                      help="Adds the flagged columns to the excluded columns above. Nothing is excluded until you "
                           "click.")
    else:
        st.caption(f"Leak finder: no column gives the outcome away on its own ({len(audit['columns'])} columns "
                   f"checked in {audit['seconds']:.1f} s).")
st.success("This table is ready to train on. Go to **Train**.")
