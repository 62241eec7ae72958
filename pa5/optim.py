"""One optimizer step, the same in every training loop of the course (the stand-in LM, task 2's
reward model, DPO, PPO and GRPO, task 3's fine-tuning, USAE and activation maximisation)."""
from __future__ import annotations

from collections.abc import Iterable

import torch

from pa5.checks import check_number


def optimizer_step(loss: torch.Tensor, parameters: Iterable[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                   max_norm: float | None = 1.0, scaler: torch.amp.GradScaler | None = None) -> float:
    """Update ``parameters`` to lower ``loss``: their gradients, clipped to a global L2 norm of
    ``max_norm`` (None: not clipped), one ``optimizer`` step, gradients cleared.

    Only ``parameters`` receive gradients, even where ``loss`` also depends on other parameters
    (the USAE's other decoders, a frozen reference): nothing else is changed, and no gradient is left
    behind to leak into a later step. Gradients are not accumulated across calls.
    Returns the gradient norm before clipping - what every loop logs.

    ``scaler`` (fp16, :func:`pa5.device.grad_scaler`): the loss is scaled before differentiation, the
    gradients unscaled before clipping, and a step whose gradients overflowed is skipped (the scale
    then shrinks); the norm returned is then inf.
    """
    if max_norm is not None:
        check_number("max_norm", max_norm, 0, low_open=True)
    parameters = [p for p in parameters if p.requires_grad]
    if not parameters:
        raise ValueError("parameters must include at least one parameter that requires grad")
    scaled = loss if scaler is None else scaler.scale(loss)
    for parameter, grad in zip(parameters, torch.autograd.grad(scaled, parameters, allow_unused=True)):
        parameter.grad = grad
    if scaler is not None:
        scaler.unscale_(optimizer)
    if max_norm is None:  # measured, not rescaled: the gradients stay exactly as computed
        norms = [torch.linalg.vector_norm(p.grad) for p in parameters if p.grad is not None]
        grad_norm = torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())
    else:
        grad_norm = torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    if scaler is None:
        optimizer.step()
    else:
        scaler.step(optimizer)
        scaler.update()
    for parameter in parameters:
        parameter.grad = None
    return grad_norm.item()
