"""What the PPO and GRPO tests share: the tiny stand-in, a few prompts, a reward that needs no model."""
import torch

MODEL = "standin:smollm2"
PROMPTS = [{"system": "", "question": q} for q in
           ("What is the capital of France?", "Describe a cat in exactly 5 words.", "Name three fruits.",
            "Name the capital of Ceia.")]


def length_scorer(prompts: list[list[int]], completions: list[list[int]]) -> torch.Tensor:
    """A reward of completion length / 10 (in tokens): stands in for the reward model."""
    return torch.tensor([len(c) / 10 for c in completions])


def lora_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def load_tokenizer():
    from transformers import AutoTokenizer

    from pa5 import hub
    return hub.from_pretrained(AutoTokenizer, MODEL)
