"""The progress bar of a background task: a task that ends between the page's look and its drawing is not left
behind as a bar that nothing redraws."""

from __future__ import annotations

import pytest
from dashboard_support import rerun_fragments, texts
from streamlit.testing.v1 import AppTest


def _page(seen_running: bool) -> None:
    import streamlit as st

    from dashboard.components import tasks

    task = tasks.Task("poll-race", 1, "Work")
    st.session_state["draws"] = st.session_state.get("draws", 0) + 1
    if st.session_state["draws"] == 1:  # the page saw the task running; it has finished when the bar is drawn
        task.finished = True
        tasks.poll([task], lambda: st.progress(0.5, text="working"), key="p", seen_running=seen_running)
    else:
        st.markdown("the result")


@pytest.mark.parametrize("seen_running", [True, False])
def test_a_task_that_ends_while_its_bar_is_drawn_still_brings_the_result(seen_running):
    at = AppTest.from_function(_page, kwargs={"seen_running": seen_running})
    at.run()
    if seen_running:  # the page is drawn again at once, with the result
        assert not at.get("progress") and "the result" in texts(at.markdown)
        return
    # without it (the race as it was): the bar has no timer, so a poll redraws it and the result never comes
    rerun_fragments(at)
    assert [p.proto.text for p in at.get("progress")] == ["working"] and "the result" not in texts(at.markdown)
