"""LoRA fine-tuning of a small causal LM (default: the shipped SmolLM2-135M-Instruct) to score leads.

How it works
------------
* Each lead is written as text (:mod:`engine.data.text`, compact style by default) inside an instruction:
  ``"Predict if the lead will convert based on the following features: <text>"``, wrapped in the
  tokenizer's chat template when it has one. The answer is ``"Converted"`` or ``"Not Converted"``.
* Training (transformers' ``Trainer``, :mod:`engine.approaches.lora_trainer`: AdamW, linear warm-up/decay,
  gradient accumulation, gradient clipping; length-bucketed batches with dynamic padding) puts the loss on the
  answer tokens only (labels -100 on the prompt and on padding).
* Scoring never generates text: it reads the next-token logits right after the prompt, at each row's last
  real token, for the first token of each answer (the *verbalizers*, e.g. ``"Con"`` vs ``"Not"``), and takes
  the softmax over those two logits. A Platt (logistic) calibration fitted on training rows only (rows left
  out of LoRA training) turns that into the reported probability.
* ``explain`` is occlusion: the lead is re-scored with each filled field left out of its text.
* ``save`` writes the adapter in peft's native format (``adapter_model.safetensors`` +
  ``adapter_config.json``) plus ``approach.json`` (base model path and fingerprint, verbalizers, calibration).
  Base models are loaded once per process and shared by every adapter (peft multi-adapter).

Hardware: on CUDA, ``quantize="4bit"`` loads the base in NF4 (bitsandbytes, bf16 compute) and prepares it for
k-bit training; on CPU the base runs in bf16 when the CPU has native bf16, fp32 otherwise (4-bit also works).
"""

from __future__ import annotations

import os

from engine.data.text import is_missing
from engine.models import ModelNotFoundError, model_fingerprint, resolve_base_model
from engine.storage import atomic_write

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: no OpenMP spin-waits on shared CPUs

import hashlib
import json
import math
import random
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.approaches.base import Approach, contribution_frame
from engine.approaches.lora_base import (  # noqa: F401 - re-exported: callers import them from here
    ANSWER_PAIRS,
    INSTRUCTION,
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    PromptBuilder,
    _sigmoid,
    clear_base_cache,
    load_base,
    pad_batch,
    resolve_device,
)
from engine.approaches.lora_presets import (  # noqa: F401 - re-exported: callers import them from here
    BF16_CPU_PRESET,
    CPU_PRESET,
    cpu_preset,
    cpu_supports_bf16,
    resolve_dtype,
)
from engine.callbacks import CallbackList, Progress
from engine.data.text import cut_text, fields_to_text, format_value, row_fields, valid_utf8
from engine.storage import jsonable, write_json

ADAPTER_DIR = "adapter"
CHECKPOINT_STATE = "trainer_state.pt"


class LoraApproach(Approach):
    """Fine-tune a LoRA adapter on a small causal LM; P(convert) from verbalizer log-probabilities.

    Hyper-parameters (all stored unchanged):

    base_model: None (shipped SmolLM2-135M-Instruct), a local model folder, or a hub id already in the local
        Hugging Face cache. r, lora_alpha, lora_dropout, target_modules: the LoRA adapter.
    batch_size, grad_accum, epochs, learning_rate, warmup_ratio, weight_decay, max_length: training.
    train_rows: cap on the training rows (stratified sample); the rest of the training rows (up to
        ``calibration_rows``) calibrate the scores. When every row is used for training, ``calibration_rows``
        rows (at most 20%) are held out for calibration instead. A fit given the protocol's calibration slice
        (every lead run of the pipeline: engine.evaluate.calibration_slice) calibrates on that slice instead and
        holds out none of its own, so the calibration rows are the same for every approach on a dataset.
    text_style: "compact" or "sentence" (see engine.data.text); drop_constant_share: columns whose most
        common value (missing counted as a value) covers at least this share of training rows are left out
        of the text (None keeps every column).
    quantize: None or "4bit"; device: "auto", "cpu", "cuda"...; precision: "auto", "fp32", "bf16", "fp16".
    checkpoint_dir, checkpoint_every, resume: periodic checkpoints (adapter + optimizer + step) and resuming.
    top_layers: put the adapter only on the top N transformer layers (None = all). Back-propagation then stops
        at the lowest adapted layer, which makes CPU training several times faster.
    score_batch_size: rows per forward pass when scoring.
    text_budget: characters each free-text field (a column of the ``text`` kind: notes, a call transcript) may take
        in the prompt, default :data:`TEXT_BUDGET` (600, about 150 tokens: the prompt's 256 tokens keep room for
        the lead's other fields); a longer one is cut at a word boundary and ends with " …"
        (:func:`engine.data.text.cut_text`). None or 0: no cut (the whole prompt is still cut to ``max_length``
        tokens). The run records it and how many training leads were cut (``metrics.json``: ``text_budget``).
    """

    name = "lora"
    label = "LLM + LoRA"
    input_kind = "leads"
    explain_rows = 5  # each explanation re-scores the lead many times through the LLM
    wants_gpu = True
    presets = ("cpu",)

    @classmethod
    def preset_params(cls, preset: str, params: dict[str, Any]) -> dict[str, Any]:
        """``cpu``: the measured CPU settings for this processor (engine.benchmarks.lora.cpu_preset)."""
        if preset != "cpu":
            return super().preset_params(preset, params)
        return cpu_preset(params.get("precision"))

    def __init__(
        self,
        base_model=None,
        r=8,
        lora_alpha=16,
        lora_dropout=0.05,
        target_modules=("q_proj", "v_proj"),
        batch_size=2,
        grad_accum=8,
        epochs: float = 3,
        learning_rate=2e-4,
        max_length=256,
        train_rows=None,
        seed=42,
        quantize=None,
        device="auto",
        precision="auto",
        warmup_ratio=0.05,
        weight_decay=0.0,
        text_style="compact",
        drop_constant_share=0.995,
        calibration_rows=600,
        score_batch_size=32,
        checkpoint_dir=None,
        checkpoint_every=50,
        resume=False,
        top_layers=None,
        text_budget: int | None = 600,
    ):
        self.base_model = base_model
        self.r = r
        self.lora_alpha = lora_alpha
        self.lora_dropout = lora_dropout
        self.target_modules = target_modules
        self.batch_size = batch_size
        self.grad_accum = grad_accum
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.max_length = max_length
        self.train_rows = train_rows
        self.seed = seed
        self.quantize = quantize
        self.device = device
        self.precision = precision
        self.warmup_ratio = warmup_ratio
        self.weight_decay = weight_decay
        self.text_style = text_style
        self.drop_constant_share = drop_constant_share
        self.calibration_rows = calibration_rows
        self.score_batch_size = score_batch_size
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.top_layers = top_layers
        self.text_budget = text_budget

    # -- set-up ----------------------------------------------------------------------------------
    def _setup_base(self, base_path: str | None = None) -> None:
        self.device_ = resolve_device(self.device)
        self.dtype_ = resolve_dtype(self.precision, self.device_)
        self.base_path_ = base_path or resolve_base_model(self.base_model)
        self._entry = load_base(self.base_path_, self.device_, self.dtype_, self.quantize)
        self.prompts_ = PromptBuilder(self._entry.tokenizer, self.max_length)
        self.verbalizer_ids_ = list(self.prompts_.verbalizer_ids)
        self.answers_ = list(self.prompts_.answers)

    def _lora_config(self):
        from peft import LoraConfig

        layers = None
        if self.top_layers:
            n_layers = int(getattr(self._entry.base.config, "num_hidden_layers", 0) or 0)
            if n_layers:
                layers = list(range(max(n_layers - int(self.top_layers), 0), n_layers))
        return LoraConfig(
            r=int(self.r),
            lora_alpha=self.lora_alpha,
            lora_dropout=float(self.lora_dropout),
            target_modules=list(self.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
            layers_to_transform=layers,
        )

    def _attach_adapter(self, config, state: dict | None = None) -> None:
        """Add this instance's adapter (fresh, or with ``state`` weights) to the shared base model."""
        from peft import get_peft_model, set_peft_model_state_dict

        entry = self._entry
        name = f"lora_{uuid.uuid4().hex[:12]}"
        with entry.lock:
            if entry.peft is None:
                entry.peft = get_peft_model(entry.base, config, adapter_name=name)
            else:
                entry.peft.add_adapter(name, config)
            if state is not None:
                result = set_peft_model_state_dict(entry.peft, state, adapter_name=name)
                missing = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
                if missing:
                    raise ValueError(f"The saved adapter does not fit this base model (unexpected keys {missing[:3]}).")
            entry.peft.set_adapter(name)
            for pname, param in entry.peft.named_parameters():
                param.requires_grad_(f".{name}." in pname)
            self._lora_device_cast(name)
        self.adapter_name_ = name

    def _lora_device_cast(self, name: str) -> None:
        for pname, param in self._entry.peft.named_parameters():
            if f".{name}." in pname and param.device != self.device_:
                param.data = param.data.to(self.device_)

    def _activate(self):
        entry = self._entry
        entry.peft.set_adapter(self.adapter_name_)
        return entry.peft

    def _adapter_params(self):
        return [p for n, p in self._entry.peft.named_parameters() if f".{self.adapter_name_}." in n]

    # -- text --------------------------------------------------------------------------------------
    def _choose_columns(self, X: pd.DataFrame) -> list[str]:
        columns = list(X.columns)
        if self.drop_constant_share is None:
            return columns
        keep = []
        for column in columns:
            values = X[column].map(lambda v: "<missing>" if _missing(v) else format_value(v))
            top_share = values.value_counts(normalize=True).iloc[0] if len(values) else 1.0
            if top_share < float(self.drop_constant_share):
                keep.append(column)
        return keep or columns

    def _text_columns(self, X: pd.DataFrame) -> list[str]:
        """The chosen columns of the ``text`` kind: as the training table has them (the user's kinds included),
        else as :func:`engine.data.leads.infer_kinds` reads them."""
        from engine.data.leads import kinds_given_else_inferred

        kinds = kinds_given_else_inferred(X[self.columns_], self.given_kinds())
        return [c for c in self.columns_ if kinds[str(c)] == "text"]

    def _fields(self, record: dict, cols: list[str]) -> tuple[list[tuple[str, Any]], bool]:
        """The filled fields of one lead, each free-text one cut to :attr:`text_budget`; and whether one was cut."""
        fields, cut_any = [], False
        text_columns = set(getattr(self, "text_columns_", ()))
        for column, value in row_fields(record, cols):
            if column in text_columns:
                value, cut = cut_text(str(value), self.text_budget)
                cut_any = cut_any or cut
            fields.append((column, value))
        return fields, cut_any

    def _texts(self, X: pd.DataFrame) -> list[str]:
        cols = [c for c in self.columns_ if c in X.columns]
        missing = [c for c in self.columns_ if c not in X.columns]
        if len(missing) == len(self.columns_):
            raise ValueError(
                f"None of the columns this model was trained on are in the data "
                f"(expected e.g. {self.columns_[:5]}); pass lead rows with the training columns."
            )
        texts, self._n_cut = [], 0
        for rec in X[cols].to_dict("records"):
            fields, cut = self._fields(rec, cols)
            texts.append(valid_utf8(fields_to_text(fields, self.text_style)))
            self._n_cut += int(cut)
        return texts

    # -- training ----------------------------------------------------------------------------------
    #: The fewest rows of each class: the adapter learns from the answer words, so one of each is enough to run.
    min_per_class = 1

    def _check_X(self, X) -> pd.DataFrame:
        X = super()._check_X(X)
        if len(X) < 4:
            raise ValueError(f"LoRA needs at least 4 training rows, got {len(X)}.")
        return X.reset_index(drop=True)

    def _fit(self, X: pd.DataFrame, y: np.ndarray, cb: CallbackList) -> None:
        """Fine-tune the adapter on transformers' Trainer (:mod:`engine.approaches.lora_trainer`), then calibrate.

        The Trainer replaced a hand-written AdamW loop after a measurement (engine.benchmarks.lora_fit, CPU preset
        on 200 demo leads, 1 epoch, whole process, alternated, 2-core AMD EPYC with AVX-512 BF16, shared): median
        256 s against the loop's 269 s (ratios 0.91, 0.98, 1.18 per pair), the same loss at every step and the same
        test ROC-AUC (assets/bench/lora_fit_trainer_vs_loop_2026-12-05.json).
        """
        import torch

        from engine.approaches import lora_trainer  # heavy: loads torch

        started = time.monotonic()
        self._detach()  # refitting: drop this instance's previous adapter from the shared base
        self._prefix_kv = None
        given = getattr(self, "_calibration_set", None)  # the protocol's slice: calibrate there, train on every row
        train_idx, calib_idx = self._split_rows(y, own_calibration=given is None)
        X_cal, y_cal = given if given is not None else (X.iloc[calib_idx], y[calib_idx])
        self._setup_base()
        self.columns_ = self._choose_columns(X.iloc[train_idx])
        self.text_columns_ = self._text_columns(X.iloc[train_idx])
        texts = self._texts(X.iloc[train_idx])
        self.text_cut_ = {
            "chars": int(self.text_budget) if self.text_budget else None,
            "columns": list(self.text_columns_),
            "truncated_leads": int(self._n_cut),
            "leads": int(len(texts)),
        }
        if self.text_columns_:
            cb.on_log(
                f"Free text in the prompt ({', '.join(self.text_columns_)}): "
                + (
                    f"{self._n_cut} of {len(texts)} training leads cut to {self.text_budget} characters"
                    if self.text_budget
                    else "no budget, whole texts"
                )
            )
        labels = y[train_idx]

        torch.manual_seed(int(self.seed))
        self._attach_adapter(self._lora_config())
        model = self._activate()
        examples = [self.prompts_.example(t, int(label)) for t, label in zip(texts, labels)]
        batches_per_epoch = self._epoch_batches(examples)
        micro_total = sum(len(b) for b in batches_per_epoch)
        accum = max(int(self.grad_accum), 1)
        # one optimiser step = up to ``accum`` micro-batches of one epoch (the last of an epoch may have fewer)
        groups = [(e, b[s : s + accum]) for e, b in enumerate(batches_per_epoch) for s in range(0, len(b), accum)]
        total_steps = len(groups)

        warmup = int(round(float(self.warmup_ratio) * total_steps))
        optimizer, scheduler = lora_trainer.make_optimizer(
            self._adapter_params(), self.learning_rate, self.weight_decay, warmup, total_steps
        )
        run_key = self._run_key(texts, labels)
        step = 0
        if self.resume and self.checkpoint_dir:
            step = self._load_checkpoint(optimizer, scheduler, run_key)
            if step:
                cb.on_log(f"Resuming LoRA training from step {step}/{total_steps} ({self.checkpoint_dir})")
        self.loss_history_: list[dict] = list(getattr(self, "_resumed_history", []))
        cb.on_log(
            f"LoRA on {Path(self.base_path_).name}: {len(examples)} training rows, {total_steps} steps "
            f"({micro_total} batches of {self.batch_size}, accumulation {accum}), device {self.device_}, "
            f"{str(self.dtype_).replace('torch.', '')}"
            + (
                f", {self.prompts_.truncated} prompts truncated to {self.max_length} tokens"
                if self.prompts_.truncated
                else ""
            )
        )

        def checkpoint(at: int) -> None:
            if self.checkpoint_dir:
                self._save_checkpoint(optimizer, scheduler, at, run_key)

        def every(at: int) -> None:
            if self.checkpoint_every and at % int(self.checkpoint_every) == 0:
                checkpoint(at)

        bridge = lora_trainer.ProgressBridge(
            cb,
            first_step=step,
            total_steps=total_steps,
            epochs=[e for e, _ in groups],
            history=self.loss_history_,
            on_step=every,
            on_cancel=checkpoint,
        )
        micro = [b for _, g in groups[step:] for b in g + [lora_trainer.FILLER] * (accum - len(g))]
        cb.on_train_begin(total_steps, "train")
        try:
            lora_trainer.train(
                model,
                micro,
                self._entry.tokenizer.pad_token_id,
                accum,
                optimizer,
                scheduler,
                self.device_,
                int(self.seed),
                bridge,
            )
        except BaseException:
            model.eval()
            self._detach()
            raise
        model.eval()
        self._prefix_kv = None  # the adapter's weights changed
        cb.on_train_end("train")
        self.step_seconds_ = float(np.mean(bridge.step_times)) if bridge.step_times else None
        self.train_seconds_ = time.monotonic() - started

        self._fit_calibration(X_cal, y_cal, cb)
        if self.checkpoint_dir:
            self._save_checkpoint(optimizer, scheduler, total_steps, run_key)
        self.n_train_rows_ = int(len(train_idx))
        self.n_calibration_rows_ = int(len(y_cal))

    def _detach(self) -> None:
        name = getattr(self, "adapter_name_", None)
        entry = getattr(self, "_entry", None)
        if name and entry is not None and entry.peft is not None:
            with entry.lock:
                try:
                    if len(entry.peft.peft_config) > 1:
                        import warnings

                        with warnings.catch_warnings():  # "adapter was active": it is re-set before each use
                            warnings.simplefilter("ignore", UserWarning)
                            entry.peft.delete_adapter(name)
                except Exception:
                    pass
        for attr in ("adapter_name_",):
            if hasattr(self, attr):
                delattr(self, attr)

    def _split_rows(self, y: np.ndarray, own_calibration: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Training rows for the adapter, and calibration rows (never the same). Without ``own_calibration`` (the
        protocol's calibration slice is given to the fit) no row is held out here: the adapter trains on every
        row (or ``train_rows`` of them)."""
        from sklearn.model_selection import train_test_split

        idx = np.arange(len(y))
        n_cal = int(self.calibration_rows or 0) if own_calibration else 0
        stratify = y if np.bincount(y, minlength=2).min() >= 2 else None
        if self.train_rows is not None and int(self.train_rows) < len(y):
            n_train = int(self.train_rows)
            train_idx, rest = train_test_split(idx, train_size=n_train, stratify=stratify, random_state=self.seed)
            if n_cal and len(rest):
                if n_cal < len(rest):
                    strat_rest = y[rest] if np.bincount(y[rest], minlength=2).min() >= 2 else None
                    rest, _ = train_test_split(rest, train_size=n_cal, stratify=strat_rest, random_state=self.seed)
                return np.sort(train_idx), np.sort(rest)
            return np.sort(train_idx), np.array([], dtype=int)
        n_cal = min(n_cal, int(0.2 * len(y)))
        if n_cal < 10 or not own_calibration:
            return idx, np.array([], dtype=int)
        train_idx, cal_idx = train_test_split(idx, test_size=n_cal, stratify=stratify, random_state=self.seed)
        return np.sort(train_idx), np.sort(cal_idx)

    def _epoch_batches(self, examples) -> list[list[list]]:
        """Batches of every epoch; a fractional last epoch (epochs=1.5) takes the first part of a shuffle."""
        epochs = float(self.epochs)
        if epochs <= 0:
            raise ValueError(f"epochs must be positive, got {self.epochs}.")
        out = [self._batches(examples, e) for e in range(int(epochs))]
        fraction = epochs - int(epochs)
        if fraction > 1e-9:
            last = self._batches(examples, int(epochs))
            out.append(last[: max(1, math.ceil(fraction * len(last)))])
        return out

    def _batches(self, examples, epoch: int) -> list[list]:
        """Shuffle, then sort by length inside chunks of 50 batches (little padding), then shuffle batches."""
        rng = random.Random(int(self.seed) * 1000 + epoch)
        order = list(range(len(examples)))
        rng.shuffle(order)
        size = max(int(self.batch_size), 1)
        chunk = size * 50
        batches = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start : start + chunk], key=lambda i: len(examples[i][0]))
            batches += [[examples[i] for i in part[j : j + size]] for j in range(0, len(part), size)]
        rng.shuffle(batches)
        return batches

    def _run_key(self, texts, labels) -> str:
        digest = hashlib.sha256()
        digest.update(
            json.dumps(
                {
                    k: v
                    for k, v in jsonable(self.get_params(), fallback=str).items()
                    if k not in ("resume", "checkpoint_dir", "checkpoint_every", "device", "score_batch_size")
                },
                sort_keys=True,
            ).encode()
        )
        for text, label in zip(texts, labels):
            digest.update(f"{int(label)}\t{text}\n".encode())
        return digest.hexdigest()

    # -- checkpoints -------------------------------------------------------------------------------
    def _save_checkpoint(self, optimizer, scheduler, step: int, run_key: str) -> None:
        import torch

        folder = Path(self.checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self._write_adapter(folder / ADAPTER_DIR)
        # Only tensors, numbers, text, lists and dicts: the file loads with torch.load(weights_only=True).
        state = {
            "step": int(step),
            "run_key": run_key,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "loss_history": getattr(self, "loss_history_", []),
            "saved_at": time.time(),
        }
        atomic_write(folder / CHECKPOINT_STATE, lambda tmp: torch.save(state, tmp))

    def _load_checkpoint(self, optimizer, scheduler, run_key: str) -> int:
        import torch
        from peft import set_peft_model_state_dict

        folder = Path(self.checkpoint_dir)
        state_file = folder / CHECKPOINT_STATE
        if not state_file.exists():
            return 0
        try:
            # weights_only: tensors and plain values only; a pickle of anything else is refused unrun.
            state = torch.load(state_file, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - UnpicklingError, a truncated file, ...
            raise ValueError(
                f"The checkpoint file {state_file} cannot be resumed: it holds more than tensors "
                f"and plain values, or it is damaged ({type(exc).__name__}: {str(exc)[:200]}). "
                "Fix: delete that folder or pass resume=False to start over."
            ) from None
        if not isinstance(state, dict) or not {"step", "optimizer", "scheduler"} <= set(state):
            raise ValueError(
                f"The checkpoint file {state_file} is not a LoRA training state. Fix: delete that "
                "folder or pass resume=False to start over."
            )
        if state.get("run_key") != run_key:
            raise ValueError(
                f"The checkpoint in {folder} was made with other data or hyper-parameters, so it "
                "cannot be resumed. Fix: use the same data and settings, or delete that folder / "
                "pass resume=False to start over."
            )
        set_peft_model_state_dict(
            self._entry.peft, _read_adapter_weights(folder / ADAPTER_DIR), adapter_name=self.adapter_name_
        )
        self._lora_device_cast(self.adapter_name_)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        self._resumed_history = state.get("loss_history", [])
        return int(state["step"])

    # -- scoring -----------------------------------------------------------------------------------
    def _prefix_cache(self, body):
        """Keys and values of the prompts' shared prefix under the current adapter weights (computed once per
        fitted adapter), or None when the prompts share too little to be worth it."""
        import torch

        prefix = self.prompts_.prefix_ids
        if len(prefix) < 4:
            return None
        cached = getattr(self, "_prefix_kv", None)
        if cached is not None and cached[0] == self.adapter_name_:
            return cached[1]
        ids = torch.tensor([prefix], dtype=torch.long, device=self.device_)
        out = body.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True)
        self._prefix_kv = (self.adapter_name_, out.past_key_values)
        return out.past_key_values

    def _margins_from_texts(self, texts: list[str], reuse_prefix: bool = True) -> np.ndarray:
        """logit(pos verbalizer) - logit(neg verbalizer) after each prompt (softmax over the two = sigmoid).

        The prompts' shared prefix (chat template and instruction, about a quarter of a prompt) is run once and
        its keys and values are reused for every lead (``reuse_prefix=False`` runs whole prompts; same result)."""
        import copy

        import torch

        if not texts:
            return np.zeros(0)
        prompts = [self.prompts_.prompt_ids(t) for t in texts]
        order = np.argsort([len(p) for p in prompts], kind="stable")
        out = np.zeros(len(prompts), dtype=np.float64)
        pos, neg = self.verbalizer_ids_
        size = max(int(self.score_batch_size), 1)
        pad_id = self._entry.tokenizer.pad_token_id
        with self._entry.lock, torch.inference_mode():
            model = self._activate()
            model.eval()
            body = model.get_base_model()
            prefix = self.prompts_.prefix_ids
            cache = self._prefix_cache(body) if reuse_prefix else None
            cut = len(prefix) if cache is not None else 0
            for start in range(0, len(order), size):
                rows = order[start : start + size]
                batch = [prompts[i] for i in rows]
                kv = None
                if cut and all(len(p) > cut and p[:cut] == prefix for p in batch):
                    kv = copy.deepcopy(cache)
                    kv.batch_repeat_interleave(len(rows))
                    batch = [p[cut:] for p in batch]
                ids, mask, _ = pad_batch(batch, pad_id)
                ids, mask = ids.to(self.device_), mask.to(self.device_)
                full_mask = (
                    mask
                    if kv is None
                    else torch.cat([torch.ones((len(rows), cut), dtype=mask.dtype, device=mask.device), mask], dim=1)
                )
                hidden = body.model(
                    input_ids=ids, attention_mask=full_mask, past_key_values=kv, use_cache=kv is not None
                ).last_hidden_state
                last = mask.sum(dim=1) - 1
                h = hidden[torch.arange(len(rows), device=hidden.device), last]
                logits = body.get_output_embeddings()(h).float()
                out[rows] = (logits[:, pos] - logits[:, neg]).cpu().numpy()
        return out

    def _calibrate(self, margins: np.ndarray) -> np.ndarray:
        a, b = self.calibration_["a"], self.calibration_["b"]
        return _sigmoid(a * margins + b)

    def _fit_calibration(self, X_cal: pd.DataFrame, y_cal: np.ndarray, cb: CallbackList) -> None:
        self.calibration_ = {"a": 1.0, "b": 0.0, "rows": 0, "method": "none"}
        if len(y_cal) < 10 or len(np.unique(y_cal)) < 2:
            cb.on_log(
                "Calibration skipped (needs at least 10 held-out training rows of both classes); "
                "probabilities are the raw verbalizer softmax."
            )
            return
        from sklearn.linear_model import LogisticRegression

        texts = self._texts(X_cal)
        size = max(int(self.score_batch_size), 1)
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        cb.on_train_begin(len(chunks), "calibrate")
        margins = []
        for k, chunk in enumerate(chunks, 1):
            margins.append(self._margins_from_texts(chunk))
            cb.on_step_end(Progress(step=k, total=len(chunks), stage="calibrate"))
        cb.on_train_end("calibrate")
        m = np.concatenate(margins)
        lr = LogisticRegression(C=100.0, max_iter=1000).fit(m.reshape(-1, 1), y_cal)
        self.calibration_ = {
            "a": float(lr.coef_[0, 0]),
            "b": float(lr.intercept_[0]),
            "rows": int(len(y_cal)),
            "method": "platt",
        }

    def raw_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated P(convert): softmax over the two verbalizer logits."""
        self._check_fitted("calibration_")
        return _sigmoid(self._margins_from_texts(self._texts(_check_x(X))))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted("calibration_")
        p = self._calibrate(self._margins_from_texts(self._texts(_check_x(X))))
        return np.column_stack([1.0 - p, p])

    def explain(self, X: pd.DataFrame) -> pd.DataFrame:
        """Occlusion: contribution of a field = P(full text) - P(text without that field)."""
        self._check_fitted("calibration_")
        X = _check_x(X)
        cols = [c for c in self.columns_ if c in X.columns]
        texts, owners = [], []
        for r, rec in enumerate(X[cols].to_dict("records")):
            fields, _ = self._fields(rec, cols)
            texts.append(valid_utf8(fields_to_text(fields, self.text_style)))
            owners.append((r, None, None))
            for k, (column, value) in enumerate(fields):
                texts.append(fields_to_text(fields[:k] + fields[k + 1 :], self.text_style))
                owners.append((r, column, value))
        p = self._calibrate(self._margins_from_texts(texts))
        full = {r: p[i] for i, (r, c, _) in enumerate(owners) if c is None}
        rows = [
            {"row": r, "feature": c, "value": format_value(v), "contribution": float(full[r] - p[i])}
            for i, (r, c, v) in enumerate(owners)
            if c is not None
        ]
        return contribution_frame(rows)

    def fit_facts(self) -> dict:
        """The text budget of the fit, when the leads have free text: ``{"text_budget": {"chars", "columns",
        "truncated_leads", "leads"}}`` (what the run's pages say)."""
        cut = getattr(self, "text_cut_", None)
        return {"text_budget": dict(cut)} if cut and cut.get("columns") else {}

    # -- persistence -------------------------------------------------------------------------------
    def _write_adapter(self, folder: Path) -> None:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        entry = self._entry
        state = get_peft_model_state_dict(entry.peft, adapter_name=self.adapter_name_)
        save_file(
            {k: v.detach().to("cpu").contiguous() for k, v in state.items()}, str(folder / "adapter_model.safetensors")
        )
        config = entry.peft.peft_config[self.adapter_name_]
        payload = config.to_dict()
        payload["base_model_name_or_path"] = self.base_path_
        write_json(folder / "adapter_config.json", jsonable(payload, fallback=str))

    def save(self, path: str | Path) -> None:
        self._check_fitted("calibration_")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._write_adapter(path / ADAPTER_DIR)
        self._write_params(
            path,
            state={
                "base_path": self.base_path_,
                "base_fingerprint": model_fingerprint(self.base_path_),
                "verbalizer_ids": self.verbalizer_ids_,
                "answers": self.answers_,
                "calibration": self.calibration_,
                "columns": self.columns_,
                "text_columns": list(getattr(self, "text_columns_", [])),
                "text_cut": getattr(self, "text_cut_", None),
                "prompt_version": PROMPT_VERSION,
                "system_prompt": SYSTEM_PROMPT,
                "instruction": INSTRUCTION,
                "step_seconds": getattr(self, "step_seconds_", None),
                "fit_seconds": getattr(self, "fit_seconds_", None),
                "loss_history": getattr(self, "loss_history_", []),
                "n_train_rows": getattr(self, "n_train_rows_", None),
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> LoraApproach:
        path = Path(path)
        payload = cls._read_params(path)
        if payload.get("approach") != cls.name:
            raise ValueError(f"{path} holds a {payload.get('approach')!r} model, not a LoRA one.")
        params = dict(payload["params"])
        if isinstance(params.get("target_modules"), list):
            params["target_modules"] = tuple(params["target_modules"])
        params["resume"] = False
        model = cls(**{k: v for k, v in params.items() if k in cls._param_names()})
        state = payload["state"]
        base_path = state["base_path"]
        if not (Path(base_path) / "config.json").exists():
            try:
                base_path = resolve_base_model(params.get("base_model"))
            except ModelNotFoundError as exc:
                raise ModelNotFoundError(f"The base model of the LoRA adapter in {path} is missing: {exc}") from exc
        found = model_fingerprint(base_path)
        if found != state["base_fingerprint"]:
            raise ValueError(
                f"The base model at {base_path} is not the one the adapter in {path} was trained on "
                "(its weights differ). Fix: point base_model at the original base model folder, "
                "or retrain the adapter."
            )
        model._setup_base(base_path)
        if list(model.verbalizer_ids_) != list(state["verbalizer_ids"]):
            raise ValueError(f"The tokenizer at {base_path} maps the answers to other tokens than at training time.")
        from peft import LoraConfig

        config = LoraConfig.from_pretrained(str(path / ADAPTER_DIR))
        model._attach_adapter(config, _read_adapter_weights(path / ADAPTER_DIR))
        model.columns_ = list(state["columns"])
        model.text_columns_ = [str(c) for c in state.get("text_columns") or [] if c in model.columns_]
        model.text_cut_ = state.get("text_cut")
        model.calibration_ = dict(state["calibration"])
        model.loss_history_ = state.get("loss_history", [])
        model.step_seconds_ = state.get("step_seconds")
        model.fit_seconds_ = state.get("fit_seconds")
        model.classes_ = np.array([0, 1])
        return model


# -- helpers -----------------------------------------------------------------------------------
def _read_adapter_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    file = Path(folder) / "adapter_model.safetensors"
    if not file.exists():
        raise FileNotFoundError(f"No adapter weights at {file}; save the model again.")
    return load_file(str(file))


def _missing(value) -> bool:
    return is_missing(value)


def _check_x(X) -> pd.DataFrame:
    if isinstance(X, dict):
        X = pd.DataFrame([X])
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"LoRA scoring needs a pandas DataFrame of leads, got {type(X).__name__}.")
    return X
