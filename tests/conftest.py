import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
LEADS_CSV = Path(os.environ.get("CLAB_LEADS_CSV", REPO_ROOT.parent / "shared" / "data" / "leads" / "Leads.csv"))


@pytest.fixture
def leads_csv() -> Path:
    """The real X Education lead export; it may not be redistributed, so it is read from ../shared."""
    if not LEADS_CSV.exists():
        pytest.skip(f"real lead data not found at {LEADS_CSV} (set CLAB_LEADS_CSV to its path to run this test)")
    return LEADS_CSV


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A fresh, empty workspace for runs, datasets and jobs."""
    root = tmp_path / "workspace"
    monkeypatch.setenv("CLAB_WORKSPACE", str(root))
    return root
