"""What PPO and GRPO share: sampling rollouts from the policy and scoring them.

A rollout = prompts, the policy's sampled completions (each closed by ``<|im_end|>`` unless it hit
``max_new_tokens``), one right-padded batch of prompt + completion (the completion tokens in
``loss_mask``), the reward model's score per completion, and the gold judge's verdict (logged, never
optimised).

A completion that never emits ``<|im_end|>`` was cut off, not finished: it gets
``missing_eos_penalty`` subtracted from its score (TRL's ``missing_eos_penalty``), so "never stop"
cannot become a way to collect reward.

Shapes: N = prompts x samples sequences, T tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from task2.data import end_of_turn_id, pad_completions, to_device
from task2.dpo import reference_mode, token_entropy, token_logps
from task2.evaluate import generate, gold_verdict


@dataclass
class Rollout:
    """N sampled completions (``samples`` consecutive rows per prompt) and their scores."""

    prompts: list[dict]  # [N] {"system", "question"}, repeated per sample
    completions: list[list[int]]  # [N] token ids, ending with <|im_end|> where the policy stopped
    batch: dict[str, torch.Tensor]  # input_ids, attention_mask, loss_mask, position_ids [N, T]
    responses: list[str]  # [N] decoded completions
    ended: torch.Tensor  # [N] bool: the completion emitted <|im_end|>
    rm_reward: torch.Tensor  # [N] the reward model's score, as it is
    score: torch.Tensor  # [N] what is optimised: rm_reward - missing_eos_penalty * (not ended)
    gold: list[float]  # [N] the gold judge (nan outside its families)

    def stats(self) -> dict[str, float]:
        """Batch means logged at every RL step."""
        judged = [g for g in self.gold if not math.isnan(g)]
        lengths = self.batch["loss_mask"].sum(-1).float()
        return {"rm_reward": self.rm_reward.mean().item(), "score": self.score.mean().item(),
                "gold_success": sum(judged) / len(judged) if judged else math.nan,
                "length": lengths.mean().item(), "ended": self.ended.float().mean().item(),
                "words": sum(len(r.split()) for r in self.responses) / len(self.responses)}


def sample_rollout(policy, tokenizer, prompts: list[dict], scorer, samples: int, max_new_tokens: int,
                   temperature: float, missing_eos_penalty: float, seed: int) -> Rollout:
    """Sample ``samples`` completions per prompt at ``temperature`` and score them."""
    if not isinstance(missing_eos_penalty, (int, float)) or missing_eos_penalty < 0:
        raise ValueError(f"missing_eos_penalty must be a number >= 0, got {missing_eos_penalty!r}")
    prompt_tokens, completions = generate(policy, tokenizer, prompts, max_new_tokens, do_sample=True,
                                          samples=samples, seed=seed, temperature=temperature)
    eos_id = end_of_turn_id(tokenizer)
    repeated = [p for p in prompts for _ in range(samples)]
    responses = [tokenizer.decode(c, skip_special_tokens=True).strip() for c in completions]
    ended = torch.tensor([c[-1:] == [eos_id] for c in completions])
    batch = to_device(pad_completions(prompt_tokens, completions, tokenizer.pad_token_id), policy.device)
    rm_reward = scorer([p["question"] for p in repeated], responses).float().cpu()
    score = rm_reward - missing_eos_penalty * (~ended).float()
    gold = [gold_verdict(p["question"], r)[0] for p, r in zip(repeated, responses)]
    return Rollout(repeated, completions, batch, responses, ended, rm_reward, score, gold)


def policy_logps(policy, batch: dict[str, torch.Tensor], temperature: float,
                 entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """([N, T] per-token log-probs of the completion tokens under the tempered policy, [N, T] entropy
    or None). With gradient if enabled by the caller.

    Only positions from the batch's earliest completion token on need logits (``logits_to_keep``):
    the LM head over the prompts - half the tokens, a 49k-way projection each in SmolLM2 - is skipped.
    """
    loss_mask = batch["loss_mask"]
    start = max(int(loss_mask.float().argmax(-1).min()) - 1, 0)  # predicts the earliest completion token
    logits = policy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    position_ids=batch["position_ids"], use_cache=False,
                    logits_to_keep=loss_mask.shape[1] - start).logits  # [N, T - start, V]
    kept_ids, kept_mask = batch["input_ids"][:, start:], loss_mask[:, start:]
    logps = F.pad(token_logps(logits, kept_ids, kept_mask, temperature), (start, 0))
    return logps, F.pad(token_entropy(logits, kept_mask, temperature), (start, 0)) if entropy else None


@torch.no_grad()
def reference_token_logps(policy, batch: dict[str, torch.Tensor], temperature: float) -> torch.Tensor:
    """[N, T] per-token log-probs under the reference (the policy's LoRA adapter disabled)."""
    with reference_mode(policy):
        return policy_logps(policy, batch, temperature)[0]
