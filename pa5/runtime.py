"""Seeding, device choice and CPU settings - the same for every task."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from pa5.checks import check_int
from pa5.device import resolve_device


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy and torch (CPU and every CUDA device).

    Raises:
        ValueError: unless ``0 <= seed < 2**32`` (numpy's range).
    """
    check_int("seed", seed, 0, 2**32 - 1)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds all CUDA devices


def cpu_count() -> int:
    """Cores this process may use (respects affinity masks and container limits)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS / Windows
        return os.cpu_count() or 1


def configure_torch(profile: str) -> torch.device:
    """Pick the device (:func:`pa5.device.resolve_device`) and set torch up for it.

    CPU: one intra-op thread per core, deterministic algorithms - a rerun gives the same numbers.
    CUDA (full profile by default): TF32 matmuls allowed for speed.
    """
    torch.set_num_threads(cpu_count())
    device = resolve_device(profile)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return device
    # Deterministic kernels only (CPU ops almost all are already); warn rather than fail if some
    # op has no deterministic implementation, so a notebook never dies on it.
    torch.use_deterministic_algorithms(True, warn_only=True)
    return torch.device("cpu")
