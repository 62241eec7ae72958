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
    """Temperature vs diversity, temperature vs quality and the quality-diversity frontier for the
    sampled settings (error bars: ± one standard error over prompts); the deterministic settings as
    horizontal lines (they have one sample per prompt: no diversity across samples)."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    sampled = table[table.temperature.notna()]
    for name, rows in sampled.groupby("setting", sort=False):
        style = "o-" if len(rows) > 1 else "D"
        axes[0].plot(rows.temperature, rows.distinct_2, style, label=name)
        axes[1].errorbar(rows.temperature, rows.quality, yerr=rows.quality_se, fmt=style, capsize=3, label=name)
        axes[2].errorbar(rows.distinct_2, rows.quality, yerr=rows.quality_se, fmt=style, capsize=3, label=name)
        for _, row in rows.iterrows():
            axes[2].annotate(f"T={row.temperature:g}", (row.distinct_2, row.quality), fontsize=7)
    colours = plt.cm.Greys([0.35, 0.5, 0.65, 0.8, 0.95])
    for colour, (_, row) in zip(colours, table[table.temperature.isna()].iterrows()):
        for ax in axes[1:]:
            ax.axhline(row.quality, ls="--", color=colour, label=row.setting if ax is axes[1] else None)
    axes[0].set(xlabel="temperature", ylabel="distinct-2 across samples of a prompt", title="diversity")
    axes[1].set(xlabel="temperature", ylabel="mean quality (± SE over prompts)", title="quality")
    axes[2].set(xlabel="distinct-2", ylabel="mean quality (± SE over prompts)", title="quality vs diversity")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    save_and_show(fig, path)


def repetition(table, by_family, path: Path):
    """Within-text repetition (longest repeated span) and the long answers' quality per setting."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    labels = list(table.label)
    axes[0].barh(labels, table.longest_repeat, color=["tab:red" if t != t else "tab:blue" for t in table.temperature])
    axes[0].set(xlabel="longest repeated span (words, mean over texts)", title="repetition within a text")
    axes[0].invert_yaxis()
    story = by_family[by_family.family == "story"]
    if len(story):
        story = story.set_index("label").loc[table.label]
        axes[1].barh(labels, story.quality, xerr=story.quality_se, capsize=2,
                     color=["tab:red" if t != t else "tab:blue" for t in table.temperature])
        axes[1].set(xlabel="gold success on the story prompts (± SE)", title="long answers")
        axes[1].invert_yaxis()
        axes[1].set_yticklabels([])
    else:
        axes[1].axis("off")
    fig.tight_layout()
    save_and_show(fig, path)
