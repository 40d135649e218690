"""The tables of ``docs/RESULTS.md`` made from the benchmark JSON in ``assets/bench/``, so the numbers there
cannot drift from what the benches measured.

``python -m engine.benchmarks.report`` rewrites the part of docs/RESULTS.md between the markers
``<!-- bench:start -->`` and ``<!-- bench:end -->``; ``--check`` exits 1 when that part is stale (a test runs it).
Each JSON file gives one table, by its kind (the file name's first word): ``api``, ``score``, ``lora``,
``transcripts``, ``leads``, ``curve``, ``scale`` (``lora_fit``: the A/B timing of two LoRA fits; ``leads_use``: table /
text / both).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from engine.approaches.registry import get_approach_class
from engine.config import REPO_ROOT
from engine.storage import jsonable

BENCH_DIR = REPO_ROOT / "assets" / "bench"
RESULTS = REPO_ROOT / "docs" / "RESULTS.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def _num(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return str(value)


def _where(payload: dict, name: str) -> str:
    machine = payload.get("machine") or "machine not recorded"
    date = payload.get("date") or name.rsplit("_", 1)[-1].removesuffix(".json")
    load = payload.get("load")
    load_text = f", load average {load[0]:.1f}" if isinstance(load, list) and load else ""
    return f"{date}, {machine}{load_text}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *["| " + " | ".join(r) + " |" for r in rows],
    ]


def _api(name: str, d: dict) -> list[str]:
    return [
        f"**Scoring API** (`bench api`, `{name}`; {_where(d, name)})",
        "",
        *_table(
            ["requests", "clients", "errors", "p50 ms", "p99 ms", "requests/s", "server CPU ms a request"],
            [
                [
                    _num(d.get("requests")),
                    _num(d.get("concurrency")),
                    _num(d.get("errors")),
                    _num(d.get("p50_ms"), 1),
                    _num(d.get("p99_ms"), 1),
                    _num(d.get("requests_per_second"), 1),
                    _num(d.get("server_cpu_ms_per_request"), 2),
                ]
            ],
        ),
    ]


def _api_memory(name: str, d: dict) -> list[str]:
    row = [
        _num(d.get("loads"), 0),
        _num(d.get("kept"), 0),
        _num(d.get("rss_start_mb"), 1),
        _num(d.get("rss_end_mb"), 1),
        _num(d.get("growth_after_warmup_mb"), 1),
        _num(d.get("growth_per_load_kb"), 0),
        _num(d.get("load_seconds_median"), 3),
    ]
    return [
        f"**Scoring API model cache** (`bench api --memory`, `{name}`; {_where(d, name)})",
        "",
        *_table(
            [
                "model loads",
                "kept",
                "RSS start MB",
                "RSS end MB",
                "growth after the cache fills MB",
                "KB a load",
                "load s",
            ],
            [row],
        ),
    ]


def _score(name: str, d: dict) -> list[str]:
    targets, met = d.get("targets", {}), d.get("met", {})
    rows = [
        [label, _num(d.get(key), 2), _num(targets.get(key), 0), _num(met.get(key))]
        for key, label in (
            ("score_seconds", f"score {d.get('rows', 0):,} leads, no reasons"),
            ("explain_seconds", f"reasons for {d.get('explain_rows', 0):,} leads"),
            ("first_list_10k_seconds", "first ranked list of 10,000 leads"),
        )
    ]
    return [
        f"**Scoring a lead file** (`bench score`, `{name}`; {_where(d, name)})",
        "",
        *_table(["what", "seconds", "target", "met"], rows),
    ]


def _score_chunked(name: str, d: dict) -> list[str]:
    seconds = d.get("seconds") or {}
    row = [
        f"{d.get('rows', 0):,}" + (" (Ray)" if d.get("ray") else ""),
        _num(d.get("file_mb"), 0),
        f"{_num(d.get('chunk_rows'), 0)} x {_num(d.get('chunks'), 0)}",
        _num(d.get("memory_budget_mb"), 0),
        _num(d.get("peak_rss_mb"), 0),
        _num(d.get("rows_per_second"), 0),
        _num(d.get("first_ranked_rows_seconds"), 1),
        _num(seconds.get("total"), 1),
        _num(d.get("explained_rows"), 0),
    ]
    return [
        f"**Scoring a file larger than memory** (`bench score --chunked`, `{name}`; {_where(d, name)})",
        "",
        *_table(
            [
                "rows",
                "CSV MB",
                "chunk rows x chunks",
                "budget MB",
                "peak RSS MB",
                "rows/s",
                "first ranked rows s",
                "total s",
                "rows with reasons",
            ],
            [row],
        ),
    ]


def _models(title: str, name: str, d: dict) -> list[str]:
    rows = []
    for model, m in (d.get("models") or {}).items():
        rows.append(
            [
                model,
                _num(m.get("accuracy")),
                _num(m.get("roc_auc")),
                _num(m.get("pr_auc")),
                _num(m.get("fit_seconds"), 1),
                _num(m.get("score_one_ms"), 1),
            ]
        )
    return [
        f"**{title}** (`{name}`; {_where(d, name)})",
        "",
        *_table(["model", "accuracy", "ROC-AUC", "PR-AUC", "fit s", "one row ms"], rows),
    ]


def _transcripts(name: str, d: dict) -> list[str]:
    """``bench transcripts``: the models table, with ROC-AUC on the held-out wordings when the run has them, the
    split, the pooling and the bench's own time (older files without them: the plain models table)."""
    held = d.get("heldout_models")
    if not held or "bench_seconds" not in d:
        return _models("Transcripts: embeddings", name, d)
    split, params = d.get("split") or {}, d.get("params") or {}
    rows = [
        [
            model,
            _num(m.get("roc_auc")),
            _num((held.get(model) or {}).get("roc_auc")),
            _num(m.get("accuracy")),
            _num(m.get("fit_seconds"), 1),
            _num(m.get("score_one_ms"), 1),
        ]
        for model, m in (d.get("models") or {}).items()
    ]
    comparison = (d.get("tfidf_comparison") or {}).get("heldout_phrases") or {}
    versus = (
        f"; {d['tfidf_comparison']['best_of_ours']} minus peer_tfidf on held-out wordings "
        f"{comparison['value']:+.3f} [{comparison['low']:+.3f}, {comparison['high']:+.3f}]"
        if comparison
        else ""
    )
    return [
        f"**Transcripts: embeddings** (`{name}`; {_where(d, name)}): {d.get('dataset')}, "
        f"{_num(split.get('n_train'))} train / {_num(split.get('n_test'))} test calls (split seed "
        f"{split.get('seed')}) + {_num(d.get('heldout_rows'))} in held-out wordings; pooling "
        f"{params.get('pooling')}; the whole bench {_num(d['bench_seconds'], 0)} s{versus}",
        "",
        *_table(["model", "ROC-AUC test", "ROC-AUC held-out", "accuracy", "fit s", "one row ms"], rows),
    ]


def _lora_fit(name: str, d: dict) -> list[str]:
    """The A/B timing of two LoRA fit implementations (engine.benchmarks.lora_fit), one row per pair."""
    runs, summary = d.get("runs") or {}, d.get("summary") or {}
    rows = [
        [
            str(k + 1),
            _num(a.get("process_seconds"), 1),
            _num(b.get("process_seconds"), 1),
            _num(b.get("process_seconds", 0) / max(a.get("process_seconds", 0), 1e-9), 2),
            _num(a.get("step_seconds"), 2),
            _num(b.get("step_seconds"), 2),
            _num(a.get("roc_auc")),
            _num(b.get("roc_auc")),
        ]
        for k, (a, b) in enumerate(zip(runs.get("a", []), runs.get("b", [])))
    ]
    return [
        f"**LoRA fit, A = {d.get('a_label', 'A')}, B = {d.get('b_label', 'B')}** (`{name}`; {_where(d, name)}; "
        f"{d.get('train_rows')} training rows, {d.get('epochs')} epoch, whole process per run; median ratio "
        f"B/A {_num(summary.get('median_process_ratio'), 2)}, largest per-step loss difference "
        f"{_num(summary.get('max_abs_loss_difference'), 4)})",
        "",
        *_table(["pair", "A process s", "B process s", "B/A", "A step s", "B step s", "A ROC-AUC", "B ROC-AUC"], rows),
    ]


def _same(a, b) -> bool:
    """Equal parameter values, NaN equal to NaN (XGBoost's ``missing=nan`` is its default, not a change)."""
    return a == b or (isinstance(a, float) and isinstance(b, float) and a != a and b != b)


def _leads_use(name: str, d: dict) -> list[str]:
    """``bench leads --use``: each approach on the table's fields, its text and both, and both minus the better part
    (paired bootstrap on the same test rows)."""
    rows = []
    for approach, entry in (d.get("approaches") or {}).items():
        worth = entry.get("both_vs_best_part") or {}
        for use, m in (entry.get("uses") or {}).items():
            low, high = (m.get("intervals") or {}).get("roc_auc") or (None, None)
            said = (
                f"{worth['value']:+.3f} [{worth['low']:+.3f}, {worth['high']:+.3f}] vs {worth['both_minus']}"
                if use == "both" and worth
                else ""
            )
            rows.append(
                [
                    approach,
                    use,
                    f"{_num(m.get('roc_auc'))} [{_num(low)}, {_num(high)}]",
                    _num(m.get("pr_auc")),
                    said,
                    _num(m.get("fit_seconds"), 1),
                ]
            )
    return [
        f"**Leads: what the text is worth** (`bench leads --use`, {d.get('dataset')}, text columns "
        f"{', '.join(d.get('text_columns') or [])}; `{name}`; {_where(d, name)})",
        "",
        *_table(
            ["approach", "use", "ROC-AUC [95 % CI]", "PR-AUC", "both minus the better part (paired)", "fit s"], rows
        ),
    ]


def _curve_params(d: dict) -> str:
    """``; embeddings: fine_tune=False``: the parameters of the curve's approaches that are not their defaults."""
    parts = []
    for approach, entry in (d.get("approaches") or {}).items():
        try:
            defaults = jsonable(get_approach_class(approach)().get_params(), fallback=str)
        except (KeyError, ImportError, TypeError):
            defaults = {}
        changed = {
            k: v for k, v in (entry.get("params") or {}).items() if k not in defaults or not _same(defaults[k], v)
        }
        if changed:
            parts.append(f"{approach}: " + ", ".join(f"{k}={v}" for k, v in sorted(changed.items())))
    return "; " + "; ".join(parts) if parts else ""


def _curve(name: str, d: dict) -> list[str]:
    """A learning curve (``bench curve``): per approach and size, seed 0's ROC-AUC with its interval, the spread
    across the draws, accuracy and fit time."""
    first = {(p["approach"], p["size"]): p for p in d.get("points", []) if p.get("seed") == 0}
    rows = []
    for s in d.get("spread", []):
        p = first.get((s["approach"], s["size"]), {})
        low, high = p.get("roc_auc_ci") or (None, None)
        across = f"{s['roc_auc_min']:.3f}-{s['roc_auc_max']:.3f}" if s.get("seeds", 1) > 1 else "-"
        rows.append(
            [
                s["approach"],
                _num(s["size"]),
                _num(s.get("seeds")),
                f"{_num(p.get('roc_auc'))} [{_num(low)}, {_num(high)}]",
                across,
                _num(p.get("accuracy")),
                _num(p.get("fit_seconds"), 1),
            ]
        )
    return [
        f"**Learning curve** (`bench curve` on {d.get('dataset')}, {_num(d.get('test_rows'))} test rows{_curve_params(d)}; `{name}`; "
        f"{_where(d, name)}). {d.get('seeds_note', '')}",
        "",
        *_table(
            [
                "approach",
                "training rows",
                "draws",
                "ROC-AUC, draw 0 [95 % CI]",
                "ROC-AUC across draws",
                "accuracy",
                "fit s",
            ],
            rows,
        ),
    ]


def _scale(name: str, d: dict) -> list[str]:
    points = d.get("points", [])
    rows = [
        [
            _num(p.get("rows")),
            _num(p.get("train_rows")),
            _num(p.get("fit_seconds"), 1),
            _num(p.get("fit_cpu_seconds"), 0),
            _num(p.get("train_seconds"), 1),
            _num(p.get("peak_rss_gb"), 2),
            _num(p.get("score_rows_per_second"), 0),
            _num(p.get("score_one_ms"), 2),
            _num(p.get("roc_auc"), 4),
            _num((p.get("load_after") or [None])[0], 1),
        ]
        for p in points
    ]
    targets, met = d.get("targets", {}), d.get("met", {})
    said = ", ".join(f"{key} {_num(targets.get(key), 0)}: {'met' if ok else 'missed'}" for key, ok in met.items())
    return [
        f"**The stack by size** (`bench scale`, `{name}`; {_where(d, name)})",
        "",
        *_table(
            [
                "leads",
                "training rows",
                "fit s",
                "fit CPU s",
                "train s",
                "peak GB",
                "rows/s",
                "one lead ms",
                "ROC-AUC",
                "load after",
            ],
            rows,
        ),
        *(["", f"1,000,000 leads against the targets: {said}."] if said else []),
    ]


def render(bench_dir: Path = BENCH_DIR) -> str:
    """The generated part of RESULTS.md, from every JSON file in ``bench_dir``."""
    blocks = []
    for path in sorted(bench_dir.glob("*.json")):
        d = json.loads(path.read_text())
        kind = path.stem.split("_", 1)[0]
        if path.stem.startswith("leads_use"):
            blocks.append(_leads_use(path.name, d))
        elif path.stem.startswith("api_memory"):
            blocks.append(_api_memory(path.name, d))
        elif path.stem.startswith("lora_fit"):
            blocks.append(_lora_fit(path.name, d))
        elif kind == "api":
            blocks.append(_api(path.name, d))
        elif path.stem.startswith("score_chunked"):
            blocks.append(_score_chunked(path.name, d))
        elif kind == "score":
            blocks.append(_score(path.name, d))
        elif kind == "curve":
            blocks.append(_curve(path.name, d))
        elif kind == "transcripts":
            blocks.append(_transcripts(path.name, d))
        elif kind == "scale":
            blocks.append(_scale(path.name, d))
        elif kind in ("lora", "leads"):
            title = {"lora": "Leads: LoRA", "leads": "Leads: stack"}[kind]
            blocks.append(_models(title, path.name, d))
    body = "\n\n".join("\n".join(b) for b in blocks)
    return f"{START}\n<!-- generated by `python -m engine.benchmarks.report` from assets/bench/*.json -->\n\n{body}\n\n{END}"


def update(results: Path = RESULTS, bench_dir: Path = BENCH_DIR, check: bool = False) -> bool:
    """Rewrite the generated part of ``results`` (or, with ``check``, only say whether it is current)."""
    text = results.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{results} has no {START} ... {END} block to fill in")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = head + render(bench_dir) + tail
    if check:
        return new == text
    results.write_text(new)
    return True


if __name__ == "__main__":  # pragma: no cover - exercised through update() in the tests
    current = update(check="--check" in sys.argv[1:])
    if not current:
        print(f"{RESULTS} is stale: run `python -m engine.benchmarks.report`", file=sys.stderr)
    raise SystemExit(0 if current else 1)
