"""The scoring API against hostile and broken input: run ids that point outside the store, damaged runs,
oversized and unauthenticated streamed bodies, malformed bodies, explain batches, concurrency, the model
cache and the load bench. One small real stack (trained once for the module) is copied into fresh stores."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from support import CountingReceive, PlantedPickle, store_with

from engine.api import MAX_EXPLAIN_LEADS, MAX_EXPLAIN_TRANSCRIPTS, create_app
from engine.data.demo import demo_leads
from engine.data.leads import prepare_features

LEAD, TRANSCRIPT = "/predict/lead", "/predict/transcript"
NEWER = "29990101T000000-stacking-abcdef"  # sorts after any real run: the newest run of a store


@pytest.fixture(scope="module")
def trained(small_stack_run, tmp_path_factory):
    """(workspace, run): a workspace of the module holding a copy of the session's small stack."""
    ws = tmp_path_factory.mktemp("hostile_ws")
    run = small_stack_run[0]
    return ws, store_with(run, ws / "runs").get(run.id)


@pytest.fixture
def leads(trained):
    rows = demo_leads(n=60, seed=9).drop(columns=["Converted"])
    return json.loads(rows.to_json(orient="records"))


@pytest.fixture
def store(trained, tmp_path):
    """A fresh store holding a copy of the trained run."""
    return store_with(trained[1], tmp_path / "runs")


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv("CLAB_API_KEY", raising=False)


def _message(r) -> str:
    return r.json()["message"]


# -- 1. run ids from outside the store -------------------------------------------------------------
def test_planted_pickle_outside_the_store_is_never_loaded(store, trained, tmp_path):
    planted = tmp_path / "elsewhere" / "evil"
    shutil.copytree(trained[1].path, planted)
    marker = tmp_path / "pwned"
    joblib.dump(PlantedPickle(marker), planted / "model" / "features.joblib")
    joblib.load(planted / "model" / "features.joblib")  # the trap works...
    assert marker.exists()
    marker.unlink()
    client = TestClient(create_app(store))
    relative = "/".join([".."] * len(store.root.parts)) + str(planted)
    for run_id in (str(planted), relative, "../elsewhere/evil", f"{trained[1].id}/../../elsewhere/evil"):
        r = client.post("/predict/lead", json={"leads": {"TotalVisits": 3}, "run_id": run_id})
        assert r.status_code == 404, (run_id, r.text)
        assert "No run" in _message(r)
    assert not marker.exists()  # ...and the API never opened it


# -- 2. broken runs -----------------------------------------------------------------------------------
def _break(folder, how: str) -> None:
    if how == "spec_invalid":
        (folder / "spec.json").write_text("{bad")
    elif how == "metrics_list":
        (folder / "metrics.json").write_text("[]")
    elif how == "spec_missing":
        (folder / "spec.json").unlink()
    elif how == "model_truncated":
        f = folder / "model" / "features.joblib"
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _plant_transcripts_run(root, how: str) -> str:
    """A transcripts run folder made by hand: complete-looking, with a damaged file."""
    run_id = "29990101T000001-embeddings-abcdef"
    folder = root / run_id
    (folder / "model").mkdir(parents=True)
    (folder / "spec.json").write_text(
        json.dumps({"approach": "embeddings", "input_kind": "transcripts", "run_id": run_id})
    )
    (folder / "metrics.json").write_text(json.dumps({"metrics": {}}))
    (folder / "model" / "approach.json").write_text('{"approach": "embeddings", "params": {')
    (folder / "model" / "features.joblib").write_bytes(b"\x80\x04\x95")
    if how != "model_truncated":
        _break(folder, how)
    return run_id


@pytest.mark.parametrize("how", ["spec_invalid", "metrics_list", "spec_missing", "model_truncated"])
def test_a_broken_newest_run_breaks_nothing_else(store, trained, leads, how):
    good = trained[1].id
    shutil.copytree(store.root / good, store.root / NEWER)
    _break(store.root / NEWER, how)
    transcripts_id = _plant_transcripts_run(store.root, how)
    client = TestClient(create_app(store))

    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    models = client.get("/models")
    assert models.status_code == 200, models.text
    listed = [m["run_id"] for m in models.json()["models"]]
    skipped = {s["run_id"]: s["problem"] for s in models.json()["skipped"]}
    assert good in listed
    if how in ("spec_invalid", "metrics_list"):
        assert NEWER not in listed and transcripts_id not in listed
        assert {NEWER, transcripts_id} <= set(skipped)
        assert ("spec.json" if how == "spec_invalid" else "metrics.json") in skipped[NEWER]
        assert health.json()["runs"] == 1 and health.json()["skipped"] == 2

    # latest-run predictions fall back to the newest run that loads
    latest = client.post("/predict/lead", json={"leads": leads[0]})
    assert latest.status_code == 200, latest.text
    assert latest.json()["run_id"] == good
    if how == "model_truncated":
        skipped = {s["run_id"]: s["problem"] for s in client.get("/models").json()["skipped"]}
        assert NEWER in skipped and "model files" in skipped[NEWER]
    no_transcripts = client.post("/predict/transcript", json={"transcripts": "Customer: we will buy."})
    assert no_transcripts.status_code == 404 and "No trained transcripts run" in _message(no_transcripts)

    # a broken run named by id: a clear answer, not a 500
    for run_id, path in ((NEWER, "/predict/lead"), (transcripts_id, "/predict/transcript")):
        body = {"leads": leads[0]} if path == "/predict/lead" else {"transcripts": "Customer: yes."}
        r = client.post(path, json={**body, "run_id": run_id})
        assert r.status_code == (404 if how == "spec_missing" else 409), (run_id, r.text)
        assert run_id in _message(r)
    assert client.get("/health").status_code == 200


# -- 3. authentication and the streamed body cap -----------------------------------------------------
def _chunks(total: int, size: int = 1 << 16, sent: list | None = None):
    def gen():
        for start in range(0, total, size):
            if sent is not None:
                sent.append(size)
            yield b" " * min(size, total - start)

    return gen()


def test_chunked_body_over_the_cap_gets_413(store):
    client = TestClient(create_app(store))
    r = client.post("/predict/lead", content=_chunks(15_000_000), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "10,000,000" in _message(r)


def test_unauthenticated_big_body_gets_401_unread(store, monkeypatch):
    monkeypatch.setenv("CLAB_API_KEY", "s3cret")
    counting = CountingReceive(create_app(store))
    client = TestClient(counting)
    r = client.post("/predict/lead", content=_chunks(15_000_000), headers={"content-type": "application/json"})
    assert r.status_code == 401 and "X-API-Key" in _message(r)
    assert counting.pulled == 0
    # the key check comes before the body's shape is looked at
    assert client.post("/predict/lead", content=b"{not json").status_code == 401
    ok = client.post("/predict/lead", content=b"{not json", headers={"X-API-Key": "s3cret"})
    assert ok.status_code == 422 and counting.pulled > 0
    assert client.get("/health").status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_live_server_stops_reading_an_unauthenticated_stream(store, monkeypatch):
    """Over a real socket: the server answers 401 and closes; the client is never allowed to send it all."""
    import httpx
    import uvicorn

    monkeypatch.setenv("CLAB_API_KEY", "s3cret")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        sent: list[int] = []
        total = 200_000_000
        try:
            r = httpx.post(f"http://127.0.0.1:{port}/predict/lead", content=_chunks(total, 1 << 20, sent), timeout=30)
            assert r.status_code == 401
        except httpx.TransportError:
            pass  # the server closed the connection while the client was still sending
        assert sum(sent) < total / 4
    finally:
        server.should_exit = True
        thread.join(10)


# -- 4. malformed bodies: 422 naming the field -------------------------------------------------------
@pytest.mark.parametrize(
    "path, body, field",
    [
        (LEAD, {"leads": {"City": {"a": 1}}}, "City"),
        (LEAD, {"leads": {"TotalVisits": [1, 2]}}, "TotalVisits"),
        (LEAD, {"leads": [{"City": "Mumbai"}, {"Lead Source": {"x": []}}]}, "leads[1].Lead Source"),
        (LEAD, {"leads": "Mumbai"}, "leads"),
        (LEAD, {"leads": {"City": "x"}, "run_id": 5}, "run_id"),
        (LEAD, {"leads": {"City": "x"}, "colour": "red"}, "colour"),
        (TRANSCRIPT, {"transcripts": ""}, "transcripts"),
        (TRANSCRIPT, {"transcripts": "   "}, "transcripts"),
        (TRANSCRIPT, {"transcripts": [{"transcript": " \n "}]}, "transcripts.0.transcript"),
        (TRANSCRIPT, {"transcripts": {"transcript": "hi", "metadata": {"i": {"a": {"b": {"c": 1}}}}}}, "'i.a.b'"),
        (TRANSCRIPT, {"transcripts": {"transcript": "hi", "metadata": {"tags": [{"a": 1}]}}}, "'tags'"),
        (TRANSCRIPT, {"transcripts": [{"transcript": ["a", "b"]}]}, "transcripts.0.transcript"),
        (TRANSCRIPT, {"transcripts": {"transcript": 42}}, "transcripts.0.transcript"),
    ],
)
def test_invalid_bodies_get_422_naming_the_field(store, path, body, field):
    r = TestClient(create_app(store)).post(path, json=body)
    assert r.status_code == 422, r.text
    assert field in _message(r)


def test_transcript_metadata_follows_the_files_rule():
    """Nested metadata in a body is read as a file's is (engine.data.transcripts.flatten_metadata): dotted fields,
    a list of plain values as one text; what a file refuses, the API refuses (above)."""
    from engine.api import TranscriptRequest
    from engine.data.transcripts import records_to_frame

    meta = {"customer": {"address": {"country": "DE"}, "size": 10}, "tags": ["a", "b"]}
    body = TranscriptRequest(transcripts=[{"transcript": "Agent: hi", "metadata": meta}])
    frame, _, _ = records_to_frame([{"transcript": "Agent: hi", "metadata": meta}])
    assert body.transcripts[0].metadata == {"customer.address.country": "DE", "customer.size": 10, "tags": "a, b"}
    assert set(body.transcripts[0].metadata) == set(frame.columns) - {"transcript", "label"}


@pytest.mark.parametrize(
    "raw, needle",
    [
        (b'{"leads": {"TotalVisits": 1' + b"0" * 5000 + b"}}", "JSON"),  # over Python's digit limit
        (b'{"leads": {"TotalVisits": 1' + b"0" * 400 + b"}}", "TotalVisits"),  # beyond the range of a float
        (b'{"leads": {"TotalVisits": NaN}}', "JSON"),
        (b'{"leads": {"TotalVisits": 1e999}}', "TotalVisits"),
        (b'{"leads": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nested"),
        (b'{"leads": {"City": "x"}', "JSON"),
        (b"\xff\xfe{", "JSON"),
    ],
)
def test_hostile_json_gets_422(store, raw, needle):
    client = TestClient(create_app(store))
    for path in ("/predict/lead", "/predict/transcript"):
        r = client.post(path, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, (path, r.text[:300])
        if path == "/predict/lead":
            assert needle in _message(r)


@pytest.mark.parametrize(
    "path, raw, where",
    [
        ("/predict/lead", b'{"leads": [{"Lead Source": "Goo\\udcffgle"}]}', "leads.0.Lead Source"),
        ("/predict/lead", b'{"leads": {"City": "\\ud800"}}', "leads.City"),
        ("/predict/lead", b'{"leads": [{"Lead \\udcffSource": "Google"}]}', "a field name in leads.0"),
        ("/predict/transcript", b'{"transcripts": {"transcript": "Agent: hi \\udfff"}}', "transcripts.transcript"),
        (
            "/predict/transcript",
            b'{"transcripts": {"transcript": "Agent: hi", "metadata": {"x": "\\udc80"}}}',
            "transcripts.metadata.x",
        ),
    ],
)
def test_lone_surrogates_get_422_naming_the_field(store, path, raw, where):
    """``"\\udcff"`` is valid JSON but not Unicode text: pandas' Arrow strings and the tokenizers refuse it, so a
    lead carrying one was a 500. It is refused up front, naming where it is."""
    client = TestClient(create_app(store), raise_server_exceptions=False)
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text[:300]
    assert where in _message(r) and "surrogate" in _message(r) and "Fix" in _message(r)


def test_a_surrogate_pair_is_one_character_and_scores(store, leads):
    client = TestClient(create_app(store), raise_server_exceptions=False)
    lead = {**leads[0], "City": "Mumbai"}
    body = json.dumps({"leads": [lead]}).replace("Mumbai", "Mumbai \\ud83d\\ude00").encode()
    assert b"\\ud83d\\ude00" in body
    r = client.post("/predict/lead", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text[:300]


# -- 5. explain caps, concurrency, the model cache -----------------------------------------------------
def test_explain_batches_are_capped(store, leads):
    client = TestClient(create_app(store))
    r = client.post("/predict/lead", json={"leads": leads[: MAX_EXPLAIN_LEADS + 1], "explain": True})
    assert r.status_code == 413 and f"limit is {MAX_EXPLAIN_LEADS}" in _message(r)
    r = client.post(
        "/predict/transcript", json={"transcripts": ["a call"] * (MAX_EXPLAIN_TRANSCRIPTS + 1), "explain": True}
    )
    assert r.status_code == 413 and f"limit is {MAX_EXPLAIN_TRANSCRIPTS}" in _message(r)
    # without explanations the same batch is scored
    assert client.post("/predict/lead", json={"leads": leads[: MAX_EXPLAIN_LEADS + 1]}).status_code == 200


@pytest.mark.parametrize("serialize", [False, True])
def test_concurrent_requests_all_succeed_and_agree(store, leads, serialize):
    """16 threads x 20 single-lead requests on one shared model; without the per-model lock too, so the
    model itself must not change shared state on predict."""
    app = create_app(store, serialize_scoring=serialize)
    expected = {}
    with TestClient(app) as client:
        for i in range(20):
            expected[i] = client.post("/predict/lead", json={"leads": leads[i]}).json()["predictions"][0]["probability"]
    errors, mismatches = [], []

    def worker(k):
        with TestClient(app) as client:
            for i in range(20):
                r = client.post("/predict/lead", json={"leads": leads[(i + k) % 20]})
                if r.status_code != 200:
                    errors.append(r.text[:200])
                elif abs(r.json()["predictions"][0]["probability"] - expected[(i + k) % 20]) > 1e-12:
                    mismatches.append(i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and mismatches == []


def test_model_cache_holds_at_most_max_models(store, trained, leads):
    ids = [f"2999010{d}T000000-stacking-abcdef" for d in range(1, 5)]
    for run_id in ids:
        shutil.copytree(store.root / trained[1].id, store.root / run_id)
    app = create_app(store, max_models=2)
    client = TestClient(app)
    for run_id in [trained[1].id, *ids]:
        r = client.post("/predict/lead", json={"leads": leads[0], "run_id": run_id})
        assert r.status_code == 200 and r.json()["run_id"] == run_id
    assert app.state.cache.ids() == ids[-2:]
    # an evicted run loads again when asked for
    assert client.post("/predict/lead", json={"leads": leads[0], "run_id": ids[0]}).status_code == 200
    assert app.state.cache.ids() == [ids[-1], ids[0]]


# -- one lead given as a mapping (the API's fast path) is shaped as the same lead in a frame -----------
def test_one_lead_as_a_mapping_is_shaped_as_in_a_frame(trained):
    columns, kinds = trained[1].settings.columns, trained[1].settings.kinds
    rows = json.loads(demo_leads(n=60, seed=3).drop(columns=["Converted"]).to_json(orient="records"))
    binary = next(c for c, k in kinds.items() if k == "binary")
    numeric = next(c for c, k in kinds.items() if k == "numeric")
    text = next(c for c, k in kinds.items() if k == "categorical")
    hostile = [
        {binary: 1, numeric: True, text: 5},
        {binary: None, numeric: "3,5", text: " Select "},
        {binary: "Yes", numeric: "abc", text: False},
        {binary: 0.0, numeric: 2**70, text: 1e16},
        {binary: "", numeric: "  ", text: ""},
        {binary: "select", numeric: -0.0, text: "  Mumbai "},
        {binary: float("inf"), numeric: float("-inf"), text: float("inf")},
        {binary: float("nan"), numeric: float("nan"), text: float("nan")},
        {binary: 10**400, numeric: 10**400, text: 10**400},
        {binary: "1.0", numeric: "1e999", text: "None"},
        {},
    ]
    for lead in rows + hostile:
        fast = prepare_features([lead], columns, kinds)
        pd.testing.assert_frame_equal(fast, prepare_features(pd.DataFrame([lead]), columns, kinds))
    # with the run's numbers read as missing: the same flags either way
    codes = {numeric: [999.0]}
    for lead in ({numeric: 999}, {numeric: "999"}, {numeric: 3}, {}):
        pd.testing.assert_frame_equal(
            prepare_features([lead], columns, kinds, codes),
            prepare_features(pd.DataFrame([lead]), columns, kinds, codes),
        )


# -- 6. the load bench ----------------------------------------------------------------------------
def test_api_bench_small(trained, monkeypatch, tmp_path):
    from engine.benchmarks.api import run_api_bench

    monkeypatch.setenv("CLAB_WORKSPACE", str(trained[0]))
    out = tmp_path / "api.json"
    result = run_api_bench(json_out=out, requests=20, concurrency=4)
    assert json.loads(out.read_text()) == result
    assert {"requests", "concurrency", "errors", "p50_ms", "p99_ms", "requests_per_second", "machine", "date"} <= set(
        result
    )
    assert result["requests"] == 20 and result["concurrency"] == 4 and result["errors"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"] and result["requests_per_second"] > 0
    assert result["run_id"] == trained[1].id and np.isfinite(result["p99_ms"])


def test_concurrent_requests_are_scored_in_batches_and_each_gets_its_own_rows():
    """The batcher: requests arriving while the model is busy are scored together, in order, errors shared."""
    import time as _time

    import pandas as pd

    from engine.api import _Batcher

    sizes = []

    def score(frame):
        sizes.append(len(frame))
        _time.sleep(0.02)
        if (frame["x"] < 0).any():
            raise ValueError("negative")
        return [v * 10 for v in frame["x"]]

    batcher = _Batcher(score)
    results, errors = {}, {}

    def call(i):
        try:
            results[i] = batcher(pd.DataFrame({"x": [i, i + 0.5]}))
        except ValueError as exc:
            errors[i] = str(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: [i * 10, (i + 0.5) * 10] for i in range(24)}
    assert sum(sizes) == 48 and max(sizes) > 2  # some requests shared a batch
    # an error reaches every request of its batch, and the batcher keeps working
    threads = [threading.Thread(target=call, args=(i,)) for i in (-5, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert -5 in errors and (100 in results or errors.get(100) == "negative")
    assert batcher(pd.DataFrame({"x": [1]})) == [10]


# -- 5. specs that parse but hold wrong types -------------------------------------------------------
def test_specs_with_wrong_types_are_skipped_named_and_refused_by_id(store, trained, leads):
    from support import SPEC_WRONG_TYPES, copy_run, damage_spec

    good = trained[1].id
    planted = {}
    for i, corruption in enumerate(SPEC_WRONG_TYPES):
        run_id = f"29990102T{i:06d}-stacking-{i:06x}"  # newer than the good run
        planted[run_id] = damage_spec(copy_run(store.root / good, store.root, run_id), corruption)
    client = TestClient(create_app(store))
    models = client.get("/models")
    assert models.status_code == 200, models.text
    assert [m["run_id"] for m in models.json()["models"]] == [good]
    skipped = {s["run_id"]: s["problem"] for s in models.json()["skipped"]}
    assert set(skipped) == set(planted)
    for run_id, field in planted.items():
        assert skipped[run_id].startswith("spec.json") and f"'{field}" in skipped[run_id], skipped[run_id]
    assert client.get("/health").json() == {"status": "ok", "runs": 1, "skipped": len(planted)}

    latest = client.post(LEAD, json={"leads": leads[:3]})
    assert latest.status_code == 200 and latest.json()["run_id"] == good, latest.text
    for run_id, field in planted.items():
        r = client.post(LEAD, json={"leads": leads[0], "run_id": run_id})
        assert r.status_code == 409 and run_id in _message(r) and f"'{field}" in _message(r), r.text


# -- 7. evicted models give their memory back ---------------------------------------------------------
def test_evicted_models_are_freed_and_rss_stays_flat(store, trained, leads, tmp_path):
    """A model evicted from the cache is collected (no gc.freeze keeping it for ever), and the RSS over 40 loads
    with 4 kept stays flat: about 0.5 MB more for every load of the small stack when evicted ones leaked."""
    import weakref

    ids = [f"2999010{d}T000000-stacking-abcdef" for d in range(1, 4)]
    for run_id in ids:
        shutil.copytree(store.root / trained[1].id, store.root / run_id)
    app = create_app(store, max_models=2)
    client = TestClient(app)
    assert client.post(LEAD, json={"leads": leads[0], "run_id": trained[1].id}).status_code == 200
    first = weakref.ref(app.state.cache.entry(store.get(trained[1].id)).model)
    for run_id in ids:
        assert client.post(LEAD, json={"leads": leads[0], "run_id": run_id}).status_code == 200
    assert trained[1].id not in app.state.cache.ids()
    assert first() is None, "an evicted model is still alive"

    # the RSS of a fresh process (as a server's: this one has TensorFlow loaded) over 24 loads, 4 kept
    out = tmp_path / "api_memory.json"
    done = subprocess.run(
        [sys.executable, "-m", "engine", "bench", "api", "--memory", "--loads", "24", "--json", str(out)],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "CLAB_WORKSPACE": str(trained[0])},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["loads"] == 24 and result["cached_at_end"] == 4 and len(result["rss_mb"]) == 24
    assert result["growth_per_load_kb"] < 300, result  # ~550 KB a load when evicted models leaked


# -- 8. huge batches are refused while they are read; a 422 lists a few errors -------------------------
@pytest.mark.parametrize("path, key, item", [(TRANSCRIPT, "transcripts", b'""'), (LEAD, "leads", b"{}")])
def test_a_batch_past_the_cap_is_refused_before_its_items_are_parsed(store, leads, path, key, item):
    """3.3 million empty items in a 10 MB body: 413 after reading 501 of them (it took 108 s and 6.1 GB to get
    a 422 for transcripts, 3 s and ~500 MB for leads); 500 items are still read and checked."""
    import tracemalloc

    client = TestClient(create_app(store))
    n = 3_300_000
    body = b'{"%s": [' % key.encode() + item + (b"," + item) * (n - 1) + b"]}"
    assert len(body) < 10_000_000
    tracemalloc.start()
    try:
        t0 = time.perf_counter()
        r = client.post(path, content=body, headers={"content-type": "application/json"})
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert r.status_code == 413, r.text[:300]
    assert f"more than 500 {key}" in _message(r) and "Split" in _message(r)
    assert peak < 60e6 and seconds < 20, (peak, seconds)
    # at the cap the items are read and validated as before: one bad item of 500 named, 501 refused
    at_cap = leads * 9 if key == "leads" else ["a call"] * 501
    assert client.post(path, json={key: at_cap[:500]}).status_code in (200, 404)  # 404: no transcripts run here
    bad = [*at_cap[:499], {"transcript": 5} if key == "transcripts" else {"City": [1]}]
    r = client.post(path, json={key: bad})
    assert r.status_code == 422 and "499" in _message(r)
    assert client.post(path, json={key: at_cap[:501]}).status_code == 413


def test_a_422_lists_at_most_ten_errors(store):
    """500 transcripts with 60 unknown keys each: 30,000 errors, answered with 10 of them and the count."""
    item = {"transcript": "a call", **{f"extra_{k}": k for k in range(60)}}
    body = json.dumps({"transcripts": [item] * 500}).encode()
    assert len(body) > 300_000
    r = TestClient(create_app(store)).post(TRANSCRIPT, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    answer = r.json()
    assert answer["errors"] == 30_000 and len(answer["detail"]) == 10
    assert "transcripts.0.extra_0" in answer["message"] and "29,990 more errors" in answer["message"]
    assert len(r.content) < 5_000


# -- 9. explanations stop at a time budget and when the client has gone ---------------------------------
def test_explanations_stop_at_the_time_budget(store, leads):
    body = {"leads": leads[:5], "explain": True}
    full = TestClient(create_app(store)).post(LEAD, json=body).json()
    assert full["explained"] == 5 and full["notes"] == [] and all(p["factors"] for p in full["predictions"])
    r = TestClient(create_app(store, explain_seconds=0)).post(LEAD, json=body)
    assert r.status_code == 200
    cut = r.json()
    assert cut["explained"] == 0 and "time budget of 0 s: 0 of 5 explained" in cut["notes"][0]
    assert [p["probability"] for p in cut["predictions"]] == [p["probability"] for p in full["predictions"]]
    assert all(p["factors"] is None and p["reasons_for"] is None for p in cut["predictions"])


def test_explanations_stop_when_the_client_disconnects(store, leads):
    """An explained request whose client has gone (the server is told by ``http.disconnect``) stops explaining
    instead of working on for nobody."""
    import asyncio

    app = create_app(store)
    body = json.dumps({"leads": leads[:MAX_EXPLAIN_LEADS], "explain": True}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": LEAD,
        "raw_path": LEAD.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }

    async def call(gone: bool) -> tuple[int, dict]:
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent = []

        async def receive():
            if messages:
                return messages.pop(0)
            if not gone:
                await asyncio.sleep(3600)  # the client waits for its answer
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:]))

    status, answer = asyncio.run(call(gone=False))
    assert status == 200 and answer["explained"] == MAX_EXPLAIN_LEADS
    status, answer = asyncio.run(call(gone=True))
    assert status == 499 and "disconnected" in answer["message"]
    assert int(answer["message"].split("after ")[1].split(" of")[0]) < MAX_EXPLAIN_LEADS // 2


# -- 10. numbers far beyond training: finite scores, strict JSON ----------------------------------------
def _strict(text: str):
    def refuse(name):
        raise AssertionError(f"{name} in the answer: not JSON")

    return json.loads(text, parse_constant=refuse)


def test_huge_numbers_get_finite_scores_in_strict_json(store, trained, leads):
    """1e308 in a number field scaled to infinity inside the stack: probability NaN, a score of -2**63 and an
    answer that is not JSON. The scaled features are clipped, the scores are finite, and answers are strict."""
    kinds = trained[1].settings.kinds
    client = TestClient(create_app(store))
    for col in [c for c, k in kinds.items() if k == "numeric"]:
        for value in (1e308, -1e308, 1.7976931348623157e308, 1e200):
            for batch in ({**leads[0], col: value}, [{**leads[0], col: value}, leads[1]]):
                for explain in (False, True):
                    r = client.post(LEAD, json={"leads": batch, "explain": explain})
                    assert r.status_code == 200, r.text[:300]
                    for p in _strict(r.text)["predictions"]:
                        assert 0.0 <= p["probability"] <= 1.0 and 1 <= p["score"] <= 99 and p["tier"] in "ABCD"
                        assert all(np.isfinite(f["contribution"]) for f in p["factors"] or [])
    assert _strict(client.get("/models").text)["models"]
