"""Task 2's DPO (Rafailov et al., 2023) with LoRA.

The loss is a pure function of summed log-probabilities (as in eric-mitchell/direct-preference-
optimization and TRL's ``loss_type="sigmoid"``); the code below it only produces its inputs:

* the policy and its reference come from ``task2.policy`` (the reference = the adapter disabled,
  exactly the base at step 0);
* chosen and rejected in one concatenated forward; the reference log-probs are computed once,
  before training (the reference never changes);
* logged per step: loss, implicit-reward accuracy and margin, chosen / rejected rewards, and every
  ``kl_every`` steps the token-level KL(policy || reference) on the chosen responses.

Shapes: B pairs, N = 2B sequences, T tokens, V vocabulary.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pa5.checks import check_number, check_same_shape
from task2.config import DPOConfig
from task2.data import EncodedPairs, batch_indices, collate_pairs, to_device
from task2.policy import batch_logps, completion_kl, reference_mode
from task2.training import optimize


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sigmoid DPO (Rafailov et al., 2023), as TRL's ``loss_type="sigmoid"``.

    loss = mean_b -log sigma(beta * [(pi_c - ref_c) - (pi_r - ref_r)]); the implicit rewards are
    beta * (policy - reference) per example, detached. All inputs [B] (summed log-probs).
    Returns (loss, chosen_rewards [B], rejected_rewards [B]).
    """
    check_number("beta", beta, 0, low_open=True)
    check_same_shape(1, policy_chosen_logps=policy_chosen_logps, policy_rejected_logps=policy_rejected_logps,
                     ref_chosen_logps=ref_chosen_logps, ref_rejected_logps=ref_rejected_logps)
    if policy_chosen_logps.numel() == 0:
        raise ValueError("the log-prob tensors are empty: a batch needs at least one pair")
    ### BEGIN SOLUTION
    chosen_log_ratio = policy_chosen_logps - ref_chosen_logps
    rejected_log_ratio = policy_rejected_logps - ref_rejected_logps
    loss = -F.logsigmoid(beta * (chosen_log_ratio - rejected_log_ratio)).mean()
    return loss, beta * chosen_log_ratio.detach(), beta * rejected_log_ratio.detach()
    ### END SOLUTION


@torch.no_grad()
def pair_logps(model, pairs: EncodedPairs, pad_id: int, batch_size: int = 16) -> torch.Tensor:
    """[P, 2] summed completion log-probs (chosen, rejected) of every pair under ``model`` as it is,
    ``batch_size`` pairs per forward (memory: see task2.policy)."""
    model.eval()
    out = []
    for part in pairs.batches(batch_size):
        batch = to_device(collate_pairs(part, pad_id), model.device)
        out.append(torch.stack(batch_logps(model, batch).chunk(2), dim=-1).cpu())
    return torch.cat(out)


def reference_logps(model, pairs: EncodedPairs, pad_id: int, batch_size: int = 16) -> torch.Tensor:
    """[P, 2] log-probs under the reference (the adapter disabled): computed once, before training."""
    with reference_mode(model):
        return pair_logps(model, pairs, pad_id, batch_size)


def train_dpo(model, pairs: EncodedPairs, pad_id: int, config: DPOConfig, seed: int = 0,
              ref_logps: torch.Tensor | None = None, callback=None) -> list[dict]:
    """Sigmoid DPO on ``pairs``; ``ref_logps`` [P, 2] from :func:`reference_logps` (computed if None).

    ``config.nll_weight`` > 0 adds the chosen responses' token-mean NLL (RPO, Pang et al. 2024; TRL's
    ``loss_type=["sigmoid", "sft"], loss_weights=[1, nll_weight]``): plain DPO may lower the chosen
    log-probs too, as long as the rejected ones fall faster - the NLL term keeps the chosen likely.
    """
    if ref_logps is None:
        ref_logps = reference_logps(model, pairs, pad_id)
    if ref_logps.shape != (len(pairs), 2):
        raise ValueError(f"ref_logps must be [P, 2] = [{len(pairs)}, 2], got {tuple(ref_logps.shape)}")

    def loss_fn(step, indices):
        batch = to_device(collate_pairs(pairs.subset(indices), pad_id), model.device)
        chosen_logps, rejected_logps = batch_logps(model, batch).chunk(2)
        ref = ref_logps[indices].to(chosen_logps.device)
        loss, chosen_rewards, rejected_rewards = dpo_loss(chosen_logps, rejected_logps, ref[:, 0], ref[:, 1],
                                                          config.beta)
        stats = {"dpo_loss": loss.item()}
        if config.nll_weight:
            nll = -chosen_logps.sum() / batch["loss_mask"][: len(indices), 1:].sum()
            loss, stats["nll"] = loss + config.nll_weight * nll, nll.item()
        stats |= {"reward_accuracy": (chosen_rewards > rejected_rewards).float().mean().item(),
                 "margin": (chosen_rewards - rejected_rewards).mean().item(),
                 "chosen_reward": chosen_rewards.mean().item(), "rejected_reward": rejected_rewards.mean().item()}
        if config.kl_every and step % config.kl_every == 0:
            chosen = {k: v[: len(indices)] for k, v in batch.items()}
            stats["kl"] = completion_kl(model, chosen).mean().item()
        return loss, stats

    return optimize(model, batch_indices(len(pairs), config.batch_size, config.steps, seed), loss_fn, config,
                    desc="DPO", callback=callback, setting="config.dpo.batch_size (or config.max_length)")


def evaluate_dpo(model, pairs: EncodedPairs, pad_id: int, beta: float, batch_size: int = 16) -> dict:
    """Implicit-reward accuracy (strict), mean margin, mean chosen / rejected rewards on ``pairs``, and
    the per-pair implicit rewards (lists, for per-family breakdowns)."""
    rewards = beta * (pair_logps(model, pairs, pad_id, batch_size) - reference_logps(model, pairs, pad_id, batch_size))
    chosen, rejected = rewards.unbind(-1)
    return {"reward_accuracy": (chosen > rejected).float().mean().item(), "margin": (chosen - rejected).mean().item(),
            "chosen_reward": chosen.mean().item(), "rejected_reward": rejected.mean().item(),
            "chosen_rewards": chosen.tolist(), "rejected_rewards": rejected.tolist()}
