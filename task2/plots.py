"""Figures of the alignment notebook (saved under runs/task2/ and shown)."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _smooth(values: list[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")


def training_curves(history: list[dict], keys: tuple[str, ...], title: str, path: Path, window: int = 10):
    """One panel per logged quantity: raw per-step values (light) and their moving average."""
    columns = min(4, len(keys))
    rows = -(-len(keys) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    for ax, key in zip(axes.flat, keys):
        points = [(h["step"], h[key]) for h in history if key in h]
        steps, values = zip(*points)
        ax.plot(steps, values, color="tab:blue", alpha=0.3, lw=1)
        if len(values) >= window:
            ax.plot(steps[window - 1:], _smooth(values, window), color="tab:blue", lw=2)
        ax.set_xlabel("step")
        ax.set_title(key)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fig


def reward_vs_length(words: list[int], rewards: list[float], labels: list[str], path: Path):
    """Reward-model score against response length, chosen and rejected responses coloured apart."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    frame = pd.DataFrame({"words": words, "reward": rewards, "label": labels})
    for label, colour in (("chosen", "tab:green"), ("rejected", "tab:red")):
        part = frame[frame["label"] == label]
        jitter = np.random.default_rng(0).uniform(-0.25, 0.25, len(part))
        ax.scatter(part["words"] + jitter, part["reward"], s=10, alpha=0.5, color=colour, label=label)
    ax.set_xlabel("response length (words)")
    ax.set_ylabel("reward-model score")
    ax.legend()
    ax.set_title("test pairs: does the reward model like length?")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fig


def model_comparison(summary: pd.DataFrame, path: Path):
    """Gold success per family and mean reward-model score, one bar per model."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    by_family = pd.DataFrame({m: s for m, s in summary["gold_by_family"].items()})
    by_family.plot.bar(ax=left, rot=0)
    left.set_ylabel("gold success")
    left.set_ylim(0, 1)
    left.set_title("gold judge, per family")
    summary["rm_reward"].plot.bar(ax=right, rot=0, color="tab:gray")
    right.set_ylabel("mean reward-model score")
    right.set_title("what the reward model thinks")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fig
