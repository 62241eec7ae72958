"""Task 2: preference data through the chat template, completion masks, padding and batching."""
import datasets
import pytest
import torch

from pa5 import task_profile
from task2 import data

ROWS = [
    {"system": "", "question": "What is the capital of France?", "chosen": "Its capital is Paris.",
     "rejected": "I'm not sure, sorry."},
    {"system": "You are a helpful assistant.", "question": "Name three fruits.",
     "chosen": "Here are three fruits: apple, pear and plum.", "rejected": "Here are three fruits: apple and pear."},
]


@pytest.fixture(scope="module")
def tokenizer(smollm2_standin):
    from transformers import AutoTokenizer

    from pa5 import hub
    return hub.from_pretrained(AutoTokenizer, "standin:smollm2")


def test_completion_ends_with_end_of_turn_and_its_mask_keeps_it_when_pad_is_eos(tokenizer):
    assert tokenizer.pad_token_id == tokenizer.eos_token_id, "the stand-in reproduces SmolLM2's pad == eos"
    end = data.end_of_turn_id(tokenizer)
    pairs = data.encode_pairs(tokenizer, ROWS, max_length=256)
    batch = data.collate_pairs(pairs, pad_id=tokenizer.pad_token_id)
    for row in range(4):
        real = batch["attention_mask"][row].bool()
        ids, mask = batch["input_ids"][row][real], batch["loss_mask"][row][real]
        assert ids[-1] == end and mask[-1] == 1, (
            "the completion must end with <|im_end|> and its mask must include it - a mask built from "
            "input_ids != pad_token_id drops it, and the policy never learns to stop")
        assert (batch["loss_mask"][row][~real] == 0).all(), "padding is never in the loss mask"
    prompt_len = len(pairs.prompt[0])
    assert batch["loss_mask"][0, :prompt_len].sum() == 0 and batch["loss_mask"][0, prompt_len] == 1


def test_prompt_is_the_chat_template_with_generation_prompt(tokenizer):
    messages = [{"role": "user", "content": ROWS[0]["question"]}]
    expected = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert data.prompt_ids(tokenizer, "", ROWS[0]["question"]) == list(expected)
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n"), "the prompt ends with the assistant's generation prompt"
    # Tokenising prompt and completion apart gives the same ids as tokenising the whole text.
    whole = tokenizer(text + ROWS[0]["chosen"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
    assert data.prompt_ids(tokenizer, "", ROWS[0]["question"]) + data.completion_ids(tokenizer, ROWS[0]["chosen"]) == whole


def test_over_long_pairs_are_dropped_and_counted(tokenizer):
    lengths = [len(data.prompt_ids(tokenizer, r["system"], r["question"]))
               + max(len(data.completion_ids(tokenizer, r["chosen"])), len(data.completion_ids(tokenizer, r["rejected"])))
               for r in ROWS]
    kept = data.encode_pairs(tokenizer, ROWS, max_length=max(lengths) - 1)
    assert kept.dropped == sum(n > max(lengths) - 1 for n in lengths) and len(kept) == 2 - kept.dropped
    assert data.encode_pairs(tokenizer, ROWS, max_length=max(lengths)).dropped == 0, "a pair of exactly max_length fits"
    for bad in (0, 1, 2.5):
        with pytest.raises(ValueError, match="max_length"):
            data.encode_pairs(tokenizer, ROWS, max_length=bad)


def test_left_and_right_padding_hold_the_same_tokens_and_positions(tokenizer):
    pairs = data.encode_pairs(tokenizer, ROWS, max_length=256)
    right = data.collate_pairs(pairs, tokenizer.pad_token_id, "right")
    left = data.collate_pairs(pairs, tokenizer.pad_token_id, "left")
    assert right["input_ids"].shape[0] == 4, "rows: chosen 0..B-1, then rejected B..2B-1"
    for row in range(4):
        for key in ("input_ids", "loss_mask", "position_ids"):
            r = right[key][row][right["attention_mask"][row].bool()]
            l_ = left[key][row][left["attention_mask"][row].bool()]
            assert torch.equal(r, l_), f"{key} of row {row} differs between padding sides"
        n = int(right["attention_mask"][row].sum())
        assert torch.equal(left["position_ids"][row][-n:], torch.arange(n)), "left-padded rows start at position 0"
    assert torch.equal(right["input_ids"][0][: len(pairs.prompt[0]) + len(pairs.chosen[0])],
                       torch.tensor(pairs.prompt[0] + pairs.chosen[0]))
    assert torch.equal(right["input_ids"][2][: len(pairs.prompt[0]) + len(pairs.rejected[0])],
                       torch.tensor(pairs.prompt[0] + pairs.rejected[0]))
    with pytest.raises(ValueError, match="padding_side"):
        data.collate_pairs(pairs, 0, "middle")
    with pytest.raises(ValueError, match="pairs"):
        data.collate_pairs(pairs.subset([]), 0)


def test_batches_are_seeded_epochs_without_replacement():
    batches = data.batch_indices(10, 3, steps=6, seed=0)
    assert batches == data.batch_indices(10, 3, steps=6, seed=0), "same seed, same batches"
    assert batches != data.batch_indices(10, 3, steps=6, seed=1)
    first_epoch = [i for b in batches[:3] for i in b]
    assert len(set(first_epoch)) == 9, "no index repeats within an epoch"
    assert all(len(b) == 3 for b in batches)
    for kwargs, name in (({"batch_size": 0}, "batch_size"), ({"batch_size": 11}, "batch_size"), ({"steps": -1}, "steps")):
        with pytest.raises(ValueError, match=name):
            data.batch_indices(10, **{"batch_size": 3, "steps": 2, "seed": 0, **kwargs})


@pytest.mark.usefixtures("mini_orca_standin")
def test_load_pairs_tiny_and_a_deterministic_split_when_the_dataset_has_no_test(monkeypatch):
    config = task_profile("task2", "tiny")
    pairs = data.load_pairs(config)
    assert len(pairs["train"]) == config.n_train_pairs and len(pairs["test"]) == config.n_test_pairs
    assert set(pairs["train"][0]) == set(data.FIELDS)
    assert not {r["question"] for r in pairs["test"]} & {r["question"] for r in pairs["train"]}, \
        "the stand-in's test questions are held out"

    orca_like = datasets.DatasetDict({"train": datasets.Dataset.from_list(
        [{"system": "", "question": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(50)])})
    monkeypatch.setattr(data.hub, "load_hf_dataset", lambda ref: orca_like)
    import dataclasses
    small = dataclasses.replace(config, n_train_pairs=30, n_test_pairs=10)
    first, again = data.load_pairs(small, seed=0), data.load_pairs(small, seed=0)
    assert first == again and len(first["train"]) == 30 and len(first["test"]) == 10
    assert not {r["question"] for r in first["test"]} & {r["question"] for r in first["train"]}
