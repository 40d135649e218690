"""The leak finder on small tables: no clean column is flagged on noise (real computations).

Rule 5 (unique contribution) measures a drop cost on one held-out third of the rows. On 300-600 leads that third
holds 40-120 leads of each outcome, and the cost's noise is the size of its threshold: before the held-out guard,
the clean Total Time Spent on Website of the synthetic demo leads was flagged on 1 in 20 subsamples of 300 rows
and 2 in 20 of 600 (the seeds below include those). Now rule 5 needs engine.audit.UNIQUE_HELD_OUT leads of each
outcome held out to flag firmly; with fewer the column can only be listed to check.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from engine.audit import UNIQUE_HELD_OUT, _flag, audit_frame
from engine.data.demo import demo_leads
from engine.data.leads import load_leads

# seed 1 (300 and 600 rows), 114 and 118 (600) and 119 (300) flagged Total Time Spent on Website before the guard;
# 10 subsamples of each size keep the test near 15 s of CPU (the 20-seed measurement: docs/RESULTS.md)
SEEDS = [1, 114, 118, 119, *range(101, 107)]


@pytest.fixture(scope="module")
def demo_csv_leads() -> pd.DataFrame:
    """The 2,000 synthetic demo leads exactly as data/demo_leads_synthetic.csv stores them."""
    return pd.read_csv(io.StringIO(demo_leads(n=2000, seed=0).to_csv(index=False)))


@pytest.mark.parametrize("n", [300, 600])
def test_small_subsamples_of_clean_demo_leads_flag_nothing_firmly(demo_csv_leads, n):
    flagged, checked = {}, 0
    for seed in SEEDS:
        table = load_leads(demo_csv_leads.sample(n, random_state=seed), target="Converted")  # default policy
        report = audit_frame(table.X, table.y, table.kinds, max_rows=20_000)  # as engine.pipeline.leak_flags
        assert min(report["held_out"]) < UNIQUE_HELD_OUT  # too small for rule 5 to flag firmly
        if report["flagged"]:
            flagged[seed] = report["flagged"]
        checked += "Total Time Spent on Website" in report["check"]
    assert flagged == {}
    assert checked >= 1  # the strongest clean unique column is still listed to check on some of them


def test_the_repro_subsample_is_listed_to_check_with_the_reason(demo_csv_leads):
    table = load_leads(demo_csv_leads.sample(600, random_state=1), target="Converted")
    report = audit_frame(table.X, table.y, table.kinds)
    col = {c["column"]: c for c in report["columns"]}["Total Time Spent on Website"]
    assert report["flagged"] == [] and not col["flagged"]
    assert "Total Time Spent on Website" in report["check"]
    assert "too few held-out leads to flag it" in col["check"]
    assert col["drop_se"] is not None and col["drop_se"] > 0.01  # the noise the guard is about
    # the same numbers with enough held-out leads (the rule without the guard) would have flagged it
    rows = [dict(c, flagged=False, reason=None, check=None) for c in report["columns"]]
    _flag(rows, report["model_auc"], [UNIQUE_HELD_OUT, UNIQUE_HELD_OUT])
    again = {c["column"]: c for c in rows}["Total Time Spent on Website"]
    assert again["flagged"] and "no other column stands in for it" in again["reason"]
    assert np.isfinite(again["drop_se"])


def test_the_test_suites_own_400_demo_leads_flag_nothing():
    """conftest's small_stack_run trains on these: before the guard its runs carried a flag on a clean column."""
    table = load_leads(demo_leads(n=400, seed=5))
    report = audit_frame(table.X, table.y, table.kinds, max_rows=20_000)
    assert report["flagged"] == []
