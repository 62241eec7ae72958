"""What PPO and GRPO share: sampling rollouts from the policy and scoring them.

A rollout = prompts, the policy's sampled completions (each closed by ``<|im_end|>`` unless it hit
``max_new_tokens``), one right-padded batch of prompt + completion (the completion tokens in
``loss_mask``), the reward model's score of exactly those token ids, and the gold judge's verdict
on the decoded text (logged, never optimised).

A completion that never emits ``<|im_end|>`` was cut off, not finished: the reward model sees it
without an end token, and ``missing_eos_penalty`` is subtracted from its score (TRL's
``missing_eos_penalty``), so "never stop" cannot become a way to collect reward.

Shapes: N = prompts x samples sequences, T tokens.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from pa5.judge import gold_score
from task2.config import RLConfig
from task2.data import end_of_turn_id, pad_completions, to_device
from task2.policy import generate
from task2.reward_model import Scorer

# gold(questions [N], responses [N]) -> [N] scores, NaN where it cannot judge: the programmatic judge (tiny)
# or a reward model on text pairs (pa5.judge.RewardModelJudge, full) - never optimised
Gold = Callable[[list[str], list[str]], list[float]]


@dataclass
class Rollout:
    """N sampled completions (``samples`` consecutive rows per prompt) and their scores."""

    prompts: list[dict]  # [N] {"system", "question"}, repeated per sample
    completions: list[list[int]]  # [N] token ids, ending with <|im_end|> where the policy stopped
    batch: dict[str, torch.Tensor]  # input_ids, attention_mask, loss_mask, position_ids [N, T]
    responses: list[str]  # [N] decoded completions (what the judge reads)
    ended: torch.Tensor  # [N] bool: the completion emitted <|im_end|>
    rm_reward: torch.Tensor  # [N] the reward model's score, as it is
    score: torch.Tensor  # [N] what is optimised: rm_reward - missing_eos_penalty * (not ended)
    gold: list[float]  # [N] the gold scorer's verdicts (nan where it cannot judge)

    def stats(self) -> dict[str, float]:
        """Batch means logged at every RL step."""
        judged = [g for g in self.gold if not math.isnan(g)]
        lengths = self.batch["loss_mask"].sum(-1).float()
        return {"rm_reward": self.rm_reward.mean().item(), "score": self.score.mean().item(),
                "gold_success": sum(judged) / len(judged) if judged else math.nan,
                "length": lengths.mean().item(), "ended": self.ended.float().mean().item(),
                "words": sum(len(r.split()) for r in self.responses) / len(self.responses)}


def judge_gold(questions: list[str], responses: list[str]) -> list[float]:
    """The programmatic judge as a :data:`Gold`: success 1 / 0, NaN outside its families."""
    return [gold_score(q, r)[0] for q, r in zip(questions, responses)]


def sample_rollout(policy, tokenizer, prompts: list[dict], scorer: Scorer, samples: int, config: RLConfig,
                   seed: int, gold: Gold | None = None) -> Rollout:
    """Sample ``samples`` completions per prompt at ``config.temperature`` and score them: by ``scorer``
    (the proxy that is optimised) and by ``gold`` (logged; default :func:`judge_gold`)."""
    prompt_tokens, completions = generate(policy, tokenizer, prompts, config.max_new_tokens, do_sample=True,
                                          samples=samples, seed=seed, temperature=config.temperature)
    eos_id = end_of_turn_id(tokenizer)
    repeated = [p for p in prompts for _ in range(samples)]
    responses = [tokenizer.decode(c, skip_special_tokens=True).strip() for c in completions]
    ended = torch.tensor([c[-1:] == [eos_id] for c in completions])
    batch = to_device(pad_completions(prompt_tokens, completions, tokenizer.pad_token_id), policy.device)
    rm_reward = scorer(prompt_tokens, completions).float().cpu()
    score = rm_reward - config.missing_eos_penalty * (~ended).float()
    gold_scores = (gold or judge_gold)([p["question"] for p in repeated], responses)
    return Rollout(repeated, completions, batch, responses, ended, rm_reward, score, list(gold_scores))
