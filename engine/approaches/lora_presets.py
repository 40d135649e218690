"""The LLM approach's processor knowledge: whether the CPU computes in bf16 natively, which dtype a device trains
in, and the measured CPU presets (the settings that fit a training into about 30 minutes on 2 cores). Kept apart
from :mod:`engine.approaches.lora` (which re-exports them) so the approach and its benchmark both read them without
importing each other."""

from __future__ import annotations

from typing import Any


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 arithmetic (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    import torch

    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(torch.cpu, probe, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # pragma: no cover - probe not available on this build
            pass
    return False


def resolve_dtype(precision: str, device):
    import torch

    names = {
        "fp32": torch.float32,
        "float32": torch.float32,
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
    }
    if precision not in (None, "auto"):
        if precision not in names:
            raise ValueError(f"precision={precision!r} is not known; use 'auto', 'fp32', 'bf16' or 'fp16'.")
        return names[precision]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return torch.float32


#: Settings measured to train within 30 minutes for SmolLM2-135M on 2 CPU cores without native bf16 (fp32; AMD EPYC
#: with AVX2 only, measured 2026-11-23 on an idle machine, Leads.csv default policy, the full 2,772-row test split):
#: 4,000 rows -> acc 0.797, ROC-AUC 0.867, fit 28.4 min (3.3 s per step of 8 rows); 2,100 rows -> acc 0.764,
#: ROC-AUC 0.840, fit 13.2 min (2.8 s a step). A GPU affords more.
CPU_PRESET: dict[str, Any] = dict(
    train_rows=4000,
    epochs=1,
    batch_size=8,
    grad_accum=1,
    learning_rate=3e-3,
    warmup_ratio=0.1,
    max_length=160,
    r=8,
    lora_alpha=16,
    top_layers=10,
    target_modules=("q_proj", "k_proj", "v_proj", "o_proj"),
    calibration_rows=200,
)
#: On 2 cores with native bf16 arithmetic (AVX512-BF16 or AMX) the same step takes 0.87 s in bf16 (AMD EPYC with
#: AVX-512, measured 2026-11-29): every training row fits in the 30 minutes, and more epochs with it.
BF16_CPU_PRESET: dict[str, Any] = {**CPU_PRESET, "train_rows": None, "epochs": 2}


def cpu_preset(precision: str | None = "auto") -> dict[str, Any]:
    """The CPU preset for this processor: :data:`BF16_CPU_PRESET` where the CPU computes in bf16 natively (and
    ``precision`` lets it), :data:`CPU_PRESET` otherwise."""
    import torch

    if resolve_dtype(precision or "auto", torch.device("cpu")) == torch.bfloat16 and cpu_supports_bf16():
        return dict(BF16_CPU_PRESET)
    return dict(CPU_PRESET)
