"""Task 2's PPO for RLHF (Ouyang et al., 2022), from scratch, with LoRA.

TRL 1.16 no longer ships PPO; this follows its last PPO trainer and "The N+ implementation details
of RLHF with PPO" (Huang et al., 2024):

* per-token reward r_t = -kl_coef * KL_t(pi || pi_ref), plus the reward-model score (minus a penalty
  if the completion never ended) on the last completion token;
* GAE (gamma = 1, lambda = 0.95) with a critic, advantages whitened over the batch;
* clipped policy loss and clipped value loss, ``vf_coef`` * value loss added, several epochs of
  minibatches per rollout, one AdamW over policy and critic, gradients clipped jointly;
* sampling and recomputing log-probs at the same temperature (the policy being optimised is the
  tempered one).

Actor-critic with LoRA: the policy = base LM + a LoRA adapter (reference = adapter disabled); the
critic = a copy of the trained reward model (its own LoRA adapter and scalar head), reading a value
at every position - TRL's convention of initialising the value model from the reward model.

Shapes: N sequences, T tokens (prompt + completion, right-padded); ``mask`` [N, T] marks completion
tokens. Token t's log-prob and value are predicted at position t - 1.
"""
from __future__ import annotations

import copy

import torch
from tqdm.auto import tqdm

from pa5.checks import check_floating, check_number, check_same_shape
from pa5.device import grad_scaler, memory_stage, module_device
from pa5.optim import optimizer_step
from task2.config import PPOConfig
from task2.data import batch_indices
from task2.policy import kl_estimate, masked_mean, policy_logps, reference_token_logps
from task2.reward_model import Scorer, last_token_index, token_scores
from task2.rollout import Gold, sample_rollout
from task2.training import FULL_PROFILE_PEAK_GIB, gradient_checkpointing, make_optimizer, trainable_parameters


def compute_gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
                lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the masked positions of each row.

    rewards, values, mask [N, T]. A_t = delta_t + gamma*lam*A_{t'}, delta_t = r_t + gamma*V_{t'} - V_t,
    where t' is the next masked-in position (past the last one: V = 0, A = 0). Positions where
    ``mask`` is 0 contribute nothing - their rewards and values are ignored - and get A = returns = 0.
    Returns (advantages, returns = advantages + values), both [N, T].
    """
    check_same_shape(2, rewards=rewards, values=values, mask=mask)
    check_floating(rewards=rewards, values=values)
    check_number("gamma", gamma, 0, 1)
    check_number("lam", lam, 0, 1)
    ### BEGIN SOLUTION
    valid = mask.bool()
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        # a masked-out position passes the running value and advantage through untouched
        next_value = torch.where(valid[:, t], values[:, t], next_value)
        next_advantage = torch.where(valid[:, t], advantage, next_advantage)
        advantages[:, t] = torch.where(valid[:, t], advantage, 0.0)
    returns = (advantages + values) * valid
    return advantages, returns
    ### END SOLUTION


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(x - mean) / sqrt(var + 1e-8) with mean and Bessel-corrected variance over the masked positions,
    as TRL's ``masked_whiten``; ``shift_mean=False`` adds the mean back (rescale only).
    Values outside the mask are transformed too - mask them afterwards."""
    if x.shape != mask.shape:
        raise ValueError(f"x and mask must have one shape, got {tuple(x.shape)} and {tuple(mask.shape)}")
    if mask.sum() < 2:
        raise ValueError(f"masked_whiten needs at least 2 masked positions for a Bessel-corrected variance, "
                         f"got {int(mask.sum())}")
    ### BEGIN SOLUTION
    mean = masked_mean(x, mask)
    count = mask.sum()
    variance = masked_mean((x - mean) ** 2, mask) * count / (count - 1)
    whitened = (x - mean) * torch.rsqrt(variance + 1e-8)
    return whitened if shift_mean else whitened + mean
    ### END SOLUTION


def token_rewards(scores: torch.Tensor, logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor,
                  kl_coef: float, estimator: str = "k1") -> tuple[torch.Tensor, torch.Tensor]:
    """(rewards [N, T], kl [N, T]): -kl_coef * KL_t on every completion token, + scores [N] on each
    row's last completion token (its <|im_end|> when it ended). Zero outside the mask."""
    check_same_shape(2, logps=logps, ref_logps=ref_logps, mask=mask)
    if scores.shape != (mask.shape[0],):
        raise ValueError(f"scores must be [N] = [{mask.shape[0]}], got {tuple(scores.shape)}")
    check_number("kl_coef", kl_coef, 0)
    if not mask.bool().any(-1).all():
        raise ValueError("every row of mask needs at least one completion token to put its score on")
    ### BEGIN SOLUTION
    kl = kl_estimate(logps, ref_logps, estimator) * mask
    rewards = -kl_coef * kl
    rows = torch.arange(len(scores), device=mask.device)
    rewards[rows, last_token_index(mask)] += scores.to(rewards)
    return rewards, kl
    ### END SOLUTION


def policy_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                clip_range: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate: masked mean of max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)),
    ratio = exp(logps - old_logps). Returns (loss, clip fraction = share of tokens where the clipped
    term is the larger)."""
    check_same_shape(2, logps=logps, old_logps=old_logps, advantages=advantages, mask=mask)
    check_floating(logps=logps, old_logps=old_logps, advantages=advantages)
    check_number("clip_range", clip_range, 0, 1, low_open=True, high_open=True)
    ### BEGIN SOLUTION
    ratio = torch.exp(logps - old_logps)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    return loss, masked_mean((clipped > unclipped).float(), mask).detach()
    ### END SOLUTION


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip_range: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss: 0.5 * masked mean of max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2).
    Returns (loss, clip fraction = share of tokens where the clipped term is the larger)."""
    check_same_shape(2, values=values, old_values=old_values, returns=returns, mask=mask)
    check_floating(values=values, old_values=old_values, returns=returns)
    check_number("clip_range", clip_range, 0, low_open=True)
    ### BEGIN SOLUTION
    clipped_values = torch.clamp(values, old_values - clip_range, old_values + clip_range)
    unclipped = (values - returns) ** 2
    clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.max(unclipped, clipped), mask)
    return loss, masked_mean((clipped > unclipped).float(), mask).detach()
    ### END SOLUTION


def load_value_model(reward_model):
    """The critic: a copy of the trained reward model, trainable where the reward model was (its LoRA
    adapter and scalar head); only the copy is in PPO's optimizer, the reward model never changes."""
    return copy.deepcopy(reward_model)


def token_values(value_model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """[N, T] values: V_t = the critic's head at position t - 1 (the state before token t), 0 at t = 0."""
    scores = token_scores(value_model, batch["input_ids"], batch["attention_mask"], batch["position_ids"])
    return torch.nn.functional.pad(scores[:, :-1], (1, 0))


def ppo_update(policy, value_model, batch: dict[str, torch.Tensor], scores: torch.Tensor, config: PPOConfig,
               optimizer: torch.optim.Optimizer, parameters: list[torch.nn.Parameter], generator: torch.Generator,
               scaler=None) -> dict[str, float]:
    """PPO's learning step on one rollout: advantages, then ``config.epochs`` passes of clipped
    minibatch updates of the policy and the critic together.

    ``batch``: the rollout's tensors [N, T] (input_ids, attention_mask, position_ids and ``loss_mask``,
    which marks completion tokens); ``scores`` [N]: the reward-model score of each completion. In order:

    1. frozen, under ``torch.no_grad()``: the policy's token log-probs at ``config.temperature``
       (``policy_logps``), the reference's (``reference_token_logps``) and the critic's values
       (``token_values``, times the mask);
    2. per-token rewards (``token_rewards`` with ``config.kl_coef`` and ``config.kl_estimator``), GAE
       advantages and returns (``compute_gae`` with ``config.gamma``, ``config.lam``), advantages
       whitened over the completion tokens (``masked_whiten``) and masked again;
    3. ``policy.train()`` and ``value_model.train()``; for each of ``config.epochs`` epochs, the rows
       in the order ``torch.randperm(N, generator=generator)`` split into minibatches of
       ``config.minibatch_size``; per minibatch: the policy's log-probs (with ``entropy=True``) and the
       critic's values, ``policy_loss`` (``config.clip_range``) and ``value_loss``
       (``config.clip_range_value``) against the frozen step-1 quantities, and one
       ``optimizer_step(policy_loss + config.vf_coef * value_loss, parameters, optimizer,
       config.max_grad_norm, scaler)``;
    4. ``policy.eval()`` and ``value_model.eval()`` again.

    Returns the means over the minibatch updates of policy_loss, value_loss, clip_fraction,
    value_clip_fraction, entropy (mean per completion token) and grad_norm, and ``kl``: step 2's KL
    estimate summed over each completion, averaged over the rollout.
    """
    ### BEGIN SOLUTION
    mask = batch["loss_mask"].float()
    with torch.no_grad():
        old_logps = policy_logps(policy, batch, config.temperature)[0]
        ref_logps = reference_token_logps(policy, batch, config.temperature)
        old_values = token_values(value_model, batch) * mask
    rewards, kl = token_rewards(scores.to(mask.device), old_logps, ref_logps, mask, config.kl_coef,
                                config.kl_estimator)
    advantages, returns = compute_gae(rewards, old_values, mask, config.gamma, config.lam)
    advantages = masked_whiten(advantages, mask) * mask

    policy.train(), value_model.train()
    logs = {"policy_loss": [], "value_loss": [], "clip_fraction": [], "value_clip_fraction": [], "entropy": [],
            "grad_norm": []}
    for _ in range(config.epochs):
        for part in torch.randperm(len(mask), generator=generator).split(config.minibatch_size):
            minibatch = {k: v[part] for k, v in batch.items()}
            logps, entropy = policy_logps(policy, minibatch, config.temperature, entropy=True)
            values = token_values(value_model, minibatch)
            pg_loss, clip_fraction = policy_loss(logps, old_logps[part], advantages[part], mask[part], config.clip_range)
            vf_loss, value_clip_fraction = value_loss(values, old_values[part], returns[part], mask[part],
                                                      config.clip_range_value)
            grad_norm = optimizer_step(pg_loss + config.vf_coef * vf_loss, parameters, optimizer, config.max_grad_norm,
                                       scaler)
            for key, value in (("policy_loss", pg_loss), ("value_loss", vf_loss), ("clip_fraction", clip_fraction),
                               ("value_clip_fraction", value_clip_fraction), ("entropy", masked_mean(entropy, mask[part]))):
                logs[key].append(value.item())
            logs["grad_norm"].append(grad_norm)
    policy.eval(), value_model.eval()
    return {**{k: sum(v) / len(v) for k, v in logs.items()}, "kl": kl.sum(-1).mean().item()}
    ### END SOLUTION


def train_ppo(policy, value_model, tokenizer, prompts: list[dict], scorer: Scorer, config: PPOConfig, seed: int = 0,
              callback=None, gold: Gold | None = None) -> list[dict]:
    """PPO on ``prompts`` ({"system", "question"}); ``scorer(prompt ids, completion ids) -> [N]`` rewards.

    One record per step: the rollout's rm_reward, score, gold_success, length, words, ended, and kl
    (sequence-summed k1 to the reference at the sampling temperature), then the optimisation's
    policy_loss, value_loss, clip_fraction, value_clip_fraction, entropy (mean per token) and
    grad_norm, averaged over the step's minibatch updates (:func:`ppo_update`). ``callback(step,
    record)`` may add entries. ``gold`` scores the rollouts' text, logged and never optimised (default:
    the programmatic judge).
    """
    parameters = trainable_parameters(policy, value_model)
    optimizer = make_optimizer(parameters, config.lr)
    scaler = grad_scaler(module_device(policy))
    generator = torch.Generator().manual_seed(seed)
    history = []
    schedule = batch_indices(len(prompts), config.prompts_per_step, config.steps, seed)
    for step, indices in enumerate(bar := tqdm(schedule, desc="PPO", unit="step")):
        policy.eval(), value_model.eval()
        rollout = sample_rollout(policy, tokenizer, [prompts[i] for i in indices], scorer, 1, config,
                                 seed=seed * 100_003 + step, gold=gold)
        with gradient_checkpointing(policy, value_model, enabled=config.gradient_checkpointing), memory_stage(
                "PPO", "config.ppo.minibatch_size (or max_new_tokens)", FULL_PROFILE_PEAK_GIB["PPO"]):
            update = ppo_update(policy, value_model, rollout.batch, rollout.score, config, optimizer, parameters,
                                generator, scaler)
        record = {"step": step + 1, **rollout.stats(), "kl": update.pop("kl"), **update}
        if callback is not None:
            record.update(callback(step + 1, record) or {})
        history.append(record)
        bar.set_postfix(reward=f"{record['rm_reward']:.2f}", kl=f"{record['kl']:.2f}")
    return history
