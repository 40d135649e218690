"""Conversion Lab dashboard: ``streamlit run dashboard/app.py --server.address 127.0.0.1`` (``make run``).

Pages live in ``dashboard/views`` (not ``pages/``: Streamlit treats a ``pages/`` folder beside the
entry script as an old-style multipage app and then ignores ``st.navigation``), shared pieces in
``dashboard/components``.

A password (``st.secrets["password"]`` or env ``CLAB_DASHBOARD_PASSWORD``) is required unless the server is
bound to a loopback address. An unset ``server.address`` counts as public: Streamlit then listens on every
interface, which is what happens when the app is started from another folder (``.streamlit/config.toml`` is
read from the current folder only). ``CLAB_PUBLIC=1`` asks for the password in every case. Each wrong password
makes the next answer wait longer (1 s, 2 s, 4 s... up to 30 s, per browser session).
"""

from __future__ import annotations

import hmac
import os
import time
from pathlib import Path

import streamlit as st

from dashboard.components import warmup

PAGES = Path(__file__).resolve().parent / "views"
#: server addresses reachable only from this machine (an unset address is not among them: it means all interfaces)
LOCAL_ADDRESSES = {"localhost", "127.0.0.1", "::1", "[::1]"}
#: the wait after the first wrong password, doubled for each further one, capped
FAIL_DELAY_S, FAIL_DELAY_MAX_S = 1.0, 30.0


def server_address() -> str | None:
    """The address the server was told to bind to, or None when none was set (Streamlit binds to all)."""
    address = str(st.get_option("server.address") or "").strip().lower()
    return address or None


def is_public() -> bool:
    if os.environ.get("CLAB_PUBLIC", "").strip().lower() in ("1", "true", "yes"):
        return True
    return server_address() not in LOCAL_ADDRESSES


def configured_password() -> str | None:
    try:
        secret = st.secrets.get("password")
    except Exception:  # noqa: BLE001 - no secrets.toml at all
        secret = None
    return secret or os.environ.get("CLAB_DASHBOARD_PASSWORD") or None


def failure_delay(failures: int) -> float:
    """Seconds to wait before answering the ``failures``-th wrong password of a session."""
    return 0.0 if failures <= 0 else min(FAIL_DELAY_S * 2 ** (failures - 1), FAIL_DELAY_MAX_S)


def no_password_message() -> str:
    address = server_address()
    where = (
        f"bound to {address}"
        if address
        else "started without a server address, so it listens on every network interface (the project's "
        ".streamlit/config.toml, which binds it to localhost, is read only when it is started from the project "
        "folder)"
    )
    return (
        f"This dashboard is {where} and no password is set. Either start it bound to this machine only: "
        "`streamlit run dashboard/app.py --server.address 127.0.0.1` (what `make run` does), or set "
        "CLAB_DASHBOARD_PASSWORD (or `password` in .streamlit/secrets.toml) and restart it."
    )


def password_gate() -> bool:
    """True when the visitor may see the app (bound to loopback, or the right password was given)."""
    if not is_public() or st.session_state.get("authenticated"):
        return True
    expected = configured_password()
    st.title("Conversion Lab")
    if not expected:
        st.error(no_password_message())
        return False
    with st.form("login"):
        given = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            if hmac.compare_digest(given.encode(), expected.encode()):
                st.session_state["authenticated"] = True
                st.session_state.pop("login_failures", None)
                st.rerun()
            failures = st.session_state.get("login_failures", 0) + 1
            st.session_state["login_failures"] = failures
            time.sleep(failure_delay(failures))  # per session: each wrong guess costs more time
            st.error(
                f"Wrong password ({failures} wrong attempt{'s' if failures > 1 else ''} in this session; "
                f"the next one waits {failure_delay(failures + 1):.0f} s)."
            )
    return False


def main() -> None:
    st.set_page_config(page_title="Conversion Lab", page_icon=":material/trending_up:", layout="wide")
    if not password_gate():
        st.stop()
    home = st.Page(PAGES / "home.py", title="Home", icon=":material/home:", url_path="home")
    # Streamlit serves its default page at ``/`` only (its url_path is then ignored): a hidden default page
    # hands ``/`` over to Home, so that both ``/`` and ``/home`` show it
    root = st.Page(
        lambda: st.switch_page(home, query_params=st.query_params.to_dict()),
        title="Home",
        default=True,
        url_path="start",
        visibility="hidden",
    )
    pages = [
        root,
        home,
        st.Page(PAGES / "data.py", title="Data", icon=":material/table_view:", url_path="data"),
        st.Page(PAGES / "train.py", title="Train", icon=":material/model_training:", url_path="train"),
        st.Page(PAGES / "board.py", title="Metric board", icon=":material/leaderboard:", url_path="board"),
        st.Page(PAGES / "score.py", title="Score new leads", icon=":material/format_list_numbered:", url_path="score"),
        st.Page(PAGES / "explain.py", title="Explain", icon=":material/manage_search:", url_path="explain"),
        st.Page(PAGES / "whatif.py", title="What-if", icon=":material/tune:", url_path="what-if"),
        st.Page(PAGES / "embeddings.py", title="Embeddings", icon=":material/scatter_plot:", url_path="embeddings"),
    ]
    with warmup.page_run():
        st.navigation(pages).run()
    warmup.start()


main()
