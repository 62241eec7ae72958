"""Argument checks: bad input gets one ValueError that names the argument and what is allowed.

Every module checks its arguments through these few helpers, so a function's body shows its maths
first and every message reads the same way, e.g. ``beta must be a number > 0, got -1.0``. Nothing is
silently clipped. A ``bool`` is never a number here (``True`` is an ``int`` to Python).
"""
from __future__ import annotations

import math
from collections.abc import Collection

import torch


def _text(bound) -> str:
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _bounds(low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{_text(low)}, {_text(high)}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {_text(low)}"
    if high is not None:
        return f" {'<' if high_open else '<='} {_text(high)}"
    return ""


def _outside(value, low, high, low_open: bool, high_open: bool) -> bool:
    return ((low is not None and (value <= low if low_open else value < low))
            or (high is not None and (value >= high if high_open else value > high)))


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` if it is an int within [low, high] (either bound may be None); else ValueError."""
    if not is_int(value) or _outside(value, low, high, False, False):
        raise ValueError(f"{name} must be an int{_bounds(low, high, False, False)}, got {value!r}")
    return value


def check_number(name: str, value, low: float | None = None, high: float | None = None, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` if it is a finite int or float within the bounds (open with ``low_open`` /
    ``high_open``); else ValueError."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or _outside(value, low, high, low_open, high_open)):
        raise ValueError(f"{name} must be a finite number{_bounds(low, high, low_open, high_open)}, got {value!r}")
    return value


def check_choice(name: str, value, choices: Collection) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_same_shape(dims: int | None = None, **tensors: torch.Tensor) -> None:
    """All ``tensors`` have one shape (with ``dims`` dimensions when given); the message lists them."""
    shapes = {name: tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for name, t in tensors.items()}
    first = next(iter(shapes.values()))
    if len(set(shapes.values())) != 1 or not isinstance(first, tuple) or (dims is not None and len(first) != dims):
        what = f"{dims}-d tensors" if dims is not None else "tensors"
        raise ValueError(f"{', '.join(tensors)} must be {what} of one shape, got {shapes}")


def check_floating(**tensors: torch.Tensor) -> None:
    """Each of ``tensors`` is a floating-point tensor: integer rewards, values or log-probs would
    make the arithmetic truncate or fail deep inside torch."""
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            got = tensor.dtype if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f"{name} must be a floating-point tensor (float32, bfloat16, ...), got {got}")


def check_logits(name: str, logits: torch.Tensor) -> None:
    """Floating-point logits without NaN or +inf (-inf is a token already filtered out)."""
    check_floating(**{name: logits})
    if torch.isnan(logits).any() or torch.isposinf(logits).any():
        raise ValueError(f"{name} must not contain NaN or +inf (-inf marks a filtered token)")


def check_strings(name: str, texts) -> None:
    """A list (or tuple) of strings: a bare string would be read as a list of characters."""
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"{name} must be a list of strings, got {type(texts).__name__}"
                         + (" (a single string: wrap it in a list)" if isinstance(texts, str) else ""))
