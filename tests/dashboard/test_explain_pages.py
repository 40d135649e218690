"""Explain, What-if and Embeddings pages (issue 15): leads named by their CRM id, What-if from a typical lead with
the change after an edit, factors in points shown once, the strip plot's colours, background work with
progress, and the embedding maps stored at training time and read back without recomputing."""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pandas as pd
import pytest
from dashboard_support import APP, REPO_ROOT, rerun_fragments, run_page, texts
from streamlit.testing.v1 import AppTest


def array(values) -> np.ndarray:
    """A Plotly array from a chart's JSON (numeric arrays come base64-encoded)."""
    if isinstance(values, dict):
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values)


def raw_file(run) -> pd.DataFrame:
    from engine.datasets import DatasetStore

    return pd.read_csv(DatasetStore().find(run.settings.data_hash).raw_path)


def until(at: AppTest, done, timeout: float = 120) -> AppTest:
    """Run the page again until ``done(at)`` (a page with background work draws more on each run)."""
    end = time.monotonic() + timeout
    while not done(at):
        assert time.monotonic() < end, "the background computation did not finish in time"
        time.sleep(0.3)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    return at


# -- titles ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("page, title", [("explain", "Explain"), ("whatif", "What-if"), ("embeddings", "Embeddings")])
def test_titles_are_words_without_emoji(stored, page, title):
    at = run_page(page)
    assert at.title[0].value == title


# -- Explain ---------------------------------------------------------------------------------------------
def test_explain_names_leads_by_their_crm_id(stored):
    from engine.runs import RunStore

    at = run_page("explain")
    run = RunStore().get(at.selectbox(key="explain_run").value)
    assert "Lead Number" in run.settings.identifiers
    at.session_state["explain_tab"] = "One at a time"
    at.run()
    box = at.selectbox(key="explain_row")
    assert "#" not in " ".join(box.options)
    raw = raw_file(run)
    stored_ids = run.explanations().drop_duplicates("row").sort_values("row")["row_id"].astype(int).tolist()
    # each lead is named by the file's Lead Number (the shorter of its two id columns), in the sample's order
    expected = [f"Lead Number {raw['Lead Number'].iloc[rid]}" for rid in stored_ids]
    assert [o.split(" — ")[0] for o in box.options] == expected
    assert "Lead Number column" in box.proto.help


def test_explain_larger_sample_is_computed_in_the_background(stored, monkeypatch):
    from dashboard.components import explain_charts, tasks

    monkeypatch.setattr(tasks, "SYNC_WAIT_S", 0.0)  # the page never waits on the computation
    at = run_page("explain")
    run_id = at.selectbox(key="explain_run").value
    explain_charts._explained.clear()  # nothing computed yet in this process
    at = run_page("explain")
    slider = at.slider(key="explain_n")
    started = time.perf_counter()
    slider.set_value(slider.max).run()
    took = time.perf_counter() - started
    assert not at.exception and not at.error
    assert took < 5, f"the page waited {took:.1f} s for the explanations"
    assert at.get("plotly_chart"), "the stored leads are drawn at once"
    if at.get("progress"):  # still computing: the progress names the work
        assert "Explaining" in at.get("progress")[0].proto.text
        assert "explained so far" in texts(at.caption)
    until(at, lambda a: not a.get("progress"))
    at.session_state["explain_tab"] = "One at a time"
    at.run()
    assert len(at.selectbox(key="explain_row").options) == slider.max  # every lead of the sample is there
    # the computed leads' contributions are the model's own
    from dashboard.components.state import run_data
    from engine.runs import RunStore

    run = RunStore().get(run_id)
    model = run.load_approach()
    cache = explain_charts.explained(str(run.path))
    data = run_data(run)
    some = sorted(cache)[-1]
    np.testing.assert_allclose(cache[some][1], model.predict_proba(data["X"].iloc[[some]])[0, 1], rtol=1e-6)


def test_strip_plot_colours_categories_by_category(stored):
    at = run_page("explain")
    strip = json.loads(at.get("plotly_chart")[1].proto.spec)
    traces = {t["name"]: t for t in strip["data"]}
    assert set(traces) == {"numbers", "categories"}
    cats = traces["categories"]
    colour_of: dict[tuple[str, str], str] = {}
    for text, colour in zip(cats["text"], cats["marker"]["color"]):
        field, value = text.split(" = ", 1)
        assert isinstance(colour, str) and colour.startswith("#"), "a category gets a colour, not a number"
        assert colour_of.setdefault((field, value), colour) == colour  # one colour per category
    fields = {f for f, _ in colour_of}
    assert fields and not fields & {"Total Time Spent on Website", "TotalVisits", "Page Views Per Visit"}
    for field in fields:  # categories of one field have distinct colours (beyond the palette, grey)
        shown = [c for (f, _), c in colour_of.items() if f == field and c != "#9ca3af"]
        assert len(shown) == len(set(shown))
    numbers = traces["numbers"]
    assert numbers["marker"]["colorbar"]["ticktext"] == ["low", "high"]
    assert {t.split(" = ")[0] for t in numbers["text"]} <= {
        "Total Time Spent on Website",
        "TotalVisits",
        "Page Views Per Visit",
    }


# -- What-if -------------------------------------------------------------------------------------------
def test_whatif_starts_from_a_typical_lead_and_shows_the_change_after_an_edit(stored):
    from engine.data.leads import load_leads, prepare_features
    from engine.runs import RunStore
    from engine.scoring import run_scores

    at = run_page("whatif")
    assert at.selectbox(key="whatif_start").value == "typical"
    assert "typical lead" in texts(at.caption) and "median" in texts(at.caption)
    assert "Priority tier" in texts(at.markdown) and "trained on" in texts(at.caption)
    card = next(
        m for m in at.markdown if m.proto.help.startswith("Run id ")
    )  # the card names the run; its id in the help
    assert "stacking-" not in card.value
    run_id = card.proto.help.split()[2]
    run = RunStore().get(run_id)
    table = load_leads(raw_file(run), target="Converted", leak_policy="none", exclude=run.settings.excluded)
    X = table.X[run.settings.columns]
    source = next(s for s in at.selectbox if s.key.endswith("_Lead Source"))
    time_box = next(n for n in at.number_input if n.key.endswith("_Total Time Spent on Website"))
    assert source.value == X["Lead Source"].value_counts().index[0]  # the most common value
    assert time_box.value == pytest.approx(round(X["Total Time Spent on Website"].median()))  # the median
    # the card's starting score is the model's score of that lead
    typical = {
        c: next((w.value for w in [*at.selectbox, *at.number_input] if w.key.endswith(f"_{c}")), None)
        for c in run.settings.columns
    }
    typical = {c: (np.nan if v in (None, "(missing)") else v) for c, v in typical.items()}
    model = run.load_approach()
    lead = prepare_features(pd.DataFrame([typical]), run.settings.columns, run.settings.kinds)
    start_p = float(model.predict_proba(lead)[0, 1])
    start_score = int(run_scores(run, [start_p])[0][0])  # the run's own scale: the rank among its training leads
    assert f"Starting lead: score {start_score}" in texts(at.markdown)
    # factors are in percentage points of the probability
    assert "points)" in texts(at.markdown)

    time_box.set_value(3000.0).run()
    assert not at.exception
    metric = next(m for m in at.metric if m.label == "Score (1-99)")
    new_score = int(metric.value)
    delta = new_score - start_score
    assert metric.proto.delta == f"{delta:+d}"
    assert f"Score {start_score} → {new_score} ({delta:+d}); chance {start_p:.1%} →" in texts(at.markdown)
    assert "Total Time Spent on Website" in texts(at.caption) and "→ 3000" in texts(at.caption)


def test_whatif_can_start_from_a_test_lead_named_by_its_id(stored):
    at = run_page("whatif")
    box = at.selectbox(key="whatif_start")
    assert box.options[0] == "a typical lead of the dataset"
    assert all(o.startswith("Lead Number ") and "test lead" in o for o in box.options[1:])
    box.set_value(0).run()
    assert not at.exception and "Starting from **Lead Number" in texts(at.caption)


def test_disagreements_and_factors_shown_once():
    from dashboard.components.explain_charts import disagreements, factor_lines, field_factors
    from engine.data.text import field_text

    stack = pd.DataFrame(
        {
            "row": 0,
            "feature": ["Total Time Spent on Website", "Lead Source"],
            "value": ["0", "Google"],
            "contribution": [0.10, 0.02],
        }
    )
    llm = pd.DataFrame(
        {
            "row": 0,
            "feature": ["Total Time Spent on Website", "Lead Source"],
            "value": ["0", "Google"],
            "contribution": [-0.05, 0.03],
        }
    )
    lines = disagreements({"Stacked ensemble": stack, "LLM + LoRA": llm})
    assert lines == [
        "**Total Time Spent on Website = 0** raises the score of Stacked ensemble (+10 points) but "
        "lowers that of LLM + LoRA (-5 points)."
    ]
    assert disagreements({"a": stack, "b": stack}) == []
    # a lead written as text (the embeddings approach): each sentence goes back to its field, shown once
    lead = pd.Series({"What matters most to you in choosing a course": "Better Career Prospects", "City": "Mumbai"})
    sentence = field_text("What matters most to you in choosing a course", "Better Career Prospects")
    table = pd.DataFrame(
        {
            "row": 0,
            "feature": [sentence[:80], "An unmatched phrase."],
            "value": [sentence, "An unmatched phrase."],
            "contribution": [0.13, -0.02],
        }
    )
    found = factor_lines(field_factors(table, lead))
    assert found["for"] == ["What matters most to you in choosing a course = Better Career Prospects (+13 points)"]
    assert found["against"] == ["An unmatched phrase. (-2 points)"]


# -- Embeddings ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embeddings_run(tmp_path_factory):
    """A real, small embeddings run on 40 demo calls (no fine-tuning, to keep it short), with its maps stored
    by engine.projection.store_projections as training stores them."""
    import os

    root = tmp_path_factory.mktemp("emb") / "workspace"
    old = os.environ.get("CLAB_WORKSPACE")
    os.environ["CLAB_WORKSPACE"] = str(root)
    try:
        from engine.data.transcripts import load_transcripts
        from engine.datasets import DatasetStore
        from engine.pipeline import train_transcripts
        from engine.projection import store_projections

        lines = (REPO_ROOT / "data" / "demo_transcripts.jsonl").read_bytes().splitlines()
        ds = DatasetStore().add(b"\n".join(lines[:40]) + b"\n", filename="t40.jsonl", kind="transcripts", name="t40")
        run = train_transcripts(
            ds.raw_path,
            "embeddings",
            dataset_name="t40",
            params=dict(fine_tune=False, epochs=0, chunk_tokens=64, chunk_overlap=16),
        )
        table = load_transcripts(ds.raw_path)
        logged = []
        path = store_projections(
            run, run.load_approach(), table.X, np.arange(len(table.y)), methods=("tsne",), log=logged.append
        )
        assert path == run.path / "projections.json" and "stored" in logged[-1]
    finally:
        if old is None:
            os.environ.pop("CLAB_WORKSPACE", None)
        else:
            os.environ["CLAB_WORKSPACE"] = old
    return root, run


def test_store_and_load_projections(embeddings_run):
    from engine.projection import PROJECTION_ROWS, load_projections, projection_sample

    _, run = embeddings_run
    maps = load_projections(run)
    n = min(PROJECTION_ROWS, 40)
    assert maps["positions"] == projection_sample(40, n).tolist() and len(maps["row_ids"]) == n
    assert set(maps["maps"]) == {"tsne"} and maps["maps"]["tsne"]["generic"].shape == (n, 2)
    assert np.isfinite(maps["maps"]["tsne"]["fine_tuned"]).all()
    saved = (run.path / "projections.json").read_text()
    try:  # a damaged file is no maps (the page then computes them), never an error
        (run.path / "projections.json").write_text("{bad")
        assert load_projections(run) is None
    finally:
        (run.path / "projections.json").write_text(saved)


def test_embeddings_page_reads_stored_maps_without_computing(embeddings_run, monkeypatch):
    import engine.projection as projection

    root, run = embeddings_run
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    calls = []
    real_project, real_embed = projection.project, projection.embed_both
    monkeypatch.setattr(projection, "project", lambda *a, **k: calls.append("project") or real_project(*a, **k))
    monkeypatch.setattr(projection, "embed_both", lambda *a, **k: calls.append("embed") or real_embed(*a, **k))
    started = time.perf_counter()
    at = run_page("embeddings")
    took = time.perf_counter() - started
    assert not at.error and calls == [], calls  # no embedding, no t-SNE: the stored file is drawn
    assert "stored with the run" in texts(at.caption)
    stored = json.loads((run.path / "projections.json").read_text())["maps"]["tsne"]
    for chart, which in zip(at.get("plotly_chart"), ("generic", "fine_tuned")):
        xs = np.concatenate([array(t["x"]) for t in json.loads(chart.proto.spec)["data"]])
        np.testing.assert_allclose(np.sort(xs), np.sort(np.asarray(stored[which])[:, 0]))
    assert took < 30, took  # a cold process imports plotly and pandas here; no model is loaded

    # another number of points is computed in the background, with progress, then drawn
    at.slider(key="emb_n").set_value(20).run()
    assert not at.exception and not at.error
    until(at, lambda a: len(a.get("plotly_chart")) == 2, timeout=300)
    assert "embed" in calls and "project" in calls
    assert "Computed for this session" in texts(at.caption)


def test_embeddings_map_shows_once_its_background_work_ends(embeddings_run, monkeypatch):
    """A map computed in the background appears on the browser's next automatic rerun after it is done, without a
    reload; meanwhile the progress says the step is alive, and the polls are cheap: Streamlit's full garbage
    collection and Keras session clearing after every run (fragment reruns included) are off. With the heavy
    libraries loaded they cost about 1 s of CPU with the GIL held per poll, and starved the computation: a UMAP
    map stuck at 200/202 for minutes."""
    import threading

    from streamlit import config

    import engine.projection as projection
    from dashboard.components import tasks

    root, run = embeddings_run
    # as when the app is started outside the project folder (no .streamlit/config.toml): app.py turns it off
    before = config.get_option("runner.postScriptGC")
    config.set_option("runner.postScriptGC", True)

    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    monkeypatch.setattr(tasks, "SYNC_WAIT_S", 0.0)
    gate, real_project = threading.Event(), projection.project
    monkeypatch.setattr(projection, "project", lambda *a, **k: gate.wait(60) and real_project(*a, **k))
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["authenticated"] = True
    try:
        at.switch_page("views/embeddings.py").run()
        assert config.get_option("runner.postScriptGC") is False, "each poll would run a full garbage collection"
    finally:
        config.set_option("runner.postScriptGC", before)
    import keras
    from streamlit.runtime.scriptrunner import script_runner

    cleared, real_clear = [], keras.backend.clear_session
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: cleared.append(1) or real_clear(*a, **k))
    script_runner._clean_problem_modules()  # what Streamlit calls after each run
    assert not cleared, "each poll would clear the Keras session (half a second with the GIL held)"
    at.slider(key="emb_n").set_value(30).run()  # a map not stored with the run: computed in the background
    assert at.get("progress") and not at.get("plotly_chart")
    task = next(t for k, t in tasks._tasks.items() if k[0] == "projection" and len(k[2]) == 30)
    end = time.monotonic() + 60
    while task.done < 60:  # the texts are embedded; the map's step waits on the gate
        assert time.monotonic() < end and not task.finished, task.progress_text()
        time.sleep(0.1)
    rerun_fragments(at)
    rerun_fragments(at)
    text = at.get("progress")[0].proto.text
    assert "(60/62" in text and "s in this step" in text and not at.get("plotly_chart"), text
    gate.set()
    assert tasks.wait(task, 120) and not task.error, task.error
    rerun_fragments(at)
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 2 and not at.get("progress")
    assert "Computed for this session" in texts(at.caption)
