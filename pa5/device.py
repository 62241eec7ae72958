"""Where every model lives and in which precision it computes - decided here, once, for every task.

* **Device.** ``PA5_DEVICE`` (``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``); ``auto`` = CUDA in the full
  profile when it is available, else the CPU. The code that builds a model places it
  (:func:`place`), never a notebook remembering ``.to``; :func:`audit` finds every model alive and
  reports any that was never placed, sits on another device, or trains a parameter that is not float32.
* **Precision** (``PA5_PRECISION`` = ``auto`` | ``bf16`` | ``fp16`` | ``fp32``). ``auto``: CUDA with
  compute capability >= 8.0 (A100, L4, H100) -> bf16 autocast; CUDA below 8.0 (T4, V100: no bf16
  hardware, torch emulates it slowly) -> fp16 autocast with a GradScaler (fp16 gradients underflow
  without loss scaling); CPU -> float32. Weights are always loaded in float32 (never the hub's "auto"
  bf16): every trainable parameter and the optimizer state are float32, and autocast covers forward
  passes only. (Under a bf16 base, a reward or critic head trained in bf16 moves ~49 % as far per
  AdamW step at lr 1e-4 and rewards quantise into ties - see ``../shared``'s full-profile facts.)
"""
from __future__ import annotations

import contextlib
import gc
import os
import warnings

import torch

DEVICE_ENV = "PA5_DEVICE"
PRECISION_ENV = "PA5_PRECISION"
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
_AUTOCAST_DTYPE = {"bf16": torch.bfloat16, "fp16": torch.float16}
_PLACED = "_pa5_device"  # attribute :func:`place` leaves on a model (deepcopy keeps it)


def resolve_device(profile: str, value: str | None = None) -> torch.device:
    """The session's device: ``value``, else ``$PA5_DEVICE``, else ``auto``.

    Raises:
        ValueError: a string torch does not parse, ``cuda`` on a machine without CUDA, or a CUDA
            index that does not exist - naming ``PA5_DEVICE`` and what this machine has.
    """
    raw = value if value is not None else os.environ.get(DEVICE_ENV, "")
    name = raw.strip().lower() or "auto"
    if name == "auto":
        return torch.device("cuda" if profile == "full" and torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"{DEVICE_ENV}={raw!r} is not a device; allowed: auto, cpu, cuda, cuda:N") from e
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"{DEVICE_ENV}={raw!r}: allowed device types are cpu and cuda")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"{DEVICE_ENV}={raw!r} asks for CUDA, but this machine has no CUDA device; "
                             f"use {DEVICE_ENV}=cpu (or auto)")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{DEVICE_ENV}={raw!r}: this machine has CUDA devices 0..{count - 1}")
    return device


def precision(device: torch.device | str, value: str | None = None) -> str:
    """"bf16", "fp16" or "fp32": ``value``, else ``$PA5_PRECISION``, else the policy for ``device``.

    Raises:
        ValueError: an unknown name (allowed: auto, bf16, fp16, fp32).
    """
    source = "precision" if value is not None else PRECISION_ENV
    raw = value if value is not None else os.environ.get(PRECISION_ENV, "")
    name = raw.strip().lower() or "auto"
    if name not in PRECISIONS:
        raise ValueError(f"{source}={raw!r} is not a precision; allowed: {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    device = torch.device(device)
    if device.type != "cuda":
        return "fp32"
    major, _ = torch.cuda.get_device_capability(device)
    return "bf16" if major >= 8 else "fp16"


def autocast(device: torch.device | str):
    """Autocast of forward passes on ``device`` at the policy's precision (a no-op in fp32)."""
    device = torch.device(device)
    name = precision(device)
    if name == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_AUTOCAST_DTYPE[name])


def grad_scaler(device: torch.device | str) -> torch.amp.GradScaler | None:
    """A GradScaler when the policy is fp16 (its small range underflows gradients), else None."""
    device = torch.device(device)
    return torch.amp.GradScaler(device.type) if precision(device) == "fp16" else None


def module_device(module: torch.nn.Module) -> torch.device:
    """Where ``module``'s parameters are (a placed model has them all on one device)."""
    return next(module.parameters()).device


def place(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """``model`` moved to ``device`` and marked as placed there (what :func:`audit` checks)."""
    model = model.to(device)
    setattr(model, _PLACED, str(torch.device(device)))
    return model


def _live_models() -> list[torch.nn.Module]:
    """Every live module with parameters that is no other live module's submodule."""
    gc.collect()
    modules = []
    with warnings.catch_warnings():  # isinstance touches deprecated module attributes (torch.distributed's)
        warnings.simplefilter("ignore")
        for candidate in gc.get_objects():
            try:
                if isinstance(candidate, torch.nn.Module):
                    modules.append(candidate)
            except ReferenceError:  # a weakref proxy whose object is gone
                continue
    children = {id(c) for m in modules for c in m.modules() if c is not m}
    return [m for m in modules if id(m) not in children and next(m.parameters(), None) is not None]


def _describe(model: torch.nn.Module) -> str:
    return f"{type(model).__name__} ({sum(p.numel() for p in model.parameters()):,} parameters)"


def audit(device: torch.device | str, models: list[torch.nn.Module] | None = None) -> dict:
    """Every live model (a module with parameters that is no other's submodule; or ``models``), checked:

    ``unplaced`` - never put on a device by :func:`place` (a loader forgot it); ``wrong_device`` -
    some parameter or buffer not on ``device``; ``not_float32`` - a trainable parameter that is not
    float32. Returns those lists and ``models`` (how many were checked); ``ok`` when all are empty.
    """
    device = torch.device(device)
    unplaced, wrong, not_float32 = [], [], []
    models = _live_models() if models is None else list(models)
    for model in models:
        if not hasattr(model, _PLACED):
            unplaced.append(_describe(model))
        tensors = list(model.parameters()) + list(model.buffers())
        if any(t.device.type != device.type or (device.index is not None and t.device != device) for t in tensors):
            wrong.append(f"{_describe(model)}: on {sorted({str(t.device) for t in tensors})}")
        if any(p.requires_grad and p.dtype != torch.float32 for p in model.parameters()):
            not_float32.append(f"{_describe(model)}: {sorted({str(p.dtype) for p in model.parameters() if p.requires_grad})}")
    return {"device": str(device), "models": len(models), "unplaced": unplaced, "wrong_device": wrong,
            "not_float32": not_float32, "ok": not (unplaced or wrong or not_float32)}


def check_audit(device: torch.device | str) -> dict:
    """:func:`audit`, raising RuntimeError that lists the offending models if it is not ok."""
    result = audit(device)
    if not result["ok"]:
        problems = "; ".join(f"{k}: {result[k]}" for k in ("unplaced", "wrong_device", "not_float32") if result[k])
        raise RuntimeError(f"device audit failed on {result['device']}: {problems}. Build models through the task "
                           f"loaders (they call pa5.device.place) and keep trainable parameters float32.")
    return result


@contextlib.contextmanager
def memory_stage(stage: str, setting: str, need_gib: float | None = None):
    """Within: CUDA running out of memory becomes a MemoryError that names ``stage``, its estimated need
    at the full profile's sizes (``need_gib``, from the task README's memory table) and the ``setting``
    to lower. Nothing is written to ``runs/`` before a notebook's last cell, so nothing half-written
    stays behind."""
    try:
        yield
    except torch.OutOfMemoryError as e:
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / 2**30
        need = f"about {need_gib:.1f} GiB at the full profile's sizes" if need_gib else "more than is free"
        raise MemoryError(f"{stage} ran out of GPU memory (this GPU: {total:.1f} GiB; the stage needs {need}). "
                          f"Lower {setting} and rerun the cell.") from e
