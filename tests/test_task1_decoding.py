"""Task 1: our decoding strategies against transformers' generate and its logit warpers."""
import itertools
import math

import pytest
import torch
from transformers.generation.logits_process import (MinPLogitsWarper, NoRepeatNGramLogitsProcessor,
                                                    RepetitionPenaltyLogitsProcessor, TopKLogitsWarper,
                                                    TopPLogitsWarper, TypicalLogitsWarper)

from pa5.recipes import tiny_llama

PAD = 0
MAX_NEW = 10
TINY_LLAMA = "pa5.recipes:tiny_llama"


@pytest.fixture(scope="module")
def model():
    """A tiny random Llama (generate's copy, here); its EOS is the token greedy decoding emits
    most, so sequences do end."""
    return tiny_llama()


@pytest.fixture(scope="module")
def lm(student):
    """The same Llama, built in the worker from the same recipe: what the student's functions get."""
    return student.build(TINY_LLAMA)


@pytest.fixture(scope="module")
def D(student):
    """task1.decoding as the student wrote it, run in the worker (generate and HF's warpers are
    unavailable to it there)."""
    return student.module("task1.decoding")


@pytest.fixture(scope="module")
def prompts():
    """Three prompts of lengths 7, 5 and 2, left-padded with PAD."""
    torch.manual_seed(1)
    ids = torch.randint(3, 48, (3, 7))
    mask = torch.ones_like(ids)
    mask[1, :2] = 0
    mask[2, :5] = 0
    return ids.masked_fill(mask == 0, PAD), mask


@pytest.fixture(scope="module")
def eos(model, prompts):
    ids, mask = prompts
    out = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=PAD)
    tokens = out[:, ids.shape[1]:].flatten()
    return int(tokens.mode().values)


def _cases(prompts):
    ids, mask = prompts
    return [("single prompt", ids[:1], mask[:1]), ("left-padded batch", ids, mask)]


@pytest.mark.points(2, function="_one_token_at_a_time")
@pytest.mark.parametrize("use_eos", [False, True])
def test_greedy_matches_generate(D, lm, model, prompts, eos, use_eos):
    eos_id = eos if use_eos else None
    for name, ids, mask in _cases(prompts):
        expected = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False,
                                  eos_token_id=eos_id, pad_token_id=PAD)
        got = D.greedy_search(lm, ids, MAX_NEW, eos_token_id=eos_id, pad_token_id=PAD, attention_mask=mask)
        assert got.shape == expected.shape, (f"{name}: shape {tuple(got.shape)} vs generate's {tuple(expected.shape)} "
                                             "- stop when every sequence has finished, and not before")
        assert torch.equal(got, expected), (f"{name}: tokens differ - with left padding, position ids must be "
                                            "cumsum(attention_mask) - 1, and the mask must grow by one each step")


# Tokens of the hand-computed cases: 0 pad, 1 "a", 2 "b", 3 "c" (the prompt), 4 EOS. Row v is the
# next-token distribution after token v (pa5.recipes.BigramLM: it depends on the last token only).
BIGRAM = [[0.2] * 5,
          [0.01, 0.32, 0.30, 0.28, 0.09],  # after a
          [0.01, 0.05, 0.05, 0.04, 0.85],  # after b
          [0.01, 0.40, 0.20, 0.04, 0.35],  # after c
          [0.2] * 5]


@pytest.mark.points(1, function="greedy_search")
def test_greedy_search_takes_the_argmax_by_hand(student, D):
    """From "c" the likeliest token is a (.40), then a (.32) again; from "b" it is EOS (.85)."""
    lm = student.build("pa5.recipes:bigram_lm", table=BIGRAM)
    out = D.greedy_search(lm, torch.tensor([[3], [2]]), 3, eos_token_id=4, pad_token_id=0)
    assert out.tolist() == [[3, 1, 1, 1], [2, 4, 0, 0]], (
        f"expected [[c, a, a, a], [b, EOS, pad, pad]] = [[3, 1, 1, 1], [2, 4, 0, 0]], got {out.tolist()} - the "
        "argmax of the logits at every step; a row that has emitted EOS continues with pad_token_id")


@pytest.mark.points(0.5, function="sample")
@pytest.mark.parametrize("temperature, top_k, top_p", list(itertools.product([0.5, 1.0, 1.7], [None, 4], [None, 0.7])))
def test_sampling_matches_generate_with_the_same_seed(D, lm, model, prompts, eos, temperature, top_k, top_p):
    for (name, ids, mask), seed in itertools.product(_cases(prompts), [0, 1]):
        torch.manual_seed(seed)
        expected = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=True,
                                  temperature=temperature, top_k=top_k or 0, top_p=top_p or 1.0,
                                  eos_token_id=eos, pad_token_id=PAD)
        got = D.sample(lm, ids, MAX_NEW, temperature=temperature, top_k=top_k, top_p=top_p,
                       eos_token_id=eos, pad_token_id=PAD, attention_mask=mask, _seed=seed)
        assert torch.equal(got, expected), (
            f"{name}, seed {seed}: samples differ - order is temperature -> top-k -> top-p -> "
            "multinomial(softmax), one multinomial per step for every row (finished ones too)")


@pytest.mark.points(2, function="beam_search")
def test_beam_search_two_steps_by_hand(student, D):
    """Two beams, two new tokens, from the prompt "c".

    Step 1: candidates a (.40), EOS (.35), b (.20), c (.04). The best two are a and EOS: [EOS] ends
    and is finished with score ln .35 / 1 = -1.050; the beams that go on are a and b.
    Step 2 (the last): b EOS .2 x .85 = .170, a a .4 x .32 = .128, a b .120, a c .112. The best two
    end (at EOS, or at the length limit) and are scored ln p / 2: b EOS -0.886, a a -1.028.
    Finished: b EOS -0.886, a a -1.028, [EOS] -1.050. Greedy would say "a a" (.40 then .32)."""
    lm = student.build("pa5.recipes:bigram_lm", table=BIGRAM)
    prompt = torch.tensor([[3]])
    sequences, scores = D.beam_search(lm, prompt, 2, 2, num_return_sequences=2, eos_token_id=4)
    assert sequences.tolist() == [[3, 2, 4], [3, 1, 1]], (
        f"expected [[c, b, EOS], [c, a, a]] = [[3, 2, 4], [3, 1, 1]], got {sequences.tolist()} - keep 2 * num_beams "
        "candidates by summed log-probability; a candidate ending in EOS is finished (not expanded) when it ranks "
        "among the best num_beams; the best num_beams unfinished candidates go on")
    torch.testing.assert_close(scores, torch.tensor([math.log(0.2 * 0.85) / 2, math.log(0.4 * 0.32) / 2]), msg=lambda m: (
        "a finished hypothesis scores sum log p / T ** length_penalty, T = its generated tokens (EOS included): "
        "here ln(.2 x .85) / 2 and ln(.4 x .32) / 2\n" + m))
    sequences, scores = D.beam_search(lm, prompt, 2, 2, length_penalty=0.0, eos_token_id=4)
    assert sequences.tolist() == [[3, 4]], (
        f"with length_penalty 0 the score is the plain sum of log-probs: [EOS] alone (ln .35 = -1.050) beats "
        f"b EOS (ln .17 = -1.772); the output is as long as its longest returned hypothesis: expected [[3, 4]], "
        f"got {sequences.tolist()}")
    assert scores.item() == pytest.approx(math.log(0.35), abs=1e-5), "its score is ln .35"


@pytest.mark.points(1, function="beam_search")
@pytest.mark.parametrize("num_beams", [2, 3])
def test_beam_search_default_mode_matches_generate(D, lm, model, prompts, eos, num_beams):
    """generate's defaults (length_penalty 1, early_stopping False, one returned sequence)."""
    for name, ids, mask in _cases(prompts):
        expected = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False, num_beams=num_beams,
                                  eos_token_id=eos, pad_token_id=PAD, output_scores=True, return_dict_in_generate=True)
        sequences, scores = D.beam_search(lm, ids, num_beams, MAX_NEW, eos_token_id=eos, pad_token_id=PAD,
                                        attention_mask=mask)
        assert sequences.shape == expected.sequences.shape, (
            f"{name}: shape {tuple(sequences.shape)}, generate's {tuple(expected.sequences.shape)} - the output is as "
            "long as the longest returned hypothesis; positions a shorter one does not reach hold pad_token_id or "
            "eos_token_id (generate's `or`: pad 0 falls back to EOS)")
        assert torch.equal(sequences, expected.sequences), (
            f"{name}: beams differ from generate's - at step 1 only beam 0 expands (the other beams start at -1e9); "
            "then 2 * num_beams candidates, finished only among the top num_beams")
        torch.testing.assert_close(scores, expected.sequences_scores, atol=1e-4, rtol=0, msg=lambda m: (
            f"{name}: scores differ - sum of log-probs / (generated tokens incl. EOS) ** length_penalty\n{m}"))


@pytest.mark.points(0.0625, function="beam_search", level="stretch")
@pytest.mark.parametrize("num_beams, length_penalty, early_stopping, num_return_sequences", [
    (b, lp, es, r) for b, lp, es, r in itertools.product([2, 3], [1.0, 0.0, 2.0, -0.5], [False, True, "never"], [1, 2])
])
def test_beam_search_matches_generate(D, lm, model, prompts, eos, num_beams, length_penalty, early_stopping,
                                      num_return_sequences):
    for name, ids, mask in _cases(prompts):
        expected = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False,
                                  num_beams=num_beams, length_penalty=length_penalty, early_stopping=early_stopping,
                                  num_return_sequences=num_return_sequences, eos_token_id=eos, pad_token_id=PAD,
                                  output_scores=True, return_dict_in_generate=True)
        sequences, scores = D.beam_search(lm, ids, num_beams, MAX_NEW, length_penalty=length_penalty,
                                        early_stopping=early_stopping, num_return_sequences=num_return_sequences,
                                        eos_token_id=eos, pad_token_id=PAD, attention_mask=mask)
        assert torch.equal(sequences, expected.sequences), (
            f"{name}: beams differ - keep 2*num_beams candidates, finish only those among the top num_beams, "
            "and check the early-stopping rule for this mode")
        torch.testing.assert_close(scores, expected.sequences_scores, atol=1e-4, rtol=0, msg=lambda m: (
            f"{name}: scores differ - score = sum of log-probs / (generated tokens incl. EOS) ** length_penalty\n{m}"))


@pytest.mark.points(1, function="beam_search")
def test_beam_search_without_eos_runs_to_the_limit(D, lm, model, prompts):
    ids, mask = prompts
    expected = model.generate(ids, attention_mask=mask, max_new_tokens=6, num_beams=3, do_sample=False,
                              num_return_sequences=3, output_scores=True, return_dict_in_generate=True)
    sequences, scores = D.beam_search(lm, ids, 3, 6, num_return_sequences=3, attention_mask=mask)
    assert sequences.shape == (9, ids.shape[1] + 6), (
        f"3 prompts x 3 returned beams, prompt + 6 new tokens: expected {(9, ids.shape[1] + 6)}, got {tuple(sequences.shape)}")
    assert torch.equal(sequences, expected.sequences), (
        "without EOS every beam runs to max_new_tokens: the beams differ from generate's - check the 2 * num_beams "
        "candidates per step and that only beam 0 expands at step 1")
    torch.testing.assert_close(scores, expected.sequences_scores, atol=1e-4, rtol=0, msg=lambda m: (
        "a finished beam's score is sum log p / T ** length_penalty (T = generated tokens)\n" + m))


def test_results_can_feed_a_gradient_tracking_forward(student, lm, prompts):
    ids, mask = prompts
    assert student.call("pa5.recipes:greedy_output_feeds_a_gradient_forward", lm, ids, mask) is True, (
        "greedy_search's output cannot feed a gradient-tracking forward: decode under torch.no_grad(), "
        "not torch.inference_mode()")


@pytest.mark.points(1, function="_one_token_at_a_time")
def test_eos_stops_and_pads(D, lm, model, prompts, eos):
    ids, mask = prompts
    out = D.greedy_search(lm, ids, 30, eos_token_id=eos, pad_token_id=PAD, attention_mask=mask)
    generated = out[:, ids.shape[1]:]
    ended = (generated == eos).any(dim=1)
    assert ended.any(), "the fixture's EOS is the most frequent greedy token: some sequence must end"
    for row in generated[ended]:
        after = row[int((row == eos).nonzero()[0]) + 1:]
        assert (after == PAD).all(), "after its EOS a sequence continues with pad_token_id only"
    i = int(ended.nonzero()[0])
    alone = D.greedy_search(lm, ids[i:i + 1], 30, eos_token_id=eos, pad_token_id=PAD, attention_mask=mask[i:i + 1])
    assert alone[0, -1] == eos and alone.shape[1] < ids.shape[1] + 30, (
        "generation must stop as soon as every sequence has finished")
    no_eos = D.greedy_search(lm, ids, 7, attention_mask=mask)
    assert no_eos.shape[1] == ids.shape[1] + 7, "eos_token_id=None means exactly max_new_tokens"


@pytest.mark.parametrize("which", [pytest.param("top_k", marks=pytest.mark.points(1, function="top_k_filter")),
                                   pytest.param("top_p", marks=pytest.mark.points(1, function="top_p_filter"))])
def test_filters_match_hf_warpers_including_ties(D, which):
    torch.manual_seed(0)
    for trial in range(200):
        # integer logits make ties common; -inf entries mimic an earlier filter
        logits = torch.randint(-4, 5, (4, 30)).float()
        if trial % 3 == 0:
            logits[:, :5] = float("-inf")
        k, p, keep = trial % 12, [0.1, 0.5, 0.9, 0.99, 1.0][trial % 5], 1 + trial % 3
        if which == "top_k" and k:
            expected = TopKLogitsWarper(k, min_tokens_to_keep=keep)(None, logits)
            assert torch.equal(D.top_k_filter(logits, k, keep), expected), (
                f"top-k (k={k}, min_keep={keep}): keep every logit >= the k-th largest value (ties included)")
        if which == "top_p":
            expected = TopPLogitsWarper(p, min_tokens_to_keep=keep)(None, logits)
            assert torch.equal(D.top_p_filter(logits, p, keep), expected), (
                f"top-p (p={p}, min_keep={keep}): sort ascending, drop tokens while the cumulative mass <= 1 - p")


@pytest.mark.points(1, function="top_k_filter")
def test_top_k_filter_hand_case(D):
    logits = torch.tensor([[1.0, 3.0, 3.0, 2.0, 0.0]])
    assert torch.equal(D.top_k_filter(logits, 2), torch.tensor([[-float("inf"), 3.0, 3.0, -float("inf"), -float("inf")]])), (
        "k = 2 keeps the two 3.0s and sets every other logit to -inf (not 0, not dropped)")
    assert torch.isfinite(D.top_k_filter(logits, 3)).sum() == 3, "k = 3 keeps exactly three tokens here (no tie at the 3rd)"
    assert torch.isfinite(D.top_k_filter(logits, 0, min_tokens_to_keep=2)).sum() == 2, (
        "k = 0 is raised to min_tokens_to_keep = 2: k = max(k, min_tokens_to_keep)")


@pytest.mark.points(1, function="top_p_filter")
def test_top_p_filter_keeps_the_token_that_crosses_p(D):
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    kept = torch.isfinite(D.top_p_filter(probs.log(), 0.7))
    assert kept.tolist() == [[True, True, False, False]], "0.5 < 0.7, so the 0.3 token that crosses p stays"
    assert torch.isfinite(D.top_p_filter(probs.log(), 0.5)).sum() == 1, (
        "p = 0.5: the 0.5 token alone reaches p, so it alone stays (ties at the boundary count as reached)")


# --------------------------------------------------------------------------- min-p, typical, repetition controls


def _random_logits(trial: int) -> torch.Tensor:
    """[4, 30]: integer logits (ties) or spread-out ones, sometimes with -inf from an earlier filter."""
    logits = torch.randint(-4, 5, (4, 30)).float() if trial % 2 else torch.randn(4, 30) * 3
    if trial % 3 == 0:
        logits[:, :5] = float("-inf")
    return logits


@pytest.mark.parametrize("which", [pytest.param("min_p", marks=pytest.mark.points(0.75, function="min_p_filter")),
                                   pytest.param("typical", marks=pytest.mark.points(0.75, function="typical_filter"))])
def test_min_p_and_typical_filters_match_hf_warpers(D, which):
    torch.manual_seed(0)
    for trial in range(150):
        logits, keep = _random_logits(trial), 1 + trial % 3
        for min_p in ((0.0, 0.05, 0.3, 1.0) if which == "min_p" else ()):
            expected = MinPLogitsWarper(min_p, min_tokens_to_keep=keep)(None, logits.clone())
            assert torch.equal(D.min_p_filter(logits, min_p, keep), expected), (
                f"min-p (min_p={min_p}, min_keep={keep}): remove tokens with probability < min_p * the top "
                "probability, then keep the min_keep most likely (torch.topk on the probabilities)")
        for mass in ((0.1, 0.5, 0.9, 0.99) if which == "typical" else ()):
            expected = TypicalLogitsWarper(mass, min_tokens_to_keep=keep)(None, logits.clone())
            assert torch.equal(D.typical_filter(logits, mass, keep), expected), (
                f"typical (mass={mass}, min_keep={keep}): sort by |-log p - H| ascending, keep up to the first "
                "token where the cumulative mass reaches `mass`, plus every token exactly as close to H")


@pytest.mark.points(0.5, function="min_p_filter")
def test_min_p_hand_case(D):
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    assert torch.isfinite(D.min_p_filter(probs.log(), 0.4)).tolist() == [[True, True, False, False]], (
        "min_p 0.4 of a top probability 0.5 is a threshold of 0.2: 0.5 and 0.3 stay")
    assert torch.isfinite(D.min_p_filter(probs.log(), 1.0)).sum() == 1, "min_p = 1 keeps only the most likely token"


@pytest.mark.points(0.5, function="typical_filter")
def test_typical_hand_case(D):
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    # H = 1.142 nats; surprisals 0.69, 1.20, 1.90, 3.00: the 0.3 token is the most typical, then the 0.5 one
    kept = torch.isfinite(D.typical_filter(probs.log(), 0.2))
    assert kept.tolist() == [[False, True, False, False]], (
        "typical keeps the token whose surprisal -log p is closest to the entropy first (here the 0.3 token, "
        "not the most likely one)")
    assert torch.isfinite(D.typical_filter(probs.log(), 0.6)).tolist() == [[True, True, False, False]], (
        "mass 0.6: the 0.3 token (most typical) then the 0.5 one are needed to reach it; the rest go")


@pytest.mark.parametrize("which", [
    pytest.param("penalty", marks=pytest.mark.points(0.75, function="penalize_repetition")),
    pytest.param("ngrams", marks=pytest.mark.points(0.75, function="ban_repeated_ngrams"))])
def test_repetition_controls_match_hf_processors(D, which):
    torch.manual_seed(0)
    for trial in range(100):
        sequences = torch.randint(0, 6 if trial % 2 else 30, (4, 3 + trial % 9))
        scores = torch.randn(4, 30) * 3
        start = torch.randint(0, sequences.shape[1], (4,))
        penalty = (0.5, 1.3, 2.0)[trial % 3]
        expected = RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=start)(sequences, scores.clone())
        assert which != "penalty" or torch.equal(D.penalize_repetition(scores, sequences, penalty, start), expected), (
            f"repetition penalty {penalty}: tokens present in the row (positions from prompt_start on) are divided "
            "by the penalty if their score is positive, multiplied by it if negative; the others are unchanged")
        for n in ((1, 2, 3, 4) if which == "ngrams" else ()):
            expected = NoRepeatNGramLogitsProcessor(n)(sequences, scores.clone())
            assert torch.equal(D.ban_repeated_ngrams(scores, sequences, n), expected), (
                f"no-repeat {n}-grams: ban (-inf) every token that follows an earlier occurrence of the row's last "
                f"{n - 1} tokens; nothing is banned while the row is shorter than {n}")


@pytest.mark.points(0.5, function="penalize_repetition")
def test_repetition_penalty_hand_case(D):
    scores = torch.tensor([[2.0, -2.0, 1.0, -1.0]])
    seen = torch.tensor([[0, 1, 1]])
    assert D.penalize_repetition(scores, seen, 2.0).tolist() == [[1.0, -4.0, 1.0, -1.0]], (
        "a seen token with a positive score is divided by the penalty, a negative one multiplied by it")
    assert D.penalize_repetition(scores, seen, 2.0, torch.tensor([2])).tolist() == [[2.0, -4.0, 1.0, -1.0]], (
        "positions before prompt_start are left padding: token 0 there is no occurrence")


@pytest.mark.points(0.5, function="ban_repeated_ngrams")
def test_ngram_ban_hand_case(D):
    banned = D.ban_repeated_ngrams(torch.zeros(1, 4), torch.tensor([[1, 2, 3, 1, 2]]), 3)
    assert torch.isinf(banned).tolist() == [[False, False, False, True]], (
        "the row ends with (1, 2), and (1, 2, 3) occurred: token 3 is banned, nothing else")
    assert not torch.isinf(D.ban_repeated_ngrams(torch.zeros(1, 4), torch.tensor([[1, 2]]), 3)).any(), (
        "a sequence shorter than n has no complete n-gram yet: nothing is banned")


CONTROLS = [{"repetition_penalty": rp, "no_repeat_ngram_size": n}
            for rp, n in itertools.product([None, 1.3, 0.7], [None, 1, 2, 3])][1:]


@pytest.mark.parametrize("search", [
    pytest.param("greedy", marks=pytest.mark.points(0.125, function="_one_token_at_a_time")),
    pytest.param("beam", marks=pytest.mark.points(0.125, function="beam_search", level="stretch"))])
@pytest.mark.parametrize("controls", CONTROLS)
def test_greedy_and_beam_with_repetition_controls_match_generate(D, lm, model, prompts, eos, controls, search):
    hf = {k: v for k, v in controls.items() if v is not None}
    for name, ids, mask in _cases(prompts):
        if search == "beam":
            continue
        expected = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False,
                                  eos_token_id=eos, pad_token_id=PAD, **hf)
        got = D.greedy_search(lm, ids, MAX_NEW, eos_token_id=eos, pad_token_id=PAD, attention_mask=mask, **controls)
        assert torch.equal(got, expected), (
            f"greedy {controls}, {name}: tokens differ - apply the repetition penalty, then the n-gram ban, to the "
            "raw logits before the argmax, on the whole sequence so far (prompt included, left padding not)")
    for name, ids, mask in _cases(prompts) if search == "beam" else ():
        expected = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=False, num_beams=3,
                                  eos_token_id=eos, pad_token_id=PAD, output_scores=True, return_dict_in_generate=True,
                                  **hf)
        sequences, scores = D.beam_search(lm, ids, 3, MAX_NEW, eos_token_id=eos, pad_token_id=PAD,
                                        attention_mask=mask, **controls)
        assert torch.equal(sequences, expected.sequences), (
            f"beam {controls}, {name}: beams differ - in beam search the controls act on each beam's log-probs "
            "(after log_softmax), with that beam's own running sequence")
        torch.testing.assert_close(scores, expected.sequences_scores, atol=1e-4, rtol=0, msg=lambda m: (
            f"beam {controls}, {name}: same beams, other scores - the penalised log-probs are what is summed\n" + m))


@pytest.mark.points(0.25, function="sample")
@pytest.mark.parametrize("options", [
    {"min_p": 0.1}, {"min_p": 0.3, "temperature": 1.5}, {"min_p": 0.05, "top_k": 5, "top_p": 0.9},
    {"typical_p": 0.9}, {"typical_p": 0.5, "temperature": 0.8, "top_k": 10},
    {"typical_p": 0.7, "min_p": 0.05, "temperature": 1.2}, {"repetition_penalty": 1.3, "temperature": 0.7},
    {"no_repeat_ngram_size": 2, "top_p": 0.8}, {"repetition_penalty": 0.8, "no_repeat_ngram_size": 3, "min_p": 0.1},
])
def test_sampling_with_min_p_typical_and_repetition_controls_matches_generate(D, lm, model, prompts, eos, options):
    hf = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, **options}
    for (name, ids, mask), seed in itertools.product(_cases(prompts), [0, 1]):
        torch.manual_seed(seed)
        expected = model.generate(ids, attention_mask=mask, max_new_tokens=MAX_NEW, do_sample=True,
                                  eos_token_id=eos, pad_token_id=PAD, **hf)
        got = D.sample(lm, ids, MAX_NEW, eos_token_id=eos, pad_token_id=PAD, attention_mask=mask, _seed=seed,
                       **options)
        assert torch.equal(got, expected), (
            f"{options}, {name}, seed {seed}: samples differ - generate's order is repetition penalty -> n-gram ban "
            "-> temperature -> top-k -> top-p -> min-p -> typical -> multinomial(softmax)")


@pytest.mark.parametrize("call, argument", [
    (lambda D, m, ids: D.greedy_search(m, ids, -1), "max_new_tokens"),
    (lambda D, m, ids: D.sample(m, ids, -3), "max_new_tokens"),
    (lambda D, m, ids: D.beam_search(m, ids, 0, 5), "num_beams"),
    (lambda D, m, ids: D.beam_search(m, ids, 2, 5, num_return_sequences=3), "num_return_sequences"),
    (lambda D, m, ids: D.beam_search(m, ids, 2, 5, early_stopping="sometimes"), "early_stopping"),
    (lambda D, m, ids: D.top_k_filter(torch.zeros(1, 5), -1), "k"),
    (lambda D, m, ids: D.top_p_filter(torch.zeros(1, 5), 0.0), "p"),
    (lambda D, m, ids: D.top_p_filter(torch.zeros(1, 5), 1.5), "p"),
    (lambda D, m, ids: D.sample(m, ids, 5, top_p=0.0), "top_p"),
    (lambda D, m, ids: D.sample(m, ids, 5, top_k=-2), "top_k"),
    (lambda D, m, ids: D.sample(m, ids, 5, temperature=0.0), "temperature"),
    (lambda D, m, ids: D.sample(m, ids, 5, temperature=-1.0), "temperature"),
    (lambda D, m, ids: D.greedy_search(m, ids[:, :0], 5), "input_ids"),
    (lambda D, m, ids: D.greedy_search(m, ids, 5, attention_mask=torch.ones(1, 2)), "attention_mask"),
    (lambda D, m, ids: D.beam_search(m, ids, 2, 5, attention_mask=torch.ones(3, 3)), "attention_mask"),
    (lambda D, m, ids: D.greedy_search(m, ids, 5, attention_mask=[[1] * 7] * 3), "attention_mask"),
    (lambda D, m, ids: D.greedy_search(m, ids, 5, attention_mask=torch.full((3, 7), 0.5)), "attention_mask"),
    (lambda D, m, ids: D.greedy_search(m, ids.float(), 5), "input_ids"),
    (lambda D, m, ids: D.greedy_search(m, ids, True), "max_new_tokens"),
    (lambda D, m, ids: D.greedy_search(m, ids, 5, eos_token_id=[3, 4]), "eos_token_id"),
    (lambda D, m, ids: D.sample(m, ids, 5, temperature=float("nan")), "temperature"),
    (lambda D, m, ids: D.sample(m, ids, 5, temperature=float("inf")), "temperature"),
    (lambda D, m, ids: D.beam_search(m, ids, 2, 5, length_penalty="long"), "length_penalty"),
    (lambda D, m, ids: D.beam_search(m, ids, 2, 5, length_penalty=float("nan")), "length_penalty"),
    (lambda D, m, ids: D.greedy_search(m, ids, 5, repetition_penalty=-1.2), "repetition_penalty"),
    (lambda D, m, ids: D.sample(m, ids, 5, repetition_penalty=0.0), "repetition_penalty"),
    (lambda D, m, ids: D.beam_search(m, ids, 2, 5, repetition_penalty=float("inf")), "repetition_penalty"),
    (lambda D, m, ids: D.greedy_search(m, ids, 5, no_repeat_ngram_size=2.5), "no_repeat_ngram_size"),
    (lambda D, m, ids: D.beam_search(m, ids, 2, 5, no_repeat_ngram_size=-1), "no_repeat_ngram_size"),
    (lambda D, m, ids: D.sample(m, ids, 5, no_repeat_ngram_size=True), "no_repeat_ngram_size"),
    (lambda D, m, ids: D.sample(m, ids, 5, min_p=1.5), "min_p"),
    (lambda D, m, ids: D.sample(m, ids, 5, min_p=-0.1), "min_p"),
    (lambda D, m, ids: D.sample(m, ids, 5, typical_p=0.0), "typical_p"),
    (lambda D, m, ids: D.sample(m, ids, 5, typical_p=1.2), "typical_p"),
    (lambda D, m, ids: D.min_p_filter(torch.zeros(1, 5), float("nan")), "min_p"),
    (lambda D, m, ids: D.typical_filter(torch.zeros(1, 5), 0.0), "mass"),
    (lambda D, m, ids: D.penalize_repetition(torch.zeros(1, 5), ids, -1.0), "penalty"),
    (lambda D, m, ids: D.ban_repeated_ngrams(torch.zeros(1, 5), ids, 0), "ngram_size"),
])
def test_bad_input_is_a_value_error_naming_the_argument(D, lm, model, prompts, call, argument):
    ids, _ = prompts
    with pytest.raises(ValueError, match=argument):
        call(D, lm, ids)
