"""What the reward model, DPO, PPO and GRPO share: the LoRA recipe and one optimisation loop."""
from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from tqdm.auto import tqdm

TARGET_MODULES = ("q_proj", "v_proj")  # the course's LoRA placement


def lora_config(task_type: str, r: int, alpha: int):
    """LoRA on the attention queries and values. No dropout: a step is then a deterministic function
    of the batch, so a rerun (and TRL, given the same settings) reproduces it exactly.

    task_type "SEQ_CLS" also trains the classification head (PEFT adds ``score`` to modules_to_save).
    """
    from peft import LoraConfig

    if not isinstance(r, int) or r < 1:
        raise ValueError(f"r (the LoRA rank) must be an int >= 1, got {r!r}")
    if not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"alpha (the LoRA scale numerator) must be > 0, got {alpha!r}")
    return LoraConfig(task_type=task_type, r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(TARGET_MODULES))


def count_parameters(model) -> dict[str, int]:
    return {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "total": sum(p.numel() for p in model.parameters())}


def trainable_parameters(*models) -> list[torch.nn.Parameter]:
    return [p for model in models for p in model.parameters() if p.requires_grad]


def make_optimizer(parameters: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """AdamW, no weight decay (TRL's defaults: betas 0.9/0.999, eps 1e-8)."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)


def optimize(model, batches: Iterable, loss_fn: Callable[[int, object], tuple[torch.Tensor, dict]], lr: float,
             max_grad_norm: float = 1.0, desc: str = "training",
             callback: Callable[[int, dict], dict | None] | None = None) -> list[dict]:
    """Run one optimizer step per batch with constant ``lr``; returns one log record per step.

    ``loss_fn(step, batch) -> (loss, stats)`` (step counts from 0); ``stats`` (floats) are logged with the loss and the
    gradient norm before clipping. ``callback(step, record)`` may add entries (e.g. a gold evaluation).
    """
    parameters = trainable_parameters(model)
    optimizer = make_optimizer(parameters, lr)
    history = []
    model.train()
    for step, batch in enumerate(bar := tqdm(list(batches), desc=desc, unit="step")):
        loss, stats = loss_fn(step, batch)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        record = {"step": step + 1, "loss": loss.item(), "grad_norm": grad_norm.item(), **stats}
        if callback is not None:
            model.eval()
            record.update(callback(step + 1, record) or {})
            model.train()
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
    model.eval()
    return history
