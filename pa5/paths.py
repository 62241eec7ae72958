"""Where things live: the repository, run outputs and the pa5 cache."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def runs_dir(task: str) -> Path:
    """``runs/<task>/`` (``$PA5_RUNS_DIR/<task>`` when set), created on demand."""
    root = Path(os.environ.get("PA5_RUNS_DIR", REPO_ROOT / "runs"))
    path = root / task
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """``$PA5_CACHE`` or ``~/.cache/pa5``: stand-ins and downloaded datasets."""
    return Path(os.environ.get("PA5_CACHE", Path.home() / ".cache" / "pa5")).expanduser()
