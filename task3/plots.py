"""Figures of the USAE notebook, each saved under runs/task3/ and shown."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from pa5.plotting import save_and_show
from task3.data import to_display_image
from task3.visualize import top_images


def firing_entropy_histogram(entropies: dict[str, torch.Tensor], path: Path):
    """Histogram of the live concepts' firing entropy, one series per SAE family ({label: entropy [C]},
    NaN for a dead concept, as task3.universality.firing_entropy gives it)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 1, 21)
    for label, entropy in entropies.items():
        ax.hist(entropy[~entropy.isnan()].numpy(), bins=bins, alpha=0.7, label=label)
    ax.set_xlabel("firing entropy (1 = fires equally in both models)")
    ax.set_ylabel("live concepts")
    ax.legend()
    fig.tight_layout()
    save_and_show(fig, path)


def cofire_vs_energy(energy: torch.Tensor, cofire: torch.Tensor, entropy: torch.Tensor, live: torch.Tensor, path: Path):
    """Per live concept (``live`` [C] bool): energy (log scale) against co-fire proportion, coloured by
    firing entropy."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.scatter(energy[live].numpy(), cofire[live].numpy(), s=10, c=entropy[live].numpy(), cmap="viridis")
    ax.set_xscale("log")
    ax.set_xlabel("concept energy (sum over models)")
    ax.set_ylabel("co-fire proportion (mean over models)")
    ax.set_title("colour = firing entropy")
    fig.tight_layout()
    save_and_show(fig, path)


def top_image_grid(concepts: dict[str, list[int]], names: list[str], codes: list[torch.Tensor], entropy: torch.Tensor,
                   images, path: Path, k: int = 6):
    """One row per (concept, model): the ``k`` test images with the largest code. ``concepts``:
    {kind: [concept ids]}; ``images``: the test split, (normalised image, label) per index."""
    chosen = [(kind, c) for kind, ids in concepts.items() for c in ids]
    fig, axes = plt.subplots(len(chosen) * len(names), k, figsize=(7, 1.3 * len(chosen) * len(names)), squeeze=False)
    for row, ((kind, concept), (name, z)) in enumerate((c, m) for c in chosen for m in zip(names, codes)):
        for col, index in enumerate(top_images(z, concept, k)):
            axes[row, col].imshow(to_display_image(images[int(index)][0]).numpy())
            axes[row, col].axis("off")
        axes[row, 0].set_title(f"{kind} #{concept}, {name} (FE {entropy[concept]:.2f})", fontsize=7, loc="left")
    fig.tight_layout()
    save_and_show(fig, path)


def maximisation_grid(maximised: dict[int, dict[str, tuple]], concepts: dict[str, list[int]], names: list[str],
                      path: Path):
    """One row per concept, one column per model: the maximising image, titled with the objective's
    first and last value. ``maximised``: {concept: {model: (image [3, H, W], objective history)}}."""
    chosen = [(kind, c) for kind, ids in concepts.items() for c in ids]
    fig, axes = plt.subplots(len(chosen), len(names), figsize=(2.2 * len(names), 2.2 * len(chosen)), squeeze=False)
    for row, (kind, concept) in enumerate(chosen):
        for col, name in enumerate(names):
            image, history = maximised[concept][name]
            axes[row, col].imshow(image.permute(1, 2, 0).numpy())
            axes[row, col].axis("off")
            axes[row, col].set_title(f"{kind} #{concept}\n{name}: {history[0]:.2f} -> {history[-1]:.2f}", fontsize=7)
    fig.tight_layout()
    save_and_show(fig, path)


def r2_matrices(results: dict[str, dict], names: list[str], path: Path):
    """Heatmaps of R^2 (rows: the model whose codes are used; columns: the model reconstructed), both
    definitions, per SAE family ({label: cross_r2 result})."""
    panels = [(label, r2, kind) for label, r2 in results.items() for kind in ("global_mean", "variance_weighted")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.75 * len(panels), 3.2), squeeze=False)
    for ax, (label, r2, kind) in zip(axes[0], panels):
        matrix = np.array([[r2[f"{s}->{t}"][kind] for t in names] for s in names])
        image = ax.imshow(matrix, vmin=-0.2, vmax=1, cmap="viridis")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.5 else "black")
        ax.set_xticks(range(len(names)), names, fontsize=7)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(f"{label}: R2 {kind}", fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8)
    save_and_show(fig, path)
