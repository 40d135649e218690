"""A run trained with a column the leak finder flags carries it (spec 'flagged'): every reason citing it says so,
the board puts it first, and the Score page warns; a clean run has none."""

import numpy as np
import pytest
from support import SMALL_STACK

from engine import pipeline
from engine.data.demo import demo_leads
from engine.evaluate import board_findings
from engine.runs import RunStore
from engine.scoring import FLAGGED_NOTE, score_frame


def _with_leak(n: int, seed: int):
    leads = demo_leads(n=n, seed=seed)
    rng = np.random.default_rng(seed)
    noisy = np.where(rng.random(n) < 0.05, 1 - leads["Converted"], leads["Converted"])
    leads["Call outcome"] = np.where(noisy == 1, "Interested - follow up", "Not reachable")
    return leads


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("flagged") / "runs")
    leaky = pipeline.train_leads(_with_leak(500, 3), params=SMALL_STACK, dataset_name="crm", store=store)
    clean = pipeline.train_leads(demo_leads(n=500, seed=3), params=SMALL_STACK, dataset_name="crm", store=store)
    return store.get(leaky.id), store.get(clean.id)


def test_the_run_records_the_flagged_column_and_reasons_citing_it_carry_a_warning(runs):
    leaky, clean = runs
    assert "Call outcome" in leaky.settings.flagged and not clean.settings.flagged
    table = score_frame(leaky, _with_leak(60, 9).drop(columns=["Converted"]), explain="all").table
    reasons = (table["reasons_for"] + "; " + table["reasons_against"]).str.split("; ").explode()
    citing = reasons[reasons.str.startswith("Call outcome")]
    assert len(citing) > 30 and citing.str.endswith(FLAGGED_NOTE).all()  # the leak moves every lead
    others = reasons[(reasons != "") & ~reasons.str.startswith("Call outcome")]
    assert not others.str.contains("leak finder").any()


def test_the_board_says_it_first(runs):
    leaky, clean = runs
    found = board_findings(
        [
            {"label": "Leaky", "metrics": leaky.metrics["metrics"], "flagged": leaky.settings.flagged},
            {"label": "Clean", "metrics": clean.metrics["metrics"], "flagged": clean.settings.flagged},
        ]
    )
    assert found[0].startswith("Leaky uses 'Call outcome', which the leak finder flagged")
    assert not any(f.startswith("Clean uses") for f in found)


def test_one_flagged_column_reads_it_and_several_read_them(runs, monkeypatch):
    """Seen on the browser walk of a bank export: "uses 'duration' ... Exclude them on the Data page"."""
    from types import SimpleNamespace

    from dashboard.components import widgets

    leaky, _ = runs
    one = {"duration": "likely filled in after the outcome"}
    two = {**one, "call_status": "likely filled in after the outcome"}
    shown = []
    monkeypatch.setattr(widgets.st, "warning", lambda text, **_: shown.append(text))
    for flagged, word in ((one, "it"), (two, "them")):
        first = board_findings([{"label": "Leaky", "metrics": leaky.metrics["metrics"], "flagged": flagged}])[0]
        assert first.endswith(f"Exclude {word} on the Data page and train again."), first
        widgets.flagged_warning(SimpleNamespace(settings=leaky.settings.model_copy(update={"flagged": flagged})))
        assert f"any reason citing {word} may not hold" in shown[-1] and f"Exclude {word} on the Data" in shown[-1]
