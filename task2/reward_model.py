"""Task 2's reward model: a Bradley-Terry scorer r(x, y) on the base checkpoint with LoRA.

Model: ``AutoModelForSequenceClassification`` (num_labels=1) = the causal LM's backbone + a linear
``score`` head; LoRA on q_proj / v_proj, the head trained in full. The reward is the head's output at
the **last real token** of each sequence - the ``<|im_end|>`` that closes the response - found from the
attention mask, so right and left padding give the same rewards.

Why not the model's own pooling: transformers finds "the last non-pad token" by comparing ids with
``pad_token_id``; with SmolLM2's pad == eos it skips the closing ``<|im_end|>`` and reads the token
before it, so the reward cannot see whether a response ended. (With a pad id distinct from every
real token, both conventions read the same position; the TRL parity test relies on that.)

Shapes: B pairs, N sequences, T tokens, H hidden size.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from pa5.checks import check_same_shape
from pa5.device import autocast
from task2.config import LoRAConfig, RewardModelConfig
from task2.data import EncodedPairs, batch_indices, collate_pairs, pad_completions, to_device
from task2.training import optimize, peft_lora_config


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor,
                       margin: torch.Tensor | None = None) -> torch.Tensor:
    """Reward-model loss: mean over the batch of -log sigma(r_c - r_r - margin). Rewards: [B]."""
    check_same_shape(1, chosen_rewards=chosen_rewards, rejected_rewards=rejected_rewards)
    if chosen_rewards.numel() == 0:
        raise ValueError("chosen_rewards and rejected_rewards are empty: a batch needs at least one pair")
    if margin is not None and margin.shape != chosen_rewards.shape:
        raise ValueError(f"margin must be None or [B] like the rewards, got {tuple(margin.shape)}")
    ### BEGIN SOLUTION
    difference = chosen_rewards - rejected_rewards
    if margin is not None:
        difference = difference - margin
    return -F.logsigmoid(difference).mean()
    ### END SOLUTION


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """[N] index of the last real token of each row of ``attention_mask`` [N, T] (any padding side)."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be [N, T], got {tuple(attention_mask.shape)}")
    if not attention_mask.bool().any(dim=-1).all():
        raise ValueError("every row of attention_mask needs at least one real token")
    ### BEGIN SOLUTION
    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    return (positions * attention_mask.bool()).argmax(dim=-1)
    ### END SOLUTION


def load_reward_model(ref: str, pad_token_id: int, lora: LoRAConfig = LoRAConfig(), seed: int = 0, device="cpu"):
    """The base checkpoint (float32) as a 1-output sequence classifier with LoRA (q, v) and a trainable
    head, on ``device``.

    The head is new (seeded init); its id for padding is only used by transformers' own pooling.
    """
    from peft import get_peft_model
    from transformers import AutoModelForSequenceClassification

    from pa5 import hub
    from pa5.device import place

    torch.manual_seed(seed)
    model = hub.load_model(AutoModelForSequenceClassification, ref, device, num_labels=1)
    model.config.pad_token_id = pad_token_id
    return place(get_peft_model(model, peft_lora_config("SEQ_CLS", lora)), device)


def token_scores(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """[N, T] float32: the ``score`` head on the final hidden state at every position.

    The reward reads one position of it (:func:`sequence_rewards`); PPO's critic, a copy of the
    reward model, reads every position as a value estimate.
    """
    check_same_shape(2, input_ids=input_ids, attention_mask=attention_mask,
                     **({} if position_ids is None else {"position_ids": position_ids}))
    ### BEGIN SOLUTION
    classifier = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone = getattr(classifier, classifier.base_model_prefix)
    with autocast(input_ids.device):
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                          use_cache=False).last_hidden_state  # [N, T, H]
        return classifier.score(hidden).squeeze(-1).float()
    ### END SOLUTION


def sequence_rewards(model, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     position_ids: torch.Tensor | None = None) -> torch.Tensor:
    """[N] float32 rewards: the ``score`` head on the final hidden state of each row's last real token."""
    scores = token_scores(model, input_ids, attention_mask, position_ids)
    return scores[torch.arange(len(scores), device=scores.device), last_token_index(attention_mask)]


def pair_rewards(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(chosen [B], rejected [B]) rewards of a ``collate_pairs`` batch, in one forward."""
    batch = to_device(batch, model.device)
    rewards = sequence_rewards(model, batch["input_ids"], batch["attention_mask"], batch["position_ids"])
    return rewards.chunk(2)


def train_reward_model(model, pairs: EncodedPairs, pad_id: int, config: RewardModelConfig, seed: int = 0) -> list[dict]:
    """Bradley-Terry training; logs loss, accuracy (strict r_c > r_r) and mean margin per step."""
    def loss_fn(step, indices):
        chosen, rejected = pair_rewards(model, collate_pairs(pairs.subset(indices), pad_id))
        stats = {"accuracy": (chosen > rejected).float().mean().item(), "margin": (chosen - rejected).mean().item()}
        return bradley_terry_loss(chosen, rejected), stats

    return optimize(model, batch_indices(len(pairs), config.batch_size, config.steps, seed), loss_fn, config,
                    desc="reward model", setting="config.reward_model.batch_size (or config.max_length)")


@torch.no_grad()
def evaluate_reward_model(model, pairs: EncodedPairs, pad_id: int, batch_size: int = 16) -> dict:
    """Test accuracy (strict r_c > r_r), mean margin and the per-pair rewards (for plots)."""
    model.eval()
    chosen, rejected = [], []
    for part in pairs.batches(batch_size):
        c, r = pair_rewards(model, collate_pairs(part, pad_id))
        chosen.append(c), rejected.append(r)
    chosen, rejected = torch.cat(chosen), torch.cat(rejected)
    return {"accuracy": (chosen > rejected).float().mean().item(), "margin": (chosen - rejected).mean().item(),
            "chosen_rewards": chosen.tolist(), "rejected_rewards": rejected.tolist()}


def save_adapter(model, folder: Path) -> Path:
    """The LoRA weights and the head as ``adapter_model.safetensors`` (+ its config) in ``folder``."""
    model.save_pretrained(folder, safe_serialization=True)
    return Path(folder) / "adapter_model.safetensors"


# scorer(prompt ids [N], completion ids [N]) -> [N] rewards: a RewardScorer, or any stand-in for one
Scorer = Callable[[list[list[int]], list[list[int]]], torch.Tensor]


class RewardScorer:
    """``scorer(prompts, completions) -> [N] rewards``: the trained reward model on token sequences, in
    batches.

    It scores exactly what the policy produced: each prompt's ids (the chat template with its system
    prompt) followed by the completion's ids as sampled, never re-tokenised text. The reward is read at
    the last token: the closing ``<|im_end|>`` of a completion that ended, the last generated token of
    one that was cut off - which is therefore scored as not ended.
    """

    def __init__(self, model, pad_token_id: int, batch_size: int = 32):
        self.model, self.pad_token_id, self.batch_size = model, pad_token_id, batch_size

    @torch.no_grad()
    def __call__(self, prompts: list[list[int]], completions: list[list[int]]) -> torch.Tensor:
        if len(prompts) != len(completions):
            raise ValueError(f"prompts and completions must have the same length, got {len(prompts)} and "
                             f"{len(completions)}")
        self.model.eval()
        rewards = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            batch = to_device(pad_completions(prompts[chunk], completions[chunk], self.pad_token_id), self.model.device)
            rewards.append(sequence_rewards(self.model, batch["input_ids"], batch["attention_mask"], batch["position_ids"]))
        return torch.cat(rewards) if rewards else torch.zeros(0)
