"""What every notebook calls first and last: :func:`setup` and :func:`save_metrics`."""
from __future__ import annotations

import json
import math
import platform
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from pa5 import hub
from pa5.paths import runs_dir
from pa5.device import check_audit, precision
from pa5.profile import TaskConfig, rehearsal, resolve_profile, task_profile
from pa5.runtime import configure_torch, cpu_count, seed_everything

_LIBRARIES = ("torch", "transformers", "trl", "peft", "overcomplete", "torchvision")


@dataclass(frozen=True)
class Session:
    """One notebook run: its task, resolved profile and sizes, device, seed and output folder."""

    task: str
    profile: str
    config: TaskConfig
    device: torch.device
    precision: str  # "bf16" | "fp16" | "fp32": autocast of forward passes (pa5.device)
    seed: int
    run_dir: Path


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def setup(task: str, profile: str | None = None, seed: int = 0) -> Session:
    """Resolve the profile, seed everything, pick the device and print the run's banner.

    In the full profile it also checks, within seconds, that every hub asset the task needs can be
    fetched, so an offline machine fails here with instructions rather than minutes later.
    """
    name = resolve_profile(profile)
    config = task_profile(task, name)
    seed_everything(seed)
    device = configure_torch(name)
    session = Session(task, name, config, device, precision(device), seed, runs_dir(task))
    threads = f", {torch.get_num_threads()} of {cpu_count()} CPU threads" if device.type == "cpu" else ""
    print(f"PA5 {task} | profile: {name}{' (rehearsal)' if rehearsal() else ''} | device: {device}{threads} | "
          f"precision: {session.precision} | seed: {seed}")
    print(" | ".join(f"{k} {v}" for k, v in library_versions().items()))
    print(f"outputs: {session.run_dir}")
    if name == "full":
        if device.type != "cuda":
            warnings.warn("The full profile is meant for a CUDA GPU; on this CPU it will be very slow.")
        hub.ensure_available(config.assets())
    return session


def _json_ready(value):
    """NaN (e.g. a missing temperature in a pandas table) and infinities become null: not valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    return value


def save_metrics(session: Session, metrics: dict) -> Path:
    """Write ``runs/<task>/metrics.json``: the run's identity, the device audit and ``metrics``.

    The audit (:func:`pa5.device.check_audit`) runs first: a model left off the session's device, or a
    trainable parameter that is not float32, fails the notebook here, before anything is written.
    """
    from pa5.standins import standin_seed

    audit = check_audit(session.device)
    record = {"task": session.task, "profile": session.profile, "rehearsal": rehearsal(), "seed": session.seed,
              "standin_seed": standin_seed(),
              "device": str(session.device), "precision": session.precision, "audit": audit,
              "metrics": _json_ready(metrics)}
    path = session.run_dir / "metrics.json"
    path.write_text(json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path
