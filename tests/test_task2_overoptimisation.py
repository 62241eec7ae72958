"""Task 2: best-of-n, the frontier's summaries, per-family verdicts and the reward-model checks, on
hand-made numbers (no model needed)."""
import itertools
import math

import pandas as pd
import pytest
import torch

from task2 import evaluate as ev
from task2 import overoptimisation as overopt
from task2 import reward_analysis as ra


@pytest.fixture(scope="module")
def student_overopt(student):
    """task2.overoptimisation as the student wrote it, in the worker."""
    return student.module("task2.overoptimisation")


def test_best_of_n_kl_is_log_n_minus_n_minus_1_over_n():
    assert overopt.best_of_n_kl(1) == 0.0
    assert overopt.best_of_n_kl(2) == pytest.approx(math.log(2) - 0.5)
    assert overopt.best_of_n_kl(64) == pytest.approx(math.log(64) - 63 / 64)
    with pytest.raises(ValueError, match="n"):
        overopt.best_of_n_kl(0)


@pytest.mark.points(1, function="best_of_n_weights")
def test_best_of_n_weights_are_the_probability_that_each_rank_is_the_best_of_n(student_overopt):
    for pool, n in [(5, 1), (5, 2), (6, 3), (4, 4), (7, 5)]:
        weights = student_overopt.best_of_n_weights(pool, n)
        # brute force: every n-subset of ranks 0..pool-1 is equally likely; its best is its largest rank
        counts = torch.zeros(pool, dtype=torch.float64)
        for subset in itertools.combinations(range(pool), n):
            counts[max(subset)] += 1
        torch.testing.assert_close(weights, counts / counts.sum(), msg=lambda m: (
            f"pool {pool}, n {n}: rank i (0 = lowest) is the best of n draws without replacement in C(i, n-1) of "
            f"the C(pool, n) subsets\n{m}"))
    assert student_overopt.best_of_n_weights(5, 1).tolist() == [0.2] * 5, "best-of-1 is one uniform draw"
    assert student_overopt.best_of_n_weights(4, 4).tolist() == [0, 0, 0, 1], "best-of-pool always keeps the top answer"
    with pytest.raises(ValueError, match="n"):
        student_overopt.best_of_n_weights(4, 5)


def test_best_of_n_curve_matches_brute_force_and_the_proxy_never_falls():
    torch.manual_seed(0)
    proxy, gold = torch.randn(3, 6), (torch.rand(3, 6) > 0.5).float()
    gold[2] = math.nan  # an unjudged prompt: left out of gold, kept in the proxy
    curve = overopt.best_of_n_curve(proxy, gold, [1, 2, 3, 6])
    for _, row in curve.iterrows():
        n = int(row["n"])
        picks = [[max(s, key=lambda j: proxy[p, j]) for s in itertools.combinations(range(6), n)] for p in range(3)]
        expected_proxy = sum(sum(proxy[p, j] for j in pick) / len(pick) for p, pick in enumerate(picks)) / 3
        expected_gold = sum(sum(gold[p, j] for j in pick) / len(pick) for p, pick in enumerate(picks[:2])) / 2
        assert row["proxy"] == pytest.approx(float(expected_proxy), abs=1e-6)
        assert row["gold"] == pytest.approx(float(expected_gold), abs=1e-6)
        assert row["kl"] == pytest.approx(overopt.best_of_n_kl(n))
    assert curve["proxy"].is_monotonic_increasing, "a larger n can only raise the kept answer's proxy score"
    assert curve["gold"].iloc[-1] == pytest.approx(float(gold[:2].gather(1, proxy[:2].argmax(1, keepdim=True)).mean()))


def test_powers_of_two():
    assert overopt.powers_of_two(64) == [1, 2, 4, 8, 16, 32, 64]
    assert overopt.powers_of_two(6) == [1, 2, 4, 6]
    assert overopt.powers_of_two(1) == [1]


def _curve(golds, proxies, prompts=40):
    """A curve whose every point has per-prompt gold 0/1 with the given mean (first prompts right)."""
    per_prompt = [[1.0 if i < round(g * prompts) else 0.0 for i in range(prompts)] for g in golds]
    return pd.DataFrame({"kl": range(len(golds)), "gold": golds, "proxy": proxies, "gold_se": 0.05,
                         "per_prompt": per_prompt})


def test_rise_then_fall_reads_the_curve_shape_with_paired_noise():
    shape = overopt.rise_then_fall(_curve([0.4, 0.5, 0.6, 0.45], [0, 1, 2, 3]))
    assert shape["shape"] == "gold rose, then fell while the proxy kept rising"
    assert shape["gain_over_base"] == pytest.approx(0.2) and shape["fall_from_best"] == pytest.approx(0.15)
    assert shape["best_kl"] == 2 and shape["base_gold"] == 0.4
    # 8 of 40 prompts go 0 -> 1: paired noise 2 * sd / sqrt(40) of eight ones and 32 zeros
    assert shape["gain_noise"] == pytest.approx(2 * pd.Series([1.0] * 8 + [0.0] * 32).std() / math.sqrt(40))
    assert overopt.rise_then_fall(_curve([0.4, 0.5, 0.6], [0, 1, 2]))["shape"].startswith("gold rose and had not")
    assert overopt.rise_then_fall(_curve([0.4, 0.39, 0.3], [0, 1, 2]))["shape"].startswith("gold never rose")
    assert overopt.rise_then_fall(_curve([0.4, 0.6, 0.45], [0, 2, 1]))["shape"] == "gold rose, then fell"
    assert overopt.rise_then_fall(_curve([0.4, 0.425, 0.4], [0, 1, 2]))["shape"].startswith("gold never rose"), (
        "one prompt of 40 changing is within the paired noise")


def _results(rows):
    return pd.DataFrame(rows, columns=["model", "prompt", "family", "gold", "rm_reward", "words"])


def test_family_verdicts_separate_learning_from_hacking():
    rows = []
    for i in range(10):  # capitals: base wrong, ppo right on 8 of 10; word counts: base right, ppo wrong on all
        rows += [("base", f"c{i}", "capital", 0.0, 0.0, 4), ("ppo", f"c{i}", "capital", float(i < 8), 0.5, 4),
                 ("base", f"w{i}", "word_count", 1.0, 0.0, 5), ("ppo", f"w{i}", "word_count", 0.0, 1.0, 9),
                 ("base", f"s{i}", "safety", float(i % 2), 0.0, 7), ("ppo", f"s{i}", "safety", float(i % 2), 0.2, 7)]
    verdicts = ev.family_verdicts(_results(rows), "ppo")
    assert verdicts.loc["capital", "verdict"] == "learned" and verdicts.loc["capital", "change"] == pytest.approx(0.8)
    assert verdicts.loc["word_count", "verdict"] == "hacked", "gold fell while the reward model's score rose"
    assert verdicts.loc["safety", "verdict"] == "no change beyond noise"
    # noise = 2 * sd(paired differences) / sqrt(n): capitals' differences are 8 ones and 2 zeros
    assert verdicts.loc["capital", "noise"] == pytest.approx(2 * pd.Series([1.0] * 8 + [0.0] * 2).std() / math.sqrt(10))
    assert "capital +80" in ev.describe_family_verdicts("ppo", verdicts)


@pytest.mark.points(1, function="calibration")
def test_calibration_hand_case(student):
    calibration = student.module("task2.reward_analysis").calibration
    # margins 3, 1, -1 and 0.2: confidences sigma(|m|) 0.953, 0.731, 0.731, 0.550; correct 1, 1, 0, 1
    result = calibration([3.0, 1.0, 0.0, 0.2], [0.0, 0.0, 1.0, 0.0], bins=5)
    table = result["table"]
    assert table["pairs"].tolist() == [1, 2, 1], "bins [0.5, 0.6), [0.7, 0.8) and [0.9, 1.0] hold 1, 2 and 1 pairs"
    s = torch.sigmoid(torch.tensor([3.0, 1.0, 0.2], dtype=torch.float64)).tolist()
    expected = (abs(1 - s[2]) + 2 * abs(0.5 - s[1]) + abs(1 - s[0])) / 4
    assert result["ece"] == pytest.approx(expected), "ECE = sum over bins of (pairs / N) * |accuracy - confidence|"
    assert result["accuracy"] == pytest.approx(0.75), "3 of 4 margins are positive (chosen scored higher)"
    perfect = calibration([10.0] * 8, [0.0] * 8)
    assert perfect["ece"] == pytest.approx(1 - torch.sigmoid(torch.tensor(10.0)).item(), abs=1e-6), (
        "all correct at confidence sigma(10): ECE = 1 - sigma(10)")
    with pytest.raises(ValueError, match="chosen_rewards"):
        calibration([], [])


def test_agreement_of_two_pair_scorers():
    first = {"chosen_rewards": [1.0, 2.0, 0.0, 3.0], "rejected_rewards": [0.0, 0.0, 1.0, 0.0]}
    second = {"chosen_rewards": [0.5, -1.0, -0.5, 1.0], "rejected_rewards": [0.0, 0.0, 0.0, 0.0]}
    result = ra.agreement(first, second)
    assert result["same_order"] == pytest.approx(0.75), "they disagree on the second pair only"
    assert result["accuracy"] == [pytest.approx(0.75), pytest.approx(0.5)]
    with pytest.raises(ValueError, match="same pairs"):
        ra.agreement(first, {"chosen_rewards": [1.0], "rejected_rewards": [0.0]})


def test_verbosity_probe_with_a_scorer_that_pays_per_word():
    rows = [{"system": "", "question": "What is the capital of France?", "chosen": "Its capital is Paris.",
             "rejected": "I'm not sure, sorry."},
            {"system": "", "question": "Describe a cat in exactly 3 words.", "chosen": "The small cat.",
             "rejected": "The cat."}]
    per_word = lambda prompts, responses: torch.tensor([float(len(r.split())) for r in responses])  # noqa: E731
    probe = ra.verbosity_probe(rows, per_word, fillers=("I hope this helps.",))
    assert probe["rm_delta"].tolist() == [4.0] * 4, "the scorer pays one per word: the filler adds four"
    assert probe["gold_neutral"].tolist() == [True, True, False, True], (
        "the filler breaks the exact word count of the right description, and nothing else")
    summary = ra.verbosity_summary(probe)
    assert summary.loc["I hope this helps.", "answers"] == 3
    assert summary.loc["I hope this helps.", "gold_changed"] == pytest.approx(0.25)
    assert summary.loc["I hope this helps.", "share_rm_up"] == 1.0


def test_length_matched_compares_right_and_wrong_answers_of_similar_length():
    rows = [("m", f"p{i}", "capital", float(i % 2), float(i % 2) + 0.1 * w, w) for i, w in enumerate([4] * 4 + [9] * 4)]
    table = ra.length_matched(_results(rows), bins=2)
    assert len(table) == 2
    assert table["difference"].tolist() == [pytest.approx(1.0)] * 2, "within each length bin, right answers score +1"
    assert table["right_size"].tolist() == [2, 2]
