"""Conversion Lab dashboard: ``streamlit run dashboard/app.py --server.address 127.0.0.1`` (``make run``).

Pages live in ``dashboard/views`` (not ``pages/``: Streamlit treats a ``pages/`` folder beside the
entry script as an old-style multipage app and then ignores ``st.navigation``), shared pieces in
``dashboard/components``.

A set password (``st.secrets["password"]`` or env ``CLAB_DASHBOARD_PASSWORD``) is always asked for, whatever
the address the server is bound to: a reverse proxy on this machine connects from loopback too. Without a
password the app opens only when bound to a loopback address, not reached through a proxy (no
``X-Forwarded-For``, ``Forwarded``, ``X-Real-IP`` header) and asked for under a loopback name (``Host``:
localhost, 127.x.x.x or [::1]; any other name may be a DNS rebinding page); an unset ``server.address`` counts
as public: Streamlit then listens on every interface, which is what happens when the app is started from another folder
(``.streamlit/config.toml`` is read from the current folder only). ``CLAB_PUBLIC=1`` counts it as public in every
case. Wrong passwords make the next attempts wait, per client address and for everyone together
(dashboard/components/login.py).
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

import streamlit as st

from dashboard.components import login, warmup
from engine.api_hosts import is_loopback_host
from engine.words import plural

PAGES = Path(__file__).resolve().parent / "views"


def no_heavy_cleanup_after_each_run() -> None:
    """Turn off the two costly things Streamlit does after every script run, fragment reruns included: a full
    ``gc.collect(2)``, and ``keras.backend.clear_session()`` as soon as Keras is imported (the stacking models
    load it; UMAP pulls in TensorFlow). With the embeddings libraries loaded each takes about 0.5 s of CPU
    holding the GIL, so a page polling its background work every second spent about as much time cleaning up
    as the work itself had: on the shared 2-core machine an Embeddings UMAP map (21 s alone) was measured at
    157 s, its progress stuck at 200/202. Python's own collector still runs; the dashboard builds no Keras
    model in its own process (training runs in jobs), so there is no Keras session to clear; open Matplotlib
    figures are still closed. Set here, not only in .streamlit/config.toml (read from the project folder
    alone), so that it holds however the app is started."""
    import sys

    from streamlit import config
    from streamlit.runtime.scriptrunner import script_runner

    config.set_option("runner.postScriptGC", False, "dashboard/app.py: polls of background work")

    def close_figures_only() -> None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            plt.close("all")

    if hasattr(script_runner, "_clean_problem_modules"):  # Streamlit's own name for it (1.67)
        script_runner._clean_problem_modules = close_figures_only


no_heavy_cleanup_after_each_run()
#: server addresses reachable only from this machine (an unset address is not among them: it means all interfaces)
LOCAL_ADDRESSES = {"localhost", "127.0.0.1", "::1", "[::1]"}


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
    password = secret or os.environ.get("CLAB_DASHBOARD_PASSWORD")
    return str(password) if password else None  # a number in secrets.toml is a password too


def request_headers():
    """The headers of this session's first request (empty where Streamlit has none, as under AppTest)."""
    try:
        return st.context.headers
    except Exception:  # noqa: BLE001 - no client context
        return {}


def through_proxy() -> bool:
    """Whether this session came through a reverse proxy (a header one adds). A client may forge these headers,
    but doing so only makes the app stricter with that client."""
    headers = request_headers()
    return any(_header_values(headers, name) for name in login.PROXY_HEADERS)


def loopback_host() -> bool:
    """Whether this session's request named this machine's loopback in its ``Host`` header (``localhost``,
    ``127.x.x.x``, ``[::1]``, any port). A page on another site that re-resolves its own name to 127.0.0.1 (DNS
    rebinding) reaches the app under that name, and Streamlit's websocket check only compares Origin with Host,
    which then match. No headers at all means no web request (as under AppTest): a browser always sends Host."""
    headers = request_headers()
    if not headers:
        return True
    hosts = _header_values(headers, "Host")
    return len(hosts) == 1 and is_loopback_host(hosts[0])


def _header_values(headers, name: str) -> list[str]:
    get_all = getattr(headers, "get_all", None)
    values = get_all(name) if get_all else [v for k, v in dict(headers).items() if k.lower() == name.lower()]
    return [v for v in values if isinstance(v, str)]


def client_keys() -> tuple[str, ...]:
    """This session's back-off keys: its connection's address and, when sent, its X-Forwarded-For address."""
    try:
        remote = st.context.ip_address
    except Exception:  # noqa: BLE001 - no client context
        remote = None
    return login.client_keys(
        remote if isinstance(remote, str) else None, _header_values(request_headers(), "X-Forwarded-For")
    )


def no_password_message() -> str:
    address = server_address()
    where = (
        "reached through a reverse proxy (its request carries a forwarding header)"
        if address in LOCAL_ADDRESSES and not is_public() and through_proxy()
        else "reached under a name that is not this machine's loopback (localhost or 127.0.0.1)"
        if address in LOCAL_ADDRESSES and not is_public()
        else f"bound to {address}"
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
    """True when the visitor may see the app: the right password was given, or none is set and the app is
    bound to loopback, not reached through a proxy, and asked for under a loopback name (:func:`loopback_host`).
    """
    if st.session_state.get("authenticated"):
        return True
    expected = configured_password()
    if not expected and not is_public() and not through_proxy() and loopback_host():
        return True
    st.title("Conversion Lab")
    if not expected:
        st.error(no_password_message())
        return False
    with st.form("login"):
        given = st.text_input("Password", type="password")
        if st.form_submit_button("Sign in"):
            verdict = login.THROTTLE.attempt(
                client_keys(), lambda: hmac.compare_digest(given.encode(), expected.encode())
            )
            if verdict.ok:
                st.session_state["authenticated"] = True
                st.rerun()
            if verdict.refused:
                st.error(
                    "Too many sign-in attempts: this password was not checked. "
                    f"Try again in {login.wait_words(verdict.next_wait)}."
                )
            else:
                count = verdict.failures
                st.error(
                    f"Wrong password ({plural(count, 'wrong attempt')} from your address; "
                    f"the next attempt waits {login.wait_words(verdict.next_wait)})."
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
        st.Page(PAGES / "monitoring.py", title="Monitoring", icon=":material/monitoring:", url_path="monitoring"),
        st.Page(PAGES / "explain.py", title="Explain", icon=":material/manage_search:", url_path="explain"),
        st.Page(PAGES / "whatif.py", title="What-if", icon=":material/tune:", url_path="what-if"),
        st.Page(PAGES / "embeddings.py", title="Embeddings", icon=":material/scatter_plot:", url_path="embeddings"),
    ]
    with warmup.page_run():
        st.navigation(pages).run()
    warmup.start()


main()
