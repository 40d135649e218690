"""The LoRA approach's optimisation on transformers' :class:`~transformers.Trainer`.

What the Trainer does here: the micro-batch loop, gradient accumulation (the loss of each optimiser step is
normalised by the answer tokens of all its micro-batches, transformers' ``num_items_in_batch``), clipping the
gradient norm at 1, AdamW steps and the linear warm-up/decay schedule (:func:`make_optimizer`), the training
callbacks. What stays the approach's own (:mod:`engine.approaches.lora`): the prompts and their label masks, the
length-bucketed batches of each epoch (their order is fixed by the seed), the project's checkpoints (only
tensors and plain values, resumed after a run-key check) and its progress and cancel callbacks, which
:class:`ProgressBridge` connects to the Trainer's.

Two details keep it equal to the loop it replaced:

* :meth:`AnswerTokenTrainer.compute_loss` projects onto the vocabulary only the positions that carry a loss
  (the answer tokens), not every prompt token: the same cross-entropy, a fraction of the work.
* An optimiser step never spans two epochs: the last step of an epoch may have fewer micro-batches, and such a
  step is padded with empty micro-batches (:data:`FILLER`, no tokens, no forward pass), so the Trainer, which
  runs the whole remaining schedule as one pass, steps exactly where the epoch ends.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from engine.approaches.lora_base import pad_batch
from engine.callbacks import CallbackList, Progress, TrainingCancelled

#: stands for an empty micro-batch that pads the last optimiser step of an epoch to the accumulation count
FILLER = None


class _MicroBatches(torch.utils.data.Dataset):
    """Pre-ordered micro-batches (lists of (input ids, labels)), padded when read; FILLER gives an empty one."""

    def __init__(self, batches: list, pad_id: int):
        self.batches = batches
        self.pad_id = pad_id

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict:
        batch = self.batches[i]
        if batch is FILLER:
            return {
                "input_ids": torch.full((1, 1), self.pad_id, dtype=torch.long),
                "attention_mask": torch.zeros((1, 1), dtype=torch.long),
                "labels": torch.full((1, 1), -100, dtype=torch.long),
            }
        ids, mask, labels = pad_batch([e[0] for e in batch], self.pad_id, [e[1] for e in batch])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


class AnswerTokenTrainer(Trainer):
    """A Trainer over pre-built micro-batches whose loss is the cross-entropy of the answer tokens only."""

    # compute_loss divides by the accumulated answer tokens itself (num_items_in_batch)
    loss_is_scaled_for_ga = True

    def __init__(self, *args, micro_batches: _MicroBatches, bridge: ProgressBridge, **kwargs):
        super().__init__(*args, callbacks=[bridge], **kwargs)
        self.micro_batches = micro_batches
        self.bridge = bridge  # sums the loss of the optimiser step under way

    def get_train_dataloader(self):
        # the order is the approach's (length-bucketed, seeded); one dataset item is one padded micro-batch
        return torch.utils.data.DataLoader(self.micro_batches, batch_size=None, shuffle=False)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        target = labels[:, 1:]
        if target.shape[1] == 0:  # FILLER: no tokens, no loss, no gradient
            return torch.zeros((), device=labels.device, requires_grad=True)
        supervised = target != -100
        if num_items_in_batch is None:  # the model does not take loss kwargs: count this step's tokens ourselves
            num_items_in_batch = supervised.sum().clamp(min=1) * self.current_gradient_accumulation_steps
        body = self.accelerator.unwrap_model(model).get_base_model()
        hidden = body.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
        logits = body.get_output_embeddings()(hidden[:, :-1][supervised]).float()  # only where there is a loss
        loss = torch.nn.functional.cross_entropy(logits, target[supervised], reduction="sum") / num_items_in_batch
        self.bridge.step_loss += float(loss.detach())
        return loss


def make_optimizer(params, learning_rate: float, weight_decay: float, warmup_steps: int, total_steps: int):
    """AdamW and transformers' linear schedule (warm-up from 0, then decay to 0 at ``total_steps``): the Trainer's
    defaults, made here so that a checkpoint's state can be loaded into them before the Trainer starts."""
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(params, lr=float(learning_rate), weight_decay=float(weight_decay))
    return optimizer, get_linear_schedule_with_warmup(optimizer, int(warmup_steps), int(total_steps))


class ProgressBridge(TrainerCallback):
    """The project's callbacks on the Trainer: after each optimiser step the loss history, the checkpoint hook and
    ``cb.on_step_end``; a :class:`TrainingCancelled` from it stops the Trainer (``should_training_stop``) after
    ``on_cancel`` (the checkpoint), and is raised again by :func:`train` once the Trainer has returned."""

    def __init__(
        self,
        cb: CallbackList,
        first_step: int,
        total_steps: int,
        epochs: list[int],
        history: list[dict],
        on_step: Callable[[int], None],
        on_cancel: Callable[[int], None],
    ):
        self.cb = cb
        self.step_loss = 0.0  # added to by AnswerTokenTrainer.compute_loss, read and reset after each step
        self.first_step, self.total_steps, self.epochs = first_step, total_steps, epochs
        self.history, self.on_step, self.on_cancel = history, on_step, on_cancel
        self.step_times: list[float] = []
        self.cancelled: TrainingCancelled | None = None
        self._t0 = time.monotonic()

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.monotonic()

    def on_step_end(self, args, state, control, lr_scheduler=None, **kwargs):
        self.step_times.append(time.monotonic() - self._t0)
        loss, self.step_loss = self.step_loss, 0.0
        step = self.first_step + state.global_step
        epoch = self.epochs[step - 1]
        self.history.append({"step": step, "loss": loss, "epoch": epoch})
        self.on_step(step)
        lr = lr_scheduler.get_last_lr()[0] if lr_scheduler is not None else None
        try:
            self.cb.on_step_end(
                Progress(step=step, total=self.total_steps, loss=loss, stage="train", extra={"epoch": epoch, "lr": lr})
            )
        except TrainingCancelled as exc:
            self.cancelled = exc
            self.on_cancel(step)
            self.cb.on_log(f"LoRA training cancelled after step {step}/{self.total_steps}")
            control.should_training_stop = True
        return control


def train(
    model,
    micro_batches: list,
    pad_id: int,
    accum: int,
    optimizer,
    scheduler,
    device,
    seed: int,
    bridge: ProgressBridge,
) -> None:
    """Run the Trainer over ``micro_batches`` (``accum`` per optimiser step, FILLER-padded), with the given
    optimiser and schedule; raises the bridge's :class:`TrainingCancelled` when a callback cancelled."""
    steps = len(micro_batches) // accum
    if steps == 0:
        return
    with tempfile.TemporaryDirectory(prefix="clab-lora-trainer-") as scratch:  # nothing is saved: no checkpoints
        args = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=1,  # one item of the dataset is one micro-batch, already padded
            gradient_accumulation_steps=accum,
            max_steps=steps,
            max_grad_norm=1.0,
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=device.type == "cpu",
            seed=int(seed),
            remove_unused_columns=False,
            dataloader_num_workers=0,
        )
        trainer = AnswerTokenTrainer(
            model=model,
            args=args,
            micro_batches=_MicroBatches(micro_batches, pad_id),
            optimizers=(optimizer, scheduler),
            bridge=bridge,
        )
        trainer.train()
    if bridge.cancelled is not None:
        raise bridge.cancelled
