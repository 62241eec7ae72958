"""What tasks 1 and 2 (and the stand-in LM's builder) share about chat language models: ChatML
prompts, left-padded prompt batches, position ids and next-token entropy.

A prompt is ``{"system", "question"}`` (Intel/orca_dpo_pairs' columns). Its ids are the chat
template of (system, question) with the assistant's generation prompt - exactly what the model sees
at inference; an empty system lets the template insert its default system prompt, as SmolLM2's does.

Shapes: B sequences, L tokens, V vocabulary.
"""
from __future__ import annotations

import torch


def chat_messages(system: str, question: str) -> list[dict]:
    """An orca row's prompt as chat messages; an empty system lets the template add its default."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]


def prompt_ids(tokenizer, system: str, question: str) -> list[int]:
    """Chat template of (system, question) + the assistant generation prompt, as token ids."""
    text = tokenizer.apply_chat_template(chat_messages(system, question), add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) [B, L] with every sequence's last token in the last column, so
    generation appends to all of them at once."""
    if not sequences:
        raise ValueError("sequences must hold at least one sequence")
    width = max(map(len, sequences))
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        if ids:
            input_ids[row, -len(ids):] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, -len(ids):] = 1
    return input_ids, attention_mask


def encode_prompts(tokenizer, prompts: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded chat prompts: (input_ids, attention_mask) [B, L] of ``{"system", "question"}`` dicts."""
    return left_pad([prompt_ids(tokenizer, p["system"], p["question"]) for p in prompts], tokenizer.pad_token_id)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, L] positions counted over real tokens, as ``generate`` gives them to the model: every
    sequence starts at 0 whatever its padding (a plain forward would number left-padded rows from
    the padding). Padding positions get 0, generate's filler; they are masked either way."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """[...] entropy in nats of softmax(logits) over the last dimension (logits [..., V], float32);
    a token filtered out (logit -inf) contributes 0, as 0 log 0 = 0."""
    log_p = logits.float().log_softmax(dim=-1)
    return -torch.where(log_p.isneginf(), 0.0, log_p.exp() * log_p).sum(dim=-1)
