"""What task 2's trainers share: the LoRA recipe, the optimizer, and the supervised loop of the
reward model and DPO. (PPO and GRPO run their own loops - rollout, then updates - and every loop
steps through ``pa5.optim.optimizer_step``.)"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import torch
from tqdm.auto import tqdm

from pa5.checks import check_number
from pa5.device import grad_scaler, memory_stage, module_device
from pa5.optim import optimizer_step
from task2.config import LoRAConfig, OptimConfig

TARGET_MODULES = ("q_proj", "v_proj")  # the course's LoRA placement
# peak memory of one step at the full profile's sizes (upper bounds measured on the CPU, task2/README.md):
# what an out-of-memory message quotes
FULL_PROFILE_PEAK_GIB = {"reward model": 2.9, "DPO": 4.5, "PPO": 5.1, "GRPO": 9.4}


def peft_lora_config(task_type: str, lora: LoRAConfig):
    """PEFT's LoraConfig for ``lora`` on the attention queries and values. No dropout: a step is then
    a deterministic function of the batch, so a rerun (and TRL, given the same settings) reproduces it.

    task_type "SEQ_CLS" also trains the classification head (PEFT adds ``score`` to modules_to_save).
    """
    from peft import LoraConfig

    return LoraConfig(task_type=task_type, r=lora.r, lora_alpha=lora.alpha, lora_dropout=0.0,
                      target_modules=list(TARGET_MODULES))


def count_parameters(model) -> dict[str, int]:
    return {"trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "total": sum(p.numel() for p in model.parameters())}


def trainable_parameters(*models) -> list[torch.nn.Parameter]:
    return [p for model in models for p in model.parameters() if p.requires_grad]


@contextlib.contextmanager
def gradient_checkpointing(*models, enabled: bool = True):
    """Within: every transformer layer of ``models`` keeps only its input for the backward pass and
    recomputes the rest (one more forward, a fraction of the activation memory). Off afterwards."""
    inner = [m.get_base_model() if hasattr(m, "get_base_model") else m for m in models] if enabled else []
    for model in inner:  # transformers 5 renames gradient_* to activation_checkpointing_*
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    try:
        yield
    finally:
        for model in inner:
            (getattr(model, "activation_checkpointing_disable", None) or model.gradient_checkpointing_disable)()


def make_optimizer(parameters: list[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    """AdamW, no weight decay (TRL's defaults: betas 0.9/0.999, eps 1e-8)."""
    check_number("lr", lr, 0, low_open=True)
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)


def optimize(model, batches: Iterable, loss_fn: Callable[[int, object], tuple[torch.Tensor, dict]],
             config: OptimConfig, desc: str = "training",
             callback: Callable[[int, dict], dict | None] | None = None, setting: str = "batch_size") -> list[dict]:
    """One optimizer step per batch at ``config.lr``, gradients clipped at ``config.max_grad_norm``
    (fp16: through a GradScaler; ``config.gradient_checkpointing``: with activation checkpointing);
    returns one log record per step.

    ``loss_fn(step, batch) -> (loss, stats)`` (step counts from 0); ``stats`` (floats) are logged with
    the loss and the gradient norm before clipping. ``callback(step, record)`` may add entries (e.g.
    a gold evaluation). Out of GPU memory, it names ``desc`` and the ``setting`` to lower.
    """
    parameters = trainable_parameters(model)
    optimizer = make_optimizer(parameters, config.lr)
    scaler = grad_scaler(module_device(model))
    history = []
    model.train()
    for step, batch in enumerate(bar := tqdm(list(batches), desc=desc, unit="step")):
        with gradient_checkpointing(model, enabled=config.gradient_checkpointing), memory_stage(
                desc, setting, FULL_PROFILE_PEAK_GIB.get(desc)):
            loss, stats = loss_fn(step, batch)
            grad_norm = optimizer_step(loss, parameters, optimizer, config.max_grad_norm, scaler)
        record = {"step": step + 1, "loss": loss.item(), "grad_norm": grad_norm, **stats}
        if callback is not None:
            model.eval()
            record.update(callback(step + 1, record) or {})
            model.train()
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
    model.eval()
    return history
