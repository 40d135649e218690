"""What every LoRA adapter of a process shares: the base causal LLM and its tokenizer (loaded once per path,
device, dtype and quantisation, :func:`load_base`), the device choice, and how a lead becomes a prompt and its
answer words (:class:`PromptBuilder`, :func:`pad_batch`). Kept apart from :mod:`engine.approaches.lora` (the
approach: training, calibration, explanations, persistence), which re-exports these names."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

INSTRUCTION = "Predict if the lead will convert based on the following features: "
SYSTEM_PROMPT = "Classify sales leads."
#: Answer pairs (positive, negative), tried in order until their first tokens differ.
ANSWER_PAIRS = (("Converted", "Not Converted"), ("Yes", "No"))
PROMPT_VERSION = 1


# -- base models: loaded once per process, shared by all adapters ----------------------------------
class _BaseEntry:
    def __init__(self, model, tokenizer, path: str, device, dtype, quantize):
        self.base = model
        self.peft = None  # PeftModel wrapping ``base`` once the first adapter is attached
        self.tokenizer = tokenizer
        self.path = path
        self.device = device
        self.dtype = dtype
        self.quantize = quantize
        self.lock = threading.RLock()


_BASES: dict[tuple, _BaseEntry] = {}
_BASES_LOCK = threading.Lock()


def resolve_device(device: str = "auto"):
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available here; use device='auto' or 'cpu'.")
    return dev


def load_base(path: str, device, dtype, quantize: str | None = None) -> _BaseEntry:
    """Load (once per process) a causal LM and its tokenizer from a local folder."""
    key = (str(path), str(device), str(dtype), quantize)
    with _BASES_LOCK:
        if key in _BASES:
            return _BASES[key]
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token  # padding is masked by the attention mask, never by id
        kwargs: dict[str, Any] = {"local_files_only": True}
        if quantize in ("4bit", "nf4"):
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16 if device.type == "cuda" else dtype,
            )
            kwargs["device_map"] = {"": str(device) if device.type != "cuda" else (device.index or 0)}
            kwargs["dtype"] = dtype
        elif quantize not in (None, "", "none"):
            raise ValueError(f"quantize={quantize!r} is not supported; use None or '4bit'.")
        else:
            kwargs["dtype"] = dtype
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        if quantize in ("4bit", "nf4"):
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=device.type == "cuda")
        else:
            model.to(device)
        for param in model.parameters():
            param.requires_grad_(False)
        model.eval()
        entry = _BaseEntry(model, tokenizer, str(path), device, dtype, quantize)
        _BASES[key] = entry
        return entry


def clear_base_cache() -> None:
    """Forget every loaded base model (frees memory)."""
    with _BASES_LOCK:
        _BASES.clear()


# -- prompt building ---------------------------------------------------------------------------
class PromptBuilder:
    """Turns lead texts into token ids: prompt ids, answer ids, verbalizer ids."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer = tokenizer
        self.max_length = int(max_length)
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        prefix = "" if self.chat else " "
        self.answers, self.answer_ids, self.verbalizer_ids = None, None, None
        for pos, neg in ANSWER_PAIRS:
            pos_ids = tokenizer.encode(prefix + pos, add_special_tokens=False)
            neg_ids = tokenizer.encode(prefix + neg, add_special_tokens=False)
            if pos_ids and neg_ids and pos_ids[0] != neg_ids[0]:
                end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
                self.answers = (pos, neg)
                self.answer_ids = (pos_ids + end, neg_ids + end)
                self.verbalizer_ids = (int(pos_ids[0]), int(neg_ids[0]))
                break
        if self.verbalizer_ids is None:
            raise ValueError(
                "This tokenizer gives the same first token to every candidate answer "
                f"{ANSWER_PAIRS}; the LoRA approach cannot tell the answers apart with it."
            )
        # BOS only when the tokenizer itself adds one (Llama-2 style); chat templates write their own tokens
        with_special = tokenizer.encode("a", add_special_tokens=True)
        bos = tokenizer.bos_token_id
        self._bos = bos if bos is not None and with_special[:1] == [bos] else None
        self._tail = self._tail_length()
        self.prefix_ids = self._shared_prefix()
        self.truncated = 0

    def prompt_text(self, lead_text: str) -> str:
        instruction = INSTRUCTION + lead_text
        if self.chat:
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": instruction}]
            try:
                return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            except Exception:  # some templates refuse a system role
                return self.tokenizer.apply_chat_template(messages[1:], tokenize=False, add_generation_prompt=True)
        return f"{instruction}\nAnswer:"

    def _raw_ids(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if self._bos is not None and ids[:1] != [self._bos]:
            ids = [self._bos] + ids
        return ids

    def _tail_length(self) -> int:
        """How many tokens at the end of a prompt belong to the template (assistant cue): kept on truncation."""
        probe_a, probe_b = self._raw_ids(self.prompt_text("alpha")), self._raw_ids(self.prompt_text("beta gamma"))
        tail = 0
        while tail < min(len(probe_a), len(probe_b)) and probe_a[-1 - tail] == probe_b[-1 - tail]:
            tail += 1
        return max(tail, 1)

    def _shared_prefix(self) -> list[int]:
        """The tokens every prompt starts with (template and instruction), less the last one (a word boundary
        may merge with the lead's first word): computed once, their keys and values are reused when scoring."""
        probes = [self._raw_ids(self.prompt_text(t)) for t in ("alpha", "Beta gamma", "7 visits")]
        n = 0
        while all(len(p) > n for p in probes) and len({p[n] for p in probes}) == 1:
            n += 1
        return probes[0][: max(n - 1, 0)]

    def prompt_ids(self, lead_text: str) -> list[int]:
        ids = self._raw_ids(self.prompt_text(lead_text))
        budget = self.max_length - max(len(a) for a in self.answer_ids)
        if len(ids) > budget:
            self.truncated += 1
            head = max(budget - self._tail, 1)
            ids = ids[:head] + ids[-self._tail :]
        return ids

    def example(self, lead_text: str, label: int) -> tuple[list[int], list[int]]:
        """input ids and labels (-100 on the prompt) for one training example."""
        prompt = self.prompt_ids(lead_text)
        answer = self.answer_ids[0] if label == 1 else self.answer_ids[1]
        return prompt + answer, [-100] * len(prompt) + list(answer)


def pad_batch(sequences: list[list[int]], pad_id: int, labels: list[list[int]] | None = None):
    """Right-pad to the longest sequence: ids, attention mask (and labels padded with -100)."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    lab = torch.full((len(sequences), width), -100, dtype=torch.long) if labels is not None else None
    for i, seq in enumerate(sequences):
        ids[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[i, : len(seq)] = 1
        if lab is not None:
            lab[i, : len(seq)] = torch.tensor(labels[i], dtype=torch.long)
    return ids, mask, lab


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


# -- the approach ------------------------------------------------------------------------------
