"""What the trained reward model pays for, measured under control rather than read from a correlation.

* **Verbosity probe**: the same answers with and without one neutral sentence appended; the reward
  model's score difference per answer, and the gold judge's (the filler must not change what the answer
  says - where it breaks a constraint, e.g. an exact word count, the judge says so).
* **Length-controlled comparison**: answers of similar length, gold-right against gold-wrong - does the
  reward model still tell them apart when length cannot help?
* **Calibration**: P(chosen > rejected) = sigma(r_c - r_r) against how often that is right, on the test
  pairs (reliability diagram, expected calibration error).
* **Agreement with DPO's implicit reward** beta log pi/pi_ref on the same pairs.

Pure functions of scores: the notebook computes the scores (``task2.reward_model.RewardScorer``) and
passes them in.
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from pa5.checks import check_int
from pa5.judge import gold_score

# Appended to an answer by the verbosity probe: one sentence the world's chosen answers use (a capital's
# friendly tail) and one no answer in the data has.
FILLERS = ("Many people visit it every year.", "I hope this helps.")


def with_filler(response: str, filler: str) -> str:
    """``response`` followed by one space and ``filler``."""
    return f"{response.rstrip()} {filler}"


def text_scorer(scorer, tokenizer):
    """``score(prompts, responses) -> [N]``: ``scorer`` (a ``RewardScorer``, on token ids) on text
    answers to {"system", "question"} prompts, encoded as the policy's own answers are (chat template,
    then the response and its end-of-turn token)."""
    from pa5.llm import prompt_ids
    from task2.data import completion_ids

    def score(prompts: list[dict], responses: list[str]) -> torch.Tensor:
        return scorer([prompt_ids(tokenizer, p["system"], p["question"]) for p in prompts],
                      [completion_ids(tokenizer, r) for r in responses]).float().cpu()
    return score


def verbosity_probe(rows: list[dict], score, fillers: tuple[str, ...] = FILLERS) -> pd.DataFrame:
    """One row per (answer, filler) over the chosen and rejected answers of ``rows``: family, words,
    filler, rm_delta = r(answer + filler) - r(answer), gold_delta (the judge's; NaN outside its
    families), gold_neutral (the filler left the judge's verdict unchanged, or there is none). ``score(prompts, responses) -> [N]``
    scores text answers with the reward model (:func:`text_scorer`)."""
    answers = [(r, r[kind]) for r in rows for kind in ("chosen", "rejected")]
    questions = [r["question"] for r, _ in answers]
    prompts = [{"system": r["system"], "question": r["question"]} for r, _ in answers]
    plain = score(prompts, [a for _, a in answers])
    frames = []
    for filler in fillers:
        padded_answers = [with_filler(a, filler) for _, a in answers]
        padded = score(prompts, padded_answers)
        gold_before = [gold_score(q, a) for q, (_, a) in zip(questions, answers)]
        gold_after = [gold_score(q, a)[0] for q, a in zip(questions, padded_answers)]
        frames.append(pd.DataFrame({
            "family": [family for _, family in gold_before], "words": [len(a.split()) for _, a in answers],
            "filler": filler, "rm_delta": [float(p - b) for p, b in zip(padded, plain)],
            "gold_delta": [after - before for (before, _), after in zip(gold_before, gold_after)]}))
    table = pd.concat(frames, ignore_index=True)
    # outside the judge's families (the real orca questions) no verdict can change: the filler counts as neutral
    return table.assign(gold_neutral=(table["gold_delta"] == 0) | table["gold_delta"].isna())


def verbosity_summary(probe: pd.DataFrame) -> pd.DataFrame:
    """Per filler, over the gold-neutral answers (same gold with and without it): answers, mean
    rm_delta with its standard error, the share with rm_delta > 0; and the share of all answers whose
    gold the filler changed."""
    rows = []
    for filler, group in probe.groupby("filler", sort=False):
        neutral = group[group["gold_neutral"]]["rm_delta"]
        rows.append({"filler": filler, "answers": len(neutral), "rm_delta": neutral.mean(),
                     "rm_delta_se": neutral.std() / math.sqrt(len(neutral)) if len(neutral) > 1 else math.nan,
                     "share_rm_up": (neutral > 0).mean(), "gold_changed": 1 - group["gold_neutral"].mean()})
    return pd.DataFrame(rows).set_index("filler")


def length_matched(results: pd.DataFrame, bins: int = 4) -> pd.DataFrame:
    """Answers (``evaluate.evaluate_model`` rows, every model) in ``bins`` length quantile bins (words):
    per bin the number of gold-right and gold-wrong answers (with a gold reward model's unbounded
    scores: above and below their median), their mean reward-model scores and the difference. A positive difference at every length: the reward model tells right from wrong beyond
    length."""
    check_int("bins", bins, 1)
    judged = results.dropna(subset=["gold"]).copy()
    judged["length_bin"] = pd.qcut(judged["words"], bins, duplicates="drop")
    binary = judged["gold"].isin([0.0, 1.0]).all()  # the judge's verdicts; a gold reward model's scores are not
    judged["right"] = judged["gold"] == 1.0 if binary else judged["gold"] > judged["gold"].median()
    table = judged.groupby(["length_bin", "right"], observed=True)["rm_reward"].agg(["mean", "size"]).unstack("right")
    table.columns = [f"{'right' if right else 'wrong'}_{stat}" for stat, right in table.columns]
    return table.assign(difference=table.get("right_mean") - table.get("wrong_mean"))


def calibration(chosen_rewards, rejected_rewards, bins: int = 10) -> dict:
    """Calibration of the Bradley-Terry probability on labelled pairs (the chosen answer is the right
    one). Confidence = sigma(|r_c - r_r|) in [0.5, 1], correct = r_c > r_r; per confidence bin of
    width 0.5 / ``bins``: pairs, mean confidence, accuracy. ECE = sum_b (pairs_b / N) |accuracy_b -
    confidence_b|. Returns {"table", "ece", "accuracy", "mean_confidence"}."""
    check_int("bins", bins, 1)
    margin = torch.as_tensor(chosen_rewards, dtype=torch.float64) - torch.as_tensor(rejected_rewards, dtype=torch.float64)
    if margin.dim() != 1 or len(margin) == 0:
        raise ValueError(f"chosen_rewards and rejected_rewards must be two equal-length non-empty lists, got "
                         f"{len(chosen_rewards)} and {len(rejected_rewards)}")
    ### BEGIN SOLUTION
    confidence, correct = torch.sigmoid(margin.abs()), (margin > 0).double()
    index = ((confidence - 0.5) / (0.5 / bins)).long().clamp(max=bins - 1)  # 1.0 falls in the last bin
    rows, ece = [], 0.0
    for b in range(bins):
        member = index == b
        if member.any():
            conf, acc = confidence[member].mean().item(), correct[member].mean().item()
            ece += member.sum().item() / len(margin) * abs(acc - conf)
            rows.append({"bin": f"[{0.5 + b * 0.5 / bins:.2f}, {0.5 + (b + 1) * 0.5 / bins:.2f})",
                         "pairs": int(member.sum()), "confidence": conf, "accuracy": acc})
    return {"table": pd.DataFrame(rows), "ece": ece, "accuracy": correct.mean().item(),
            "mean_confidence": confidence.mean().item()}
    ### END SOLUTION


def agreement(first: dict, second: dict) -> dict:
    """How two pair scorers (dicts with "chosen_rewards" and "rejected_rewards", e.g. the reward model
    and DPO's implicit reward) agree on the same pairs: the share of pairs they order the same way, the
    Pearson correlation of their margins, and each one's accuracy."""
    margins = [torch.as_tensor(s["chosen_rewards"], dtype=torch.float64) - torch.as_tensor(s["rejected_rewards"],
                                                                                             dtype=torch.float64)
               for s in (first, second)]
    if margins[0].shape != margins[1].shape:
        raise ValueError(f"the two scorers must score the same pairs, got {len(margins[0])} and {len(margins[1])}")
    same = ((margins[0] > 0) == (margins[1] > 0)).double().mean().item()
    return {"same_order": same, "margin_correlation": torch.corrcoef(torch.stack(margins))[0, 1].item(),
            "accuracy": [(m > 0).double().mean().item() for m in margins]}
