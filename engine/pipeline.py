"""Train -> evaluate -> store, the one path every entry point (CLI, jobs, dashboard) takes.

Every approach on a dataset is fitted on the protocol's training rows and scored on the same
test rows (stratified 70/30, seed 42 by default), so runs on one dataset compare like with like.
A lead table with a date column can be split by time instead (``time_column``): the newest 30 % are the
test rows (:func:`engine.evaluate.time_split`), which no part of the fit sees (the stack's out-of-fold
rows and any calibration rows come from the training part, the only rows the approach is given).
"""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.approaches.base import FitRows
from engine.approaches.bounds import check_range
from engine.approaches.registry import approach_names, get_approach_class
from engine.audit import audit_frame
from engine.callbacks import Callback, CallbackList, PhaseTracker, TrainingCancelled
from engine.data.leads import load_leads, parse_missing_values
from engine.data.transcripts import load_transcripts
from engine.data.uses import apply_use
from engine.evaluate import (
    CALIBRATION_SHARE,
    ScoreScale,
    calibration_slice,
    compute_metrics,
    curve_data,
    paired_difference,
    protocol_split,
    slice_hash,
    time_scoring,
    time_split,
)
from engine.runs import Run, RunStore, explain_rows, explain_sample
from engine.runspec import RunSpec

DEFAULT_TEST_SIZE = 0.3
DEFAULT_SPLIT_SEED = 42
#: Rows of training data scored to place the priority tiers (quartiles of training scores).
TIER_SAMPLE = 400


def build_approach(name: str, params: dict[str, Any] | None = None, input_kind: str | None = None):
    """The one factory of approaches: instantiate ``name`` with ``params`` as :func:`check_params` checks them."""
    checked = check_params(name, params, input_kind)  # an unknown name is a ValueError here, before any import
    return get_approach_class(name)(**checked)


def check_params(name: str, params: dict[str, Any] | None = None, input_kind: str | None = None) -> dict[str, Any]:
    """``params`` of the approach ``name`` checked (the one check, made before anything is stored): parameters it
    does not take are refused (never silently ignored), values of the wrong type or outside their range
    (:mod:`engine.approaches.bounds`) too; ``input_kind`` (when given) must be one it takes. Returns the values
    converted as :func:`check_param` does; None values are left out (the approach's default)."""
    if not isinstance(name, str) or name not in approach_names():
        raise ValueError(f"Unknown approach {name!r}; choose one of {sorted(approach_names())}")
    cls = get_approach_class(name)
    if input_kind is not None and input_kind not in cls.input_kinds:
        raise ValueError(f"The {name!r} approach does not take {input_kind}; it takes {', '.join(cls.input_kinds)}")
    params = {k: v for k, v in (params or {}).items() if v is not None}
    known = {key: cls.data_param(key) for key in params}
    unknown = [key for key, parameter in known.items() if parameter is None]
    if unknown:
        raise ValueError(
            f"The {name!r} approach has no parameter(s) {sorted(unknown)}; "
            f"its parameters are: {', '.join(cls.data_params())}" + (f". {cls.param_hint}" if cls.param_hint else "")
        )
    return {key: check_param(name, known[key], value) for key, value in params.items()}


#: Annotation names (``from __future__ import annotations`` leaves them as text) -> the types they accept.
_TYPE_NAMES = {"int": int, "float": float, "bool": bool, "str": str}


def _expected_types(parameter: inspect.Parameter) -> tuple[set[type], bool] | None:
    """The types a constructor parameter takes and whether it takes None, from its annotation when it has a
    plain one (``int``, ``float | None``...), else from its default; None when anything goes (``Any``, an
    annotation not understood here, or a None default without annotation)."""
    annotation, default = parameter.annotation, parameter.default
    if annotation is not inspect.Parameter.empty:
        parts = [p.strip() for p in str(getattr(annotation, "__name__", annotation)).split("|")]
        allows_none = "None" in parts or default is None
        names = [p for p in parts if p != "None"]
        if not names or any(n not in _TYPE_NAMES for n in names):
            return None
        return {_TYPE_NAMES[n] for n in names}, allows_none
    if default is None or default is inspect.Parameter.empty:
        return None
    if isinstance(default, tuple) and all(isinstance(v, str) for v in default):
        return {tuple}, False
    for t in (bool, int, float, str):  # bool first: it is an int too
        if isinstance(default, t):
            return {t}, False
    return None


def check_param(approach: str, parameter: inspect.Parameter, value: Any) -> Any:
    """``value`` for this approach parameter, checked against the type of the constructor's default (or its
    annotation): a whole float becomes an int where an int is expected, an int a float, a list of text a
    tuple. Anything else of the wrong type raises ValueError naming the parameter, the value and the type, and
    so does a value outside the parameter's range (:func:`engine.approaches.bounds.check_range`)."""
    return check_range(approach, parameter.name, _typed(approach, parameter, value))


def _typed(approach: str, parameter: inspect.Parameter, value: Any) -> Any:
    expected = _expected_types(parameter)
    if expected is None:
        return value
    types, allows_none = expected
    if value is None and allows_none:
        return value
    if not isinstance(value, bool):
        if int in types and isinstance(value, float) and value.is_integer():
            return int(value)
        if float in types and isinstance(value, (int, float)):
            return value
        if int in types and isinstance(value, int):
            return value
    if bool in types and isinstance(value, bool):
        return value
    if str in types and isinstance(value, str):
        return value
    if tuple in types and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    wanted = " or ".join(
        {
            bool: "true/false",
            int: "a whole number",
            float: "a number",
            str: "text",
            tuple: 'a list of text, e.g. ["a", "b"]',
        }[t]
        for t in sorted(types, key=str)
    )
    if allows_none:
        wanted += " or null"
    default = list(parameter.default) if isinstance(parameter.default, tuple) else parameter.default
    raise ValueError(
        f"Parameter {parameter.name!r} of the {approach!r} approach takes {wanted}, "
        f"got {value!r} ({type(value).__name__}); its default is {json.dumps(default)}."
    )


def variant_probas(model, X: pd.DataFrame) -> dict[str, np.ndarray]:
    """Scores of the parts an approach is made of (a stack's base models, generic embeddings): its hook."""
    return {name: np.asarray(p) for name, p in model.variant_probas(X).items()}


def fit_evaluate_store(
    model,
    X: pd.DataFrame,
    y: np.ndarray,
    row_ids,
    fields: dict,
    *,
    callbacks: list[Callback] | None = None,
    store: RunStore | None = None,
    test_size: float = DEFAULT_TEST_SIZE,
    seed: int = DEFAULT_SPLIT_SEED,
    times: np.ndarray | None = None,
    time_column: str | None = None,
    calibration_share: float | None = None,
) -> Run:
    """Split (stratified, or by ``times`` when given: the time split on ``time_column``), fit on the training
    rows only, evaluate on the test rows and store the run with its split in the spec.

    A lead run keeps its calibration slice out of the fit (``calibration_share`` of the training rows, by default
    :data:`engine.evaluate.CALIBRATION_SHARE`; 0 for none, the default for transcripts): the same rows for every
    approach on the dataset and split, scored and stored as ``calibration.csv`` (what a blend is fitted on); an
    approach that calibrates itself (LoRA) calibrates on that slice instead of rows of its own."""
    store = store or RunStore()
    if times is None:
        train_idx, test_idx = protocol_split(y, test_size=test_size, seed=seed)
        split = {"method": "stratified holdout", "test_size": float(test_size), "seed": int(seed)}
    else:
        train_idx, test_idx, cutoff = time_split(times, y, test_size=test_size)
        split = {"method": "time", "column": time_column, "cutoff": str(np.datetime_as_string(cutoff, unit="s"))}
        split.update(test_size=float(test_size), seed=int(seed))  # the seed still draws the sample placing the tiers
    if calibration_share is None:
        calibration_share = CALIBRATION_SHARE if fields.get("input_kind", model.input_kind) == "leads" else 0.0
    train_idx, calib_idx = calibration_slice(y, train_idx, calibration_share, seed=seed)
    if len(calib_idx):
        split.update(
            calibration_share=float(calibration_share),
            calibration_rows=int(len(calib_idx)),
            calibration_hash=slice_hash(np.asarray(row_ids)[calib_idx]),
        )
    settings = RunSpec.new(  # checked as the store reads it: a spec it would refuse is never written
        **{"input_kind": model.input_kind, **fields},
        approach=model.name,
        params=model.stored_params(),
        split={**split, "n_train": int(len(train_idx)), "n_test": int(len(test_idx))},
    )
    run = store.stage_run(settings)  # a staging folder, moved into place once complete: a killed training leaves no run
    tracker = PhaseTracker(callbacks)  # every phase reported, so a progress bar ends when the job does
    cbs = tracker.inner
    try:
        X_train, y_train = X.iloc[train_idx], y[train_idx]
        X_test, y_test = X.iloc[test_idx], y[test_idx]
        X_calib, y_calib = X.iloc[calib_idx], y[calib_idx]
        tracker.begin("fit")
        started = time.perf_counter()
        model.fit(
            X_train,
            y_train,
            callbacks=[tracker],
            **({"calibration": (X_calib, y_calib)} if len(calib_idx) else {}),
            **({"kinds": dict(settings.kinds)} if settings.kinds else {}),
        )
        fit_seconds = time.perf_counter() - started
        cbs.on_log(f"fitted in {fit_seconds:.1f} s; scoring {len(test_idx)} test rows")
        steps = 5
        tracker.begin("evaluate", steps, f"scoring {len(test_idx)} test rows")
        proba = np.asarray(model.predict_proba(X_test))[:, 1]
        tracker.advance(1, steps, "metrics with 95 % intervals")
        metrics = {"metrics": compute_metrics(y_test, proba), "fit_seconds": fit_seconds, **model.fit_facts()}
        tracker.advance(2, steps, "timing the scoring")
        metrics.update(time_scoring(model, X_test))
        tracker.advance(3, steps, "scoring the model's parts")
        variants = variant_probas(model, X_test)
        if variants:
            metrics["variants"] = {name: compute_metrics(y_test, p, n_boot=200) for name, p in variants.items()}
            for name, p in variants.items():  # each part minus the whole on the same rows: the board's comparison
                metrics["variants"][name]["paired_vs_run"] = {
                    "roc_auc": paired_difference(y_test, p, proba, "roc_auc", n_boot=500)
                }
        tracker.advance(4, steps, "placing the priority tiers")
        train_scores = getattr(model, "train_proba_", None)  # kept by approaches that have them at hand
        if train_scores is None:
            sample = np.random.default_rng(seed).permutation(len(train_idx))[:TIER_SAMPLE]
            train_scores = np.asarray(model.predict_proba(X_train.iloc[sample]))[:, 1]
        scale = ScoreScale.from_training(train_scores)  # the 1-99 score: the percentile among training leads
        metrics.update(scale.to_metrics())
        tracker.advance(5, steps, "test rows scored")
        # what the run stores beside its model is the approach's to say (a lead table's training profile, the
        # embeddings' maps...): the pipeline names none of it
        rows = FitRows(X, y, np.asarray(row_ids), train_idx, test_idx, settings.input_kind, dict(settings.kinds), seed)
        artifacts = model.after_fit_artifacts(settings.input_kind)
        with_model = [a for a in artifacts if a.phase == "store"]
        afterwards = [a for a in artifacts if a.phase != "store"]
        steps = len(with_model) + 2
        tracker.begin("store", steps, "saving the model")
        run.save_model(model)
        for i, artifact in enumerate(with_model, 1):
            tracker.advance(i, steps, artifact.doing)
            artifact.save(run, model, rows, cbs.on_log)
        tracker.advance(steps - 1, steps, "saving predictions and curves")
        run.save_predictions(np.asarray(row_ids)[test_idx], y_test, proba)
        run.save_curves(curve_data(y_test, proba, scale=scale))
        if len(calib_idx):  # the slice's predictions, the rows a blend is fitted on
            run.save_calibration(
                np.asarray(row_ids)[calib_idx], y_calib, np.asarray(model.predict_proba(X_calib))[:, 1]
            )
        tracker.advance(steps, steps, "saved")
        steps = len(afterwards) + 1
        tracker.begin("explain", steps, "explaining sample test leads")
        _store_explanations(run, model, X, row_ids, test_idx, settings.input_kind, cbs)
        tracker.advance(1, steps, afterwards[0].doing if afterwards else "sample test leads explained")
        for i, artifact in enumerate(afterwards, 2):
            try:
                artifact.save(run, model, rows, cbs.on_log)
            except TrainingCancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - an extra for a page: the run itself is fine without it
                cbs.on_log(f"{artifact.doing}: not stored ({type(exc).__name__}: {exc}); the page will compute it")
            tracker.advance(i, steps, afterwards[i - 1].doing if i < steps else artifact.done or "stored")
        run.save_metrics(metrics)  # written last: a run is complete once metrics.json exists
        store.publish(run)  # one rename: listings see the whole run from now on
    except BaseException:
        # A failed or cancelled training (an error, TrainingCancelled, Ctrl-C, SystemExit) leaves no run
        # folder behind for any listing to show; the error itself goes to the caller (and the job's log).
        # Only the staging folder goes: an interrupt that lands just after the rename leaves the run published.
        store.discard(run)
        raise
    try:
        tracker.finish()  # the bar at its end
    except Exception:  # noqa: BLE001 - a cancel or a failed progress write now comes too late: the run is stored
        pass
    return run


def train_leads(
    data,
    approach: str = "stacking",
    params: dict[str, Any] | None = None,
    *,
    target: str | None = None,
    leak_policy: str = "default",
    exclude: list[str] | None = None,
    include: list[str] | None = None,
    missing_values: dict[str, list[float]] | None = None,
    time_column: str | None = None,
    kinds: dict[str, str] | None = None,
    kinds_source: str = "request",
    use: str = "both",
    **options: Any,
) -> Run:
    """Train one approach on a lead table (path, bytes, file-like or DataFrame) and store the run.
    ``target``, ``leak_policy``, ``exclude``, ``include`` and ``missing_values`` (``{column: [numbers]}``: codes
    read as missing with a flag column, recorded in the spec so that scoring does the same) are
    :func:`engine.data.leads.load_leads`'s; ``time_column`` (a date column) splits by time instead of the
    stratified split; ``use`` (``table`` | ``text`` | ``both``) the part of the table trained on
    (:mod:`engine.data.uses`); ``options`` those of :func:`_train` (callbacks, store, dataset_name, test_size, seed,
    calibration_share). ``kinds`` (``{column: kind}``): kinds the user set over the inferred ones, recorded in the
    spec with ``kinds_source`` (``request``: the training's own; ``dataset``: the dataset's setting)."""
    model = build_approach(approach, params, "leads")
    missing_values = parse_missing_values(missing_values)  # checked where it enters; the layers below take it
    table = load_leads(
        data,
        target=target,
        leak_policy=leak_policy,
        exclude=exclude,
        include=include,
        missing_values=missing_values,
        time_column=time_column,
        kinds=kinds,
    )
    table = apply_use(table, use)  # table | text | both: what is left out is recorded in dropped
    dates = {c: "date (never a feature; it can order the rows for the time split)" for c in table.dates.columns}
    flagged = leak_flags(table)
    fields = {  # the run's spec fields of a lead table (engine.runspec.RunSpec); empty settings are not written
        "target": table.target,
        "policy": table.policy,
        "excluded": list(table.excluded),
        "dropped": {**table.dropped, **dates},
        "kinds": dict(table.kinds),
        **({"missing_values": table.missing_values} if table.missing_values else {}),
        **({"kinds_set": dict(table.kinds_set), "kinds_source": kinds_source} if table.kinds_set else {}),
        **({"flagged": flagged} if flagged else {}),
        "use": use,
    }
    if time_column is not None:
        options.update(times=table.times, time_column=table.time_column)
    return _train(model, "leads", data, table, table.y, table.row_ids, fields, **options)


#: Rows the leak check at training time reads (a sample beyond: the finder's model is quick at this size).
LEAK_CHECK_ROWS = 20_000


def leak_flags(table) -> dict[str, str]:
    """The columns a training is about to use that the leak finder flags firmly (engine.audit), with its reason:
    recorded in the run, so the board, Explain and every reason that cites one say so. A check that fails says
    nothing rather than stopping the training (the Data page and ``audit leads`` still run it in full)."""
    try:
        report = audit_frame(table.X, table.y, table.kinds, max_rows=LEAK_CHECK_ROWS)
    except Exception:  # noqa: BLE001 - the training does not depend on it
        return {}
    reasons = {c["column"]: c.get("reason") or "flagged by the leak finder" for c in report["columns"]}
    return {str(c): str(reasons.get(c, "")) for c in report.get("flagged", []) if c in table.X.columns}


def train_transcripts(data, approach: str = "embeddings", params: dict[str, Any] | None = None, **options: Any) -> Run:
    """Train one approach on labelled transcripts (path, bytes, file-like, or list of records); ``options`` are
    those of :func:`_train` (callbacks, store, dataset_name, test_size, seed)."""
    model = build_approach(approach, params, "transcripts")
    table = load_transcripts(data)
    y = np.asarray(table.y).astype(int)
    return _train(model, "transcripts", data, table, y, np.arange(len(y)), {"target": "label"}, **options)


def _train(
    model,
    input_kind: str,
    data,
    table,
    y: np.ndarray,
    row_ids,
    fields: dict[str, Any],
    callbacks: list[Callback] | None = None,
    store: RunStore | None = None,
    dataset_name: str | None = None,
    test_size: float = DEFAULT_TEST_SIZE,
    seed: int = DEFAULT_SPLIT_SEED,
    times: np.ndarray | None = None,
    time_column: str | None = None,
    calibration_share: float | None = None,
) -> Run:
    """Fit, evaluate and store ``model`` on a loaded table (a lead table or transcripts), with what every run's
    spec says of its table (kind, dataset name, hash, rows, columns, warnings) before ``fields`` (the spec fields
    of its kind of table)."""
    fields = {
        "input_kind": input_kind,
        "dataset": dataset_name or _source_name(data),
        "data_hash": table.data_hash,
        "rows": int(len(y)),
        "columns": list(table.X.columns),
        "warnings": list(getattr(table, "warnings", [])),
        **fields,
    }
    return fit_evaluate_store(
        model,
        table.X,
        y,
        row_ids,
        fields,
        callbacks=callbacks,
        store=store,
        test_size=test_size,
        seed=seed,
        times=times,
        time_column=time_column,
        calibration_share=calibration_share,
    )


def _store_explanations(
    run: Run, model, X: pd.DataFrame, row_ids, test_idx, input_kind: str, cbs: CallbackList
) -> None:
    """Explain the Explain page's default sample of test rows now, so the page opens at once. An approach
    that cannot explain still gets its run (the page then computes, and shows the error there)."""
    sample = explain_sample(test_idx, explain_rows(model.name, input_kind))
    started = time.perf_counter()
    try:
        X_sample = X.iloc[sample]
        table = model.explain(X_sample)
        proba = np.asarray(model.predict_proba(X_sample))[:, 1]
        run.save_explanations(table, np.asarray(row_ids)[sample], proba)
    except Exception as exc:  # noqa: BLE001 - the run itself is fine
        cbs.on_log(f"explanations not stored ({type(exc).__name__}: {exc}); the Explain page will compute them")
        return
    cbs.on_log(f"explained {len(sample)} test rows in {time.perf_counter() - started:.1f} s")


def _source_name(data) -> str:
    if isinstance(data, (str, Path)):
        return Path(data).name
    return getattr(data, "name", None) or type(data).__name__
