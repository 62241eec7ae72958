"""Task 2's DPO (Rafailov et al., 2023) with LoRA.

The loss pieces are pure functions of tensors (as in eric-mitchell/direct-preference-optimization and
TRL's ``loss_type="sigmoid"``); the model code below them only produces their inputs:

* policy = the base checkpoint + a LoRA adapter (q, v); reference = the same model with the adapter
  disabled - no second copy in memory, and exactly the base at step 0 (LoRA's B starts at 0);
* chosen and rejected in one concatenated forward; the reference log-probs are computed once,
  before training (the reference never changes);
* logged per step: loss, implicit-reward accuracy and margin, chosen / rejected rewards, and every
  ``kl_every`` steps the token-level KL(policy || reference) on the chosen responses.

Shapes: B pairs, N = 2B sequences, T tokens, V vocabulary.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from task2.data import EncodedPairs, batch_indices, collate_pairs, to_device
from task2.training import lora_config, optimize


def _check_token_inputs(logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor) -> None:
    if logits.dim() != 3 or labels.shape != logits.shape[:2] or loss_mask.shape != labels.shape:
        raise ValueError(f"expected logits [B, T, V] and labels, loss_mask [B, T]; got {tuple(logits.shape)}, "
                         f"{tuple(labels.shape)}, {tuple(loss_mask.shape)}")
    if loss_mask[:, 0].any():
        raise ValueError("loss_mask[:, 0] must be 0: the first token has no prediction before it")


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < float("inf"):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")


def token_logps(logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor,
                temperature: float = 1.0) -> torch.Tensor:
    """Per-token log-probabilities of the completion tokens under softmax(logits / temperature).

    logits [B, T, V]; labels, loss_mask [B, T]. ``loss_mask[b, t]`` marks token t of ``labels`` as a
    completion token; its log-probability is read from ``logits[b, t - 1]`` (the next-token
    prediction made at t - 1). The mask, not a pad id, decides what counts: with pad == eos (SmolLM2)
    the end-of-turn token must be in the mask. Returns [B, T] float32, 0 where the mask is 0.
    RL samples at a temperature, so its log-probs must be those of the tempered policy.
    """
    _check_token_inputs(logits, labels, loss_mask)
    _check_temperature(temperature)
    ### BEGIN SOLUTION
    mask = loss_mask[:, 1:].bool()
    targets = labels[:, 1:].masked_fill(~mask, 0)  # masked labels may be -100 or pad: never gathered
    scaled = logits[:, :-1].float() / temperature
    log_probs = scaled.log_softmax(dim=-1).gather(-1, targets[..., None]).squeeze(-1)
    return F.pad(log_probs * mask, (1, 0))
    ### END SOLUTION


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """[B] sum of the log-probabilities of the completion tokens of each sequence (see :func:`token_logps`)."""
    return token_logps(logits, labels, loss_mask).sum(dim=-1)


def token_entropy(logits: torch.Tensor, loss_mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """[B, T] entropy (nats) of the tempered next-token distribution that predicted each completion
    token (read at t - 1, as :func:`token_logps`); 0 where the mask is 0. No gradient."""
    _check_token_inputs(logits, loss_mask, loss_mask)
    _check_temperature(temperature)
    with torch.no_grad():
        log_p = (logits[:, :-1].float() / temperature).log_softmax(dim=-1)
        return F.pad(-(log_p.exp() * log_p).sum(-1) * loss_mask[:, 1:], (1, 0))


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
    if policy_chosen_logps.numel() == 0:
        raise ValueError("the log-prob tensors are empty: a batch needs at least one pair")
    ### BEGIN SOLUTION
    chosen_log_ratio = policy_chosen_logps - ref_chosen_logps
    rejected_log_ratio = policy_rejected_logps - ref_rejected_logps
    loss = -F.logsigmoid(beta * (chosen_log_ratio - rejected_log_ratio)).mean()
    return loss, beta * chosen_log_ratio.detach(), beta * rejected_log_ratio.detach()
    ### END SOLUTION


def token_kl(policy_logits: torch.Tensor, reference_logits: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """[N] sum over completion tokens of KL(policy(.|prefix) || reference(.|prefix)), exact over the
    vocabulary at each predicting position (t - 1 for completion token t). Logits [N, T, V]."""
    if policy_logits.shape != reference_logits.shape or loss_mask.shape != policy_logits.shape[:2]:
        raise ValueError(f"expected policy_logits, reference_logits [N, T, V] and loss_mask [N, T]; got "
                         f"{tuple(policy_logits.shape)}, {tuple(reference_logits.shape)}, {tuple(loss_mask.shape)}")
    ### BEGIN SOLUTION
    log_p = policy_logits[:, :-1].float().log_softmax(-1)
    log_q = reference_logits[:, :-1].float().log_softmax(-1)
    per_position = (log_p.exp() * (log_p - log_q)).sum(-1)  # [N, T-1]
    return (per_position * loss_mask[:, 1:]).sum(-1)
    ### END SOLUTION


def load_policy(ref: str, r: int = 8, alpha: int = 32, seed: int = 0):
    """The base causal LM with a fresh LoRA adapter on q_proj / v_proj (seeded A, zero B)."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from pa5 import hub

    torch.manual_seed(seed)
    return get_peft_model(hub.from_pretrained(AutoModelForCausalLM, ref), lora_config("CAUSAL_LM", r, alpha))


def reference_mode(model):
    """Context in which ``model`` is the reference: its LoRA adapter disabled (a plain model: itself)."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()


def forward_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """[N, T, V] logits, with positions counted over real tokens (right or left padding alike)."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                 position_ids=batch["position_ids"], use_cache=False).logits


@torch.no_grad()
def pair_logps(model, pairs: EncodedPairs, pad_id: int, batch_size: int = 64) -> torch.Tensor:
    """[P, 2] summed completion log-probs (chosen, rejected) of every pair under ``model`` as it is."""
    model.eval()
    out = []
    for part in pairs.batches(batch_size):
        batch = to_device(collate_pairs(part, pad_id), model.device)
        logps = sequence_logps(forward_logits(model, batch), batch["input_ids"], batch["loss_mask"])
        out.append(torch.stack(logps.chunk(2), dim=-1).cpu())
    return torch.cat(out)


def reference_logps(model, pairs: EncodedPairs, pad_id: int, batch_size: int = 64) -> torch.Tensor:
    """[P, 2] log-probs under the reference (the adapter disabled): computed once, before training."""
    with reference_mode(model):
        return pair_logps(model, pairs, pad_id, batch_size)


def train_dpo(model, pairs: EncodedPairs, pad_id: int, beta: float, steps: int, batch_size: int, lr: float,
              seed: int = 0, ref_logps: torch.Tensor | None = None, nll_weight: float = 0.0, kl_every: int = 10,
              callback=None) -> list[dict]:
    """Sigmoid DPO on ``pairs``; ``ref_logps`` [P, 2] from :func:`reference_logps` (computed if None).

    ``nll_weight`` > 0 adds the chosen responses' token-mean NLL (RPO, Pang et al. 2024; TRL's
    ``loss_type=["sigmoid", "sft"], loss_weights=[1, nll_weight]``): plain DPO may lower the chosen
    log-probs too, as long as the rejected ones fall faster - the NLL term keeps the chosen likely.
    """
    if not isinstance(nll_weight, (int, float)) or nll_weight < 0:
        raise ValueError(f"nll_weight must be a number >= 0, got {nll_weight!r}")
    if ref_logps is None:
        ref_logps = reference_logps(model, pairs, pad_id)
    if ref_logps.shape != (len(pairs), 2):
        raise ValueError(f"ref_logps must be [P, 2] = [{len(pairs)}, 2], got {tuple(ref_logps.shape)}")

    def loss_fn(step, indices):
        batch = to_device(collate_pairs(pairs.subset(indices), pad_id), model.device)
        logits = forward_logits(model, batch)
        chosen_logps, rejected_logps = sequence_logps(logits, batch["input_ids"], batch["loss_mask"]).chunk(2)
        ref = ref_logps[indices].to(chosen_logps.device)
        loss, chosen_rewards, rejected_rewards = dpo_loss(chosen_logps, rejected_logps, ref[:, 0], ref[:, 1], beta)
        stats = {"dpo_loss": loss.item()}
        if nll_weight:
            nll = -chosen_logps.sum() / batch["loss_mask"][: len(indices), 1:].sum()
            loss, stats["nll"] = loss + nll_weight * nll, nll.item()
        stats |= {"reward_accuracy": (chosen_rewards > rejected_rewards).float().mean().item(),
                 "margin": (chosen_rewards - rejected_rewards).mean().item(),
                 "chosen_reward": chosen_rewards.mean().item(), "rejected_reward": rejected_rewards.mean().item()}
        if kl_every and step % kl_every == 0:
            chosen = slice(0, len(indices))
            with torch.no_grad(), reference_mode(model):
                reference_logits = forward_logits(model, {k: v[chosen] for k, v in batch.items()})
            stats["kl"] = token_kl(logits[chosen].detach(), reference_logits, batch["loss_mask"][chosen]).mean().item()
        return loss, stats

    return optimize(model, batch_indices(len(pairs), batch_size, steps, seed), loss_fn, lr, desc="DPO",
                    callback=callback)


def evaluate_dpo(model, pairs: EncodedPairs, pad_id: int, beta: float, batch_size: int = 64) -> dict:
    """Implicit-reward accuracy (strict), mean margin, mean chosen / rejected rewards on ``pairs``, and
    the per-pair implicit rewards (lists, for per-family breakdowns)."""
    rewards = beta * (pair_logps(model, pairs, pad_id, batch_size) - reference_logps(model, pairs, pad_id, batch_size))
    chosen, rejected = rewards.unbind(-1)
    return {"reward_accuracy": (chosen > rejected).float().mean().item(), "margin": (chosen - rejected).mean().item(),
            "chosen_reward": chosen.mean().item(), "rejected_reward": rejected.mean().item(),
            "chosen_rewards": chosen.tolist(), "rejected_rewards": rejected.tolist()}
