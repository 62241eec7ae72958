"""Seconds per optimizer step of task 2's reward-model and DPO training vs TRL's RewardTrainer / DPOTrainer.

    python bench/bench_alignment.py [--repeats 3] [--steps 6]

Identical model, pairs, batch, LoRA (r=8, alpha=32, q/v, no dropout), float32, constant lr, gradient
clipping at 1.0, no gradient checkpointing (TRL's default turns it on; off here so both do the same
compute). One timed run = ``--steps`` optimizer steps over ``steps x batch`` pairs, one epoch:
ours includes computing the reference log-probs of those pairs once (TRL computes them inside every
step), TRL's includes ``trainer.train()``'s own overhead but not the trainer's construction (dataset
tokenisation), as our pairs are tokenised beforehand. Runs alternate (ours, TRL, ours, ...) in one
process; the best of ``--repeats`` is kept.

Models: the tiny SmolLM2 stand-in, and a random-init model with SmolLM2-135M's exact config (same
stand-in tokenizer and pairs: its ids are valid in the larger vocabulary).
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from pa5 import hub, task_profile
from pa5.runtime import seed_everything
from task2 import data, dpo
from task2 import reward_model as rm
from task2.training import lora_config

try:
    from bench.bench_decoding import SMOLLM2_135M
except ImportError:  # run as a script: bench/ is on sys.path, the repo root may not be
    from bench_decoding import SMOLLM2_135M

TRL_CPU = dict(use_cpu=True, bf16=False, report_to="none", gradient_checkpointing=False, save_strategy="no",
               disable_tqdm=True, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
               optim="adamw_torch", logging_steps=10**6)
LR, BETA = 1e-4, 0.1


def seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def ours_reward_model(model, pairs, pad, steps, batch):
    return seconds(lambda: rm.train_reward_model(model, pairs, pad, steps, batch, LR))


def trl_reward_model(model, rows, tokenizer, steps, batch):
    from trl import RewardConfig, RewardTrainer
    with tempfile.TemporaryDirectory() as out:
        args = RewardConfig(output_dir=out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=LR,
                            pad_token="<|endoftext|>", **TRL_CPU)
        trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(data.trl_rows(tokenizer, rows)),
                                processing_class=copy.deepcopy(tokenizer))
        return seconds(trainer.train)


def ours_dpo(model, pairs, pad, steps, batch):
    return seconds(lambda: dpo.train_dpo(model, pairs, pad, BETA, steps, batch, LR))


def trl_dpo(model, rows, tokenizer, steps, batch):
    from trl import DPOConfig, DPOTrainer
    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(output_dir=out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=LR, beta=BETA,
                         **TRL_CPU)
        trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(data.trl_rows(tokenizer, rows)),
                             processing_class=copy.deepcopy(tokenizer))
        return seconds(trainer.train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    seed_everything(0)
    from peft import get_peft_model
    tokenizer = hub.from_pretrained(AutoTokenizer, "standin:smollm2")
    rows = data.load_pairs(task_profile("task2", "tiny"))["train"]
    pad = tokenizer.pad_token_id
    causal_lms = {"tiny stand-in (0.95M)": (hub.from_pretrained(AutoModelForCausalLM, "standin:smollm2"), 16),
                  "SmolLM2-135M config, random init": (AutoModelForCausalLM.from_config(SMOLLM2_135M), 8)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps per run, "
          f"best of {args.repeats}\n")
    print("| model | pairs / step | trainer | ours s/step | TRL s/step | ours / TRL |\n|---|---|---|---|---|---|")
    for name, (causal_lm, batch) in causal_lms.items():
        used = rows[: args.steps * batch]
        pairs = data.encode_pairs(tokenizer, used, max_length=256)
        settings = {k: v for k, v in causal_lm.config.to_dict().items() if k not in ("id2label", "label2id")}
        classifier = AutoModelForSequenceClassification.from_config(
            causal_lm.config.__class__(**{**settings, "num_labels": 1, "pad_token_id": 0}))
        classifier.model.load_state_dict(causal_lm.model.state_dict())
        runs = {"reward model": (classifier, "SEQ_CLS", ours_reward_model, trl_reward_model),
                "DPO": (causal_lm, "CAUSAL_LM", ours_dpo, trl_dpo)}
        for trainer_name, (base, task_type, ours, theirs) in runs.items():
            best_ours = best_trl = float("inf")
            for _ in range(args.repeats):
                torch.manual_seed(0)
                fresh = get_peft_model(copy.deepcopy(base), lora_config(task_type, 8, 32))
                best_ours = min(best_ours, ours(fresh, pairs, pad, args.steps, batch) / args.steps)
                torch.manual_seed(0)
                fresh = get_peft_model(copy.deepcopy(base), lora_config(task_type, 8, 32))
                best_trl = min(best_trl, theirs(fresh, used, tokenizer, args.steps, batch) / args.steps)
            print(f"| {name} | {batch} | {trainer_name} | {best_ours:.3f} | {best_trl:.3f} | "
                  f"{best_ours / best_trl:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
