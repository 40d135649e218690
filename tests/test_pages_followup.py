"""Follow-ups to the dashboard issue (15): the Home page's own address, in a real browser."""

from __future__ import annotations

import re

import pytest
from test_browser import browser, streamlit_server  # noqa: F401 - `browser` is a fixture (skips without Chromium)


@pytest.mark.browser
def test_home_is_served_at_slash_home_and_at_the_root(browser, tmp_path):  # noqa: F811 - the imported fixture
    """Typing ``/home`` showed Streamlit's "Page not found" (the default page is served at ``/`` only)."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    with streamlit_server(tmp_path / "workspace") as server:
        for path in ("home", ""):
            page.goto(f"{server['url']}/{path}")
            page.get_by_role("heading", name=re.compile(r"^\W*Conversion Lab\W*$")).first.wait_for(timeout=120_000)
            assert page.get_by_text("Page not found").count() == 0, path
            assert page.url.endswith("/home"), page.url  # the root hands over to Home: one address for one page
            page.screenshot(path=str(tmp_path / f"home_via_{path or 'root'}.png"))
    page.close()


class _Counting:
    """The run's own model, counting its ``predict_proba`` calls (everything else goes to the model)."""

    def __init__(self, model):
        self.model, self.predictions = model, 0

    def predict_proba(self, X):
        self.predictions += 1
        return self.model.predict_proba(X)

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_reasons_are_added_to_a_scored_list_without_scoring_it_again(small_stack_run):
    """The Score page lists a file at once and adds the reasons after: the probabilities are computed once, and
    the list with reasons is the one ``score_frame`` gives when asked for them at once."""
    from engine.data.demo import demo_leads
    from engine.scoring import add_reasons, score_frame

    run, _ = small_stack_run
    new = demo_leads(n=60, seed=41).drop(columns=["Converted"])
    model = _Counting(run.load_approach())
    listed = score_frame(run, new, model=model, explain=0)
    assert model.predictions == 1 and not listed.table["has_reasons"].any()
    explained = add_reasons(run, new, listed, model=model, explain=15)
    assert model.predictions == 1  # the reasons did not score the file again
    at_once = score_frame(run, new, model=run.load_approach(), explain=15)
    assert explained.explained_rows == 15 and explained.table["has_reasons"].sum() == 15
    assert explained.table.equals(at_once.table) and explained.factors == at_once.factors
    assert listed.table["has_reasons"].sum() == 0  # the first list is not changed in place
