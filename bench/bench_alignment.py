"""Seconds per optimizer step of task 2's reward-model, DPO and GRPO training vs TRL's RewardTrainer /
DPOTrainer / GRPOTrainer.

    python bench/bench_alignment.py [--repeats 3] [--steps 6] [--only rm,dpo,grpo]

Identical model, pairs, batch, LoRA (r=8, alpha=32, q/v, no dropout), float32, constant lr, gradient
clipping at 1.0, no gradient checkpointing (TRL's default turns it on; off here so both do the same
compute). One timed run = ``--steps`` optimizer steps over ``steps x batch`` pairs, one epoch:
ours includes computing the reference log-probs of those pairs once (TRL computes them inside every
step), TRL's includes ``trainer.train()``'s own overhead but not the trainer's construction (dataset
tokenisation), as our pairs are tokenised beforehand. Runs alternate (ours, TRL, ours, ...) in one
process; the best of ``--repeats`` is kept.

Models: the tiny SmolLM2 stand-in, and a random-init model with SmolLM2-135M's exact config (same
stand-in tokenizer and pairs: its ids are valid in the larger vocabulary).

GRPO: one step = sample ``group_size`` completions for each of ``prompts`` prompts (temperature 1, up
to ``--completion-length`` tokens), score them, one optimizer step (TRL's defaults: loss "dapo",
beta 0, one iteration). Both use the same random-init policy (the stand-in's config, and the 135M
config), so completions almost never stop early (mean lengths are printed), and the same cheap
reward (characters / 100), so the reward model's cost is not part of either. Ours logs no KL here
(``kl_every=0``): with beta 0 TRL computes no reference log-probs either.
"""
from __future__ import annotations

import argparse
import copy
import functools
import tempfile
import time

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from pa5 import hub, task_profile
from pa5.runtime import seed_everything
from task2 import data, dpo
from task2 import reward_model as rm
from task2.config import DPOConfig, GRPOConfig, LoRAConfig, RewardModelConfig
from task2.training import peft_lora_config

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
    return seconds(lambda: rm.train_reward_model(model, pairs, pad, RewardModelConfig(steps=steps, batch_size=batch, lr=LR)))


def trl_reward_model(model, rows, tokenizer, steps, batch):
    from trl import RewardConfig, RewardTrainer
    with tempfile.TemporaryDirectory() as out:
        args = RewardConfig(output_dir=out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=LR,
                            pad_token="<|endoftext|>", **TRL_CPU)
        trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(data.trl_rows(tokenizer, rows)),
                                processing_class=copy.deepcopy(tokenizer))
        return seconds(trainer.train)


def ours_dpo(model, pairs, pad, steps, batch):
    return seconds(lambda: dpo.train_dpo(model, pairs, pad, DPOConfig(steps=steps, batch_size=batch, lr=LR, beta=BETA)))


def trl_dpo(model, rows, tokenizer, steps, batch):
    from trl import DPOConfig, DPOTrainer
    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(output_dir=out, per_device_train_batch_size=batch, max_steps=steps, learning_rate=LR, beta=BETA,
                         **TRL_CPU)
        trainer = DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(data.trl_rows(tokenizer, rows)),
                             processing_class=copy.deepcopy(tokenizer))
        return seconds(trainer.train)


def ours_grpo(policy, tokenizer, prompts, steps, group_size, completion_length):
    from task2 import grpo
    config = GRPOConfig(steps=steps, prompts_per_step=len(prompts), group_size=group_size, lr=LR,
                        max_new_tokens=completion_length, kl_every=0)
    history = []
    reward = functools.partial(characters_reward, tokenizer=tokenizer)
    elapsed = seconds(lambda: history.extend(grpo.train_grpo(policy, tokenizer, prompts, reward, config)))
    return elapsed, sum(h["length"] for h in history) / len(history)


def characters_reward(prompts, completions, tokenizer=None):
    """The same cheap reward in both: characters / 100 of the decoded completion."""
    return torch.tensor([len(tokenizer.decode(c, skip_special_tokens=True)) / 100 for c in completions])


def trl_grpo(policy, tokenizer, prompts, steps, group_size, completion_length):
    from trl import GRPOConfig, GRPOTrainer
    with tempfile.TemporaryDirectory() as out:
        args = GRPOConfig(output_dir=out, per_device_train_batch_size=len(prompts) * group_size,
                          num_generations=group_size, max_completion_length=completion_length, max_steps=steps,
                          learning_rate=LR, temperature=1.0, beta=0.0, loss_type="dapo", logging_steps=1,
                          **{k: v for k, v in TRL_CPU.items() if k != "logging_steps"})
        texts = [tokenizer.decode(data.prompt_ids(tokenizer, p["system"], p["question"])) for p in prompts]
        trainer = GRPOTrainer(model=policy, args=args, train_dataset=Dataset.from_list([{"prompt": t} for t in texts]),
                              reward_funcs=lambda completions, **kw: [len(c) / 100 for c in completions],
                              processing_class=copy.deepcopy(tokenizer))
        elapsed = seconds(trainer.train)
        lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
        return elapsed, sum(lengths) / len(lengths)


def bench_grpo(tokenizer, rows, args) -> None:
    from peft import get_peft_model
    prompts = [{"system": r["system"], "question": r["question"]} for r in rows[: args.grpo_prompts]]
    tiny_config = hub.from_pretrained(AutoModelForCausalLM, "standin:smollm2").config
    policies = {"tiny stand-in config, random init": AutoModelForCausalLM.from_config(tiny_config),
                "SmolLM2-135M config, random init": AutoModelForCausalLM.from_config(SMOLLM2_135M)}
    print(f"\nGRPO: {args.grpo_prompts} prompts x group {args.group_size}, completions up to "
          f"{args.completion_length} tokens, {args.steps} steps per run, best of {args.repeats}\n")
    print("| model | completions / step | ours s/step | TRL s/step | ours / TRL | mean length ours / TRL |\n"
          "|---|---|---|---|---|---|")
    for name, base in policies.items():
        best = {"ours": (float("inf"), 0.0), "TRL": (float("inf"), 0.0)}
        for _ in range(args.repeats):
            for label, run in (("ours", ours_grpo), ("TRL", trl_grpo)):
                torch.manual_seed(0)
                fresh = get_peft_model(copy.deepcopy(base), peft_lora_config("CAUSAL_LM", LoRAConfig()))
                elapsed, length = run(fresh, tokenizer, prompts, args.steps, args.group_size, args.completion_length)
                best[label] = min(best[label], (elapsed / args.steps, length))
        (ours_s, ours_len), (trl_s, trl_len) = best["ours"], best["TRL"]
        print(f"| {name} | {args.grpo_prompts * args.group_size} | {ours_s:.3f} | {trl_s:.3f} | "
              f"{ours_s / trl_s:.2f}x | {ours_len:.1f} / {trl_len:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--only", default="rm,dpo,grpo", help="comma-separated subset of rm, dpo, grpo")
    parser.add_argument("--grpo-prompts", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--completion-length", type=int, default=32)
    args = parser.parse_args()
    only = set(args.only.split(","))
    seed_everything(0)
    from peft import get_peft_model
    tokenizer = hub.from_pretrained(AutoTokenizer, "standin:smollm2")
    rows = data.load_pairs(task_profile("task2", "tiny"))["train"]
    pad = tokenizer.pad_token_id
    causal_lms = {"tiny stand-in (0.95M)": (hub.from_pretrained(AutoModelForCausalLM, "standin:smollm2"), 16),
                  "SmolLM2-135M config, random init": (AutoModelForCausalLM.from_config(SMOLLM2_135M), 8)}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps per run, "
          f"best of {args.repeats}\n")
    if only & {"rm", "dpo"}:
        print("| model | pairs / step | trainer | ours s/step | TRL s/step | ours / TRL |\n|---|---|---|---|---|---|")
    for name, (causal_lm, batch) in causal_lms.items() if only & {"rm", "dpo"} else ():
        used = rows[: args.steps * batch]
        pairs = data.encode_pairs(tokenizer, used, max_length=256)
        settings = {k: v for k, v in causal_lm.config.to_dict().items() if k not in ("id2label", "label2id")}
        classifier = AutoModelForSequenceClassification.from_config(
            causal_lm.config.__class__(**{**settings, "num_labels": 1, "pad_token_id": 0}))
        classifier.model.load_state_dict(causal_lm.model.state_dict())
        runs = {"reward model": (classifier, "SEQ_CLS", ours_reward_model, trl_reward_model, "rm"),
                "DPO": (causal_lm, "CAUSAL_LM", ours_dpo, trl_dpo, "dpo")}
        for trainer_name, (base, task_type, ours, theirs, key) in runs.items():
            if key not in only:
                continue
            best_ours = best_trl = float("inf")
            for _ in range(args.repeats):
                torch.manual_seed(0)
                fresh = get_peft_model(copy.deepcopy(base), peft_lora_config(task_type, LoRAConfig()))
                best_ours = min(best_ours, ours(fresh, pairs, pad, args.steps, batch) / args.steps)
                torch.manual_seed(0)
                fresh = get_peft_model(copy.deepcopy(base), peft_lora_config(task_type, LoRAConfig()))
                best_trl = min(best_trl, theirs(fresh, used, tokenizer, args.steps, batch) / args.steps)
            print(f"| {name} | {batch} | {trainer_name} | {best_ours:.3f} | {best_trl:.3f} | "
                  f"{best_ours / best_trl:.2f}x |", flush=True)
    if "grpo" in only:
        bench_grpo(tokenizer, rows, args)


if __name__ == "__main__":
    main()
