"""Task 3's analysis of trained SAEs: what the notebook's tables and the discussion read.

Everything is measured on the test images' codes. A concept is live, fires, is universal or
model-specific by the single definitions and thresholds of ``task3.universality``.

Shapes: codes [N, C] per model (N images, C concepts).
"""
from __future__ import annotations

import pandas as pd
import torch

from pa5.checks import check_number

from task3.models import Standardizer
from task3.visualize import set_purities, top_sets
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


def evaluate_family(saes: dict, features: dict[str, torch.Tensor]) -> dict:
    """{"r2": task3.usae.cross_r2, "codes": [N, C] codes per model} of one SAE family on ``features``."""
    from task3.usae import all_codes, cross_r2

    return {"r2": cross_r2(saes, features), "codes": [all_codes(saes[name], features[name]) for name in features]}


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


def permutation_purities(top: torch.Tensor, values: torch.Tensor, permutations: int = 1000,
                         seed: int = 0) -> torch.Tensor:
    """[P, G] the purities of the same sets ``top`` [G, k] with the labels ``values`` [N] randomly permuted
    over the inputs, ``permutations`` times: what purity reads when concepts know nothing about the
    label - the chance level of the very statistic reported, whatever the set sizes and label shares."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.as_tensor(values).long()
    return torch.stack([set_purities(top, values[torch.randperm(len(values), generator=generator)])
                        for _ in range(permutations)])


def purity_table(names: list[str], codes: list[torch.Tensor], entropy: torch.Tensor,
                 labels: dict[str, torch.Tensor], k: int = 20, permutations: int = 500, seed: int = 0) -> pd.DataFrame:
    """Mean purity of the top-``k`` images per label for the universal concepts and for each model's
    model-specific ones, read from each model's codes (column ``concepts`` counts them), next to the
    chance level of that mean - its mean under label permutation (:func:`permutation_purities`) - and
    the permutation p-value (share of permutations whose mean reaches the observed one)."""
    groups = concept_groups(codes, entropy)
    rows = {}
    for name, z in zip(names, codes):
        fires_here = live_concepts(z)
        for kind in ("universal", "model-specific"):
            concepts = [c for c in groups[kind] if fires_here[c]]  # the group's concepts that fire in this model
            if not concepts:
                continue
            top, row = top_sets(z, concepts, k), {}
            for factor, values in labels.items():
                observed = set_purities(top, torch.as_tensor(values).long()).nanmean().item()
                null = permutation_purities(top, values, permutations, seed).nanmean(1)
                row |= {factor: observed, f"{factor} chance": null.mean().item(),
                        f"{factor} p": ((null >= observed).sum().item() + 1) / (permutations + 1)}
            rows[f"{kind}, {name}"] = {**row, "concepts": len(concepts)}
    return pd.DataFrame(rows).T.astype({"concepts": int})


def concept_detectors(names: list[str], codes: list[torch.Tensor], concepts: list[int], labels: dict[str, torch.Tensor],
                      k: int = 20, permutations: int = 1000, alpha: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """What each of ``concepts`` detects: per model and label its purity and permutation p-value; column
    ``detects`` names the label that is significant (p < ``alpha``) in every model and lies furthest
    above its chance level (its mean under permutation), "-" when none is."""
    check_number("alpha", alpha, 0, 1, low_open=True)
    table = pd.DataFrame(index=pd.Index(concepts, name="concept"))
    excess = {}
    for name, z in zip(names, codes):
        top = top_sets(z, concepts, k)
        for factor, values in labels.items():
            observed = set_purities(top, torch.as_tensor(values).long())
            null = permutation_purities(top, values, permutations, seed)
            p = ((null >= observed).sum(0) + 1) / (permutations + 1)
            p = torch.where(observed.isnan(), torch.full_like(p, float("nan")), p)  # never fires here
            table[f"{factor}, {name}"], table[f"{factor} p, {name}"] = observed.numpy(), p.numpy()
            gain = torch.where(p < alpha, observed - null.nanmean(0), torch.full_like(p, float("nan")))
            excess[factor] = gain if factor not in excess else torch.minimum(excess[factor], gain)  # NaN stays NaN
    factors = list(labels)
    gains = torch.stack([excess[f] for f in factors], dim=1)  # [G, labels], NaN: not significant in some model
    best = torch.nan_to_num(gains, nan=-1.0).argmax(1)
    table["detects"] = [factors[b] if not gains[i, b].isnan() else "-" for i, b in enumerate(best.tolist())]
    return table


def universal_share_interval(codes: list[torch.Tensor], draws: int = 1000, level: float = 0.95,
                             seed: int = 0) -> dict[str, float]:
    """The share of live concepts that are universal (firing entropy over all the images > UNIVERSAL_ABOVE),
    with a bootstrap interval over the concepts: the live concepts resampled with replacement ``draws``
    times, percentiles at (1 -/+ ``level``) / 2 - how much the share would move with another draw of
    concepts of the same kind.

    Not over the images: a resample of images repeats some and drops others, so a rarely firing concept's
    counts look less balanced than they are and the share is biased downwards - its percentile interval
    can miss the estimate itself (measured on the untrained control: 44.1 % against [40.2, 43.9])."""
    check_number("level", level, 0, 1, low_open=True, high_open=True)
    entropy = firing_entropy(firing_counts(codes))
    universal = (entropy[live_concepts(codes)] > UNIVERSAL_ABOVE).float()  # [L]
    generator = torch.Generator().manual_seed(seed)
    shares = universal[torch.randint(0, len(universal), (draws, len(universal)), generator=generator)].mean(1)
    low, high = torch.quantile(shares, torch.tensor([(1 - level) / 2, (1 + level) / 2])).tolist()
    return {"share": universal.mean().item(), "low": low, "high": high}


def comparison_table(names: list[str], families: dict[str, dict]) -> pd.DataFrame:
    """One row per SAE family ({label: {"r2": task3.usae.cross_r2 result, "codes": [N, C] test codes per
    model}}): variance-weighted R^2 of every (source, target), the share of live concepts that are
    universal with its bootstrap interval, the mean co-fire proportion (do they fire on the *same*
    images? firing entropy only counts how often) and the dead share."""
    rows = {}
    for label, family in families.items():
        share = universal_share_interval(family["codes"])
        rows[label] = {**{f"R2 {s}->{t}": family["r2"][f"{s}->{t}"]["variance_weighted"] for s in names for t in names},
                       "universal": share["share"], "universal 95% low": share["low"],
                       "universal 95% high": share["high"],
                       "co-fire": torch.nanmean(cofire_proportion(family["codes"])).item(),
                       "dead": dead_fraction(family["codes"])}
    return pd.DataFrame(rows).T


def pretraining_report(config) -> dict:
    """What the stand-in "ImageNet" networks knew before the fine-tune - {network: held-out accuracy per
    factor head, build seconds} from the stand-in's build report; {} for other starting weights."""
    from pa5.assets import STANDIN_IMAGENET

    if config.weights != STANDIN_IMAGENET:
        return {}
    from pa5 import standins

    report = standins.report(standins.get(STANDIN_IMAGENET))
    return {name: {**report[name]["held_out_accuracy"], "build seconds": report[name]["seconds"]} for name in config.models}


def discussion(names: list[str], comparison: pd.DataFrame, purity: pd.DataFrame, detects: dict[str, int],
               maximised: dict[int, dict[str, dict]], dead: dict, normalisation: str) -> str:
    """Markdown bullets of this run's findings (numbers from the arguments: ``comparison`` from
    :func:`comparison_table`, ``purity`` from :func:`purity_table`, ``detects`` counts of
    :func:`concept_detectors`' column, ``maximised`` from task3.visualize.concept_maximisations)."""
    pairs = [(s, t) for s in names for t in names if s != t]

    def cross(label: str) -> str:
        return " / ".join(f"{comparison.loc[label, f'R2 {s}->{t}']:.2f}" for s, t in pairs)

    usae_label = next(label for label in comparison.index if label.startswith("USAE ("))
    beats = [comparison.loc[usae_label, f"R2 {s}->{t}"] > comparison.loc["independent, matched", f"R2 {s}->{t}"]
             for s, t in pairs]
    verdict = ("beats the matched independent SAEs in every direction" if all(beats) else
               "does not beat the matched independent SAEs in every direction" if any(beats) else
               "does not beat the matched independent SAEs in any direction")
    share = "; ".join(f"{label} {100 * row['universal']:.1f} % [{100 * row['universal 95% low']:.1f}, "
                      f"{100 * row['universal 95% high']:.1f}], co-fire {row['co-fire']:.2f}"
                      for label, row in comparison.iterrows())
    universal_rows = [row for row in purity.index if row.startswith("universal")]
    factors = [c for c in purity.columns if not c.endswith((" chance", " p")) and c != "concepts"]
    purity_text = "; ".join(f"{row.removeprefix('universal, ')}: " + ", ".join(
        f"{f} {purity.loc[row, f]:.2f} (chance {purity.loc[row, f + ' chance']:.2f})" for f in factors)
        for row in universal_rows)
    results = [(c, name, r) for c, per_model in maximised.items() for name, r in per_model.items()]
    flat = [f"#{c} in {name} ({r['start']:.2f} -> {r['end']:.2f})" for c, name, r in results if not r["rose"]]
    return "\n".join([
        f"- Cross-model reconstruction ({' / '.join(f'{s}->{t}' for s, t in pairs)}, variance-weighted R2): "
        + "; ".join(f"{label} {cross(label)}" for label in comparison.index)
        + f". The {usae_label} {verdict}: the fair baseline, not the unaligned one, is what a shared "
        "dictionary has to beat.",
        f"- Share of live concepts that are universal (firing entropy > {UNIVERSAL_ABOVE}), 95 % bootstrap interval "
        f"over concepts, and the mean co-fire proportion: {share}. Firing entropy counts how often a concept "
        "fires in each model, not on which images: read it with the co-fire proportion, and the matched baseline's "
        "with care (its matching chose partners that fire on the same train images).",
        f"- What universal concepts detect (purity of the top-20 images against permutation chance): {purity_text}. "
        f"By concept (significant in both models): " + ", ".join(f"{k} {v}" for k, v in detects.items()) + ".",
        f"- Activation maximisation: the objective rose for {len(results) - len(flat)} of {len(results)} (concept, "
        "model) pairs" + (f"; it did not for {', '.join(flat)}." if flat else "."),
        f"- Dead concepts on test: {100 * dead['usae']:.0f} % of the USAE dictionary - no auxiliary loss revives them here.",
        f"- Deviations from the paper: {len(names)} CNNs instead of 3 transformers, pooled features instead of patch "
        f"tokens, unit-norm + centred features ({normalisation}), constant learning rate, no auxiliary dead-concept loss.",
    ])
