"""Task 2's preference data: orca-style pairs through the chat template, with completion masks.

A pair is ``{"system", "question", "chosen", "rejected"}`` (Intel/orca_dpo_pairs' schema). It becomes
token ids: the *prompt* = the chat template of (system, question) with the assistant's generation
prompt, and each *completion* = the response followed by the end-of-turn token ``<|im_end|>``.

The end-of-turn token is part of the completion and of its mask. SmolLM2 uses ``<|im_end|>`` as both
eos and pad, so a mask built as ``input_ids != pad_token_id`` silently drops it - and a policy trained
with it never learns to stop. Masks here are built from positions, never from the pad id.

Over-long pairs: a pair whose prompt plus longer completion exceeds ``max_length`` tokens is
**dropped and counted** (as TRL's RewardTrainer does), never truncated: a truncated completion loses
its end token, and a truncated prompt can lose the question that decides which response is better.

Shapes: B pairs, T tokens. Batches hold the B chosen sequences first, then the B rejected ones.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from pa5 import hub
from pa5.checks import check_choice, check_int
from pa5.llm import position_ids, prompt_ids
from task2.config import Task2Config

END_OF_TURN = "<|im_end|>"
FIELDS = ("system", "question", "chosen", "rejected")


def load_pairs(config: Task2Config, seed: int = 0) -> dict[str, list[dict]]:
    """``{"train": rows, "test": rows}`` for the profile, at most ``n_train_pairs`` / ``n_test_pairs``.

    The stand-in ships its own train / test split (held-out entities); Intel/orca_dpo_pairs has only
    a train split, so a seeded ``train_test_split`` carves the test rows out of it, deterministically.
    """
    dataset = hub.load_hf_dataset(config.dataset)
    if "test" in dataset:
        train, test = dataset["train"], dataset["test"]
    else:
        parts = dataset["train"].train_test_split(test_size=config.n_test_pairs, seed=seed, shuffle=True)
        train, test = parts["train"], parts["test"]
    sizes = {"train": config.n_train_pairs, "test": config.n_test_pairs}
    return {name: [{k: row[k] for k in FIELDS} for row in split.select(range(min(sizes[name], len(split))))]
            for name, split in (("train", train), ("test", test))}


def end_of_turn_id(tokenizer) -> int:
    """The id of ``<|im_end|>``; a tokenizer without it has no ChatML turns to end."""
    token_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no {END_OF_TURN} token: expected a ChatML (SmolLM2-style) tokenizer")
    return token_id


def completion_ids(tokenizer, response: str) -> list[int]:
    """``response`` + ``<|im_end|>``: the turn's end is a token the policy must learn to emit."""
    return tokenizer(response, add_special_tokens=False)["input_ids"] + [end_of_turn_id(tokenizer)]


@dataclass(frozen=True)
class EncodedPairs:
    """Token ids of the kept pairs (aligned lists) and how many pairs were dropped as too long."""

    prompt: list[list[int]]
    chosen: list[list[int]]
    rejected: list[list[int]]
    rows: list[dict]  # the kept rows, in the same order
    dropped: int

    def __len__(self) -> int:
        return len(self.prompt)

    def subset(self, indices) -> "EncodedPairs":
        indices = list(indices)
        return EncodedPairs([self.prompt[i] for i in indices], [self.chosen[i] for i in indices],
                            [self.rejected[i] for i in indices], [self.rows[i] for i in indices], 0)

    def batches(self, batch_size: int):
        """Consecutive subsets of at most ``batch_size`` pairs, in order (for evaluation)."""
        for start in range(0, len(self), batch_size):
            yield self.subset(range(start, min(start + batch_size, len(self))))


def encode_pairs(tokenizer, rows: list[dict], max_length: int) -> EncodedPairs:
    """Tokenise ``rows``; pairs longer than ``max_length`` (prompt + longer completion) are dropped."""
    check_int("max_length", max_length, 2)
    prompts, chosen, rejected, kept = [], [], [], []
    for row in rows:
        p = prompt_ids(tokenizer, row["system"], row["question"])
        c, r = completion_ids(tokenizer, row["chosen"]), completion_ids(tokenizer, row["rejected"])
        if len(p) + max(len(c), len(r)) > max_length:
            continue
        prompts.append(p), chosen.append(c), rejected.append(r), kept.append(row)
    return EncodedPairs(prompts, chosen, rejected, kept, dropped=len(rows) - len(kept))


def pad_sequences(sequences: list[list[int]], masks: list[list[int]], pad_id: int,
                  padding_side: str = "right") -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask``, ``loss_mask`` and ``position_ids`` [N, T] from ragged lists.

    ``masks[i]`` marks the completion tokens of ``sequences[i]``; padding is never in a mask.
    """
    check_choice("padding_side", padding_side, ("left", "right"))
    if not sequences:
        raise ValueError("sequences must not be empty")
    if len(masks) != len(sequences):
        raise ValueError(f"masks must hold one mask per sequence: {len(sequences)} sequences, {len(masks)} masks")
    lengths = [(i, len(ids), len(mask)) for i, (ids, mask) in enumerate(zip(sequences, masks)) if len(ids) != len(mask)]
    if lengths:
        raise ValueError(f"masks[i] must be as long as sequences[i]; first difference at row {lengths[0][0]}: "
                         f"{lengths[0][1]} ids, {lengths[0][2]} mask entries")

    width = max(map(len, sequences))
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    loss_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (ids, mask) in enumerate(zip(sequences, masks)):
        span = slice(width - len(ids), width) if padding_side == "left" else slice(0, len(ids))
        input_ids[row, span] = torch.tensor(ids, dtype=torch.long)
        attention[row, span] = 1
        loss_mask[row, span] = torch.tensor(mask, dtype=torch.long)
    return {"input_ids": input_ids, "attention_mask": attention, "loss_mask": loss_mask,
            "position_ids": position_ids(attention)}


def to_device(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def pad_completions(prompts: list[list[int]], completions: list[list[int]], pad_id: int,
                    padding_side: str = "right") -> dict[str, torch.Tensor]:
    """:func:`pad_sequences` of prompt + completion rows, the completion tokens in the loss mask."""
    return pad_sequences([p + c for p, c in zip(prompts, completions)],
                         [[0] * len(p) + [1] * len(c) for p, c in zip(prompts, completions)], pad_id, padding_side)


def collate_pairs(pairs: EncodedPairs, pad_id: int, padding_side: str = "right") -> dict[str, torch.Tensor]:
    """One batch for a concatenated forward: rows 0..B-1 = prompt + chosen, rows B..2B-1 = prompt + rejected."""
    if len(pairs) == 0:
        raise ValueError("pairs must hold at least one pair")
    return pad_completions(pairs.prompt * 2, pairs.chosen + pairs.rejected, pad_id, padding_side)


def batch_indices(n: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """``steps`` batches of ``batch_size`` indices into ``n`` items: seeded epochs without replacement."""
    check_int("batch_size", batch_size, 1, n)  # at most the number of items
    check_int("steps", steps, 0)
    check_int("seed", seed)  # None would seed from the clock: not reproducible
    rng, batches, order = random.Random(seed), [], []
    while len(batches) < steps:
        if len(order) < batch_size:
            order = list(range(n))
            rng.shuffle(order)
        batches.append(order[:batch_size])
        order = order[batch_size:]
    return batches


def trl_rows(tokenizer, rows: list[dict]) -> list[dict]:
    """``rows`` in TRL's explicit-prompt format: the templated prompt as text, responses as they are
    (TRL appends the eos ``<|im_end|>``) - tokenised by TRL into exactly our ids (tested)."""
    return [{"prompt": tokenizer.decode(prompt_ids(tokenizer, r["system"], r["question"])),
             "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]


def distinct_prompts(rows: list[dict]) -> list[dict]:
    """``{"system", "question"}`` of each distinct question in ``rows``, in order of first appearance
    (preference data repeats a question across pairs; RL samples its own responses to each)."""
    seen, prompts = set(), []
    for row in rows:
        if row["question"] not in seen:
            seen.add(row["question"])
            prompts.append({"system": row["system"], "question": row["question"]})
    return prompts


def length_stats(rows: list[dict]) -> dict[str, float]:
    """Mean words of chosen and rejected responses and how often chosen is the longer one."""
    words = [(len(r["chosen"].split()), len(r["rejected"].split())) for r in rows]
    return {"pairs": len(rows), "chosen_words": sum(c for c, _ in words) / len(words),
            "rejected_words": sum(r for _, r in words) / len(words),
            "chosen_longer": sum(c > r for c, r in words) / len(words)}
