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
