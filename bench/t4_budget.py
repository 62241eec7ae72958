"""The full profile's time on one GPU, estimated per notebook stage from its configuration.

    python bench/t4_budget.py            # every task, T4 and A100 columns, against the budgets

Nothing here is measured on a GPU (none was available where this was written): each stage's work is
counted (FLOPs of its forward / backward passes, decode steps of its generations, images) from
``pa5.task_profile(task, "full")``, then divided by the throughputs stated below. Change a profile's
sizes and rerun: this is how the full profile's sizes were chosen (budgets: task 1 <= 10 min, task 2
<= 30 min, task 3 <= 40 min on a T4, downloads excluded). ``bench/gpu_check.py`` measures the same
stages on a real GPU; where it has run, its seconds per step replace these assumptions.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pa5 import task_profile  # noqa: E402

# ----------------------------------------------------------------------------- stated assumptions
# SmolLM2-135M: 30 layers of 3.54 M weights (2 x 3.54 M FLOP per token each) + attention, and a tied
# 576 x 49,152 LM head (57 MFLOP per position it is applied to).
LM_FORWARD = 240e6  # FLOP per token, without the head
LM_HEAD = 2 * 576 * 49_152  # FLOP per position the head runs on
TRAIN_FACTOR = 3  # forward + backward (activation and LoRA gradients) ~ 3 forwards
CHECKPOINT_FACTOR = 1  # activation checkpointing recomputes one more forward
DEBERTA_FORWARD = 2 * 435e6  # OpenAssistant's reward model (DeBERTa-v3-large): FLOP per token
# orca_dpo_pairs through SmolLM2's tokenizer (assumed for planning, not measured here): system + question
# ~250 tokens, chosen ~200, rejected ~130; a batch pads to its longest row, ~1.5x the mean
PROMPT_TOKENS, CHOSEN_TOKENS, REJECTED_TOKENS, PADDING = 250, 200, 130, 1.5
# the kept pairs of orca (prompt + longer response <= max_length 1024): assumed 90 % of the rows
# ResNet50 / MobileNetV3-Large at 224 px: forward GFLOP per image
CNN_FORWARD = {"resnet50": 8.2e9, "mobilenet_v3_large": 0.44e9}  # 2 x their 4.1 / 0.22 GMAC
HOST_IMAGE = 1e-3  # seconds of CPU per image to decode, resize 32 -> 224 and normalise (one loader process)


@dataclass(frozen=True)
class GPU:
    name: str
    dense_flops: float  # sustained FLOP/s on a 135M model's training / scoring matmuls (small: 576-wide)
    decode_step: float  # seconds per token step of HF generate on a batch <= 64 (kernel-launch / python bound)
    cnn_flops: float  # sustained FLOP/s of a CNN training step at 224 px


# T4: 65 TFLOP/s fp16 tensor peak, ~300 GB/s; assumed 12 TFLOP/s sustained on these small matmuls and
# 25 ms per decode step (30 layers x ~15 kernels, launch-bound well above the 1 ms the weights'
# bandwidth would allow). A100: 312 TFLOP/s bf16 peak, 2 TB/s; assumed 60 TFLOP/s and 15 ms.
GPUS = (GPU("T4 (fp16)", 12e12, 0.025, 10e12), GPU("A100 (bf16)", 60e12, 0.015, 50e12))
BUDGET_MINUTES = {"task1": 10, "task2": 30, "task3": 40}


@dataclass(frozen=True)
class Stage:
    name: str
    flops: float = 0.0  # dense work
    decode_steps: int = 0  # sequential token steps of generation
    cnn_flops: float = 0.0  # convolutional work
    images: int = 0  # images the CPU prepares (not overlapped with the GPU: num_workers=0)

    def seconds(self, gpu: GPU) -> float:
        return (self.flops / gpu.dense_flops + self.decode_steps * gpu.decode_step + self.cnn_flops / gpu.cnn_flops
                + self.images * HOST_IMAGE)


def _pair_tokens() -> float:
    return (2 * PROMPT_TOKENS + CHOSEN_TOKENS + REJECTED_TOKENS) * PADDING


def _decode(sequences: int, max_new_tokens: int, batch: int = 64) -> int:
    return math.ceil(sequences / batch) * max_new_tokens


def task1_stages(c) -> list[Stage]:
    from task1.study import study_settings

    settings = study_settings(c.study)
    sampled = sum(not s.deterministic for s in settings)
    sequences = (c.n_prompts + c.n_story_prompts) * c.samples_per_prompt
    prompts = c.n_prompts + c.n_story_prompts
    texts = sampled * sequences + (len(settings) - sampled) * prompts
    parity = 22  # task1.study.parity_with_generate's settings, each ours + generate, 24 tokens
    beam_demos = 1 + len(c.study.length_penalties)  # one prompt's hypotheses, then every prompt per alpha
    return [Stage(f"demos (14 generations), beam per length penalty, generate parity ({parity} settings x 2, 24 tokens)",
                  decode_steps=parity * 2 * 24 + (14 + beam_demos) * c.max_new_tokens),
            Stage(f"study: {sampled} sampled settings x {sequences} samples, {len(settings) - sampled} deterministic",
                  decode_steps=sampled * _decode(sequences, c.max_new_tokens, c.batch_size)
                  + (len(settings) - sampled) * _decode(prompts, c.max_new_tokens, c.batch_size)),
            Stage("quality scores (OpenAssistant RM)", flops=texts * 120 * DEBERTA_FORWARD)]


def task2_stages(c) -> list[Stage]:
    pairs_seen = lambda optim: optim.steps * optim.batch_size  # noqa: E731
    train_factor = lambda optim: TRAIN_FACTOR + CHECKPOINT_FACTOR * optim.gradient_checkpointing  # noqa: E731
    completion = (CHOSEN_TOKENS + REJECTED_TOKENS) * PADDING
    n_train = min(c.n_train_pairs, 12_859 - c.n_test_pairs) * 0.9
    rollout_tokens = PROMPT_TOKENS + c.ppo.max_new_tokens
    eval_prompts = c.evaluation.n_prompts + 3
    stages = [
        Stage(f"reward model: {c.reward_model.steps} steps x {c.reward_model.batch_size} pairs",
              flops=pairs_seen(c.reward_model) * _pair_tokens() * LM_FORWARD * train_factor(c.reward_model)),
        Stage(f"DPO reference log-probs: {n_train:.0f} pairs", flops=n_train * (_pair_tokens() * LM_FORWARD + completion * LM_HEAD)),
        Stage(f"DPO: {c.dpo.steps} steps x {c.dpo.batch_size} pairs",
              flops=pairs_seen(c.dpo) * (_pair_tokens() * LM_FORWARD + completion * LM_HEAD * 2) * train_factor(c.dpo)),
        Stage(f"test pairs: RM + DPO ({c.n_test_pairs} pairs)", flops=3 * c.n_test_pairs * _pair_tokens() * LM_FORWARD),
    ]
    for name, rl, samples, updates in (("PPO", c.ppo, c.ppo.prompts_per_step, c.ppo.epochs * 2),  # policy + critic
                                       ("GRPO", c.grpo, c.grpo.prompts_per_step * c.grpo.group_size, c.grpo.iterations)):
        tokens = samples * (PROMPT_TOKENS + rl.max_new_tokens)
        no_grad = 4 if name == "PPO" else 2  # old / ref log-probs (+ values, rollout reward) ; ref + reward
        per_step = tokens * LM_FORWARD * (no_grad + updates * (TRAIN_FACTOR + CHECKPOINT_FACTOR * rl.gradient_checkpointing))
        per_step += samples * rl.max_new_tokens * LM_HEAD * (no_grad + updates * TRAIN_FACTOR)
        per_step += tokens * DEBERTA_FORWARD  # the gold scorer on every rollout
        stages.append(Stage(f"{name}: {rl.steps} steps x {samples} rollouts of <= {rl.max_new_tokens} tokens",
                            flops=rl.steps * per_step, decode_steps=rl.steps * _decode(samples, rl.max_new_tokens)))
    e = c.evaluation
    stages.append(Stage(f"evaluation: 4 models x {eval_prompts} prompts (greedy + {e.kl_samples} samples)",
                        flops=4 * eval_prompts * (1 + e.kl_samples) * rollout_tokens * LM_FORWARD * 3
                        + 4 * eval_prompts * rollout_tokens * DEBERTA_FORWARD,
                        decode_steps=4 * (_decode(eval_prompts, e.max_new_tokens)
                                          + _decode(eval_prompts * e.kl_samples, e.max_new_tokens))))
    f = c.frontier
    pool = min(f.best_of_n_prompts or eval_prompts, eval_prompts) * f.best_of_n
    checkpoints = sum(-(-rl.steps // f.every) for rl in (c.ppo, c.grpo)) + 1  # + DPO's point
    stages.append(Stage(f"best-of-{f.best_of_n}: {pool} base samples, scored by the reward model and the gold model",
                        flops=pool * rollout_tokens * (2 * LM_FORWARD + DEBERTA_FORWARD),
                        decode_steps=_decode(pool, e.max_new_tokens, f.batch_size)))
    stages.append(Stage(f"frontier: {checkpoints} checkpoints x {eval_prompts} prompts x {f.samples} samples",
                        flops=checkpoints * eval_prompts * f.samples * rollout_tokens * (3 * LM_FORWARD + DEBERTA_FORWARD),
                        decode_steps=checkpoints * _decode(eval_prompts * f.samples, e.max_new_tokens, f.batch_size)))
    stages.append(Stage(f"verbosity probe: {2 * c.n_test_pairs} answers x 3", flops=6 * c.n_test_pairs * rollout_tokens * LM_FORWARD))
    return stages


def task3_stages(c) -> list[Stage]:
    n_train = c.finetune.images or 50_000
    n_features = (c.n_train_images or 50_000) + (c.n_test_images or 10_000)
    stages = []
    for name in c.models:
        evaluated = 2000 + (c.n_test_images or 10_000)  # BatchNorm recalibration + test accuracy, every epoch
        stages.append(Stage(f"{name}: fine-tune {c.finetune.epochs} epoch(s) x {n_train} images",
                            cnn_flops=(CNN_FORWARD[name] * TRAIN_FACTOR * n_train + CNN_FORWARD[name] * evaluated)
                            * c.finetune.epochs, images=(n_train + evaluated) * c.finetune.epochs))
        stages.append(Stage(f"{name}: features of {n_features} images", cnn_flops=CNN_FORWARD[name] * n_features,
                            images=n_features))
        # the untrained control: BatchNorm statistics on 2,000 images, features, test accuracy
        control = 2000 + n_features + (c.n_test_images or 10_000)
        stages.append(Stage(f"{name}, untrained control: BatchNorm statistics + features", images=control,
                            cnn_flops=CNN_FORWARD[name] * control))
    dims = {"resnet50": 2048, "mobilenet_v3_large": 1280}
    rows = c.n_train_images or 50_000
    sae = sum(2 * d * c.sae.nb_concepts * 2 for d in dims.values())  # encode + decode, every model
    # USAE under the paper's schedule (~2 SAEs' work per row), under the course's (every model encodes:
    # ~2x the paper's), the independent SAEs (2 SAEs) and the control's USAE (paper's): ~5x the line below
    stages.append(Stage(f"USAE x 2 schedules + independent SAEs + control USAE: {c.sae.epochs} epochs x {rows} rows, "
                        f"{c.sae.nb_concepts} concepts", flops=2.5 * 2 * c.sae.epochs * rows * sae * TRAIN_FACTOR / 4))
    concepts = 4
    stages.append(Stage(f"activation maximisation: {concepts} concepts x 2 models x {c.maximisation.steps} steps",
                        cnn_flops=concepts * c.maximisation.steps * sum(CNN_FORWARD.values()) * (c.maximisation.copies + 1) * TRAIN_FACTOR,
                        decode_steps=concepts * 2 * c.maximisation.steps))  # ~ one launch-bound step each
    return stages


STAGES = {"task1": task1_stages, "task2": task2_stages, "task3": task3_stages}


def estimate(task: str) -> tuple[list[Stage], dict[str, float]]:
    """(stages, {gpu name: total seconds}) of ``task``'s full profile."""
    stages = STAGES[task](task_profile(task, "full"))
    return stages, {gpu.name: sum(s.seconds(gpu) for s in stages) for gpu in GPUS}


def main() -> None:
    for task in STAGES:
        stages, totals = estimate(task)
        print(f"\n{task} (full profile) - budget {BUDGET_MINUTES[task]} min on a T4")
        print(f"  {'stage':<78} {'TFLOP':>8} {'decode':>7} " + " ".join(f"{g.name:>12}" for g in GPUS))
        for s in stages:
            print(f"  {s.name:<78} {(s.flops + s.cnn_flops) / 1e12:8.1f} {s.decode_steps:7d} "
                  + " ".join(f"{s.seconds(g) / 60:10.1f} m" for g in GPUS))
        verdict = "fits" if totals[GPUS[0].name] <= 60 * BUDGET_MINUTES[task] else "OVER BUDGET"
        print(f"  {'total':<78} {'':8} {'':7} " + " ".join(f"{t / 60:10.1f} m" for t in totals.values()) + f"   {verdict}")


if __name__ == "__main__":
    main()
