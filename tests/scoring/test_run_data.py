"""A run's training frame rebuilt from its dataset file (engine.run_data), as Explain, What-if and Embeddings read
it: the rows, row ids and test rows of a real small stack, and a clear error when the file is gone."""

import json

import numpy as np
import pytest
from support import store_with

from engine.datasets import DatasetStore
from engine.run_data import (
    TrainingDataMissing,
    dataset_file,
    file_sha,
    frame_settings,
    positions_of_test_rows,
    run_training_frame,
    training_frame,
)


@pytest.fixture
def run_with_dataset(small_stack_run, tmp_path):
    """(run, leads, dataset store): a copy of the session's small stack and its leads' file in a dataset store."""
    run, leads = small_stack_run
    run = store_with(run, tmp_path / "runs").get(run.id)
    datasets = DatasetStore(tmp_path / "datasets")
    found = datasets.add(leads.to_csv(index=False).encode(), filename="leads.csv", kind="leads", name="demo leads")
    assert found.sha == run.settings.data_hash  # the file the run was trained on
    return run, leads, datasets


def test_the_frame_is_the_runs_features_and_its_test_rows_score_as_stored(run_with_dataset):
    run, leads, datasets = run_with_dataset
    data = run_training_frame(run, datasets)
    assert list(data["X"].columns) == run.settings.columns and len(data["X"]) == len(leads)
    assert data["kinds"]["Total Time Spent on Website"] == "numeric"
    predictions = run.predictions()
    positions = positions_of_test_rows(data["row_ids"], predictions["row_id"])
    assert len(positions) == run.settings.split.n_test == len(predictions)
    np.testing.assert_array_equal(np.asarray(data["y"])[positions], predictions["y_true"].to_numpy())
    proba = run.load_approach().predict_proba(data["X"].iloc[positions])[:, 1]
    np.testing.assert_allclose(proba, predictions["proba"], atol=1e-6)  # the rows the run tested on, as it saw them


def test_the_frame_settings_round_trip_as_a_cache_key(run_with_dataset):
    run, _, datasets = run_with_dataset
    key = json.dumps(frame_settings(run.settings), sort_keys=True)
    direct = training_frame(dataset_file(run.settings.data_hash, datasets), **json.loads(key))
    assert direct["X"].equals(run_training_frame(run, datasets)["X"])


def test_a_run_whose_data_file_is_gone_is_a_clear_error(run_with_dataset):
    run, _, datasets = run_with_dataset
    path = dataset_file(run.settings.data_hash, datasets)
    path.unlink()  # the store's copy removed behind its back
    assert dataset_file(run.settings.data_hash, datasets) is None
    with pytest.raises(TrainingDataMissing, match=rf"run {run.id} .*not in the dataset store.*Fix: upload"):
        run_training_frame(run, datasets)
    with pytest.raises(FileNotFoundError, match="is gone. Fix: upload the same file"):
        training_frame(path, **frame_settings(run.settings))


def test_a_run_never_stored_as_a_dataset_names_the_fix(small_stack_run, tmp_path):
    run, _ = small_stack_run
    with pytest.raises(TrainingDataMissing, match="Upload|upload"):
        run_training_frame(run, DatasetStore(tmp_path / "empty"))


def test_a_demo_file_is_found_by_its_sha(tmp_path):
    demo = tmp_path / "demo.csv"
    demo.write_text("a,Converted\n1,0\n2,1\n")
    sha = file_sha(demo)
    store = DatasetStore(tmp_path / "datasets")
    assert dataset_file(sha, store, demo_files=(demo,)) == demo
    assert dataset_file("0" * 64, store, demo_files=(demo,)) is None
    assert dataset_file(None, store, demo_files=(demo,)) is None


def test_a_column_the_file_lacks_is_all_missing_and_an_unknown_kind_is_refused(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_text("Lead Source,TotalVisits,Converted\nGoogle,3,1\nDirect,,0\nGoogle,5,0\nDirect,2,1\n")
    data = training_frame(path, target="Converted", columns=["TotalVisits", "Country"])
    assert list(data["X"].columns) == ["TotalVisits", "Country"] and data["X"]["Country"].isna().all()
    assert data["y"].tolist() == [1, 0, 0, 1]
    with pytest.raises(ValueError, match="'leads' or 'transcripts'"):
        training_frame(path, input_kind="images")
