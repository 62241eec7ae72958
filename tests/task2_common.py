"""What the PPO, GRPO and policy tests share: the tiny stand-in, a few prompts, a reward that needs no model."""
import torch

from pa5.recipes import STANDIN as MODEL  # noqa: F401 - re-exported for the tests
from pa5.recipes import length_scorer, tokenizer as load_tokenizer  # noqa: F401

PROMPTS = [{"system": "", "question": q} for q in
           ("What is the capital of France?", "Describe a cat in exactly 5 words.", "Name three fruits.",
            "Name the capital of Ceia.")]


def moved(before: dict, after: dict) -> bool:
    """Whether a training run changed any of the weights in ``before`` ({name: tensor})."""
    return set(before) == set(after) and any(not torch.equal(before[n], after[n]) for n in before)
