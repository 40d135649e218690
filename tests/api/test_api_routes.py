"""The API's routers and their dependencies: every route of the app is behind the host check, every one but the
open ones (``/health``, the documentation) behind the key check, and the key is checked before a byte of the
body is read, on every route that takes one. The routes are taken from the app's routers and checked against
what the app documents, so a route added later is covered without editing this file."""

import pytest
from fastapi.testclient import TestClient
from support import CountingReceive

from engine.api import OPEN_PATHS, ROUTERS, create_app
from engine.api.guards import check_host, check_key
from engine.runs import RunStore

KEY = "s3cret"


def _routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the app's routers."""
    return sorted((method, route.path) for router in ROUTERS for route in router.routes for method in route.methods)


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.delenv("CLAB_API_KEY", raising=False)
    return create_app(RunStore(tmp_path / "runs"))


def _chunks(total: int, size: int = 1 << 16):
    for start in range(0, total, size):
        yield b" " * min(size, total - start)


def test_the_routers_hold_every_route_the_app_serves(app):
    """The routers' routes are the app's: what the OpenAPI document lists, and the documentation pages."""
    client = TestClient(app)
    documented = {(m.upper(), path) for path, ops in client.get("/openapi.json").json()["paths"].items() for m in ops}
    docs = {("GET", p) for p in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")}
    assert set(_routes()) == documented | docs
    assert {path for _, path in _routes()} >= OPEN_PATHS
    for method, path in _routes():  # each answers (no 404/405: the app really serves it)
        assert client.request(method, path).status_code not in (404, 405), (method, path)


def test_every_router_carries_the_host_check_and_every_closed_one_the_key_check():
    for router in ROUTERS:
        calls = [d.dependency for d in router.dependencies]
        assert calls[0] is check_host, router
        paths = {route.path for route in router.routes}
        if paths <= OPEN_PATHS:
            assert check_key not in calls, paths
        else:
            assert paths.isdisjoint(OPEN_PATHS) and calls[1] is check_key, paths


@pytest.mark.parametrize("method, path", _routes())
def test_every_closed_route_refuses_a_missing_or_wrong_key(app, monkeypatch, method, path):
    monkeypatch.setenv("CLAB_API_KEY", KEY)
    client = TestClient(app)
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": KEY + " "}, {"X-API-Key": "s3cretx"}):
        r = client.request(method, path, headers=headers, content=b'{"leads": {"City": "Pune"}}')
        if path in OPEN_PATHS:
            assert r.status_code == 200, (method, path, r.text[:200])
        else:
            assert r.status_code == 401, (method, path, headers, r.text[:200])
            assert r.json()["message"] == "Missing or wrong API key: send it in the X-API-Key header."
            assert r.headers["connection"] == "close"
    r = client.request(method, path, headers={"X-API-Key": KEY}, content=b'{"leads": {"City": "Pune"}}')
    assert r.status_code != 401, (method, path)


@pytest.mark.parametrize("method, path", _routes())
def test_every_route_of_a_loopback_server_refuses_a_foreign_host(tmp_path, monkeypatch, method, path):
    """DNS rebinding: without a key, a loopback-only app answers no route, open or not, for another Host."""
    monkeypatch.delenv("CLAB_API_KEY", raising=False)
    app = create_app(RunStore(tmp_path / "runs"), local_only=True)
    for host in ("evil.example", "127.0.0.1.evil.example:8000"):
        r = TestClient(app, base_url=f"http://{host}").request(method, path)
        assert r.status_code == 400 and "Invalid host header" in r.json()["message"], (host, method, path)
    assert TestClient(app, base_url="http://127.0.0.1:8000").request(method, path).status_code != 400


@pytest.mark.parametrize("path", sorted({p for m, p in _routes() if m == "POST"}))
def test_every_body_route_refuses_an_unauthenticated_body_unread(app, monkeypatch, path):
    monkeypatch.setenv("CLAB_API_KEY", KEY)
    counting = CountingReceive(app)
    client = TestClient(counting)
    r = client.post(path, content=_chunks(15_000_000), headers={"content-type": "application/json"})
    assert r.status_code == 401 and counting.pulled == 0
    # with the key: a declared length over the cap is refused before the body is read, a streamed one as it passes
    r = client.post(path, content=b" " * 10_000_001, headers={"X-API-Key": KEY})
    assert r.status_code == 413 and "10,000,001 bytes" in r.json()["message"] and counting.pulled == 0
    r = client.post(path, content=_chunks(15_000_000), headers={"X-API-Key": KEY})
    assert r.status_code == 413 and "over the limit" in r.json()["message"]  # (the test client sends it whole)


def test_the_openapi_document_names_the_bodies_and_the_key(app):
    doc = TestClient(app).get("/openapi.json").json()
    for path, model in (("/predict/lead", "LeadRequest"), ("/predict/transcript", "TranscriptRequest")):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{model}"}
        assert model in doc["components"]["schemas"]
        assert doc["paths"][path]["post"]["security"] == [{"APIKeyHeader": []}]
    assert doc["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "the value of CLAB_API_KEY",
    }
    assert "security" not in doc["paths"]["/health"]["get"]
