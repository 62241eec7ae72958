"""Profiles: which one runs, and the frozen configuration of each task in it.

A profile changes only sizes and sources, never the code path:

* ``full``  - a CUDA GPU and the Hugging Face hub: SmolLM2-135M-Instruct, Intel/orca_dpo_pairs,
  CIFAR-100 and ImageNet-pretrained ResNet50 / MobileNetV3-Large.
* ``tiny``  - a laptop CPU, offline: stand-ins that the repository builds itself
  (identifiers starting with ``standin:``), sized so each notebook runs in minutes.

Each task's configuration is one nested frozen dataclass, with both profiles side by side, in
``<task>/config.py`` (``task2/config.py`` holds the reward model's, DPO's, PPO's and GRPO's).
``PA5_PROFILE`` chooses (``auto`` = full when CUDA is available, else tiny); a notebook's
``PROFILE`` parameter overrides it.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass

from pa5.assets import ASSETS

PROFILE_ENV = "PA5_PROFILE"
REHEARSAL_ENV = "PA5_REHEARSAL"
PROFILES = ("tiny", "full")
CHOICES = ("auto",) + PROFILES
TASKS = ("task1", "task2", "task3")


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


@dataclass(frozen=True, kw_only=True)
class TaskConfig:
    """What every task's configuration has; ``<task>/config.py`` subclasses it, once per task, and
    holds one instance per profile in its ``PROFILES``."""

    name: str  # "tiny" or "full"

    def assets(self) -> tuple[str, ...]:
        """The real assets (``pa5.assets.ASSETS``) this configuration names in its own fields (a
        subclass adds those it derives, e.g. task 3's ImageNet weights): what the full profile downloads
        and checks before a run. Stand-ins are not in the table, so tiny names none."""
        refs = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            refs += [v for v in (value if isinstance(value, tuple) else (value,)) if isinstance(v, str) and v in ASSETS]
        return tuple(refs)


def rehearsal() -> bool:
    """True when ``$PA5_REHEARSAL`` is 1: the full profile rehearsed offline on fake assets (``make rehearse``).

    Raises:
        ValueError: for anything but 0 / 1 (or unset).
    """
    raw = os.environ.get(REHEARSAL_ENV, "").strip()
    if raw not in ("", "0", "1"):
        raise ValueError(f"{REHEARSAL_ENV}={raw!r}: allowed 0 (off, the default) or 1 (rehearse the full profile)")
    return raw == "1"


def task_profile(task: str, profile: str | None = None) -> TaskConfig:
    """The frozen configuration of ``task`` ("task1" | "task2" | "task3") in ``profile`` (resolved).

    Under ``PA5_REHEARSAL=1`` the full profile comes through ``<task>.config.rehearse``: the same
    configuration with only step, epoch and sample counts scaled down (precision, batch sizes,
    max_length and image size stay); the tiny profile ignores the switch.
    """
    if task not in TASKS:
        raise ValueError(f"task={task!r} is unknown; allowed: {', '.join(TASKS)}")
    module = importlib.import_module(f"{task}.config")
    name = resolve_profile(profile)
    config = module.PROFILES[name]
    return module.rehearse(config) if name == "full" and rehearsal() else config
