"""Figures of the alignment notebook, each saved under runs/task2/ and shown."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pa5.plotting import save_and_show


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
    save_and_show(fig, path)


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
    save_and_show(fig, path)


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
    save_and_show(fig, path)


def course_plots(results: pd.DataFrame, path: Path):
    """The course's three plots: mean reward-model score per model; gold success per prompt type
    (constraint / safety / factual); response length vs reward-model score (verbosity bias)."""
    models = list(dict.fromkeys(results["model"]))
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 3.8))
    means = results.groupby("model", sort=False)["rm_reward"].mean()
    left.bar(means.index, means.values, color=[f"C{i}" for i in range(len(means))])
    left.axhline(0, color="black", lw=0.5)
    left.set_ylabel("mean reward-model score")
    left.set_title("what the reward model thinks")
    judged = results.dropna(subset=["gold"])
    by_type = judged.pivot_table(index="prompt_type", columns="model", values="gold", aggfunc="mean")[models]
    by_type.plot.bar(ax=middle, rot=0, color=[f"C{i}" for i in range(len(models))])
    middle.set_ylim(0, 1)
    middle.set_ylabel("gold success")
    middle.set_xlabel("")
    middle.set_title("what the gold judge thinks, per prompt type")
    for i, model in enumerate(models):
        part = results[results["model"] == model]
        r = np.corrcoef(part["words"], part["rm_reward"])[0, 1]
        right.scatter(part["words"], part["rm_reward"], s=10, alpha=0.5, color=f"C{i}", label=f"{model} (r = {r:.2f})")
    right.set_xlabel("response length (words)")
    right.set_ylabel("reward-model score")
    right.set_title("verbosity bias: length vs reward")
    right.legend(fontsize=8)
    fig.tight_layout()
    save_and_show(fig, path)


def overoptimisation(history: list[dict], path: Path, window: int = 5):
    """Proxy (reward-model score) vs gold success of the training rollouts, over steps and against
    the KL to the reference: where the two part ways, the policy is exploiting the reward model."""
    frame = pd.DataFrame(history)
    smooth = frame[["rm_reward", "gold_success"]].rolling(window, min_periods=1).mean()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    left.plot(frame["step"], frame["rm_reward"], color="tab:blue", alpha=0.25, lw=1)
    left.plot(frame["step"], smooth["rm_reward"], color="tab:blue", lw=2)
    left.set_xlabel("step")
    left.set_title(f"over training ({window}-step moving average)")
    gold = left.twinx()
    gold.plot(frame["step"], frame["gold_success"], color="tab:red", alpha=0.25, lw=1)
    gold.plot(frame["step"], smooth["gold_success"], color="tab:red", lw=2)
    right.scatter(frame["kl"], frame["rm_reward"], s=14, color="tab:blue")
    right.set_xlabel("KL to the reference (nats per completion)")
    right.set_title("against KL, one point per step")
    gold_right = right.twinx()
    gold_right.scatter(frame["kl"], frame["gold_success"], s=14, color="tab:red", marker="x")
    for ax in (left, right):
        ax.set_ylabel("reward-model score (proxy)", color="tab:blue")
    for ax in (gold, gold_right):
        ax.set_ylabel("gold success", color="tab:red")
        ax.set_ylim(0, 1)
    fig.tight_layout()
    save_and_show(fig, path)


def frontier(curves: dict[str, pd.DataFrame], points: dict[str, dict], base_gold: float, path: Path):
    """The KL-reward frontier: proxy (top) and gold (bottom, ± one standard error over prompts)
    against KL to the base (left) and sqrt(KL) (right, as Gao et al. plot). ``curves``: {name: a frame
    with kl, sqrt_kl, proxy, gold, gold_se and n or step}, drawn as lines in optimisation order;
    ``points``: {name: one such dict} (DPO), drawn as markers."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharey="row")
    colours = dict(zip(list(curves) + list(points), plt.cm.tab10.colors))
    for col, x in enumerate(("kl", "sqrt_kl")):
        for name, curve in curves.items():
            axes[0, col].plot(curve[x], curve["proxy"], "o-", color=colours[name], label=name, ms=4)
            axes[1, col].errorbar(curve[x], curve["gold"], yerr=curve["gold_se"], fmt="o-", color=colours[name],
                                  label=name, ms=4, capsize=2)
            tag = "n" if "n" in curve else "step"
            for _, row in curve.iloc[[0, -1]].iterrows() if len(curve) > 1 else curve.iterrows():
                axes[1, col].annotate(f"{tag}={row[tag]:g}", (row[x], row["gold"]), fontsize=7,
                                      textcoords="offset points", xytext=(3, 3))
        for name, point in points.items():
            axes[0, col].scatter(point[x], point["proxy"], marker="*", s=160, color=colours[name], label=name, zorder=3)
            axes[1, col].errorbar(point[x], point["gold"], yerr=point["gold_se"], fmt="*", ms=12, color=colours[name],
                                  label=name, capsize=2, zorder=3)
        axes[1, col].axhline(base_gold, ls="--", color="grey", lw=1, label="base")
        axes[1, col].set_xlabel("KL(policy || base), nats" if x == "kl" else "sqrt(KL)")
    axes[0, 0].set_ylabel("reward-model score (proxy)")
    axes[1, 0].set_ylabel("gold (± SE over prompts)")
    axes[0, 0].legend(fontsize=8)
    axes[1, 1].legend(fontsize=8)
    fig.suptitle("proxy and gold against distance from the base: best-of-n, RL checkpoints, DPO")
    fig.tight_layout()
    save_and_show(fig, path)


def reward_model_checks(probe: pd.DataFrame, calibration: dict, path: Path):
    """Left: the verbosity probe - distribution of r(answer + filler) - r(answer) over gold-neutral
    answers, per filler. Right: the reward model's reliability diagram on the test pairs."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    neutral = probe[probe["gold_neutral"]]
    for filler, group in neutral.groupby("filler", sort=False):
        left.hist(group["rm_delta"], bins=30, alpha=0.55, label=f"+ \"{filler}\" (mean {group['rm_delta'].mean():+.2f})")
    left.axvline(0, color="black", lw=1)
    left.set(xlabel="reward-model score change from the filler", ylabel="answers",
             title="verbosity probe (answers whose gold the filler leaves unchanged)")
    left.legend(fontsize=8)
    table = calibration["table"]
    right.plot([0.5, 1], [0.5, 1], "--", color="grey", label="perfect calibration")
    right.plot(table["confidence"], table["accuracy"], "o-", label=f"reward model (ECE {calibration['ece']:.3f})")
    for _, row in table.iterrows():
        right.annotate(str(row["pairs"]), (row["confidence"], row["accuracy"]), fontsize=7, textcoords="offset points",
                       xytext=(3, -10))
    right.set(xlabel="confidence sigma(|r_c - r_r|)", ylabel="accuracy (chosen ranked first)",
              title="calibration on the test pairs (labels: pairs per bin)", xlim=(0.48, 1.02))
    right.legend(fontsize=8)
    fig.tight_layout()
    save_and_show(fig, path)
