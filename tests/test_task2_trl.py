"""Task 2 against TRL 1.16: the same tiny model and the same pairs give the same losses.

TRL runs on CPU with ``use_cpu=True, bf16=False, report_to="none"`` and no gradient checkpointing.
"""
import copy
import math

import pytest
import torch

from task2 import data, dpo
from task2 import reward_model as rm

MODEL = "standin:smollm2"
CPU = dict(use_cpu=True, bf16=False, report_to="none", gradient_checkpointing=False, save_strategy="no",
           dataloader_num_workers=0, disable_tqdm=True)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from pa5 import hub
    return hub.from_pretrained(AutoTokenizer, MODEL)


@pytest.fixture(scope="module")
def rows():
    from pa5 import task_profile
    return data.load_pairs(task_profile("task2", "tiny"))["train"][:4]


@pytest.mark.points(2)
def test_bradley_terry_loss_equals_reward_trainer_compute_loss(tokenizer, rows, tmp_path):
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    model = rm.load_reward_model(MODEL, pad_token_id=0)
    # pad_token: TRL's pooling finds the reward by pad id; with pad == eos it would skip <|im_end|>.
    args = RewardConfig(output_dir=str(tmp_path), pad_token="<|endoftext|>", **CPU)
    dataset = Dataset.from_list(data.trl_rows(tokenizer, rows))
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=copy.deepcopy(tokenizer))
    pairs = data.encode_pairs(tokenizer, rows, max_length=256)
    batch = data.collate_pairs(pairs, pad_id=0)
    with torch.no_grad():
        theirs = trainer.compute_loss(model, {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})
        ours = rm.bradley_terry_loss(*rm.pair_rewards(model, batch))
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-6)
    trl_batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    assert torch.equal(trl_batch["input_ids"].masked_fill(trl_batch["attention_mask"] == 0, 0),
                       batch["input_ids"]), "TRL tokenises the pairs into the same ids (prompt + response + <|im_end|>)"


@pytest.mark.points(3)
def test_dpo_loss_equals_dpo_trainer_at_ln2_and_after_optimizer_steps(tokenizer, rows, tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    policy = dpo.load_policy(MODEL, seed=0)
    theirs_model, ours_model = copy.deepcopy(policy), copy.deepcopy(policy)
    steps, lr, beta = 4, 2e-3, 0.1

    recorded = []

    class RecordingDPOTrainer(DPOTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            recorded.append((loss[0] if return_outputs else loss).item())
            return loss

    args = DPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=len(rows), max_steps=steps, learning_rate=lr,
                     lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, beta=beta,
                     optim="adamw_torch", logging_steps=1, seed=0, **CPU)
    dataset = Dataset.from_list(data.trl_rows(tokenizer, rows))
    trainer = RecordingDPOTrainer(model=theirs_model, args=args, train_dataset=dataset,
                                  processing_class=copy.deepcopy(tokenizer))
    trl_batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    pairs = data.encode_pairs(tokenizer, rows, max_length=256)
    ours_batch = data.collate_pairs(pairs, tokenizer.pad_token_id)
    assert torch.equal(trl_batch["input_ids"], ours_batch["input_ids"]), "same ids as TRL's tokenisation"
    assert torch.equal(trl_batch["completion_mask"], ours_batch["loss_mask"]), \
        "same completion mask as TRL, <|im_end|> included"
    trainer.train()

    history = dpo.train_dpo(ours_model, pairs, tokenizer.pad_token_id, beta=beta, steps=steps, batch_size=len(rows),
                            lr=lr, kl_every=0)
    ours = [h["loss"] for h in history]
    assert recorded[0] == pytest.approx(math.log(2), abs=1e-7) and ours[0] == pytest.approx(math.log(2), abs=1e-7)
    assert ours[-1] < ours[0] - 1e-3, "the loss must move for the comparison to mean something"
    for step, (a, b) in enumerate(zip(ours, recorded)):
        assert a == pytest.approx(b, abs=1e-5), f"step {step}: ours {a:.7f} vs TRL {b:.7f}"
