"""The Data page's *Join leads with their calls*: a stored lead table and a stored transcripts file joined on a lead
id (:func:`engine.data.join.join_leads_calls`) and stored as a new dataset; neither input is changed."""

from __future__ import annotations

import streamlit as st

from dashboard.components import state

AUTO = "(found by its values)"
#: The panel's fields' labels: a join error's fix names these, not the CLI's flags (:data:`PAGE_FIELDS`).
LEAD_ID_LABEL = "Lead id column"
CALL_ID_LABEL = "Calls' lead id field"
TEXT_COLUMN_LABEL = "Name of the new text column"
PAGE_FIELDS = {
    "lead_id": f'in "{LEAD_ID_LABEL}"',
    "call_id": f'in "{CALL_ID_LABEL}"',
    "text_column": f'in "{TEXT_COLUMN_LABEL}"',
}


def _label(ds) -> str:
    try:
        return f"{ds.meta.get('name') or ds.sha[:12]} ({ds.meta.get('filename')})"
    except (KeyError, ValueError):
        return ds.sha[:12]


def _newest_not_joined(leads: list) -> int:
    """The lead table the panel offers first: the newest that is not a join's output (after a join, the newest is the
    join itself, which has its calls already); the newest when every one is."""
    from engine.data.join import is_join_output

    for i, ds in enumerate(leads):  # newest first
        try:
            if not is_join_output(ds.meta):
                return i
        except (KeyError, ValueError):  # deleted or damaged meanwhile: not offered first
            continue
    return 0


def join_datasets(leads_ds, calls_ds, lead_id: str | None, call_id: str, text_column: str):
    """Join two stored datasets and store the result as a new lead dataset with the lead table's settings;
    returns ``(dataset, report)``. Errors are :class:`engine.data.join.JoinError` (a ValueError naming the fix)."""
    from engine.cli_join import join_note
    from engine.data.join import JOINED_FROM, join_leads_calls

    meta = leads_ds.meta
    result = join_leads_calls(
        leads_ds.raw_path,
        calls_ds.raw_path,
        lead_id=lead_id,
        call_id=call_id,
        text_column=text_column,
        leads_filename=meta.get("filename"),
        calls_filename=calls_ds.meta.get("filename"),
        fields=PAGE_FIELDS,
    )
    stem = str(meta.get("filename") or "leads").rsplit(".", 1)[0]
    settings = {k: meta.get(k) for k in ("target", "leak_policy", "exclude", "include", "synthetic")}
    settings["synthetic"] = bool(meta.get("synthetic") or calls_ds.meta.get("synthetic"))
    settings[JOINED_FROM] = {"leads": leads_ds.sha, "calls": calls_ds.sha}
    ds = state.dataset_store().add(
        result.frame.to_csv(index=False).encode("utf-8"),
        filename=f"{stem}-joined.csv",
        kind="leads",
        name=f"{meta.get('name') or stem} + {calls_ds.meta.get('name') or 'calls'}",
        notes=join_note(result.report),
        **{k: v for k, v in settings.items() if v is not None},
    )
    return ds, result.report


def join_panel() -> None:
    """The expander: pick the two datasets, the ids and the text column's name, join, show the report."""
    store = state.dataset_store()
    leads = store.list(kind="leads", purpose="training")
    calls = store.list(kind="transcripts")
    with st.expander("Join leads with their calls"):
        if not leads or not calls:
            st.caption("Upload a lead table and a transcripts file (calls with metadata.lead_id) to join them here.")
            return
        left, right = st.columns(2)
        lead_ds = left.selectbox(
            "Lead table", leads, index=_newest_not_joined(leads), format_func=_label, key="join_leads"
        )
        calls_ds = right.selectbox("Calls (transcripts)", calls, format_func=_label, key="join_calls")
        try:
            from engine.data.leads import read_table

            columns = [str(c) for c in read_table(lead_ds.raw_path, filename=lead_ds.meta.get("filename")).columns]
        except ValueError as exc:
            st.warning(f"The lead table cannot be read: {exc}", icon=":material/warning:")
            return
        lead_id = left.selectbox(
            LEAD_ID_LABEL, [AUTO, *columns], key="join_lead_id", help="The column holding the id the calls name."
        )
        call_id = right.text_input(
            CALL_ID_LABEL, "metadata.lead_id", key="join_call_id", help="metadata.FIELD or a CSV column."
        )
        text_column = left.text_input(TEXT_COLUMN_LABEL, "call", key="join_text_column")
        st.caption(
            "Several calls of one lead are joined in time order (their date field, else file order). The join is "
            "stored as a new lead dataset; the two files stay as they are."
        )
        if st.button("Join and store", key="join_go", icon=":material/merge:"):
            try:
                with st.spinner("Joining..."):
                    ds, report = join_datasets(
                        lead_ds, calls_ds, None if lead_id == AUTO else lead_id, call_id, text_column
                    )
            except ValueError as exc:
                st.error(f"Not joined: {exc}", icon=":material/block:")
                return
            st.session_state["dataset_sha"] = ds.sha
            st.session_state["data_dataset"] = ds.sha  # the picker below shows the join, as after an upload
            st.success(f"Stored as {_label(ds)}, shown below: check it, then train.", icon=":material/check:")
            st.markdown("\n".join(f"- {line}" for line in report.lines()))
