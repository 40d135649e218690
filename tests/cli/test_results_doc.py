"""docs/RESULTS.md's benchmark tables are generated from assets/bench/*.json and must be current."""

import json

from engine.benchmarks.report import END, START, render, update


def test_results_doc_matches_the_bench_json():
    assert update(check=True), "docs/RESULTS.md is stale: run `python -m engine.benchmarks.report`"


def test_render_reads_each_kind_of_bench(tmp_path):
    (tmp_path / "api_2026-01-01.json").write_text(
        json.dumps(
            {
                "requests": 2000,
                "concurrency": 16,
                "errors": 0,
                "p50_ms": 50.0,
                "p99_ms": 120.5,
                "requests_per_second": 240.0,
                "machine": "test box",
                "date": "2026-01-01",
            }
        )
    )
    (tmp_path / "score_2026-01-02.json").write_text(
        json.dumps(
            {
                "rows": 100000,
                "score_seconds": 4.2,
                "explain_rows": 10000,
                "explain_seconds": 20.0,
                "first_list_10k_seconds": 0.9,
                "targets": {"score_seconds": 10, "explain_seconds": 60, "first_list_10k_seconds": 5},
                "met": {"score_seconds": True, "explain_seconds": True, "first_list_10k_seconds": True},
            }
        )
    )
    text = render(tmp_path)
    assert text.startswith(START) and text.endswith(END)
    assert "| 2,000 | 16 | 0 | 50.0 | 120.5 | 240.0 |" in text and "test box" in text
    assert "| score 100,000 leads, no reasons | 4.20 | 10 | yes |" in text


def test_render_reads_the_api_memory_bench(tmp_path):
    (tmp_path / "api_memory_2026-01-03.json").write_text(
        json.dumps(
            {
                "loads": 50,
                "kept": 4,
                "rss_start_mb": 296.6,
                "rss_end_mb": 311.3,
                "growth_after_warmup_mb": 6.4,
                "growth_per_load_kb": 141.4,
                "load_seconds_median": 0.224,
            }
        )
    )
    text = render(tmp_path)
    assert "**Scoring API model cache**" in text and "| 50 | 4 | 296.6 | 311.3 | 6.4 | 141 | 0.224 |" in text


def test_a_curve_names_only_the_parameters_changed_from_the_defaults():
    from engine.approaches.registry import get_approach_class
    from engine.benchmarks.report import _curve_params
    from engine.storage import jsonable

    params = jsonable(get_approach_class("stacking")().get_params(), fallback=str)
    assert _curve_params({"approaches": {"stacking": {"params": params}}}) == ""  # XGBoost's missing=nan included
    params["n_folds"] = 3
    assert _curve_params({"approaches": {"stacking": {"params": params}}}) == "; stacking: n_folds=3"


def test_render_reads_the_chunked_score_bench(tmp_path):
    (tmp_path / "score_chunked_2026-01-03.json").write_text(
        json.dumps(
            {
                "rows": 5000000,
                "file_mb": 1346.0,
                "chunk_rows": 161962,
                "chunks": 31,
                "memory_budget_mb": 2048,
                "peak_rss_mb": 1500.5,
                "rows_per_second": 4000.0,
                "first_ranked_rows_seconds": 900.0,
                "seconds": {"total": 1250.0},
                "explained_rows": 10000,
                "ray": False,
                "date": "2026-01-03",
            }
        )
    )
    text = render(tmp_path)
    assert "Scoring a file larger than memory" in text
    assert "| 5,000,000 | 1,346 | 161,962 x 31 | 2,048 | 1,500 | 4,000 | 900.0 | 1,250.0 | 10,000 |" in text
