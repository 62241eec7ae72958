"""Task 3's analysis of trained SAEs: what the notebook's tables and the discussion read.

Everything is measured on the test images' codes. A concept is live, fires, is universal or
model-specific by the single definitions and thresholds of ``task3.universality``.

Shapes: codes [N, C] per model (N images, C concepts).
"""
from __future__ import annotations

import pandas as pd
import torch

from task3.models import Standardizer
from task3.universality import (SPECIFIC_BELOW, UNIVERSAL_ABOVE, cofire_proportion, code_correlation, concept_energy,
                                dead_fraction, firing_counts, firing_entropy, hungarian_match, live_concepts,
                                r2_global_mean, r2_variance_weighted)


def r2_table(r2: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Rows "source->target", columns the two R^2 definitions."""
    return pd.DataFrame(r2).T


def mean_predictor_r2(train: dict[str, torch.Tensor], test: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Per model: R^2 (both definitions) of predicting every test image by the train split's per-feature
    mean - a reconstruction that knows nothing about the image (variance-weighted R^2 about 0)."""
    out = {}
    for name, x in test.items():
        guess = train[name].mean(0).expand_as(x)
        out[name] = {"global_mean": r2_global_mean(x, guess), "variance_weighted": r2_variance_weighted(x, guess)}
    return out


def renormalised(prepared: dict[str, dict], mode: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(train, test) features of every model under another normalisation ``mode``, fitted on train."""
    train, test = {}, {}
    for name, p in prepared.items():
        normalise = Standardizer(p["raw_train"], mode)
        train[name], test[name] = normalise(p["raw_train"]), normalise(p["raw_test"])
    return train, test


def universality_summary(codes: list[torch.Tensor]) -> tuple[dict[str, float], torch.Tensor]:
    """({mean firing entropy, share universal, share model-specific - over live concepts -, live
    concepts, mean co-fire proportion}, firing entropy [C], NaN for dead concepts)."""
    entropy = firing_entropy(firing_counts(codes))
    live = entropy[live_concepts(codes)]
    return {"mean": live.mean().item(), "frac_universal": (live > UNIVERSAL_ABOVE).float().mean().item(),
            "frac_model_specific": (live < SPECIFIC_BELOW).float().mean().item(), "live_concepts": len(live),
            "cofire_mean": torch.nanmean(cofire_proportion(codes)).item()}, entropy


def universality_table(usae_fe: dict, independent_fe: dict, dead: dict) -> pd.DataFrame:
    """The universality summaries side by side, with each family's dead share (independent SAEs: the
    mean over models)."""
    independent_dead = sum(dead["independent"].values()) / len(dead["independent"])
    return pd.DataFrame({"USAE": usae_fe, "independent SAEs": independent_fe}).T.assign(
        dead_fraction=[dead["usae"], independent_dead])


def concept_groups(codes: list[torch.Tensor], entropy: torch.Tensor) -> dict[str, list[int]]:
    """The live concepts that are universal (firing entropy > UNIVERSAL_ABOVE) and model-specific
    (< SPECIFIC_BELOW)."""
    live = live_concepts(codes)
    return {"universal": (live & (entropy > UNIVERSAL_ABOVE)).nonzero().flatten().tolist(),
            "model-specific": (live & (entropy < SPECIFIC_BELOW)).nonzero().flatten().tolist()}


def code_correlation_summary(codes_a: torch.Tensor, codes_b: torch.Tensor) -> dict[str, float]:
    """Per-concept correlation of the two models' codes over the images (task3.universality.code_correlation):
    its median and the share of concepts above 0.5, over the concepts whose codes are not constant."""
    correlation = code_correlation(codes_a, codes_b)
    defined = correlation[~correlation.isnan()]
    return {"median": torch.nanmedian(correlation).item(), "share_above_0.5": (defined > 0.5).float().mean().item()}


def dead_fractions(names: list[str], usae_codes: list[torch.Tensor],
                   independent_codes: list[torch.Tensor]) -> dict:
    """Dead shares: of the USAE's dictionary (over all models, and per model) and of each independent SAE."""
    return {"usae": dead_fraction(usae_codes),
            "usae_per_model": {name: dead_fraction(z) for name, z in zip(names, usae_codes)},
            "independent": {name: dead_fraction(z) for name, z in zip(names, independent_codes)}}


def atom_matching(names: list[str], usae, independent: dict, usae_codes: list[torch.Tensor],
                  independent_codes: list[torch.Tensor], seed: int = 0) -> dict[str, dict]:
    """Per model: the share of the USAE's live atoms matched one-to-one (Hungarian, cosine > 0.5) to the
    independent SAE's live atoms, and the same for a random Gaussian dictionary (the chance level)."""
    torch.manual_seed(seed)
    matching = {}
    for name, z_usae, z_independent in zip(names, usae_codes, independent_codes):
        atoms_usae = usae.dictionary(name).detach().cpu()[live_concepts(z_usae)]
        atoms_independent = independent[name].get_dictionary().detach().cpu()[live_concepts(z_independent)]
        matching[name] = {"usae_vs_independent": hungarian_match(atoms_usae, atoms_independent)["matched"],
                          "random_baseline": hungarian_match(torch.randn_like(atoms_usae), atoms_independent)["matched"],
                          "live_atoms": (len(atoms_usae), len(atoms_independent))}
    return matching


def energy_and_cofiring(names: list[str], usae, codes: list[torch.Tensor]) -> dict:
    """Per concept: energy (Eq. 9, summed over models) and co-fire proportion (mean over models), and
    their Spearman correlation over live concepts."""
    energy = sum(concept_energy(z, usae.dictionary(name).detach().cpu()) for name, z in zip(names, codes))
    cofire = cofire_proportion(codes).nanmean(0)
    live = live_concepts(codes)
    valid = live & ~cofire.isnan()
    spearman = pd.Series(energy[valid].numpy()).corr(pd.Series(cofire[valid].numpy()), method="spearman")
    return {"energy": energy, "cofire": cofire, "live": live, "spearman": float(spearman)}


def select_concepts(codes: list[torch.Tensor], entropy: torch.Tensor, n: int = 2) -> dict[str, list[int]]:
    """The concepts the notebook looks at: the ``n`` most universal live concepts and the ``n``
    model-specific ones (entropy below SPECIFIC_BELOW) that fire most often.

    Universal ones are ranked by 1e6 * firing entropy + firings (over all models and test images):
    entropy first, but a concept whose entropy is lower by less than (its extra firings) / 1e6 - at
    most 0.002 here - comes first when it fires more often, so a concept that fires once in each
    model (entropy exactly 1) does not beat one that fires hundreds of times almost evenly."""
    counts = firing_counts(codes).sum(0).float()
    live = live_concepts(codes)

    def ranked(score: torch.Tensor) -> list[int]:
        return [int(k) for k in torch.argsort(score, descending=True) if live[k]]

    universal = ranked(torch.nan_to_num(entropy, nan=-1) * 1e6 + counts)
    specific = [k for k in ranked(torch.where(entropy < SPECIFIC_BELOW, counts, torch.zeros_like(counts)))
                if entropy[k] < SPECIFIC_BELOW]
    return {"universal": universal[:n], "model-specific": specific[:n]}


def purity_labels(test_set) -> dict[str, torch.Tensor]:
    """The labels concept purity is measured against: the stand-in's generating factors (shape,
    colour, texture), or CIFAR-100's fine label and superclass."""
    from task3.data import coarse_labels

    dataset = test_set.dataset if hasattr(test_set, "dataset") else test_set
    n = len(test_set)
    if hasattr(dataset, "factors"):
        return {name: torch.as_tensor(dataset.factors[name][:n]) for name in ("shape", "colour", "texture")}
    return {"fine label": torch.as_tensor(dataset.targets[:n]), "superclass": coarse_labels(dataset)[:n]}


def purity_table(names: list[str], codes: list[torch.Tensor], entropy: torch.Tensor,
                 labels: dict[str, torch.Tensor], k: int = 20) -> pd.DataFrame:
    """Mean purity of the top-``k`` images (task3.visualize.purity) per label, for the universal
    concepts and for each model's model-specific ones, read from each model's codes; column
    ``concepts`` counts them."""
    from task3.visualize import purity

    groups = concept_groups(codes, entropy)
    rows = {}
    for name, z in zip(names, codes):
        fires_here = live_concepts(z)
        specific_here = [c for c in groups["model-specific"] if fires_here[c]]  # those that fire in this model
        for kind, concepts in (("universal", groups["universal"]), ("model-specific", specific_here)):
            if concepts:
                table = pd.DataFrame([purity(z, labels, c, k) for c in concepts])
                rows[f"{kind}, {name}"] = {**table.mean().to_dict(), "concepts": len(concepts)}
    return pd.DataFrame(rows).T.astype({"concepts": int})


def purity_chance(labels: dict[str, torch.Tensor], k: int = 20, draws: int = 2000, seed: int = 0) -> dict[str, float]:
    """What purity reads for a concept that knows nothing: per label, the mean share of the most
    common value among ``k`` images drawn at random (seeded). It is well above 1 / (number of values):
    the largest of several counts is larger than their mean."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, values in labels.items():
        values = torch.as_tensor(values)
        picks = torch.stack([torch.randperm(len(values), generator=generator)[:k] for _ in range(draws)])
        shares = [values[row].bincount().max().item() / k for row in picks]
        out[name] = sum(shares) / draws
    return out


def discussion(names: list[str], usae_r2: dict, independent_r2: dict, usae_fe: dict, independent_fe: dict,
               purity: pd.DataFrame, dead: dict, normalisation: str) -> str:
    """Markdown bullets of this run's findings (numbers from the arguments)."""
    cross = [f"{k}: {usae_r2[k]['variance_weighted']:.2f} (independent {independent_r2[k]['variance_weighted']:.2f})"
             for k in usae_r2 if k.split("->")[0] != k.split("->")[1]]
    factors = purity.drop(columns="concepts")
    best = {row: factors.loc[row].astype(float).idxmax() for row in factors.index}
    return "\n".join([
        f"- Cross-model reconstruction, variance-weighted R2: {'; '.join(cross)} - shared codes carry information "
        "across models that independent SAEs' indices do not.",
        f"- Universality: {100 * usae_fe['frac_universal']:.1f} % of live USAE concepts have firing entropy > "
        f"{UNIVERSAL_ABOVE} (independent SAEs, same index: {100 * independent_fe['frac_universal']:.1f} %); "
        f"{100 * usae_fe['frac_model_specific']:.1f} % fire in one model only.",
        "- What concepts detect (purity of the top-20 images; most pure label per group): "
        + "; ".join(f"{row}: {f} ({factors.loc[row, f]:.2f})" for row, f in best.items()) + ".",
        f"- Dead concepts on test: {100 * dead['usae']:.0f} % of the USAE dictionary - no auxiliary loss revives them here.",
        f"- Deviations from the paper: {len(names)} CNNs instead of 3 transformers, pooled features instead of patch "
        f"tokens, unit-norm + centred features ({normalisation}), constant learning rate, no auxiliary dead-concept loss.",
    ])
