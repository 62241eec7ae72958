"""Over-optimising a proxy reward (Gao et al., 2023, "Scaling laws for reward model overoptimization"):
best-of-n sampling from the base policy and RL checkpoints, each placed on the KL-reward frontier by
its proxy score (the trained reward model), its gold score (never optimised) and its KL to the base.

Every point is measured the same way, on the evaluation prompts, from answers sampled at one
temperature T (``FrontierConfig.temperature``: PPO's rollout temperature 0.7), so that every distance is
to the same distribution, the base's at T:

* **best-of-n**: n answers per prompt from the base, keep the one the proxy scores highest. Its KL to
  the base is analytic, KL(best-of-n || base) = log n - (n - 1) / n (Stiennon et al., 2020).
* **an RL checkpoint**: ``samples`` answers per prompt from the policy; proxy and gold of those answers,
  and the Monte-Carlo KL E_{y ~ pi_T}[log pi_T(y|x) - log pi_ref,T(y|x)] (both tempered).

Gao et al. plot against d = sqrt(KL): gold first rises with d, then falls while the proxy keeps rising.
Each point keeps its per-prompt gold (``per_prompt``), so that a rise or a fall is judged on the same
prompts (paired), not against the spread between prompts.
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from pa5.checks import check_int
from task2.evaluate import log_ratios
from task2.policy import generate
from task2.reward_model import Scorer
from task2.rollout import Gold, judge_gold


def best_of_n_kl(n: int) -> float:
    """KL(best-of-n || base) = log n - (n - 1) / n nats (0 for n = 1)."""
    check_int("n", n, 1)
    return math.log(n) - (n - 1) / n


def best_of_n_weights(pool: int, n: int) -> torch.Tensor:
    """[pool]: the probability that the answer of rank i (0 = lowest proxy score) is the best of n
    answers drawn without replacement from ``pool``: C(i, n - 1) / C(pool, n). Averaging a statistic of
    the ranked answers with these weights is the unbiased estimate of its best-of-n expectation from
    one pool (lower variance than splitting the pool into groups of n)."""
    check_int("pool", pool, 1)
    check_int("n", n, 1, pool)
    ### BEGIN SOLUTION
    return torch.tensor([math.comb(i, n - 1) for i in range(pool)], dtype=torch.float64) / math.comb(pool, n)
    ### END SOLUTION


@torch.no_grad()
@torch.no_grad()
def sample_pool(model, tokenizer, prompts: list[dict], scorer: Scorer, samples: int, max_new_tokens: int,
                seed: int, gold: Gold | None = None, temperature: float = 1.0, batch_size: int = 512) -> dict:
    """``samples`` answers per prompt at ``temperature`` from ``model``, with their proxy and gold
    scores and log pi_T / pi_ref,T. Returns {"proxy", "gold", "log_ratio": [P, samples] tensors (gold
    NaN where it cannot judge), "responses": [P * samples] texts}."""
    prompt_ids, completions = generate(model, tokenizer, prompts, max_new_tokens, do_sample=True, samples=samples,
                                       seed=seed, batch_size=batch_size, temperature=temperature)
    responses = [tokenizer.decode(c, skip_special_tokens=True).strip() for c in completions]
    questions = [p["question"] for p in prompts for _ in range(samples)]
    shape = (len(prompts), samples)
    return {"proxy": scorer(prompt_ids, completions).float().cpu().view(shape),
            "gold": torch.tensor((gold or judge_gold)(questions, responses), dtype=torch.float32).view(shape),
            "log_ratio": log_ratios(model, prompt_ids, completions, tokenizer.pad_token_id, batch_size=64,
                                    temperature=temperature).view(shape),
            "responses": responses}


def _mean_and_se(per_prompt: torch.Tensor) -> tuple[float, float]:
    """Mean over the judged prompts (NaN left out) and its standard error over prompts."""
    values = per_prompt[~per_prompt.isnan()].double()
    if len(values) == 0:
        return math.nan, math.nan
    se = values.std().item() / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return values.mean().item(), se


def best_of_n_curve(proxy: torch.Tensor, gold: torch.Tensor, ns: list[int]) -> pd.DataFrame:
    """Best-of-n for each n in ``ns`` from one pool of answers per prompt: proxy, gold [P, N] (gold
    NaN for an unjudged prompt). One row per n: n, kl (analytic), sqrt_kl, proxy and gold of the kept
    answer (expected over draws, mean over prompts), gold_se (over prompts), per_prompt (each prompt's
    expected gold, a list)."""
    if proxy.shape != gold.shape or proxy.dim() != 2:
        raise ValueError(f"proxy and gold must be [prompts, pool] tensors of one shape, got {tuple(proxy.shape)} "
                         f"and {tuple(gold.shape)}")
    order = proxy.argsort(dim=1, stable=True)  # ascending: rank i has i answers below it
    ranked_proxy, ranked_gold = proxy.gather(1, order).double(), gold.gather(1, order).double()
    rows = []
    for n in ns:
        weights = best_of_n_weights(proxy.shape[1], n)
        per_prompt = ranked_gold @ weights
        gold_mean, gold_se = _mean_and_se(per_prompt)
        rows.append({"n": n, "kl": best_of_n_kl(n), "sqrt_kl": math.sqrt(best_of_n_kl(n)),
                     "proxy": (ranked_proxy @ weights).mean().item(), "gold": gold_mean, "gold_se": gold_se,
                     "per_prompt": per_prompt.tolist()})
    return pd.DataFrame(rows)


def powers_of_two(limit: int) -> list[int]:
    """1, 2, 4, ... up to ``limit`` (and ``limit`` itself if it is no power of 2)."""
    check_int("limit", limit, 1)
    ns = [2**i for i in range(limit.bit_length()) if 2**i <= limit]
    return ns if ns[-1] == limit else [*ns, limit]


def checkpoint_point(model, tokenizer, prompts: list[dict], scorer: Scorer, config, max_new_tokens: int,
                     seed: int, gold: Gold | None = None) -> dict:
    """One policy on the frontier (``config``: ``FrontierConfig``: samples, temperature, batch size):
    mean proxy and gold of its sampled answers (gold_se over prompts, per_prompt gold), Monte-Carlo KL
    to the base (nats), sqrt_kl, mean words."""
    pool = sample_pool(model, tokenizer, prompts, scorer, config.samples, max_new_tokens, seed, gold,
                       config.temperature, config.batch_size)
    per_prompt = pool["gold"].mean(dim=1)
    gold_mean, gold_se = _mean_and_se(per_prompt)
    kl = pool["log_ratio"].mean().item()
    return {"proxy": pool["proxy"].mean().item(), "gold": gold_mean, "gold_se": gold_se, "kl": kl,
            "sqrt_kl": math.sqrt(max(kl, 0.0)), "per_prompt": per_prompt.tolist(),
            "words": sum(len(r.split()) for r in pool["responses"]) / len(pool["responses"])}


def frontier_callback(model, tokenizer, prompts: list[dict], scorer: Scorer, config, steps: int, max_new_tokens: int,
                      seed: int, gold: Gold | None = None):
    """A ``callback(step, record)`` for ``train_ppo`` / ``train_grpo`` that places the policy on the
    frontier every ``config.every`` steps and at the last (``config``: ``FrontierConfig``); the points
    are added to the step's record under ``frontier``."""
    def callback(step: int, record: dict) -> dict:
        if step % config.every and step != steps:
            return {}
        return {"frontier": {"step": step, **checkpoint_point(model, tokenizer, prompts, scorer, config, max_new_tokens,
                                                                seed, gold)}}
    return callback


def frontier_series(history: list[dict], base: dict) -> pd.DataFrame:
    """The frontier points of an RL run's history, with the base (step 0) first."""
    return pd.DataFrame([{"step": 0, **base}] + [h["frontier"] for h in history if "frontier" in h])


def _paired_noise(first: list[float], second: list[float]) -> float:
    """2 standard errors of the mean per-prompt difference (prompts judged in both)."""
    diff = torch.tensor(first, dtype=torch.float64) - torch.tensor(second, dtype=torch.float64)
    diff = diff[~diff.isnan()]
    return 2 * diff.std().item() / math.sqrt(len(diff)) if len(diff) > 1 else math.inf


def rise_then_fall(curve: pd.DataFrame, x: str = "kl") -> dict:
    """Does gold rise above the base, then fall, while the proxy keeps rising? From a curve in
    optimisation order (n or step) whose first row is the base: the best gold and where (``x``), its
    gain over the base and its fall to the final point, each with a paired noise band (2 standard
    errors of the per-prompt difference), and whether the final proxy is the curve's highest."""
    best, base, final = curve["gold"].idxmax(), curve.index[0], curve.index[-1]
    at = lambda row, key: float(curve.loc[row, key])  # noqa: E731
    gain, fall = at(best, "gold") - at(base, "gold"), at(best, "gold") - at(final, "gold")
    gain_noise = _paired_noise(curve.loc[best, "per_prompt"], curve.loc[base, "per_prompt"])
    fall_noise = _paired_noise(curve.loc[best, "per_prompt"], curve.loc[final, "per_prompt"]) if fall else 0.0
    proxy_keeps_rising = bool(curve["proxy"].iloc[-1] >= curve["proxy"].max() - 1e-12)
    if gain <= gain_noise:
        shape = "gold never rose above the base beyond noise"
    elif fall > fall_noise:
        shape = "gold rose, then fell" + (" while the proxy kept rising" if proxy_keeps_rising else "")
    else:
        shape = "gold rose and had not fallen beyond noise by the end"
    return {"base_gold": at(base, "gold"), "best_gold": at(best, "gold"), f"best_{x}": at(best, x),
            "gain_over_base": gain, "gain_noise": gain_noise, "final_gold": at(final, "gold"), "fall_from_best": fall,
            "fall_noise": fall_noise, "proxy_keeps_rising": proxy_keeps_rising, "shape": shape}


def without_per_prompt(curve) -> dict:
    """A curve (frame) or point (dict) for metrics.json: lists per column, per-prompt gold left out."""
    if isinstance(curve, dict):
        return {k: v for k, v in curve.items() if k != "per_prompt"}
    return curve.drop(columns="per_prompt").round(4).to_dict("list")
