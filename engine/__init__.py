"""Conversion Lab engine: train, evaluate, explain and serve sales-conversion models.

Heavy libraries (torch, tensorflow, transformers, shap) are imported only inside the
modules and functions that need them, so ``import engine`` stays cheap.
"""

import os as _os

# Nothing in this package may reach a model hub: models are loaded by path.
_os.environ.setdefault("HF_HUB_OFFLINE", "1")
_os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
_os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that spin while waiting waste a small shared CPU (measured: 30 s -> 1.8 s on a tiny LoRA run).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
