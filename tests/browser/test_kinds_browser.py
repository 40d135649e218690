"""The Data page's column kinds in Chromium: a kind changed in the editor is saved as the dataset's setting (the
uploaded file untouched) and said on the page. Screenshot to assets/screenshots/text/ with CLAB_SAVE_SCREENSHOTS=1."""

from __future__ import annotations

import hashlib
import os
import shutil
import time

import pytest
from test_browser import REPO_ROOT, browser, streamlit_server  # noqa: F401 - the browser fixture
from text_tables import lead_table

from engine.datasets import DatasetStore

pytestmark = pytest.mark.browser
ROW_PX = 35  # Streamlit's data editor: the header and each row


def test_a_kind_changed_on_the_data_page_is_saved(browser, tmp_path):  # noqa: F811 - the fixture
    workspace = tmp_path / "workspace"
    raw = lead_table(300, seed=4).to_csv(index=False).encode()
    store = DatasetStore(workspace / "datasets")
    ds = store.add(raw, filename="crm_calls.csv", kind="leads", name="CRM export with calls", target="label")
    with streamlit_server(workspace) as server:
        page = browser.new_page(viewport={"width": 1500, "height": 2000})
        page.goto(server["url"] + "/data", timeout=120_000)
        page.get_by_text("Column kinds").first.wait_for(timeout=120_000)
        editor = page.locator('[data-testid="stDataFrame"]').nth(1)  # the preview, then the kinds
        editor.wait_for(timeout=60_000)
        page.get_by_text("This table is ready to train on").first.wait_for(timeout=120_000)  # the page drawn whole
        time.sleep(3)
        box = editor.bounding_box()
        # City is the second row; "kind" the second column (the first is about 200 px wide)
        page.mouse.dblclick(box["x"] + 240, box["y"] + ROW_PX * 2 + ROW_PX // 2)
        time.sleep(1.5)
        page.keyboard.type("text")
        time.sleep(0.5)
        page.keyboard.press("Enter")
        page.mouse.click(box["x"] - 300, box["y"] - 80)  # leave the cell: the edit is sent
        try:
            page.get_by_text("Set by you:").first.wait_for(timeout=60_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "failed.png"), full_page=True)  # kept in pytest's folder
            raise
        time.sleep(2)
        shot = tmp_path / "data_kinds.png"
        page.screenshot(path=str(shot), full_page=True)
        page.close()
    assert DatasetStore(workspace / "datasets").get(ds.sha).kinds == {"City": "text"}
    assert hashlib.sha256(ds.raw_path.read_bytes()).hexdigest() == ds.sha  # the upload is never rewritten
    if os.environ.get("CLAB_SAVE_SCREENSHOTS") == "1":
        target = REPO_ROOT / "assets" / "screenshots" / "text"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / "data_kinds.png")
