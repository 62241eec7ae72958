"""Why some tiny-profile settings differ from the full profile's: each full-profile value, run on the
tiny stand-ins next to the tiny profile's own (seed 0, one run each; about 10 minutes on 2 CPU cores).

    python bench/tiny_settings.py [--only rm,dpo,rl,sae]

Prints one markdown table per component: the setting, and what it reaches in the tiny notebook's
budget of steps. The comments next to the settings in task2/config.py and task3/config.py cite it.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import tempfile

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pa5 import hub, task_profile
from pa5.runtime import configure_torch, seed_everything


def reward_models(tiny, full, tokenizer, train, test) -> None:
    from task2 import reward_model as rm

    print("| reward model | steps x pairs | lr | test accuracy | margin |\n|---|---|---|---|---|")
    for label, lr in (("tiny profile", tiny.reward_model.lr), ("full profile's lr", full.reward_model.lr)):
        seed_everything(0)
        model = rm.load_reward_model(tiny.model, tokenizer.pad_token_id, tiny.lora)
        rm.train_reward_model(model, train, tokenizer.pad_token_id, dataclasses.replace(tiny.reward_model, lr=lr))
        result = rm.evaluate_reward_model(model, test, tokenizer.pad_token_id)
        print(f"| {label} | {tiny.reward_model.steps} x {tiny.reward_model.batch_size} | {lr:g} | "
              f"{result['accuracy']:.3f} | {result['margin']:.2f} |", flush=True)


def _gold(model, tokenizer, prompts, evaluation) -> float:
    """Greedy gold success on the evaluation prompts (the harness without its reward model or KL)."""
    from pa5.judge import gold_score
    from task2.policy import generate

    _, completions = generate(model, tokenizer, prompts, evaluation.max_new_tokens)
    scores = [gold_score(p["question"], tokenizer.decode(c, skip_special_tokens=True).strip())[0]
              for p, c in zip(prompts, completions)]
    judged = [s for s in scores if not math.isnan(s)]
    return sum(judged) / len(judged)


def dpo_variants(tiny, full, tokenizer, train, prompts) -> None:
    from task2 import dpo, policy

    base = hub.from_pretrained(AutoModelForCausalLM, tiny.model).eval()
    print(f"\nbase policy: gold success {_gold(base, tokenizer, prompts, tiny.evaluation):.3f} "
          f"on {len(prompts)} evaluation prompts")
    print("| DPO | beta | NLL weight | lr | gold success after | at step 200 |\n|---|---|---|---|---|---|")
    variants = (("tiny profile (RPO)", tiny.dpo), ("plain DPO, tiny lr", dataclasses.replace(tiny.dpo, nll_weight=0.0)),
                ("full profile's settings", dataclasses.replace(tiny.dpo, lr=full.dpo.lr, beta=full.dpo.beta,
                                                                nll_weight=full.dpo.nll_weight)))
    for label, config in variants:
        seed_everything(0)
        model = policy.load_policy(tiny.model, tiny.lora)
        reference = dpo.reference_logps(model, train, tokenizer.pad_token_id)
        gold = {}
        dpo.train_dpo(model, train, tokenizer.pad_token_id, dataclasses.replace(config, steps=200, kl_every=0),
                      ref_logps=reference, callback=lambda step, record: gold.update(
                          {step: _gold(model, tokenizer, prompts, tiny.evaluation)}) if step in (config.steps, 200) else None)
        print(f"| {label} | {config.beta:g} | {config.nll_weight:g} | {config.lr:g} | {gold[config.steps]:.3f} "
              f"({config.steps} steps) | {gold[200]:.3f} |", flush=True)


def rl_learning_rates(tiny, full, tokenizer, reward_model, prompts) -> None:
    from task2 import grpo, policy, ppo
    from task2 import reward_model as rm

    scorer = rm.RewardScorer(reward_model, tokenizer.pad_token_id)
    print("\n| RL | lr | steps | reward-model score of the rollouts, first -> last quarter |\n|---|---|---|---|")
    for name, tiny_config, full_lr in (("PPO", tiny.ppo, full.ppo.lr), ("GRPO", tiny.grpo, full.grpo.lr)):
        for label, lr in (("tiny profile", tiny_config.lr), ("full profile's lr", full_lr)):
            seed_everything(0)
            model = policy.load_policy(tiny.model, tiny.lora)
            config = dataclasses.replace(tiny_config, lr=lr)
            if name == "PPO":
                history = ppo.train_ppo(model, ppo.load_value_model(reward_model), tokenizer, prompts, scorer, config)
            else:
                history = grpo.train_grpo(model, tokenizer, prompts, scorer, config)
            quarter = max(1, len(history) // 4)
            first = sum(h["rm_reward"] for h in history[:quarter]) / quarter
            last = sum(h["rm_reward"] for h in history[-quarter:]) / quarter
            print(f"| {name}, {label} | {lr:g} | {config.steps} | {first:+.2f} -> {last:+.2f} |", flush=True)


def sae_learning_rates(config, device) -> None:
    from task3 import models
    from task3 import usae as U

    with tempfile.TemporaryDirectory() as folder:
        prepared = {name: models.prepare_features(config, name, folder, device) for name in config.models}
    train = {name: p["train"] for name, p in prepared.items()}
    test = {name: p["test"] for name, p in prepared.items()}
    print("\n| USAE (paper schedule) | lr | epochs | R2 (variance-weighted) on test: " +
          " | ".join(f"{s}->{t}" for s in config.models for t in config.models) + " |")
    print("|---|---|---|" + "---|" * len(config.models) ** 2)
    for label, lr in (("tiny profile", config.sae.lr), ("full profile's lr", task_profile("task3", "full").sae.lr)):
        torch.manual_seed(0)
        usae = U.UniversalSAE({n: x.shape[1] for n, x in train.items()}, config.sae.nb_concepts, config.sae.top_k)
        U.train_usae(usae, train, dataclasses.replace(config.sae, lr=lr))
        r2 = U.cross_r2(usae.saes, test)
        print(f"| {label} | {lr:g} | {config.sae.epochs} | " +
              " | ".join(f"{r2[f'{s}->{t}']['variance_weighted']:.3f}" for s in config.models for t in config.models)
              + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="rm,dpo,rl,sae", help="comma-separated subset of rm, dpo, rl, sae")
    only = set(parser.parse_args().only.split(","))
    device = configure_torch("tiny")
    tiny, full = task_profile("task2", "tiny"), task_profile("task2", "full")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, tiny profile, seed 0\n")
    if only & {"rm", "dpo", "rl"}:
        from task2 import data, evaluate
        from task2 import reward_model as rm

        tokenizer = hub.from_pretrained(AutoTokenizer, tiny.model)
        pairs = data.load_pairs(tiny)
        train, test = (data.encode_pairs(tokenizer, pairs[s], tiny.max_length) for s in ("train", "test"))
        prompts = evaluate.evaluation_prompts(pairs["test"], tiny.evaluation.n_prompts)
        if "rm" in only:
            reward_models(tiny, full, tokenizer, train, test)
        if "dpo" in only:
            dpo_variants(tiny, full, tokenizer, train, prompts)
        if "rl" in only:
            seed_everything(0)
            reward_model = rm.load_reward_model(tiny.model, tokenizer.pad_token_id, tiny.lora)
            rm.train_reward_model(reward_model, train, tokenizer.pad_token_id, tiny.reward_model)
            rl_learning_rates(tiny, full, tokenizer, reward_model, data.distinct_prompts(pairs["train"]))
    if "sae" in only:
        sae_learning_rates(task_profile("task3", "tiny"), device)


if __name__ == "__main__":
    main()
