"""A blend run: stored lead runs on the same dataset and split, combined by a logistic regression on their logits
(or by weights) fitted on their calibration slice only, then evaluated on the test rows like any run.

Every lead run keeps the same calibration slice of the protocol's training rows out of its fit and stores its
predictions there (``calibration.csv``, :func:`engine.evaluate.calibration_slice`); its test predictions are in
``predictions.csv``. :func:`blend_runs` reads the parts' slice predictions to fit the combiner and nothing else,
then applies it to their test predictions for the blend's metrics, with each part beside it and a paired bootstrap
interval of the blend's ROC-AUC minus the best single part's. The run it stores holds a
:class:`engine.approaches.blend.BlendApproach` (the part ids and the combiner): it scores and explains new leads
through the same scoring service as any run, loading its parts from the store.

Refused, each with a line naming the run and the fix: fewer than two distinct runs, a run named twice, an unknown
id, a run that does not load, a transcripts run, a blend inside a blend (blend its parts instead), runs on
different datasets, splits or slices, runs with different feature columns, and a run without a calibration slice
(one trained before slices existed or with a share of 0: train it again).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine.evaluate import ScoreScale, compute_metrics, curve_data, paired_difference, time_scoring
from engine.runs import Run, RunStore
from engine.runspec import RunSpec
from engine.verdicts import difference_verdict

#: Bootstrap resamples of the paired interval of the blend minus the best single part.
PAIRED_BOOT = 2000


def _check_parts(store: RunStore, run_ids: list[str]) -> list[Run]:
    if isinstance(run_ids, str) or not isinstance(run_ids, (list, tuple)):
        raise ValueError("give the runs to blend as a list of run ids")
    seen: set[str] = set()
    for run_id in run_ids:
        if run_id in seen:
            raise ValueError(f"run {run_id} is named twice; name each run to blend once")
        seen.add(run_id)
    if len(run_ids) < 2:
        raise ValueError(
            f"a blend needs at least two runs, got {len(run_ids)} ({', '.join(map(str, run_ids)) or 'none'}); "
            "name two or more lead runs on the same dataset (`python -m engine runs` lists them)"
        )
    parts = [store.get(run_id) for run_id in run_ids]  # KeyError naming an unknown id, BrokenRun a damaged one
    first = parts[0].settings
    for run in parts:
        s = run.settings
        if s.approach == "blend":
            raise ValueError(f"run {run.id} is a blend itself; a blend is not blended again: blend its parts instead")
        if s.input_kind != "leads":
            raise ValueError(f"run {run.id} was trained on {s.input_kind}; a blend takes lead runs only")
        if s.split is None or not s.split.has_calibration or run.calibration() is None:
            raise ValueError(
                f"run {run.id} kept no calibration slice (trained before slices existed, or with a calibration "
                "share of 0), so it cannot be blended; train it again with the default calibration share"
            )
    for run in parts[1:]:
        s = run.settings
        if s.data_hash != first.data_hash:
            raise ValueError(
                f"runs {parts[0].id} and {run.id} were trained on different datasets ({first.dataset!r}, "
                f"{s.dataset!r}); blend runs on the same dataset"
            )
        if s.split_key != first.split_key or s.split.calibration_hash != first.split.calibration_hash:
            raise ValueError(
                f"runs {parts[0].id} and {run.id} were scored on different splits or calibration slices "
                f"({first.split.describe()}; {s.split.describe()}); blend runs trained with the same split"
            )
        if (s.columns, s.kinds, s.missing_values, s.target) != (
            first.columns,
            first.kinds,
            first.missing_values,
            first.target,
        ):
            raise ValueError(
                f"runs {parts[0].id} and {run.id} read different columns (leak policy, exclusions or missing-value "
                "codes differ), so new leads cannot be prepared once for both; blend runs trained on the same columns"
            )
    return parts


def _aligned(parts: list[Run], frames: list, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row ids, labels, rows x parts probabilities) from each part's table of ``what`` rows, checked to be the
    same rows with the same labels."""
    ids = [frame["row_id"].astype(str).to_numpy() for frame in frames]
    labels = [frame["y_true"].to_numpy().astype(int) for frame in frames]
    for run, i, y in zip(parts[1:], ids[1:], labels[1:]):
        if not (np.array_equal(i, ids[0]) and np.array_equal(y, labels[0])):
            raise ValueError(
                f"run {run.id}'s {what} rows are not those of run {parts[0].id}; blend runs of the same split"
            )
    return ids[0], labels[0], np.column_stack([frame["proba"].to_numpy(float) for frame in frames])


def blend_runs(
    run_ids: list[str], method: str = "logistic", name: str | None = None, store: RunStore | None = None
) -> Run:
    """Fit a blend of ``run_ids`` on their calibration slice, evaluate it on their test rows and store it as a run
    (approach ``blend``; ``name`` its label on the board). See the module's doc for what is refused."""
    from engine.approaches.blend import METHODS, BlendApproach  # heavy: loads scikit-learn

    if method not in METHODS:
        raise ValueError(f"blend method must be one of {', '.join(METHODS)}, not {method!r}")
    store = store or RunStore()
    parts = _check_parts(store, list(run_ids))
    models = [run.load_approach() for run in parts]  # BrokenRun naming a part whose model does not load

    started = time.perf_counter()
    cal_ids, y_cal, P_cal = _aligned(parts, [run.calibration() for run in parts], "calibration")
    if len(np.unique(y_cal)) < 2:
        raise ValueError("the calibration slice holds one outcome only; train the parts on more rows")
    blend = BlendApproach(parts=tuple(run.id for run in parts), method=method).fit_combiner(P_cal, y_cal)
    fit_seconds = time.perf_counter() - started
    blend.part_models_ = models

    test_ids, y_test, P_test = _aligned(parts, [run.predictions() for run in parts], "test")
    proba = blend.combine(P_test)
    metrics: dict[str, Any] = {"metrics": compute_metrics(y_test, proba), "fit_seconds": fit_seconds}
    variants = {}
    for k, run in enumerate(parts):
        variants[run.id] = compute_metrics(y_test, P_test[:, k], n_boot=200)
        variants[run.id]["paired_vs_run"] = {"roc_auc": paired_difference(y_test, P_test[:, k], proba, n_boot=500)}
    metrics["variants"] = variants
    aucs = [variants[run.id]["roc_auc"]["value"] for run in parts]
    best = int(np.argmax(aucs))
    metrics["blend"] = {
        "method": method,
        "calibration_rows": int(len(y_cal)),
        "parts": [
            {"run_id": run.id, "approach": run.settings.approach, "label": run.label, "weight": w, "roc_auc": auc}
            for run, w, auc in zip(parts, blend.coef_.tolist(), aucs)
        ],
        "intercept": float(blend.intercept_),
        "best_part": parts[best].id,
        "paired_vs_best": paired_difference(y_test, proba, P_test[:, best], "roc_auc", n_boot=PAIRED_BOOT),
    }
    cal_proba = blend.combine(P_cal)
    scale = ScoreScale.from_training(cal_proba)  # the 1-99 score: the percentile among the slice's leads
    metrics.update(scale.to_metrics())

    first = parts[0].settings.as_dict()
    keep = ("columns", "kinds", "target", "policy", "excluded", "dropped", "flagged", "missing_values", "split")
    spec = RunSpec.new(
        input_kind="leads",
        approach=blend.name,
        params=blend.stored_params(),
        dataset=parts[0].settings.dataset,
        data_hash=parts[0].settings.data_hash,
        rows=parts[0].settings.rows,
        warnings=[],
        **{key: first[key] for key in keep if key in first},
    )
    run = store.stage_run(spec)
    try:
        run.save_model(blend)
        _copy_profile(parts[0], run)
        metrics.update(_timing(blend, parts[0]))
        run.save_predictions(test_ids, y_test, proba)
        run.save_calibration(cal_ids, y_cal, cal_proba)
        run.save_curves(curve_data(y_test, proba, scale=scale))
        run.save_metrics(metrics)  # last: a run is complete once metrics.json exists
        store.publish(run)
    except BaseException:
        store.discard(run)
        raise
    if name:
        run.set_label(name)
    return run


def _copy_profile(part: Run, run: Run) -> None:
    """The first part's training profile and sample (every part read the same columns of the same rows): what
    scoring checks new rows against and the shift check compares them with."""
    from engine.scoring import PROFILE_FILE, TRAIN_SAMPLE_FILE  # heavy: loads pandas

    for name in (PROFILE_FILE, TRAIN_SAMPLE_FILE):
        source = part.path / name
        if source.exists():
            run.save_file(name, lambda tmp, source=source: tmp.write_bytes(source.read_bytes()))


def _timing(blend, part: Run) -> dict[str, float]:
    """Scoring speed of the blend (all its parts) on the first part's sample of training rows, when it has one."""
    from engine.scoring import load_training_sample  # heavy: loads pandas

    sample = load_training_sample(part)
    if sample is None or not len(sample):
        return {}
    return time_scoring(blend, sample[[c for c in part.settings.columns if c in sample.columns]])


def blend_rows(runs: list[Run], labels: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The board's lines of the blends among ``runs``: each blend's name, method, its parts (by their name on the
    board, ``labels``, else their id) with their weights, its ROC-AUC and its ROC-AUC minus the best single
    part's with the paired 95 % interval, in words."""
    labels = labels or {}
    out = []
    for run in runs:
        info = run.metrics.get("blend") if run.settings.approach == "blend" else None
        if not isinstance(info, dict):
            continue
        auc = (run.metrics.get("metrics") or {}).get("roc_auc") or {}
        d = info.get("paired_vs_best") or {}
        best = labels.get(info.get("best_part"), info.get("best_part"))
        verdict = difference_verdict(d)
        out.append(
            {
                "blend": labels.get(run.id, run.id),
                "method": "logistic regression on logits" if info.get("method") == "logistic" else "weights",
                "parts": "; ".join(
                    f"{labels.get(p['run_id'], p['run_id'])} ({p['weight']:+.2f})" for p in info.get("parts", [])
                ),
                "roc_auc": f"{auc.get('value', float('nan')):.3f}",
                "vs_best": f"{d.get('value', float('nan')):+.3f} [{d.get('low', float('nan')):+.3f}, "
                f"{d.get('high', float('nan')):+.3f}] vs {best}: {verdict}",
            }
        )
    return out


def blend_findings(runs: list[Run], labels: dict[str, str] | None = None) -> list[str]:
    """The board's sentence on each blend among ``runs``: whether combining the approaches adds anything over the
    best single part, by the paired 95 % interval of the ROC-AUC difference on the same test rows."""
    labels = labels or {}
    out = []
    for run in runs:
        info = run.metrics.get("blend") if run.settings.approach == "blend" else None
        d = (info or {}).get("paired_vs_best") or {}
        if not all(isinstance(d.get(k), (int, float)) for k in ("value", "low", "high")):
            continue
        best = labels.get(info.get("best_part"), info.get("best_part"))
        said = {
            "better": "so combining the approaches adds something here",
            "worse": "so the blend is worse than its best part alone",
            "no clear difference": "an interval that holds 0, so combining them adds nothing clear over the best part alone",
        }[difference_verdict(d)]
        out.append(
            f"The blend {labels.get(run.id, run.id)} is {d['value']:+.3f} ROC-AUC against its best part, {best} "
            f"(paired 95 % interval {d['low']:+.3f} to {d['high']:+.3f}), {said}."
        )
    return out
