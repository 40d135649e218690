"""Hostile upload file names (the browser sends whatever name the file has): a NUL, a line break, invisible
direction marks that make a name read as another, a Windows path, a backslash, an extension of 300 characters.
The dataset is stored under the store's own file name and a clean display name, and it reads back: never a
dataset that is broken as soon as it is stored, never a bare OS error."""

import pytest

from engine.data.demo import demo_leads
from engine.datasets import DatasetStore
from engine.live import check_family


@pytest.mark.parametrize(
    "filename, name",
    [
        ("leads.cs\x00v", "leads"),
        ("a." + "x" * 300, "a"),
        ("Q3\nleads.csv", "Q3 leads"),
        ("\u202egnp.csv", "gnp"),
        ("C:\\Users\\ana\\Q3 leads.csv", "Q3 leads"),
        ("a.c\\sv", "sv"),
        ("x" * 5000 + ".csv", "x" * 196),
        ("\x00\x01.csv", "data"),
    ],
)
def test_a_hostile_upload_name_stores_a_dataset_that_reads_back(tmp_path, filename, name):
    store = DatasetStore(tmp_path / "datasets")
    ds = store.add(demo_leads(n=60, seed=4).to_csv(index=False).encode(), filename=filename, kind="leads")
    again = store.get(ds.sha)
    assert again.name == name and check_family(again.name) == name
    assert again.raw_path.parent == again.path and again.raw_path.name.startswith("data.")
    assert len(again.load_frame()) == 60
    assert store.problems == {}
    assert [d.sha for d in store.list()] == [ds.sha]
