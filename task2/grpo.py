"""Task 2's GRPO (Shao et al., 2024, DeepSeekMath), from scratch, with LoRA - TRL's GRPOTrainer semantics.

No critic: for each prompt, ``group_size`` completions are sampled and each one's advantage is its
reward relative to its group (the group mean is the baseline). The loss is PPO's clipped surrogate
per token with that sequence-level advantage, an optional k3 KL penalty to the reference, and one of
TRL's loss aggregations (``loss_type``):

* "grpo":    per-sequence token mean, then the mean over sequences (long sequences weigh less per token);
* "bnpo":    sum over all tokens / number of tokens in the batch;
* "dr_grpo": sum over all tokens / (N * max_completion_length), a constant (Liu et al., 2025);
* "dapo":    sum over all tokens / number of tokens in the whole generation batch (Yu et al., 2025;
             TRL's default; equal to "bnpo" when one optimizer step uses the whole generation batch).

A group whose rewards are all equal has advantage 0 for every member: it carries no gradient (the
share of such groups is logged). With one update per generation (``iterations`` = 1) the ratio is
exactly 1 and the loss's value is -mean advantage-weighted 1, i.e. about 0 - its gradient is not.

Shapes: N = prompts x group_size sequences, T tokens; ``mask`` [N, T] marks completion tokens.
"""
from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from pa5.checks import check_choice, check_floating, check_int, check_number, check_same_shape
from pa5.device import grad_scaler, memory_stage, module_device
from pa5.optim import optimizer_step
from task2.config import GRPO_LOSS_TYPES, GRPO_SCALES, GRPOConfig
from task2.data import batch_indices
from task2.policy import kl_estimate, masked_mean, policy_logps, reference_token_logps
from task2.reward_model import Scorer
from task2.rollout import Gold, sample_rollout
from task2.training import FULL_PROFILE_PEAK_GIB, gradient_checkpointing, make_optimizer, trainable_parameters


def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4) -> torch.Tensor:
    """[N] advantages of rewards [N] laid out as consecutive groups of ``group_size``.

    A = r - mean(group); divided by (std(group) + eps) for "group", by (std(batch) + eps) for
    "batch", not divided for "none" (Dr. GRPO). Standard deviations are Bessel-corrected, as TRL's.
    """
    if rewards.dim() != 1 or rewards.numel() == 0:
        raise ValueError(f"rewards must be a non-empty [N] tensor, got shape {tuple(rewards.shape)}")
    check_int("group_size", group_size, 2)  # a group of one has no baseline
    if len(rewards) % group_size:
        raise ValueError(f"group_size ({group_size}) must divide the number of rewards ({len(rewards)})")
    check_choice("scale", scale, GRPO_SCALES)
    check_number("eps", eps, 0, low_open=True)
    ### BEGIN SOLUTION
    groups = rewards.view(-1, group_size)
    advantages = (groups - groups.mean(dim=1, keepdim=True)).flatten()
    if scale == "group":
        advantages = advantages / (groups.std(dim=1).repeat_interleave(group_size) + eps)
    elif scale == "batch":
        advantages = advantages / (rewards.std() + eps)
    return advantages
    ### END SOLUTION


def zero_spread_fraction(rewards: torch.Tensor, group_size: int) -> float:
    """Share of groups whose rewards are all equal (their advantages are 0: no gradient)."""
    groups = rewards.view(-1, group_size)
    return torch.isclose(groups, groups[:, :1]).all(dim=1).float().mean().item()


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              loss_type: str = "dapo", epsilon: float = 0.2, epsilon_high: float | None = None, beta: float = 0.0,
              ref_logps: torch.Tensor | None = None, max_completion_length: int | None = None,
              num_items: float | None = None, kl_bias_correction: bool = True) -> tuple[torch.Tensor, dict]:
    """GRPO's loss, as TRL's ``GRPOTrainer._compute_loss`` (token-level importance sampling).

    logps, old_logps, ref_logps, mask [N, T]; advantages [N]. Per token:
    ratio = exp(logps - old_logps); l = -min(ratio * A, clip(ratio, 1 - epsilon, 1 + epsilon_high) * A)
    + beta * KL, with KL = k3 = exp(ref - logps) - (ref - logps) - 1, times the ratio when
    ``kl_bias_correction`` (TRL's ``use_bias_correction_kl``, default True). Aggregated by
    ``loss_type`` (module docstring); "dr_grpo" needs ``max_completion_length``; "dapo" divides by
    ``num_items`` (tokens in the generation batch; default: this batch's).
    Returns (loss, {"clip_fraction", "kl"}): clip_fraction = share of mask tokens where the clip is
    active (ratio < 1 - epsilon with A < 0, or ratio > 1 + epsilon_high with A > 0); kl = the masked
    token mean of k3 (nan when beta = 0).
    """
    check_same_shape(2, logps=logps, old_logps=old_logps, mask=mask,
                     **({} if ref_logps is None else {"ref_logps": ref_logps}))
    if advantages.shape != (logps.shape[0],):
        raise ValueError(f"advantages must be [N] = [{logps.shape[0]}], got {tuple(advantages.shape)}")
    check_floating(logps=logps, old_logps=old_logps, advantages=advantages,
                   **({} if ref_logps is None else {"ref_logps": ref_logps}))
    check_choice("loss_type", loss_type, GRPO_LOSS_TYPES)
    if num_items is not None:
        check_number("num_items", num_items, 0, low_open=True)
    check_number("epsilon", epsilon, 0, low_open=True)
    if epsilon_high is not None:
        check_number("epsilon_high", epsilon_high, 0, low_open=True)
    check_number("beta", beta, 0)
    if beta > 0 and ref_logps is None:
        raise ValueError("beta > 0 needs ref_logps (the reference's per-token log-probs)")
    if loss_type == "dr_grpo":
        check_int("max_completion_length (loss_type 'dr_grpo' needs it)", max_completion_length, 1)
    ### BEGIN SOLUTION
    epsilon_high = epsilon if epsilon_high is None else epsilon_high
    mask = mask.to(logps.dtype)
    advantages = advantages[:, None].to(logps.dtype)
    ratio = torch.exp(logps - old_logps)
    clipped_ratio = torch.clamp(ratio, 1 - epsilon, 1 + epsilon_high)
    per_token = -torch.min(ratio * advantages, clipped_ratio * advantages)
    kl = None
    if beta > 0:
        kl = torch.exp(ref_logps - logps) - (ref_logps - logps) - 1
        per_token = per_token + beta * (kl * ratio if kl_bias_correction else kl)
    if loss_type == "grpo":
        loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif loss_type == "bnpo":
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    elif loss_type == "dr_grpo":
        loss = (per_token * mask).sum() / (per_token.shape[0] * max_completion_length)
    else:  # dapo
        normalizer = mask.sum() if num_items is None else torch.as_tensor(num_items, dtype=mask.dtype)
        loss = (per_token * mask).sum() / normalizer.clamp(min=1.0)
    clipped = ((ratio < 1 - epsilon) & (advantages < 0)) | ((ratio > 1 + epsilon_high) & (advantages > 0))
    tokens = mask.sum().clamp(min=1.0)
    stats = {"clip_fraction": ((clipped * mask).sum() / tokens).item(),
             "kl": float("nan") if kl is None else ((kl * mask).sum() / tokens).item()}
    return loss, stats
    ### END SOLUTION


def grpo_update(policy, batch: dict[str, torch.Tensor], scores: torch.Tensor, config: GRPOConfig,
                optimizer: torch.optim.Optimizer, parameters: list[torch.nn.Parameter], scaler=None,
                log_kl: bool = False) -> dict[str, float]:
    """GRPO's learning step on one rollout of ``config.group_size`` completions per prompt (a group's
    rows are consecutive).

    ``batch``: the rollout's tensors [N, T] (input_ids, attention_mask, position_ids, ``loss_mask``);
    ``scores`` [N]: each completion's reward. In order:

    1. advantages: ``group_advantages(scores, config.group_size, config.scale_rewards)``;
    2. frozen, under ``torch.no_grad()``: the reference's token log-probs at ``config.temperature``
       (``reference_token_logps``) if ``config.beta`` > 0 or ``log_kl``, else None; the policy's
       (``policy_logps``) if ``config.iterations`` > 1, else None;
    3. ``policy.train()``; ``config.iterations`` times: the policy's log-probs (``entropy=True``),
       ``grpo_loss`` with ``config.loss_type``, ``config.epsilon``, ``beta=config.beta``, the reference
       log-probs and ``max_completion_length=config.max_new_tokens`` - its old log-probs are step 2's,
       or with one iteration the current ones detached (the ratio is then exactly 1 and only its
       gradient matters) - and one ``optimizer_step(loss, parameters, optimizer, config.max_grad_norm,
       scaler)``; with ``log_kl``, at the first iteration the KL estimate (``kl_estimate``, k1) of the
       detached log-probs to the reference's, summed over each completion and averaged;
    4. ``policy.eval()`` again.

    Returns the last iteration's loss, clip_fraction (``grpo_loss``'s), entropy (mean per completion
    token) and grad_norm, and ``kl`` when ``log_kl``.
    """
    ### BEGIN SOLUTION
    mask = batch["loss_mask"].float()
    advantages = group_advantages(scores, config.group_size, config.scale_rewards).to(mask.device)
    with torch.no_grad():
        ref_logps = reference_token_logps(policy, batch, config.temperature) if config.beta or log_kl else None
        old_logps = policy_logps(policy, batch, config.temperature)[0] if config.iterations > 1 else None
    policy.train()
    out = {}
    for iteration in range(config.iterations):
        logps, entropy = policy_logps(policy, batch, config.temperature, entropy=True)
        if iteration == 0 and log_kl:
            out["kl"] = (kl_estimate(logps.detach(), ref_logps) * mask).sum(-1).mean().item()
        loss, stats = grpo_loss(logps, logps.detach() if old_logps is None else old_logps, advantages, mask,
                                config.loss_type, config.epsilon, beta=config.beta, ref_logps=ref_logps,
                                max_completion_length=config.max_new_tokens)
        grad_norm = optimizer_step(loss, parameters, optimizer, config.max_grad_norm, scaler)
    policy.eval()
    return {"loss": loss.item(), "clip_fraction": stats["clip_fraction"], "entropy": masked_mean(entropy, mask).item(),
            "grad_norm": grad_norm, **out}
    ### END SOLUTION


def train_grpo(policy, tokenizer, prompts: list[dict], scorer: Scorer, config: GRPOConfig, seed: int = 0,
               callback=None, gold: Gold | None = None) -> list[dict]:
    """GRPO on ``prompts`` ({"system", "question"}); ``scorer(prompt ids, completion ids) -> [N]`` rewards.

    One record per step: the rollout's rm_reward, score, gold_success, length, words, ended, kl
    (sequence-summed k1 to the reference at the sampling temperature, measured on the rollout; every
    ``kl_every`` steps), the zero-spread group share, and the update's loss, clip_fraction, entropy
    (mean per token) and grad_norm (of the last iteration; :func:`grpo_update`). ``gold`` scores the
    rollouts' text, logged and never optimised (default: the programmatic judge).
    """
    parameters = trainable_parameters(policy)
    optimizer = make_optimizer(parameters, config.lr)
    scaler = grad_scaler(module_device(policy))
    history = []
    schedule = batch_indices(len(prompts), config.prompts_per_step, config.steps, seed)
    for step, indices in enumerate(bar := tqdm(schedule, desc="GRPO", unit="step")):
        policy.eval()
        rollout = sample_rollout(policy, tokenizer, [prompts[i] for i in indices], scorer, config.group_size, config,
                                 seed=seed * 100_003 + step, gold=gold)
        log_kl = bool(config.kl_every) and step % config.kl_every == 0
        with gradient_checkpointing(policy, enabled=config.gradient_checkpointing), memory_stage(
                "GRPO", "config.grpo.prompts_per_step (or max_new_tokens)", FULL_PROFILE_PEAK_GIB["GRPO"]):
            update = grpo_update(policy, rollout.batch, rollout.score, config, optimizer, parameters, scaler, log_kl)
        record = {"step": step + 1, **rollout.stats(), **({"kl": update.pop("kl")} if log_kl else {}),
                  "zero_spread_groups": zero_spread_fraction(rollout.score, config.group_size), **update}
        if callback is not None:
            record.update(callback(step + 1, record) or {})
        history.append(record)
        bar.set_postfix(reward=f"{record['rm_reward']:.2f}", kl=f"{record.get('kl', math.nan):.2f}")
    return history
