"""Task 3's universality and reconstruction metrics (Thasarathan et al., ICML 2025, Section 4).

A concept k *fires* on an input when its code z_k > ``FIRING_THRESHOLD`` (0.1, the paper's); it is
*live* when it fires on at least one input in at least one model, *dead* otherwise (one definition,
used by every metric here and by task3.analysis). With M models seen on the same N inputs:

* firing entropy  FE_k = -(1 / log M) sum_i p_ik log p_ik,  p_ik = |F_k^(i)| / sum_j |F_k^(j)|
  - 1 when the concept fires equally often in every model (universal), 0 when in one model only;
* co-fire proportion  CFP_k^(i) = |C_k| / |F_k^(i)|, C_k = the inputs on which k fires in *all* models;
* concept energy  ||E[z_k] D_k||^2 (Eq. 9) - how much of the reconstruction a concept carries;
* R^2 two ways: the paper's / overcomplete's (1 - MSE / variance around one scalar mean of all
  entries) and sklearn's variance-weighted one (per-feature centring). On pooled CNN features the
  first is inflated: predicting each feature's mean scores near 1 under it and 0 under the second.

Shapes: codes [N, C] per model (N inputs, C concepts), features [N, D].
"""
from __future__ import annotations

import math

import torch

from pa5.checks import check_number

EPSILON = 1e-6  # overcomplete.metrics' Epsilon, so r2_global_mean equals its r2_score
FIRING_THRESHOLD = 0.1  # z_k above it: concept k fires (the paper's)
UNIVERSAL_ABOVE = 0.9  # firing entropy above it: a universal concept
SPECIFIC_BELOW = 0.1  # firing entropy below it: a model-specific concept


def _check_codes(codes: list[torch.Tensor]) -> None:
    if not isinstance(codes, (list, tuple)) or len(codes) < 2:
        raise ValueError(f"codes must be a list of at least 2 [N, C] tensors (one per model), got {type(codes).__name__}"
                         f" of length {len(codes) if isinstance(codes, (list, tuple)) else '-'}")
    shapes = [tuple(c.shape) for c in codes]
    if any(len(s) != 2 for s in shapes) or len(set(shapes)) != 1:
        raise ValueError(f"codes must all be [N, C] for the same N inputs and C concepts, got shapes {shapes}")


def firing_counts(codes: list[torch.Tensor], threshold: float = FIRING_THRESHOLD) -> torch.Tensor:
    """[M, C] how many of the N inputs make concept c fire (z > threshold) in model i."""
    _check_codes(codes)
    check_number("threshold", threshold, 0)
    ### BEGIN SOLUTION
    return torch.stack([(z > threshold).sum(dim=0) for z in codes])
    ### END SOLUTION


def firing_entropy(counts: torch.Tensor) -> torch.Tensor:
    """[C] entropy of each concept's firing distribution over the M models, divided by log M
    (so in [0, 1]); NaN for a concept that never fires. counts: [M, C], M >= 2."""
    if counts.dim() != 2 or counts.shape[0] < 2:
        raise ValueError(f"counts must be [M, C] with M >= 2 models, got shape {tuple(counts.shape)}")
    if (counts < 0).any():
        raise ValueError("counts must be >= 0")
    ### BEGIN SOLUTION
    counts = counts.double()
    total = counts.sum(dim=0)
    p = counts / total
    plogp = torch.where(p > 0, p * p.log(), torch.zeros_like(p))  # 0 log 0 = 0
    entropy = -plogp.sum(dim=0) / math.log(counts.shape[0])
    return torch.where(total > 0, entropy, torch.full_like(entropy, math.nan)).float()
    ### END SOLUTION


def cofire_proportion(codes: list[torch.Tensor], threshold: float = FIRING_THRESHOLD) -> torch.Tensor:
    """[M, C] |inputs where c fires in all models| / |inputs where c fires in model i|; NaN where
    c never fires in model i."""
    _check_codes(codes)
    check_number("threshold", threshold, 0)
    ### BEGIN SOLUTION
    fires = torch.stack([z > threshold for z in codes])  # [M, N, C]
    in_all = fires.all(dim=0).sum(dim=0).double()  # [C]
    per_model = fires.sum(dim=1).double()  # [M, C]
    return torch.where(per_model > 0, in_all / per_model, torch.full_like(per_model, math.nan)).float()
    ### END SOLUTION


def _check_pair(x: torch.Tensor, x_hat: torch.Tensor) -> None:
    if x.shape != x_hat.shape or x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"x and x_hat must both be [N, D] with N >= 2, got {tuple(x.shape)} and {tuple(x_hat.shape)}")


def r2_global_mean(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """The paper's R^2 (= overcomplete.metrics.r2_score): 1 - mean((x - x_hat)^2) / mean((x - mean(x))^2),
    with ONE scalar mean over all N x D entries."""
    _check_pair(x, x_hat)
    ### BEGIN SOLUTION
    x, x_hat = x.double(), x_hat.double()
    return float(1 - ((x - x_hat) ** 2).mean() / (((x - x.mean()) ** 2).mean() + EPSILON))
    ### END SOLUTION


def r2_variance_weighted(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """sklearn's ``r2_score(x, x_hat, multioutput="variance_weighted")``: 1 - sum of squared errors /
    sum of squared deviations from each feature's own mean."""
    _check_pair(x, x_hat)
    ### BEGIN SOLUTION
    x, x_hat = x.double(), x_hat.double()
    return float(1 - ((x - x_hat) ** 2).sum() / ((x - x.mean(dim=0)) ** 2).sum())
    ### END SOLUTION


def concept_energy(codes: torch.Tensor, dictionary: torch.Tensor) -> torch.Tensor:
    """[C] ||E[z_k] D_k||^2 (the paper's Eq. 9): codes [N, C], dictionary [C, D]."""
    if codes.dim() != 2 or dictionary.dim() != 2 or codes.shape[1] != dictionary.shape[0]:
        raise ValueError(f"expected codes [N, C] and dictionary [C, D], got {tuple(codes.shape)}, {tuple(dictionary.shape)}")
    ### BEGIN SOLUTION
    return codes.float().mean(dim=0) ** 2 * (dictionary.float() ** 2).sum(dim=1)
    ### END SOLUTION


def live_concepts(codes: list[torch.Tensor] | torch.Tensor, threshold: float = FIRING_THRESHOLD) -> torch.Tensor:
    """[C] bool: the concept fires (z > threshold) on at least one input of at least one model.
    ``codes``: one [N, C] tensor (one model) or a list of them."""
    codes = list(codes) if isinstance(codes, (list, tuple)) else [codes]
    check_number("threshold", threshold, 0)
    return torch.stack([(z > threshold).any(dim=0) for z in codes]).any(dim=0)


def dead_fraction(codes: list[torch.Tensor] | torch.Tensor, threshold: float = FIRING_THRESHOLD) -> float:
    """Share of concepts that are not live (:func:`live_concepts`)."""
    return 1.0 - live_concepts(codes, threshold).float().mean().item()


def code_correlation(codes_a: torch.Tensor, codes_b: torch.Tensor) -> torch.Tensor:
    """[C] Pearson correlation over the N inputs of concept c's code in model a and in model b
    (NaN where a code is constant, e.g. dead)."""
    if codes_a.shape != codes_b.shape or codes_a.dim() != 2:
        raise ValueError(f"codes_a and codes_b must both be [N, C], got {tuple(codes_a.shape)}, {tuple(codes_b.shape)}")
    a = codes_a.double() - codes_a.double().mean(0)
    b = codes_b.double() - codes_b.double().mean(0)
    denominator = (a.norm(dim=0) * b.norm(dim=0))
    return torch.where(denominator > 0, (a * b).sum(0) / denominator, torch.full_like(denominator, math.nan)).float()


def hungarian_match(dictionary_a: torch.Tensor, dictionary_b: torch.Tensor, threshold: float = 0.5) -> dict:
    """One-to-one matching of atoms (rows) of two dictionaries [C, D] by cosine similarity
    (Hungarian algorithm); ``matched`` = share of pairs with cosine > threshold."""
    from scipy.optimize import linear_sum_assignment

    if dictionary_a.dim() != 2 or dictionary_a.shape[1] != dictionary_b.shape[1]:
        raise ValueError(f"dictionaries must be [C, D] with the same D, got {tuple(dictionary_a.shape)}, "
                         f"{tuple(dictionary_b.shape)}")
    a = torch.nn.functional.normalize(dictionary_a.detach().cpu().double(), dim=1)  # scipy reads CPU memory
    b = torch.nn.functional.normalize(dictionary_b.detach().cpu().double(), dim=1)
    cosine = (a @ b.T).numpy()
    rows, columns = linear_sum_assignment(-cosine)
    matched = cosine[rows, columns]
    return {"matched": float((matched > threshold).mean()), "mean_cosine": float(matched.mean()),
            "cosines": matched.tolist()}
