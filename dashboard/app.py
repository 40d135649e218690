"""Conversion Lab dashboard: ``streamlit run dashboard/app.py``.

Pages live in ``dashboard/views`` (not ``pages/``: Streamlit treats a ``pages/`` folder beside the
entry script as an old-style multipage app and then ignores ``st.navigation``), shared pieces in
``dashboard/components``. When the app is
reachable beyond this machine (``server.address`` other than localhost, or ``CLAB_PUBLIC=1``) a
password is required: ``st.secrets["password"]`` or env ``CLAB_DASHBOARD_PASSWORD``.
"""
from __future__ import annotations

import hmac
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard.components import warmup  # noqa: E402

PAGES = Path(__file__).resolve().parent / "views"
LOCAL_ADDRESSES = {"", "localhost", "127.0.0.1", "::1"}


def is_public() -> bool:
    if os.environ.get("CLAB_PUBLIC", "").strip() in ("1", "true", "yes"):
        return True
    address = str(st.get_option("server.address") or "").strip().lower()
    return address not in LOCAL_ADDRESSES


def configured_password() -> str | None:
    try:
        secret = st.secrets.get("password")
    except Exception:  # noqa: BLE001 - no secrets.toml at all
        secret = None
    return secret or os.environ.get("CLAB_DASHBOARD_PASSWORD") or None


def password_gate() -> bool:
    """True when the visitor may see the app (local use, or the right password was given)."""
    if not is_public() or st.session_state.get("authenticated"):
        return True
    expected = configured_password()
    st.title("Conversion Lab")
    if not expected:
        st.error("This dashboard is exposed beyond localhost but no password is set. Set "
                 "CLAB_DASHBOARD_PASSWORD (or `password` in .streamlit/secrets.toml) and restart it.")
        return False
    with st.form("login"):
        given = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            if hmac.compare_digest(given.encode(), expected.encode()):
                st.session_state["authenticated"] = True
                st.rerun()
            st.error("Wrong password.")
    return False


def main() -> None:
    st.set_page_config(page_title="Conversion Lab", page_icon="📈", layout="wide")
    if not password_gate():
        st.stop()
    pages = [
        st.Page(PAGES / "home.py", title="Home", icon="🏠", default=True, url_path="home"),
        st.Page(PAGES / "data.py", title="Data", icon="📄", url_path="data"),
        st.Page(PAGES / "train.py", title="Train", icon="🏋️", url_path="train"),
        st.Page(PAGES / "board.py", title="Metric board", icon="📊", url_path="board"),
        st.Page(PAGES / "embeddings.py", title="Embeddings", icon="🗺️", url_path="embeddings"),
        st.Page(PAGES / "explain.py", title="Explain", icon="🔍", url_path="explain"),
        st.Page(PAGES / "whatif.py", title="What-if", icon="🎛️", url_path="what-if"),
    ]
    with warmup.page_run():
        st.navigation(pages).run()
    warmup.start()


main()
