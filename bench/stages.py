"""Every stage of the three full-profile notebooks, one at a time, at the full profile's sizes: seconds
per step and peak memory on this machine. ``bench/gpu_check.py`` runs each in its own process (so each
peak is its own) on fake assets and extrapolates; run one by hand with the fake assets' variables set:

    python bench/stages.py task2/dpo_step --steps 2 [--sizes tiny]

Each stage calls the project's own code (the trainers, loaders and evaluation of the notebooks) on
worst-case synthetic inputs - every preference pair at max_length, every rollout cut off at
max_new_tokens (a random-init model never emits <|im_end|>) - so its memory bounds the notebook's.
Memory: ``torch.cuda.max_memory_allocated`` on CUDA; on a CPU the process's peak resident set (RSS)
minus its RSS once torch is imported (an upper bound of the tensors' peak: freed memory may stay mapped).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

def _rss_kib(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process in KiB. Not getrusage's ru_maxrss: Linux carries that
    over from the parent across exec, so a child of a large parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # elsewhere: the best there is


BASELINE_RSS = _rss_kib("VmRSS")  # after importing torch

# worst-case shapes: the full profile's (read from its configuration) or, for testing this script on a
# CPU, tiny ones
TINY = {"max_length": 48, "pairs": 2, "ref_pairs": 2, "prompt_words": 8, "new_tokens": 6, "rollouts": 4,
        "eval_prompts": 3, "images": 2, "image_size": 64, "feature_images": 4, "sae_rows": 32, "concepts": 128,
        "top_k": 8, "gold_pairs": 2, "gold_tokens": 32, "decode_batch": 4, "decode_tokens": 6}
# OpenAssistant/reward-model-deberta-v3-large-v2's architecture (DeBERTa-v3-large): built at its real size
# here, random init, because the fake assets' copy is tiny
DEBERTA_V3_LARGE = dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                        vocab_size=128_100, max_position_embeddings=512, relative_attention=True, position_buckets=256,
                        pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm", share_att_key=True,
                        position_biased_input=False, type_vocab_size=0, num_labels=1)


def full_sizes() -> dict:
    from pa5 import task_profile

    t1, t2, t3 = (task_profile(t, "full") for t in ("task1", "task2", "task3"))
    return {"max_length": t2.max_length, "pairs": t2.dpo.batch_size, "ref_pairs": 16, "prompt_words": 200,
            "new_tokens": t2.ppo.max_new_tokens, "rollouts": t2.ppo.prompts_per_step, "eval_prompts": 64,
            "images": t3.finetune.batch_size, "image_size": t3.image_size, "feature_images": 256,
            "sae_rows": t3.sae.batch_size, "concepts": t3.sae.nb_concepts, "top_k": t3.sae.top_k, "gold_pairs": 16,
            "gold_tokens": 512, "decode_batch": t1.batch_size, "decode_tokens": t1.max_new_tokens}


@dataclass(frozen=True)
class Stage:
    name: str  # task/stage
    what: str  # one line: the work of one step
    kind: str  # "dense" (matmul-bound) or "decode" (token-by-token generation: launch-bound)
    full_steps: int  # how many such steps the full notebook runs (for the extrapolation)


def _full_counts() -> dict[str, int]:
    from pa5 import task_profile

    t1, t2, t3 = (task_profile(t, "full") for t in ("task1", "task2", "task3"))
    from task1.study import study_settings

    settings = len(study_settings(t1.study))
    texts = settings * (t1.n_prompts + t1.n_story_prompts) * t1.samples_per_prompt
    gold_calls = (t2.ppo.steps * t2.ppo.prompts_per_step + t2.grpo.steps * t2.grpo.prompts_per_step * t2.grpo.group_size
                  + 4 * (t2.evaluation.n_prompts + 3)) // 16
    eval_batches = 4 * (2 + (t2.evaluation.n_prompts + 3) * t2.evaluation.kl_samples // 64 + 1)
    fine_tune = t3.finetune.epochs * -(-50_000 // t3.finetune.batch_size)
    features = (t3.finetune.epochs * 12_000 + 60_000) // 256
    return {"task1/decode": settings + 6, "task1/quality": -(-texts // 16), "task2/reward_model_step": t2.reward_model.steps,
            "task2/reference_logps": -(-int(0.9 * t2.n_train_pairs) // 16), "task2/dpo_step": t2.dpo.steps,
            "task2/ppo_step": t2.ppo.steps, "task2/grpo_step": t2.grpo.steps, "task2/evaluation": eval_batches // 2,
            "task2/gold": gold_calls, "task3/resnet50_step": fine_tune, "task3/mobilenet_v3_large_step": fine_tune,
            "task3/resnet50_features": features, "task3/mobilenet_v3_large_features": features,
            "task3/sae_step": 2 * t3.sae.epochs * -(-50_000 // t3.sae.batch_size),
            "task3/maximisation_step": 2 * 4 * t3.maximisation.steps}


def stages() -> list[Stage]:
    counts = _full_counts()
    what = {"task1/decode": ("one top-p sampling batch (the study's)", "decode"),
            "task1/quality": ("OpenAssistant reward model (real size) on 16 text pairs", "dense"),
            "task2/reward_model_step": ("reward model: one step, 8 pairs at max_length", "dense"),
            "task2/reference_logps": ("DPO reference log-probs of 16 pairs at max_length", "dense"),
            "task2/dpo_step": ("DPO: one step, 8 pairs at max_length, with its KL pass", "dense"),
            "task2/ppo_step": ("PPO: rollout of 32, scoring passes, 4 epochs of minibatch updates", "decode"),
            "task2/grpo_step": ("GRPO: rollout of 8 x 4, reference pass, one update", "decode"),
            "task2/evaluation": ("evaluation: 64 prompts greedy + 1 sample, reward and log-ratios", "decode"),
            "task2/gold": ("gold: OpenAssistant reward model (real size), 16 pairs x 512 tokens", "dense"),
            "task3/resnet50_step": ("ResNet50: one fine-tune step", "dense"),
            "task3/mobilenet_v3_large_step": ("MobileNetV3-Large: one fine-tune step", "dense"),
            "task3/resnet50_features": ("ResNet50: features of 256 images", "dense"),
            "task3/mobilenet_v3_large_features": ("MobileNetV3-Large: features of 256 images", "dense"),
            "task3/sae_step": ("USAE: one step (1024 rows, both models decode)", "dense"),
            "task3/maximisation_step": ("activation maximisation: one ResNet50 step", "dense")}
    return [Stage(name, *what[name], counts[name]) for name in what]


# ----------------------------------------------------------------------------- the stages


def _tokens(n: int, generator: torch.Generator) -> list[int]:
    return torch.randint(3, 1000, (n,), generator=generator).tolist()  # inside the fake tokenizer's vocabulary


def _pairs(sizes: dict, n: int):
    from task2.data import EncodedPairs

    generator = torch.Generator().manual_seed(0)
    half = sizes["max_length"] // 2
    rows = [(_tokens(half, generator), _tokens(half - 1, generator) + [2], _tokens(half - 1, generator) + [2])
            for _ in range(n)]
    return EncodedPairs(*map(list, zip(*rows)), rows=[{}] * n, dropped=0)


def _prompts(sizes: dict, n: int) -> list[dict]:
    words = ("the of and to in is that for it as was with be by on not he this are or his from at which but " * 20).split()
    return [{"system": "", "question": " ".join(words[i % 7:][: sizes["prompt_words"]])} for i in range(n)]


def run_stage(name: str, sizes: dict, steps: int, device: torch.device) -> None:
    """Set ``name`` up, run one warm-up step (CUDA), then ``steps`` timed steps; returns its record."""
    from transformers import AutoTokenizer

    from pa5 import hub, task_profile
    from pa5.assets import SMOLLM2

    task = name.split("/")[0]
    config = task_profile(task, "full")
    if task in ("task1", "task2"):
        tokenizer = hub.from_pretrained(AutoTokenizer, SMOLLM2)
        pad = tokenizer.pad_token_id
    step = _STAGES[name](config, sizes, device, locals().get("tokenizer"), locals().get("pad"))
    if device.type == "cuda":  # warm-up: kernels chosen, caches built (a CPU run measures memory; no need)
        step(1)
        torch.cuda.synchronize()
    started = time.perf_counter()
    step(steps)
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak, kind = torch.cuda.max_memory_allocated(device) / 2**30, "torch.cuda.max_memory_allocated"
    else:
        peak = (_rss_kib("VmHWM") - BASELINE_RSS) / 2**20
        kind = "peak RSS minus RSS after importing torch"
    from pa5.device import precision

    return {"stage": name, "seconds_per_step": (time.perf_counter() - started) / steps, "peak_memory_gib": peak,
            "memory": kind, "precision": precision(device), "device": str(device)}


def _decode(config, sizes, device, tokenizer, pad):
    from transformers import AutoModelForCausalLM

    from pa5 import hub
    from pa5.llm import encode_prompts
    from task1.decoding import sample

    model = hub.load_model(AutoModelForCausalLM, config.model, device)
    ids, mask = encode_prompts(tokenizer, [{"system": "", "question": "Explain gravity to a 5-year-old."}] * sizes["decode_batch"])

    def step(n):
        for _ in range(n):
            sample(model, ids.to(device), sizes["decode_tokens"], temperature=1.0, top_p=0.9, eos_token_id=None,
                   pad_token_id=pad, attention_mask=mask.to(device))
    return step


def _deberta(sizes, device):
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    from pa5.device import autocast, place

    shape = {**DEBERTA_V3_LARGE, **({} if sizes["gold_tokens"] >= 512 else dict(hidden_size=64, num_hidden_layers=2,
                                                                                  num_attention_heads=2, intermediate_size=128))}
    model = place(DebertaV2ForSequenceClassification(DebertaV2Config(**shape)), device).eval()
    ids = torch.randint(3, 1000, (sizes["gold_pairs"], sizes["gold_tokens"]), device=device)

    def step(n):
        with torch.no_grad(), autocast(device):
            for _ in range(n):
                model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.float().cpu()
    return step


def _reward_model_step(config, sizes, device, tokenizer, pad):
    from task2.reward_model import load_reward_model, train_reward_model

    model, pairs = load_reward_model(config.model, pad, config.lora, 0, device), _pairs(sizes, sizes["pairs"])
    return lambda n: train_reward_model(model, pairs, pad, replace(config.reward_model, steps=n, batch_size=sizes["pairs"]))


def _reference_logps(config, sizes, device, tokenizer, pad):
    from task2.dpo import reference_logps
    from task2.policy import load_policy

    policy, pairs = load_policy(config.model, config.lora, 0, device), _pairs(sizes, sizes["ref_pairs"])
    return lambda n: [reference_logps(policy, pairs, pad, batch_size=sizes["ref_pairs"]) for _ in range(n)]


def _dpo_step(config, sizes, device, tokenizer, pad):
    from task2.dpo import train_dpo
    from task2.policy import load_policy

    policy, pairs = load_policy(config.model, config.lora, 0, device), _pairs(sizes, sizes["pairs"])
    reference = torch.zeros(len(pairs), 2)
    return lambda n: train_dpo(policy, pairs, pad, replace(config.dpo, steps=n, batch_size=sizes["pairs"], kl_every=1),
                               ref_logps=reference)


def _rl(config, sizes, device, tokenizer):
    from task2.policy import load_policy
    from task2.reward_model import RewardScorer, load_reward_model

    reward_model = load_reward_model(config.model, tokenizer.pad_token_id, config.lora, 0, device)
    return (load_policy(config.model, config.lora, 0, device), reward_model,
            RewardScorer(reward_model, tokenizer.pad_token_id), _prompts(sizes, sizes["rollouts"]))


def _ppo_step(config, sizes, device, tokenizer, pad):
    from task2.ppo import load_value_model, train_ppo

    policy, reward_model, scorer, prompts = _rl(config, sizes, device, tokenizer)
    critic = load_value_model(reward_model)
    # --memory-only: one epoch of minibatch updates; the peak is the same (every minibatch has one shape)
    ppo = replace(config.ppo, prompts_per_step=sizes["rollouts"], minibatch_size=min(config.ppo.minibatch_size, sizes["rollouts"]),
                  max_new_tokens=sizes["new_tokens"], epochs=1 if sizes.get("memory_only") else config.ppo.epochs)
    return lambda n: train_ppo(policy, critic, tokenizer, prompts, scorer, replace(ppo, steps=n))


def _grpo_step(config, sizes, device, tokenizer, pad):
    from task2.grpo import train_grpo

    policy, _, scorer, prompts = _rl(config, sizes, device, tokenizer)
    grpo = replace(config.grpo, prompts_per_step=sizes["rollouts"] // config.grpo.group_size,
                   max_new_tokens=sizes["new_tokens"])
    return lambda n: train_grpo(policy, tokenizer, prompts, scorer, replace(grpo, steps=n))


def _evaluation(config, sizes, device, tokenizer, pad):
    from task2.evaluate import evaluate_model

    policy, _, scorer, _ = _rl(config, sizes, device, tokenizer)
    prompts = _prompts(sizes, sizes["eval_prompts"])
    evaluation = replace(config.evaluation, kl_samples=1, max_new_tokens=sizes["new_tokens"])
    return lambda n: [evaluate_model("policy", policy, tokenizer, prompts, scorer, evaluation) for _ in range(n)]


def _cnn(name):
    def build(config, sizes, device, tokenizer, pad):
        from pa5.device import grad_scaler, place
        from task3.models import build_model, finetune_step

        model = place(build_model(name, None), device).train()
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        optimizer, scaler = torch.optim.Adam(model.parameters(), lr=config.finetune.lr), grad_scaler(device)
        images = torch.randn(sizes["images"], 3, sizes["image_size"], sizes["image_size"])
        labels = torch.randint(0, 100, (sizes["images"],))
        return lambda n: [finetune_step(model, images, labels, optimizer, scaler, device) for _ in range(n)]
    return build


def _features(name):
    def build(config, sizes, device, tokenizer, pad):
        from pa5.device import place
        from task3.models import build_model, extract_features

        model = place(build_model(name, None), device)
        batch = [(torch.randn(sizes["feature_images"], 3, sizes["image_size"], sizes["image_size"]), torch.zeros(1))]
        return lambda n: [extract_features(model, name, batch, device) for _ in range(n)]
    return build


def _usae(config, sizes, device):
    from task3.usae import UniversalSAE

    return UniversalSAE({"resnet50": 2048, "mobilenet_v3_large": 1280}, sizes["concepts"], sizes["top_k"], device)


def _sae_step(config, sizes, device, tokenizer, pad):
    from task3.usae import usae_step

    usae = _usae(config, sizes, device)
    optimizer = torch.optim.AdamW(usae.parameters(), lr=config.sae.lr, weight_decay=config.sae.weight_decay)
    batch = {"resnet50": torch.randn(sizes["sae_rows"], 2048, device=device),
             "mobilenet_v3_large": torch.randn(sizes["sae_rows"], 1280, device=device)}
    return lambda n: [usae_step(usae, optimizer, batch, ["resnet50"]) for _ in range(n)]


def _maximisation_step(config, sizes, device, tokenizer, pad):
    from pa5.device import place
    from task3.models import Standardizer, build_model
    from task3.visualize import concept_objective, maximise

    usae = _usae(config, sizes, device).eval()
    model = place(build_model("resnet50", None), device).eval()
    objective = concept_objective(model, "resnet50", Standardizer(torch.randn(64, 2048), "l2_center"), usae, 0)
    return lambda n: maximise(objective, sizes["image_size"], replace(config.maximisation, steps=n), device=device)


_STAGES = {"task1/decode": _decode, "task1/quality": lambda c, s, d, t, p: _deberta(s, d),
           "task2/reward_model_step": _reward_model_step, "task2/reference_logps": _reference_logps,
           "task2/dpo_step": _dpo_step, "task2/ppo_step": _ppo_step, "task2/grpo_step": _grpo_step,
           "task2/evaluation": _evaluation, "task2/gold": lambda c, s, d, t, p: _deberta(s, d),
           "task3/resnet50_step": _cnn("resnet50"), "task3/mobilenet_v3_large_step": _cnn("mobilenet_v3_large"),
           "task3/resnet50_features": _features("resnet50"),
           "task3/mobilenet_v3_large_features": _features("mobilenet_v3_large"),
           "task3/sae_step": _sae_step, "task3/maximisation_step": _maximisation_step}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=list(_STAGES))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--sizes", choices=("full", "tiny"), default="full")
    parser.add_argument("--out", type=Path, help="write the record as JSON here")
    parser.add_argument("--memory-only", action="store_true",
                        help="cut work that does not change the peak (PPO: one epoch of updates); s/step is then not the notebook's")
    args = parser.parse_args(argv)
    from pa5.device import resolve_device
    from pa5.runtime import seed_everything

    seed_everything(0)
    sizes = {**(full_sizes() if args.sizes == "full" else TINY), "memory_only": args.memory_only}
    record = run_stage(args.stage, sizes, args.steps, resolve_device("full")) | {"memory_only": args.memory_only}
    print(json.dumps(record))
    if args.out:
        args.out.write_text(json.dumps(record))


if __name__ == "__main__":
    main()
