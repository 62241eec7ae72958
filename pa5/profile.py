"""Profiles: what "tiny" and "full" mean, in one place.

A profile changes only sizes and sources, never the code path:

* ``full``  - a CUDA GPU and the Hugging Face hub: SmolLM2-135M-Instruct, Intel/orca_dpo_pairs,
  CIFAR-100 and ImageNet-pretrained ResNet50 / MobileNetV3-Large.
* ``tiny``  - a laptop CPU, offline: stand-ins that the repository builds itself
  (identifiers starting with ``standin:``), sized so each notebook runs in minutes.

``PA5_PROFILE`` chooses (``auto`` = full when CUDA is available, else tiny); a notebook's
``PROFILE`` parameter overrides it.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

PROFILE_ENV = "PA5_PROFILE"
PROFILES = ("tiny", "full")
CHOICES = ("auto",) + PROFILES
STANDIN_PREFIX = "standin:"


def resolve_profile(value: str | None = None) -> str:
    """Return "tiny" or "full" from ``value``, else from ``$PA5_PROFILE``, else "auto".

    Raises:
        ValueError: for anything but auto / tiny / full (case-insensitive); the message lists them.
    """
    source = "PROFILE" if value is not None else PROFILE_ENV
    raw = value if value is not None else os.environ.get(PROFILE_ENV, "")
    name = raw.strip().lower() or "auto"
    if name not in CHOICES:
        raise ValueError(
            f"{source}={raw!r} is not a profile. Allowed: 'auto' (full when CUDA is available, "
            f"else tiny), 'tiny' (CPU, offline stand-ins) or 'full' (CUDA GPU + Hugging Face hub)."
        )
    if name == "auto":
        import torch

        return "full" if torch.cuda.is_available() else "tiny"
    return name


@dataclass(frozen=True)
class TaskProfile:
    """Fields shared by every task; subclasses add the task's sizes."""

    name: str  # "tiny" or "full"

    def hub_assets(self) -> tuple[str, ...]:
        """The hub / torchvision identifiers this profile downloads (stand-ins excluded)."""
        refs = []
        for field in dataclasses.fields(self):
            if field.metadata.get("asset"):
                value = getattr(self, field.name)
                values = value if isinstance(value, tuple) else (value,)
                refs += [v for v in values if v and not v.startswith(STANDIN_PREFIX)]
        return tuple(refs)


def _asset(default=dataclasses.MISSING):
    """A field that names a model, dataset or weights (hub id, torchvision name or stand-in)."""
    return dataclasses.field(default=default, metadata={"asset": True})


@dataclass(frozen=True)
class Task1Profile(TaskProfile):
    """Decoding strategies and the quality-diversity study."""

    model: str = _asset()
    quality_model: str = _asset()  # scores generations for "quality"
    n_prompts: int = 0  # prompts in the quality-diversity study (full: the course's five)
    samples_per_prompt: int = 0  # sampled continuations per prompt and setting
    max_new_tokens: int = 0
    batch_size: int = 0  # sequences decoded together


@dataclass(frozen=True)
class Task2Profile(TaskProfile):
    """Reward model, DPO, PPO and GRPO with LoRA."""

    model: str = _asset()
    dataset: str = _asset()
    n_train_pairs: int = 0
    n_test_pairs: int = 0
    max_length: int = 0  # prompt + completion tokens
    lora_r: int = 8
    lora_alpha: int = 32
    batch_size: int = 0  # preference pairs per optimizer step (reward model and DPO)
    reward_model_steps: int = 0
    reward_model_lr: float = 0.0
    dpo_steps: int = 0
    dpo_lr: float = 0.0
    dpo_beta: float = 0.0
    dpo_nll_weight: float = 0.0  # > 0: RPO, DPO + NLL on the chosen responses
    max_new_tokens: int = 0  # evaluation answers
    kl_samples: int = 4  # sampled answers per prompt for the KL(policy || reference) estimate
    ppo_steps: int = 0
    ppo_prompts_per_step: int = 0  # rollouts per PPO step (one sample per prompt)
    ppo_minibatch_size: int = 0
    ppo_lr: float = 0.0
    ppo_kl_coef: float = 0.05
    grpo_steps: int = 0
    grpo_prompts_per_step: int = 0  # each sampled group_size times
    grpo_lr: float = 0.0
    grpo_beta: float = 0.0  # KL coefficient; TRL's default 0
    group_size: int = 4
    n_eval_prompts: int = 0


@dataclass(frozen=True)
class Task3Profile(TaskProfile):
    """Universal sparse autoencoder over two vision models."""

    dataset: str = _asset()
    weights: tuple[str, ...] = _asset()  # ImageNet weights per model; stand-ins = random init
    models: tuple[str, ...] = ("resnet50", "mobilenet_v3_large")
    image_size: int = 0  # images are resized to this before the models
    finetune_epochs: int = 0
    finetune_images: int = 0  # training images used to fine-tune (0: all)
    finetune_lr: float = 0.0
    batch_size: int = 0
    n_train_images: int = 0  # images whose features train the SAEs (0: all)
    n_test_images: int = 0  # images whose features evaluate them (0: all)
    # "paper": one scalar mean/std per model; "l2_center": unit-norm images, centred features, scalar std
    feature_normalisation: str = "l2_center"
    nb_concepts: int = 0  # USAE dictionary size
    top_k: int = 0  # active concepts per input
    sae_epochs: int = 0
    sae_batch_size: int = 0
    sae_lr: float = 0.0
    maximisation_steps: int = 0  # activation maximisation, per model and concept


SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
OASST_RM = "OpenAssistant/reward-model-deberta-v3-large-v2"
ORCA = "Intel/orca_dpo_pairs"
CIFAR100 = "cifar100"
IMAGENET_WEIGHTS = ("ResNet50_Weights.IMAGENET1K_V2", "MobileNet_V3_Large_Weights.IMAGENET1K_V2")

_TABLE: dict[str, dict[str, TaskProfile]] = {
    "task1": {
        "full": Task1Profile(
            name="full", model=SMOLLM2, quality_model=OASST_RM,
            n_prompts=5, samples_per_prompt=8, max_new_tokens=50, batch_size=40,
        ),
        "tiny": Task1Profile(
            name="tiny", model="standin:smollm2", quality_model="standin:judge",
            n_prompts=32, samples_per_prompt=8, max_new_tokens=48, batch_size=256,
        ),
    },
    "task2": {
        "full": Task2Profile(
            name="full", model=SMOLLM2, dataset=ORCA,
            n_train_pairs=12_000, n_test_pairs=500, max_length=1024, batch_size=8,
            reward_model_steps=1500, reward_model_lr=1e-4, dpo_steps=1500, dpo_lr=5e-5, dpo_beta=0.3,
            max_new_tokens=256, n_eval_prompts=200,
            ppo_steps=200, ppo_prompts_per_step=32, ppo_minibatch_size=8, ppo_lr=1e-5,
            grpo_steps=200, grpo_prompts_per_step=8, grpo_lr=1e-5,
        ),
        "tiny": Task2Profile(
            name="tiny", model="standin:smollm2", dataset="standin:mini_orca",
            n_train_pairs=2000, n_test_pairs=300, max_length=128, batch_size=32,
            reward_model_steps=100, reward_model_lr=1e-3, dpo_steps=125, dpo_lr=1e-3, dpo_beta=0.1,
            dpo_nll_weight=1.0, max_new_tokens=48, n_eval_prompts=100,
            ppo_steps=30, ppo_prompts_per_step=32, ppo_minibatch_size=16, ppo_lr=1e-3,
            grpo_steps=40, grpo_prompts_per_step=16, grpo_lr=2e-3,
        ),
    },
    "task3": {
        "full": Task3Profile(
            name="full", dataset=CIFAR100, weights=IMAGENET_WEIGHTS,
            image_size=224, finetune_epochs=3, finetune_lr=1e-4, batch_size=128,
            nb_concepts=8192, top_k=32, sae_epochs=30, sae_batch_size=1024, sae_lr=3e-4, maximisation_steps=256,
        ),
        "tiny": Task3Profile(
            name="tiny", dataset="standin:cifar100", weights=(),
            image_size=32, finetune_epochs=1, finetune_images=2500, finetune_lr=1e-3, batch_size=64,
            n_train_images=5000, n_test_images=1000,
            nb_concepts=1024, top_k=16, sae_epochs=10, sae_batch_size=256, sae_lr=1e-3, maximisation_steps=48,
        ),
    },
}
TASKS = tuple(_TABLE)


def task_profile(task: str, profile: str | None = None) -> TaskProfile:
    """The frozen profile of ``task`` ("task1" | "task2" | "task3") for ``profile`` (resolved)."""
    if task not in _TABLE:
        raise ValueError(f"task={task!r} is unknown; allowed: {', '.join(TASKS)}")
    return _TABLE[task][resolve_profile(profile)]
