"""Learning curves read for people: the table per approach and size, and where one approach overtakes another."""

from __future__ import annotations

import math

import pytest

from dashboard.components.charts import learning_curve_figure
from engine.curve_words import crossings, curve_summary, curve_table


def _point(approach, size, auc, seed=0, half=0.02, fit=1.0):
    return {
        "approach": approach,
        "size": size,
        "seed": seed,
        "roc_auc": auc,
        "roc_auc_ci": [auc - half, auc + half],
        "accuracy": 0.7,
        "fit_seconds": fit,
    }


def test_seeds_at_one_size_are_averaged_and_their_spread_kept():
    points = [_point("stacking", 50, a, seed=s) for s, a in enumerate([0.60, 0.70, 0.65])]
    points.append(_point("stacking", 100, float("nan")))  # one class in the subset: no ROC-AUC, left out
    (row,) = curve_table(points)["stacking"]
    assert row["size"] == 50 and row["seeds"] == 3
    assert row["roc_auc"] == pytest.approx(0.65)
    assert (row["low_seed"], row["high_seed"]) == (0.60, 0.70)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(0.63), pytest.approx(0.67))


def test_the_crossing_is_placed_on_the_log_scale_between_the_sizes_around_it():
    # the LLM leads by 0.04 at 100 rows and trails by 0.04 at 1,000: the lines cross half way on a log axis
    points = [_point("lora", 100, 0.74, half=0.01), _point("stacking", 100, 0.70, half=0.01)]
    points += [_point("lora", 1000, 0.78, half=0.01), _point("stacking", 1000, 0.82, half=0.01)]
    table = curve_table(points)
    (said,) = crossings(table, "lora", "stacking")
    expected = int(float(f"{math.sqrt(100 * 1000):.2g}"))  # 316 -> 320
    assert f"below about {expected:,} training rows" in said
    assert said.startswith("The LLM (LoRA) is ahead of the stack") and "within noise" not in said


def test_a_crossing_inside_overlapping_intervals_is_called_noise():
    points = [_point("lora", 100, 0.71, half=0.05), _point("stacking", 100, 0.70, half=0.05)]
    points += [_point("lora", 300, 0.70, half=0.05), _point("stacking", 300, 0.72, half=0.05)]
    (said,) = crossings(curve_table(points), "stacking", "lora")
    assert "within noise" in said


def test_no_crossing_says_who_leads_and_where():
    points = [_point("embeddings", n, 0.60 + i / 100) for i, n in enumerate((50, 300, 3000))]
    points += [_point("stacking", n, 0.70 + i / 100) for i, n in enumerate((50, 300, 3000))]
    assert curve_summary(points) == [
        "The stack is ahead of the embeddings approach at every size from 50 to 3,000 training rows."
    ]


def test_the_figure_draws_a_line_and_a_band_per_approach_on_a_log_axis():
    points = [_point("lora", n, 0.7, seed=s) for n in (50, 100) for s in range(2)]
    points += [_point("stacking", n, 0.75) for n in (50, 100, 1000)]
    fig = learning_curve_figure(curve_table(points))
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    assert [t.name for t in lines] == ["the LLM (LoRA)", "the stack"]
    assert list(lines[1].x) == [50, 100, 1000] and fig.layout.xaxis.type == "log"
    assert lines[0].error_y.visible and not lines[1].error_y.visible  # spread only where there are several seeds
    assert len(fig.data) == 4  # a band beside each line
    bands = [t for t in fig.data if t.fill == "toself"]
    assert [t.mode for t in bands] == ["lines", "lines"]  # no markers at the bands' corners
    assert list(fig.layout.xaxis.tickvals) == [50, 100, 1000]  # ticks at the sizes trained at
    assert list(fig.layout.xaxis.ticktext) == ["50", "100", "1,000"]
