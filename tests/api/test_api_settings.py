"""The scoring app's settings (:class:`engine.api.settings.ApiSettings`): built once by ``create_app`` from its
keyword arguments (the same names and defaults as before), the store from the environment's workspace and the API
key from the environment at each request, bad values refused when the app is built, naming the setting."""

import dataclasses
import math

import pytest
from fastapi.testclient import TestClient

from engine.api import create_app
from engine.api.cache import MAX_CACHED_MODELS
from engine.api.service import Service
from engine.api.settings import (
    API_KEY_ENV,
    EXPLAIN_SECONDS,
    MAX_BATCH,
    MAX_BODY_BYTES,
    MAX_TRANSCRIPT_CHARS,
    REFRESH_SECONDS,
    ApiSettings,
    api_key,
)
from engine.runs import RunStore

LEAD = "/predict/lead"


def test_the_defaults_are_the_documented_limits(workspace, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    settings = create_app().state.service.settings
    assert settings == ApiSettings()
    assert dataclasses.asdict(settings) == {
        "max_batch": 500,
        "max_transcript_chars": 200_000,
        "max_body_bytes": 10_000_000,
        "max_models": 4,
        "refresh_seconds": 1.0,
        "serialize_scoring": True,
        "explain_seconds": 20.0,
        "local_only": False,
    }
    assert (MAX_BATCH, MAX_TRANSCRIPT_CHARS, MAX_BODY_BYTES, MAX_CACHED_MODELS) == (500, 200_000, 10_000_000, 4)
    assert (REFRESH_SECONDS, EXPLAIN_SECONDS) == (1.0, 20.0)
    # the store comes from the environment's workspace (CLAB_WORKSPACE), as before
    assert create_app().state.store.root == workspace / "runs"


def test_keyword_arguments_become_the_settings_the_app_enforces(tmp_path, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    app = create_app(
        RunStore(tmp_path / "runs"), max_batch=3, max_body_bytes=2_000, max_models=2, explain_seconds=0, local_only=True
    )
    service = app.state.service
    assert service.settings == ApiSettings(
        max_batch=3, max_body_bytes=2_000, max_models=2, explain_seconds=0, local_only=True
    )
    assert app.state.cache.max_models == 2 and app.state.catalog.refresh_seconds == REFRESH_SECONDS
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    r = client.post(LEAD, json={"leads": [{"City": "Pune"}] * 4})
    assert r.status_code == 413 and "limit is 3" in r.json()["message"]
    r = client.post(LEAD, json={"leads": {"City": "x" * 3_000}})
    assert r.status_code == 413 and "2,000" in r.json()["message"]
    foreign = TestClient(app, base_url="http://evil.example").get("/health")  # local_only: loopback hosts only
    assert foreign.status_code == 400 and "Invalid host header" in foreign.json()["message"]


def test_a_settings_object_is_used_as_it_is_and_keywords_override_it(tmp_path):
    base = ApiSettings(max_batch=7, refresh_seconds=0)
    app = create_app(RunStore(tmp_path / "runs"), base)
    assert app.state.service.settings is base
    app = create_app(RunStore(tmp_path / "runs"), settings=base, max_batch=9)
    assert app.state.service.settings == ApiSettings(max_batch=9, refresh_seconds=0)
    assert base.max_batch == 7  # frozen: never changed by an app
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.max_batch = 1
    assert Service(RunStore(tmp_path / "runs"), max_transcript_chars=10).settings.max_transcript_chars == 10


def test_the_api_key_is_read_from_the_environment_at_each_request(tmp_path, monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    app = create_app(RunStore(tmp_path / "runs"))
    client = TestClient(app)
    assert api_key() is None and client.get("/models").status_code == 200
    monkeypatch.setenv(API_KEY_ENV, "")  # empty: no key, as unset
    assert api_key() is None and client.get("/models").status_code == 200
    monkeypatch.setenv(API_KEY_ENV, "k1")  # set after the app was built: required at once
    assert api_key() == "k1" and client.get("/models").status_code == 401
    assert client.get("/models", headers={"X-API-Key": "k1"}).status_code == 200
    monkeypatch.setenv(API_KEY_ENV, "k2")  # changed: the old key no longer opens it
    assert client.get("/models", headers={"X-API-Key": "k1"}).status_code == 401
    assert client.get("/models", headers={"X-API-Key": "k2"}).status_code == 200


def test_max_models_below_one_gives_the_same_error_as_before(tmp_path):
    for build in (lambda: create_app(RunStore(tmp_path / "runs"), max_models=0), lambda: ApiSettings(max_models=-1)):
        with pytest.raises(ValueError) as err:
            build()
        assert str(err.value) == "max_models must be at least 1"


@pytest.mark.parametrize(
    "name, value, error, message",
    [
        ("max_batch", 0, ValueError, "max_batch must be at least 1"),
        ("max_transcript_chars", -5, ValueError, "max_transcript_chars must be at least 1"),
        ("max_body_bytes", "10MB", TypeError, "max_body_bytes must be a whole number of at least 1, not '10MB'"),
        ("max_batch", 2.5, TypeError, "max_batch must be a whole number of at least 1, not 2.5"),
        ("max_models", True, TypeError, "max_models must be a whole number of at least 1, not True"),
        ("refresh_seconds", -1, ValueError, "refresh_seconds must be 0 or more seconds, not -1"),
        ("explain_seconds", math.nan, ValueError, "explain_seconds must be 0 or more seconds, not nan"),
        ("explain_seconds", "20", TypeError, "explain_seconds must be a number of seconds (0 or more), not '20'"),
    ],
)
def test_a_bad_value_is_refused_when_the_app_is_built_naming_the_setting(
    tmp_path, workspace, name, value, error, message
):
    with pytest.raises(error) as err:
        create_app(RunStore(tmp_path / "runs"), **{name: value})
    assert str(err.value) == message
    with pytest.raises(error):
        ApiSettings(**{name: value})
    with pytest.raises(error):  # checked before anything is made: no workspace folder for a refused app
        create_app(None, **{name: value})
    assert not workspace.exists()


def test_the_edges_of_the_valid_values_are_accepted(tmp_path):
    settings = ApiSettings(max_batch=1, max_models=1, refresh_seconds=0, explain_seconds=math.inf)
    assert create_app(RunStore(tmp_path / "runs"), settings).state.service.settings.explain_seconds == math.inf


def test_an_unknown_or_positional_setting_is_refused_naming_the_settings(tmp_path):
    store = RunStore(tmp_path / "runs")
    with pytest.raises(TypeError) as err:
        create_app(store, max_batches=5)
    assert "create_app() got an unexpected keyword argument 'max_batches'" in str(err.value)
    assert "max_batch, max_transcript_chars" in str(err.value)
    with pytest.raises(TypeError) as err:
        create_app(store, 5)  # the settings are keywords (or an ApiSettings), never positions
    assert "create_app() takes its settings as keyword arguments or an ApiSettings, not 5" in str(err.value)
    with pytest.raises(TypeError, match="Service\\(\\) got an unexpected keyword argument 'limit'"):
        Service(store, limit=3)
