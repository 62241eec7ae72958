"""Task 2's DPO. So far: the loss pieces as pure functions of tensors, no model code (after
eric-mitchell/direct-preference-optimization and TRL's ``loss_type="sigmoid"``).

Shapes: B examples, T tokens, V vocabulary.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Sum of the log-probabilities of the completion tokens of each sequence.

    logits [B, T, V]; labels, loss_mask [B, T]. ``loss_mask[b, t]`` marks token t of ``labels`` as a
    completion token; its log-probability is read from ``logits[b, t - 1]`` (the next-token
    prediction made at t - 1). The mask, not a pad id, decides what counts: with pad == eos (SmolLM2)
    the end-of-turn token must be in the mask. Returns [B] (float32).
    """
    if logits.dim() != 3 or labels.shape != logits.shape[:2] or loss_mask.shape != labels.shape:
        raise ValueError(f"expected logits [B, T, V] and labels, loss_mask [B, T]; got {tuple(logits.shape)}, "
                         f"{tuple(labels.shape)}, {tuple(loss_mask.shape)}")
    if loss_mask[:, 0].any():
        raise ValueError("loss_mask[:, 0] must be 0: the first token has no prediction before it")
    ### BEGIN SOLUTION
    mask = loss_mask[:, 1:].bool()
    targets = labels[:, 1:].masked_fill(~mask, 0)  # masked labels may be -100 or pad: never gathered
    log_probs = logits[:, :-1].float().log_softmax(dim=-1).gather(-1, targets[..., None]).squeeze(-1)
    return (log_probs * mask).sum(dim=-1)
    ### END SOLUTION


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sigmoid DPO (Rafailov et al., 2023), as TRL's ``loss_type="sigmoid"``.

    loss = mean_b -log sigma(beta * [(pi_c - ref_c) - (pi_r - ref_r)]); the implicit rewards are
    beta * (policy - reference) per example, detached. All inputs [B] (summed log-probs).
    Returns (loss, chosen_rewards [B], rejected_rewards [B]).
    """
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
        raise ValueError(f"beta must be a number > 0, got {beta!r}")
    shapes = {t.shape for t in (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)}
    if len(shapes) != 1 or policy_chosen_logps.dim() != 1:
        raise ValueError(f"the four log-prob tensors must all be [B], got shapes {sorted(map(tuple, shapes))}")
    ### BEGIN SOLUTION
    chosen_log_ratio = policy_chosen_logps - ref_chosen_logps
    rejected_log_ratio = policy_rejected_logps - ref_rejected_logps
    loss = -F.logsigmoid(beta * (chosen_log_ratio - rejected_log_ratio)).mean()
    return loss, beta * chosen_log_ratio.detach(), beta * rejected_log_ratio.detach()
    ### END SOLUTION
