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


def number(value: float, digits: int = 2) -> str:
    """``value`` to ``digits`` decimals, without the minus sign of a value that rounds to zero."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def top_image_grid(concepts: dict[str, list[int]], names: list[str], codes: list[torch.Tensor], entropy: torch.Tensor,
                   images, path: Path, k: int = 6):
    """One row per (concept, model): the (at most ``k``) test images on which the concept fires most
    strongly; a concept that never fires in a model says so instead of showing arbitrary images.
    ``concepts``: {kind: [concept ids]}; ``images``: the test split, (normalised image, label) per index."""
    chosen = [(kind, c) for kind, ids in concepts.items() for c in ids]
    fig, axes = plt.subplots(len(chosen) * len(names), k, figsize=(7, 1.3 * len(chosen) * len(names)), squeeze=False)
    for row, ((kind, concept), (name, z)) in enumerate((c, m) for c in chosen for m in zip(names, codes)):
        top = top_images(z, concept, k)
        for col in range(k):
            axes[row, col].axis("off")
            if col < len(top):
                axes[row, col].imshow(to_display_image(images[int(top[col])][0]).numpy())
        title = f"{kind} #{concept}, {name} (FE {number(entropy[concept].item())})"
        if len(top) == 0:
            note = axes[row, 0].text(0, 0.5, f"never fires in {name}", fontsize=8, transform=axes[row, 0].transAxes)
            note.set_in_layout(False)  # it runs past its axes: tight_layout must not shrink every image for it
        axes[row, 0].set_title(title, fontsize=7, loc="left")
    fig.tight_layout()
    save_and_show(fig, path)


def maximisation_grid(maximised: dict[int, dict[str, dict]], concepts: dict[str, list[int]], names: list[str],
                      path: Path):
    """One row per concept, one column per model: the maximising image, titled with the objective's
    first and last value (flagged when it did not rise) and the class the network reads in it.
    ``maximised``: {concept: {model: {"image" [3, H, W], "history", "rose", "reads_as", "probability"}}}."""
    chosen = [(kind, c) for kind, ids in concepts.items() for c in ids]
    fig, axes = plt.subplots(len(chosen), len(names), figsize=(2.4 * len(names), 2.5 * len(chosen)), squeeze=False)
    for row, (kind, concept) in enumerate(chosen):
        for col, name in enumerate(names):
            result = maximised[concept][name]
            axes[row, col].imshow(result["image"].permute(1, 2, 0).numpy())
            axes[row, col].axis("off")
            history = result["history"]
            trend = "" if result["rose"] else " DID NOT RISE"
            axes[row, col].set_title(f"{kind} #{concept}, {name}\n{number(history[0])} -> {number(history[-1])}{trend}\n"
                                     f"reads as {result['reads_as']} ({result['probability']:.2f})", fontsize=7,
                                     color="black" if result["rose"] else "red")
    fig.tight_layout()
    save_and_show(fig, path)


def schedules_figure(results: dict[str, dict], names: list[str], path: Path):
    """The USAE's two training schedules side by side ({label: {"r2": cross_r2 result, "universal",
    "dead"}}): R^2 matrices under both definitions, and a bar chart of the universal and dead shares."""
    panels = [(label, kind) for label in results for kind in ("global_mean", "variance_weighted")]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.4 * (len(panels) + 1), 3.2), squeeze=False)
    for ax, (label, kind) in zip(axes[0], panels):
        _heatmap(ax, results[label]["r2"], names, kind, f"{label}: R2 {kind}")
    bars = axes[0, -1]
    width = 0.8 / len(results)
    for i, (label, result) in enumerate(results.items()):
        bars.bar(np.arange(2) + i * width, [result["universal"], result["dead"]], width, label=label)
    bars.set_xticks(np.arange(2) + width * (len(results) - 1) / 2, ["universal (of live)", "dead"])
    bars.set_ylim(0, 1)
    bars.legend(fontsize=7)
    fig.tight_layout()
    save_and_show(fig, path)


def _heatmap(ax, r2: dict, names: list[str], kind: str, title: str, row_labels: bool = True):
    matrix = np.array([[r2[f"{s}->{t}"][kind] for t in names] for s in names])
    image = ax.imshow(matrix, vmin=-0.2, vmax=1, cmap="viridis")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, number(value), ha="center", va="center", color="white" if value < 0.5 else "black")
    ax.set_xticks(range(len(names)), names, fontsize=7)
    ax.set_yticks(range(len(names)), names if row_labels else [], fontsize=7)
    ax.set_xlabel("reconstructed", fontsize=7)
    if row_labels:
        ax.set_ylabel("codes from", fontsize=7)
    ax.set_title(title, fontsize=9)
    return image


def r2_matrices(results: dict[str, dict], names: list[str], path: Path, kind: str = "variance_weighted"):
    """Heatmaps of R^2 ``kind`` (rows: the model whose codes are used; columns: the model reconstructed),
    one per SAE family ({label: cross_r2 result})."""
    fig, axes = plt.subplots(1, len(results), figsize=(3.4 * len(results), 3.2), squeeze=False)
    for i, (ax, (label, r2)) in enumerate(zip(axes[0], results.items())):
        image = _heatmap(ax, r2, names, kind, label, row_labels=i == 0)  # the panels share their rows
    fig.colorbar(image, ax=axes, shrink=0.8, label=f"R2 {kind}")
    save_and_show(fig, path)
