"""Faster CPU sentence embeddings: a MiniLM (BERT + mean pooling) exported to ONNX and int8-quantized.

The transformer, the mean pooling over the attention mask and the L2 normalisation are exported as one ONNX
graph (``torch.onnx.export``), then its weights are quantized to int8 per output channel
(``onnxruntime.quantization.quantize_dynamic``) and run with ONNX Runtime. On a 2-core AVX2 CPU this embeds
about twice as many chunks per second as PyTorch fp32; embeddings keep a cosine similarity of about 0.99 with
the fp32 ones (measured on the demo transcripts; per-tensor quantization only reaches 0.93, so it is not used).

Only models whose sentence-transformers pipeline is "transformer, then mean pooling (then normalise)" are
exported (:func:`supports`); any other pipeline stays on PyTorch.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
FILE_NAME = "model_int8.onnx"
_SESSIONS: dict[str, Any] = {}
_EXPORTS: dict[tuple[str, str], Path] = {}  # cached_export results of this process
_LOCK = threading.Lock()


def available() -> bool:
    """True when onnxruntime and onnx can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def supports(st_model) -> bool:
    """True when ``st_model`` is transformer -> mean pooling (-> normalize): what the exported graph computes."""
    modules = list(st_model)
    if len(modules) < 2 or type(modules[0]).__name__ != "Transformer" or type(modules[1]).__name__ != "Pooling":
        return False
    if any(type(m).__name__ != "Normalize" for m in modules[2:]):
        return False
    pooling = modules[1]
    mode = getattr(pooling, "pooling_mode", None) or (
        "mean" if getattr(pooling, "pooling_mode_mean_tokens", False) else None
    )
    return str(mode).lower() in ("mean", "mean_tokens") and hasattr(modules[0], "auto_model")


def export_int8(st_model, target: str | Path) -> Path:
    """Export ``st_model`` (see :func:`supports`) to ``target`` as an int8 ONNX graph; returns its path."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if not supports(st_model):
        raise ValueError("Only transformer + mean-pooling sentence models can be exported to ONNX here")
    bert = copy.deepcopy(st_model[0].auto_model).cpu().float().eval()
    if hasattr(bert, "set_attn_implementation"):
        try:
            bert.set_attn_implementation("eager")  # the plain attention exports cleanly with the tracer
        except (ValueError, AttributeError):
            pass

    class _Pooled(torch.nn.Module):
        def __init__(self, body):
            super().__init__()
            self.body = body

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.body(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.ones(2, 16, dtype=torch.long)
    with tempfile.TemporaryDirectory(prefix="clab-onnx-") as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about data-dependent branches (masks) are expected
        fp32 = Path(tmp) / "model_fp32.onnx"
        torch.onnx.export(
            _Pooled(bert).eval(),
            (dummy, dummy, torch.zeros_like(dummy)),
            str(fp32),
            input_names=list(INPUTS),
            output_names=["sentence_embedding"],
            dynamic_axes={**{k: {0: "batch", 1: "seq"} for k in INPUTS}, "sentence_embedding": {0: "batch"}},
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")  # concurrent exports never collide
        quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8, per_channel=True)
        partial.replace(target)
    return target


def session(path: str | Path):
    """An ONNX Runtime session on ``path`` (2 threads, no busy-waiting), one per file per process."""
    import onnxruntime as ort

    key = str(Path(path).resolve())
    with _LOCK:
        if key not in _SESSIONS:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 2
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            _SESSIONS[key] = ort.InferenceSession(key, options, providers=["CPUExecutionProvider"])
        return _SESSIONS[key]


def forget(path: str | Path) -> None:
    """Drop the cached session of ``path`` (before the file is replaced)."""
    with _LOCK:
        _SESSIONS.pop(str(Path(path).resolve()), None)


def encode(path: str | Path, tokenizer, texts: list[str], max_length: int, batch_size: int = 32) -> np.ndarray:
    """L2-normalised embeddings of ``texts`` (in order) with the int8 graph at ``path``."""
    sess = session(path)
    names = {i.name for i in sess.get_inputs()}
    out = None
    order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths together: little padding
    for start in range(0, len(texts), batch_size):
        rows = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in rows], padding=True, truncation=True, max_length=int(max_length), return_tensors="np"
        )
        feed = {k: np.asarray(enc[k], dtype=np.int64) for k in INPUTS if k in names and k in enc}
        if "token_type_ids" in names and "token_type_ids" not in feed:
            feed["token_type_ids"] = np.zeros_like(feed["input_ids"])
        vectors = sess.run(None, feed)[0]
        if out is None:
            out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
        out[rows] = vectors
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def cached_export(load_model: Callable[[], Any], source: str | Path, cache_root: str | Path) -> Path:
    """The int8 graph of the model stored at ``source``, exported once into ``cache_root`` (keyed by the
    model's weight files, so a changed model is exported again). ``load_model()`` gives the
    SentenceTransformer and is called only when the graph has to be exported."""
    source = Path(source)
    key = (str(source.resolve()), str(Path(cache_root).resolve()))
    if key in _EXPORTS and _EXPORTS[key].exists():
        return _EXPORTS[key]
    digest = hashlib.sha256()
    for f in sorted(source.rglob("*")):
        if f.is_file() and f.suffix in (".safetensors", ".bin", ".json"):
            st = f.stat()
            digest.update(f"{f.relative_to(source)}:{st.st_size}:{int(st.st_mtime)}".encode())
    target = Path(cache_root) / f"{source.name}-{digest.hexdigest()[:12]}" / FILE_NAME
    if not target.exists():
        export_int8(load_model(), target)
    _EXPORTS[key] = target
    return target
