"""Where the engine keeps its files. One workspace folder holds datasets, runs, jobs and caches.

``CLAB_WORKSPACE`` overrides the default ``<repo>/workspace``.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
#: the embedded synthetic demo data (data/README.md says how they are made)
DEMO_LEADS = REPO_ROOT / "data" / "demo_leads_synthetic.csv"
DEMO_TRANSCRIPTS = REPO_ROOT / "data" / "demo_transcripts.jsonl"


def workspace() -> Path:
    root = Path(os.environ.get("CLAB_WORKSPACE", REPO_ROOT / "workspace")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir() -> Path:
    """Converted-model cache; shared by every workspace unless CLAB_CACHE is set."""
    root = Path(os.environ.get("CLAB_CACHE", REPO_ROOT / ".cache")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root
