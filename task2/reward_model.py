"""Task 2's reward model. So far: the Bradley-Terry loss as a pure function (TRL's RewardTrainer formula)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor,
                       margin: torch.Tensor | None = None) -> torch.Tensor:
    """Reward-model loss: mean over the batch of -log sigma(r_c - r_r - margin). Rewards: [B]."""
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.dim() != 1:
        raise ValueError(f"chosen_rewards and rejected_rewards must both be [B], got "
                         f"{tuple(chosen_rewards.shape)} and {tuple(rejected_rewards.shape)}")
    if margin is not None and margin.shape != chosen_rewards.shape:
        raise ValueError(f"margin must be None or [B] like the rewards, got {tuple(margin.shape)}")
    ### BEGIN SOLUTION
    difference = chosen_rewards - rejected_rewards
    if margin is not None:
        difference = difference - margin
    return -F.logsigmoid(difference).mean()
    ### END SOLUTION
