"""Task 2 against TRL 1.16: the same tiny model and the same pairs give the same losses.

TRL runs on CPU with ``use_cpu=True, bf16=False, report_to="none"`` and no gradient checkpointing.
"""
import copy
import math

import pytest
import torch

from pa5 import recipes
from task2 import data, grpo, policy

MODEL = "standin:smollm2"
CPU = dict(use_cpu=True, bf16=False, report_to="none", gradient_checkpointing=False, save_strategy="no",
           dataloader_num_workers=0, disable_tqdm=True)


@pytest.fixture(scope="module")
def tokenizer(smollm2_standin):
    from transformers import AutoTokenizer

    from pa5 import hub
    return hub.from_pretrained(AutoTokenizer, MODEL)


@pytest.fixture(scope="module")
def rows(mini_orca_standin):
    from pa5 import task_profile
    return data.load_pairs(task_profile("task2", "tiny"))["train"][:4]


@pytest.mark.points(2, function="bradley_terry_loss")
def test_bradley_terry_loss_equals_reward_trainer_compute_loss(student, tokenizer, rows, tmp_path):
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    model = recipes.reward_model(pad_token_id=0)  # TRL's; the student's is built from the same recipe
    # pad_token: TRL's pooling finds the reward by pad id; with pad == eos it would skip <|im_end|>.
    args = RewardConfig(output_dir=str(tmp_path), pad_token="<|endoftext|>", **CPU)
    dataset = Dataset.from_list(data.trl_rows(tokenizer, rows))
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=copy.deepcopy(tokenizer))
    pairs = data.encode_pairs(tokenizer, rows, max_length=256)
    batch = data.collate_pairs(pairs, pad_id=0)
    with torch.no_grad():
        theirs = trainer.compute_loss(model, {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]})
    theirs_model = student.build("pa5.recipes:reward_model", pad_token_id=0)
    rewards = student.call("task2.reward_model:pair_rewards", theirs_model, batch)
    ours = student.call("task2.reward_model:bradley_terry_loss", *rewards)
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-6), (
        f"ours {ours.item():.7f} vs TRL's RewardTrainer {theirs.item():.7f}: TRL's loss is "
        "-logsigmoid(r_chosen - r_rejected).mean()")
    trl_batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    assert torch.equal(trl_batch["input_ids"].masked_fill(trl_batch["attention_mask"] == 0, 0),
                       batch["input_ids"]), "TRL tokenises the pairs into the same ids (prompt + response + <|im_end|>)"


@pytest.mark.points(3, function="dpo_loss")
def test_dpo_loss_equals_dpo_trainer_at_ln2_and_after_optimizer_steps(student, tokenizer, rows, tmp_path):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    theirs_model = recipes.policy_model(seed=0)  # TRL's; the student's is built from the same recipe
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

    config = dict(beta=beta, steps=steps, batch_size=len(rows), lr=lr, kl_every=0)
    run = student.call("pa5.recipes:dpo_training", rows, config, with_reference=False, _timeout=600)
    ours = [h["loss"] for h in run["history"]]
    assert recorded[0] == pytest.approx(math.log(2), abs=1e-7) and ours[0] == pytest.approx(math.log(2), abs=1e-7), (
        f"policy = reference at the start: the sigmoid DPO loss is ln 2 (TRL {recorded[0]}, yours {ours[0]})")
    assert ours[-1] < ours[0] - 1e-3, "the loss must move for the comparison to mean something"
    for step, (a, b) in enumerate(zip(ours, recorded)):
        assert a == pytest.approx(b, abs=1e-5), (
            f"step {step}: ours {a:.7f} vs TRL {b:.7f}: -logsigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), the "
            "log-probs summed over completion tokens, one AdamW step per batch with grad-norm clipping at 1")


@pytest.fixture(scope="module")
def grpo_case(tokenizer):
    """A policy whose adapter is not at zero, and a GRPO batch: 8 completions of 2 prompts (groups of 4)
    with equal-length prompts (so TRL's default position ids equal ours), right-padded completions."""
    from task2.data import pad_completions, prompt_ids

    torch.manual_seed(0)
    adapter = {name: value.normal_(0, 0.05) if "lora_B" in name else value
               for name, value in recipes.trainable_state(recipes.policy_model(seed=0)).items()}
    prompt = prompt_ids(tokenizer, "", "What is the capital of France?")
    completions = [torch.randint(3, len(tokenizer), (n,)).tolist() for n in (5, 3, 8, 6, 2, 8, 4, 7)]
    batch = pad_completions([prompt] * 8, completions, tokenizer.pad_token_id)
    return adapter, batch, len(prompt)


@pytest.mark.points(0.5, function="grpo_loss")
@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_and_gradient_equal_grpo_trainer(student, grpo_case, tokenizer, loss_type, beta, tmp_path):
    """TRL: GRPOConfig(loss_type, beta, epsilon=0.2, temperature=0.7, num_generations=4, max_completion_length=8,
    use_bias_correction_kl=True (its default), per_device_train_batch_size=8, steps_per_generation=1), and
    ``trainer.compute_loss`` on inputs we build; ours: :func:`grpo.grpo_loss` on our per-token log-probs."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    adapter, batch, prompt_length = grpo_case
    theirs_model = recipes.policy_model(seed=0, adapter=adapter)
    temperature, max_completion_length = 0.7, 8
    args = GRPOConfig(output_dir=str(tmp_path), loss_type=loss_type, beta=beta, epsilon=0.2, temperature=temperature,
                      num_generations=4, max_completion_length=max_completion_length, per_device_train_batch_size=8,
                      steps_per_generation=1, **CPU)
    trainer = GRPOTrainer(model=theirs_model, reward_funcs=lambda completions, **kw: [0.0] * len(completions),
                          args=args, train_dataset=Dataset.from_list([{"prompt": "hi"}] * 8),
                          processing_class=copy.deepcopy(tokenizer))
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop; we call compute_loss directly

    mask = batch["loss_mask"][:, prompt_length:].float()
    torch.manual_seed(1)
    with torch.no_grad():
        current = policy.policy_logps(theirs_model, batch, temperature)[0][:, prompt_length:]
    # old log-probs off by up to +-0.4 so that some ratios leave [0.8, 1.2] and both clip branches are used
    old = (current + torch.empty_like(current).uniform_(-0.4, 0.4)) * mask
    ref = (current + torch.empty_like(current).uniform_(-0.3, 0.3)) * mask
    advantages = grpo.group_advantages(torch.randn(8), group_size=4)
    inputs = {"prompt_ids": batch["input_ids"][:, :prompt_length], "prompt_mask": batch["attention_mask"][:, :prompt_length],
              "completion_ids": batch["input_ids"][:, prompt_length:], "completion_mask": mask.long(),
              "advantages": advantages, "old_per_token_logps": old, "ref_per_token_logps": ref,
              "num_items_in_batch": mask.sum()}
    trainer.model.train()
    theirs = trainer.compute_loss(trainer.model, inputs)
    theirs.backward()

    pad = torch.nn.functional.pad
    run = student.call("pa5.recipes:grpo_loss_and_grads", student.build("pa5.recipes:policy_model", seed=0, adapter=adapter),
                       batch, temperature, pad(old, (prompt_length, 0)), advantages, loss_type, epsilon=0.2, beta=beta,
                       ref_logps=pad(ref, (prompt_length, 0)), max_completion_length=max_completion_length)
    ours = run["loss"]
    assert 0 < run["stats"]["clip_fraction"] < 1, "the case must exercise clipping"
    assert ours.item() == pytest.approx(theirs.item(), abs=1e-6), (
        f"{loss_type}, beta={beta}: ours {ours.item():.8f} vs TRL {theirs.item():.8f} - check the aggregation over "
        "tokens for this loss_type and the k3 KL term")
    for name, parameter in theirs_model.named_parameters():
        if parameter.requires_grad:
            torch.testing.assert_close(run["grads"][name], parameter.grad, atol=1e-6, rtol=1e-4, msg=lambda m: (
                f"the loss's gradient at {name} differs from GRPOTrainer's: same value, other graph? (a detached "
                "ratio or KL term changes the gradient, not the value)\n" + m))
