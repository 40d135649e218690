"""Retrain with outcomes: the live run's configuration trained again, as a job, on a new version of its dataset that
holds the outcomes that came back.

* :func:`outcome_rows` — the leads of the stored lists (:mod:`engine.scored_lists`) whose outcome came back
  (:class:`engine.outcomes.OutcomeStore`), with the dataset's columns and its outcome column filled (in the dataset's
  own words: 1/0, Yes/No...); a lead already in the dataset is not added again.
* :func:`outcome_version` — the dataset's rows plus those rows, stored as its next version
  (:meth:`engine.datasets.DatasetStore.add_version`; earlier versions are kept and can be scored against).
* :func:`retrain_live` — both, then a :class:`engine.jobspec.TrainSpec` built from the live run's settings
  (approach, parameters, target, leak policy, numbers read as missing, split) on the new version, submitted with
  :meth:`engine.jobs.JobRunner.submit_train`. The run the job stores records the version it saw: its ``data_hash``
  is the version's sha256, and its dataset name ends in ``vN``.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from engine.approaches.registry import get_approach_class
from engine.data.leads import read_table
from engine.data.leads.target import map_target
from engine.datasets import DatasetStore, content_hash, version_number
from engine.jobs import JobRunner
from engine.jobspec import TrainSpec
from engine.live import LiveStore, family_of
from engine.outcomes import OutcomeStore, _keys, list_id_columns
from engine.runs import RunStore
from engine.scored_lists import ScoredStore
from engine.scoring import identifier_columns


class RetrainError(ValueError):
    """A retraining that cannot be done as asked; the message names the problem and the fix."""


def _outcome_words(values: pd.Series) -> tuple[object, object]:
    """How the dataset writes a converted and a lost lead in its outcome column (``(1, 0)``, ``("Yes", "No")``...)."""
    filled = values.dropna()
    if pd.api.types.is_numeric_dtype(values) or filled.empty:
        return 1, 0
    y, _ = map_target(filled)
    seen = filled.to_numpy()
    yes = seen[np.flatnonzero(y == 1)[0]] if (y == 1).any() else 1
    no = seen[np.flatnonzero(y == 0)[0]] if (y == 0).any() else 0
    return yes, no


def outcome_rows(
    base: pd.DataFrame, target: str, run, known: pd.DataFrame, scored_store=None, family: str | None = None
) -> tuple[pd.DataFrame, dict]:
    """The stored lists' leads with a known outcome that ``base`` does not hold yet, as rows of ``base``'s columns
    (the outcome in ``target``), newest list first; and counts (``lists``, ``with_outcome``, ``already_in``). Only
    the lists of ``run``'s dataset family (:func:`engine.live.family_of`) or of ``family`` (the one it is live for)
    are read: another family's leads are another table's (a list stored before families were recorded is read as
    before)."""
    store = scored_store if scored_store is not None else ScoredStore()
    ids = identifier_columns(run, base.columns)
    if not ids:
        raise RetrainError(
            f"the leads run {run.id} was trained on have no id column (such as Prospect ID), so the outcomes that "
            "came back cannot be matched to them. Fix: make live a run trained on a lead table with an id column, "
            "then retrain."
        )
    id_col = ids[0]
    in_base = set(_keys(base[id_col]))
    yes, no = _outcome_words(base[target])
    outcome = dict(zip(known["id"], known["outcome"]))
    parts, lists = [], 0
    families = {None, family_of(run.settings), family}
    for meta in store.list():  # newest first
        if meta.get("family") not in families:
            continue
        path = store.path(meta["sha256"])
        table = pd.read_csv(path)
        if id_col not in list_id_columns(meta, [str(c) for c in table.columns]):
            continue
        keys = _keys(table[id_col])
        has = keys.map(lambda k: k in outcome).to_numpy(dtype=bool)
        if not has.any():
            continue
        lists += 1
        rows = table.loc[has, [c for c in base.columns if c in table.columns and c != target]].copy()
        rows[target] = [yes if outcome[k] else no for k in keys[has]]
        parts.append(rows.assign(_key=keys[has].to_numpy()))
    if not parts:
        return base.iloc[:0], {"lists": 0, "with_outcome": 0, "already_in": 0}
    every = pd.concat(parts, ignore_index=True).drop_duplicates("_key", keep="first")
    fresh = every[~every["_key"].isin(in_base)].drop(columns="_key")
    counts = {"lists": lists, "with_outcome": int(len(every)), "already_in": int(len(every) - len(fresh))}
    return fresh.reindex(columns=base.columns), counts


def outcome_version(dataset, run, known: pd.DataFrame, dataset_store, scored_store=None, family=None) -> tuple:
    """``(new version, counts)``: ``dataset``'s rows plus :func:`outcome_rows`, stored as its next version."""
    base = read_table(io.BytesIO(dataset.read_bytes()), filename=dataset.filename)
    target = run.settings.target or dataset.meta.get("target")
    if not target or target not in base.columns:
        raise RetrainError(
            f"the outcome column of live run {run.id} ({target or 'none recorded'}) is not a column of dataset "
            f"{dataset.name!r}, so the outcomes cannot be added to it. Fix: make live a run trained on that dataset "
            "with its outcome column, or upload the table it was trained on again (Data page), then retrain."
        )
    new, counts = outcome_rows(base, target, run, known, scored_store, family)
    if new.empty:
        raise RetrainError(
            f"no outcome came back for leads that dataset {dataset.name!r} does not hold already ({counts['with_outcome']:,}"
            " leads with an outcome were found in the scored lists). Fix: upload the outcomes of leads scored since "
            "(`python -m engine outcomes --data won_lost.csv`, or the Monitoring page), then retrain."
        )
    data = pd.concat([base, new], ignore_index=True).to_csv(index=False).encode("utf-8")
    origin = {"run_id": run.id, "rows_before": int(len(base)), "rows_added": int(len(new)), **counts}
    return dataset_store.add_version(dataset.sha, data, origin=origin), {**counts, "rows_added": int(len(new))}


def _dataset_of(run, dataset_store, data=None):
    """The stored dataset ``run`` was trained on (by its data hash); else ``data`` (a path the user names) when it
    holds exactly those bytes, then stored so that versions can be added to it."""
    from pathlib import Path

    s = run.settings
    found = dataset_store.find(s.data_hash) if s.data_hash else None
    if found is not None:
        return found
    if data is None:
        raise RetrainError(
            f"the table live run {run.id} was trained on ({s.dataset or 'unnamed'}, {str(s.data_hash)[:12]}) is not "
            "among the uploaded datasets (it was trained from a file on the command line), so there is nothing to "
            "add the outcomes to. Fix: upload that file on the Data page, or name it (`retrain --live --data FILE`), "
            "then retrain."
        )
    path = Path(data)
    if content_hash(path.read_bytes()) != s.data_hash:
        raise RetrainError(
            f"{path.name} is not the file live run {run.id} was trained on: its contents differ from "
            f"{s.dataset or 'that file'} (fingerprint {str(s.data_hash)[:12]}), e.g. it was edited or re-exported "
            "since. Fix: name the very file the run was trained on, unchanged."
        )
    return dataset_store.add(path, kind="leads", name=s.dataset or path.stem, target=s.target)


def retrain_params(run) -> dict:
    """The parameters of ``run`` as a training job takes them. A stack records its base models' classes as
    ``estimators`` (``[[name, "module.Class"], ...]``), which is not a setting one can hand over as data: when they
    are the four that ship, the record is left out (the job builds those same four); base models set from Python
    cannot be rebuilt from a record, so such a run is refused with the fix, as is any other setting the approach
    no longer takes."""
    s = run.settings
    cls = get_approach_class(s.approach)
    params = dict(s.params)
    if "estimators" in params and cls.data_param("estimators") is None:
        from engine.approaches._stack_params import default_estimators

        shipped = [[name, f"{type(m).__module__}.{type(m).__qualname__}"] for name, m in default_estimators()]
        if params["estimators"] == shipped:
            del params["estimators"]
    unknown = sorted(key for key in params if cls.data_param(key) is None)
    if unknown:
        raise RetrainError(
            f"live run {run.id} was trained with settings a job cannot repeat ({', '.join(unknown)}: base models set "
            "from Python, or settings this version no longer takes). Fix: train that configuration again from "
            "Python on the new data, or make live a run trained from the Train page or the command line."
        )
    return params


def retrain_spec(run, dataset):
    """The :class:`engine.jobspec.TrainSpec` of ``run``'s configuration on ``dataset`` (a version)."""
    s = run.settings
    split = s.split
    return TrainSpec(
        input_kind=s.input_kind,
        data=str(dataset.raw_path),
        approach=s.approach,
        params=retrain_params(run),
        target=s.target,
        leak_policy=s.policy or "default",
        exclude=[c for c in s.excluded],
        missing_values=dict(s.missing_values),
        kinds=dict(s.kinds_set),
        kinds_source=s.kinds_source or "request",
        dataset_name=f"{dataset.meta.get('name') or dataset.sha[:12]} v{version_number(dataset)}",
        test_size=split.test_size if split and split.test_size else 0.3,
        split_seed=split.seed if split and split.seed is not None else 42,
        split="time" if split and split.method == "time" else "stratified",
        time_column=split.column if split and split.method == "time" else None,
    )


def retrain_live(
    kind: str = "leads",
    family: str | None = None,
    runner=None,
    run_store=None,
    dataset_store=None,
    outcomes_store=None,
    scored_store=None,
    data=None,
) -> dict:
    """Retrain the live run of ``kind`` on its dataset plus the outcomes that came back, as a job; ``{"job_id",
    "run_id", "dataset", "version", ...counts}``. RetrainError (nothing stored, nothing queued) when no live run is
    set, no outcome came back, or none is of a lead its dataset does not hold. ``family``: the dataset family whose
    live run is retrained (needed when several are live: :class:`engine.live.FamilyChoice`). ``data``: the file the
    run was trained on, when it is not in the dataset store (a run trained from the command line)."""
    if kind != "leads":
        raise RetrainError(
            f"retraining with outcomes is for lead runs (won/lost outcomes are matched to lead ids), not {kind}. "
            "Fix: retrain --live --kind leads, or train a new transcripts run on the calls (`python -m engine train "
            "transcripts`)."
        )
    run_store = run_store if run_store is not None else RunStore()
    found = LiveStore.beside(run_store).live_run(run_store, kind, family)
    if found is None:
        raise RetrainError(
            f"no live {kind} run is set, so there is no configuration to train again. Fix: make a run live first "
            "(`python -m engine deploy RUN_ID`, or Make live on the Metric board)."
        )
    run = found[0]
    retrain_params(run)  # a configuration a job cannot repeat is refused before a dataset version is stored
    known, _ = (outcomes_store if outcomes_store is not None else OutcomeStore()).known()
    if known.empty:
        raise RetrainError(
            "no outcomes came back yet, so a retraining would learn nothing new. Fix: upload won/lost outcomes of "
            "scored leads (`python -m engine outcomes --data won_lost.csv`, or the Monitoring page), then retrain."
        )
    dataset_store = dataset_store if dataset_store is not None else DatasetStore()
    dataset = _dataset_of(run, dataset_store, data)
    version, counts = outcome_version(dataset, run, known, dataset_store, scored_store, found[1]["family"])
    spec = retrain_spec(run, version)
    runner = runner if runner is not None else JobRunner()
    job_id = runner.submit_train(spec, name=f"retrain {run.settings.approach} with outcomes ({spec.dataset_name})")
    return {
        "job_id": job_id,
        "run_id": run.id,
        "family": found[1]["family"],
        "dataset": version.sha,
        "dataset_name": spec.dataset_name,
        "version": version_number(version),
        **counts,
    }
