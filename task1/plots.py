"""Figures of the decoding notebook, each saved under runs/task1/ and shown."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch

from pa5.plotting import save_and_show
from task1.decoding import top_k_filter, top_p_filter


def next_token_distribution(probs: torch.Tensor, labels: list[str], top_k: int, top_p: float, path: Path,
                            shown: int = 25):
    """Bars of the ``shown`` most likely next tokens; colour = kept by top-k only, top-p only, both."""
    order = probs.argsort(descending=True)[:shown]
    logits = probs.log()[None]
    by_k = torch.isfinite(top_k_filter(logits, top_k))[0][order]
    by_p = torch.isfinite(top_p_filter(logits, top_p))[0][order]
    colours = ["tab:purple" if k and p else "tab:blue" if k else "tab:orange" if p else "lightgrey"
               for k, p in zip(by_k.tolist(), by_p.tolist())]
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.bar(range(len(order)), probs[order].tolist(), color=colours)
    ax.set_xticks(range(len(order)), [repr(labels[i])[1:-1] for i in order.tolist()], rotation=70, fontsize=8)
    ax.set_ylabel("p(next token)")
    ax.set_title(f"kept by top-k={top_k} and top-p={top_p} (purple), top-k only (blue), top-p only (orange)")
    fig.tight_layout()
    save_and_show(fig, path)


def quality_diversity(table, path: Path):
    """Temperature vs diversity, temperature vs quality, and the quality-diversity frontier."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    sampled = table[table.temperature.notna()]
    references = table[table.temperature.isna()]
    for strategy, rows in sampled.groupby("strategy"):
        axes[0].plot(rows.temperature, rows.distinct_2, "o-", label=strategy)
        axes[1].plot(rows.temperature, rows.quality, "o-", label=strategy)
        axes[2].plot(rows.distinct_2, rows.quality, "o-", label=strategy)
        for _, row in rows.iterrows():
            axes[2].annotate(f"T={row.temperature:g}", (row.distinct_2, row.quality), fontsize=7)
    for _, row in references.iterrows():
        axes[1].axhline(row.quality, ls="--", color="grey" if row.strategy == "greedy" else "black",
                        label=row.strategy)
        axes[2].scatter(row.distinct_2, row.quality, marker="s", s=50, label=row.strategy)
    axes[0].set(xlabel="temperature", ylabel="distinct-2 across samples of a prompt", title="diversity")
    axes[1].set(xlabel="temperature", ylabel="mean quality", title="quality")
    axes[2].set(xlabel="distinct-2", ylabel="mean quality", title="quality vs diversity")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_and_show(fig, path)
