"""Quality and diversity of generated texts: distinct-n, length, repetition, self-BLEU and a quality
score with one interface for both profiles (a reward model in full, the gold judge in tiny)."""
from __future__ import annotations

import math
from collections import Counter

import torch

from pa5.checks import check_strings
from pa5.judge import RewardModelJudge, judge


def words(text: str) -> list[str]:
    """Lower-cased whitespace tokens: the unit of every metric here."""
    return text.lower().split()


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return [tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: list[str], n: int) -> float:
    """Distinct n-grams over all n-grams of the whole set (Li et al., 2016): diversity across samples.

    0.0 when the texts have no n-gram at all.
    """
    check_strings("texts", texts)
    ### BEGIN SOLUTION
    grams = [g for text in texts for g in ngrams(words(text), n)]
    return len(set(grams)) / len(grams) if grams else 0.0
    ### END SOLUTION


def distinct_n_per_text(texts: list[str], n: int) -> list[float]:
    """distinct-n of each text on its own: diversity within one sample (low = it repeats itself)."""
    return [distinct_n([text], n) for text in texts]


def length_in_words(text: str) -> int:
    return len(words(text))


def repetition_rate(text: str, n: int = 3) -> float:
    """Fraction of the text's n-grams that repeat an earlier n-gram of the same text (Welleck et al.'s
    seq-rep-n): within one text, so it is defined for a deterministic decoder too. Function words make
    rep-1 high in any text; a loop drives rep-2 and rep-3 towards 1."""
    ### BEGIN SOLUTION
    grams = ngrams(words(text), n)
    return sum(count - 1 for count in Counter(grams).values()) / len(grams) if grams else 0.0
    ### END SOLUTION


def longest_repeated_span(text: str) -> int:
    """Words in the longest word sequence that occurs at least twice in ``text`` (the occurrences may
    overlap, as in "a a a": 2); 0 when no word repeats. A fluent text repeats a word or two ("the
    cat"); a loop repeats whole sentences."""
    ### BEGIN SOLUTION
    tokens = words(text)
    span = 0
    while span < len(tokens) - 1 and len(set(ngrams(tokens, span + 1))) < len(tokens) - span:
        span += 1  # some (span + 1)-gram occurs twice
    return span
    ### END SOLUTION


def bleu(hypothesis: list[str], references: list[list[str]], max_n: int = 4) -> float:
    """Sentence BLEU (Papineni et al., 2002) with add-one smoothing of the n-gram precisions for n > 1."""
    if not hypothesis or not references:
        return 0.0
    log_precision = 0.0
    for n in range(1, max_n + 1):
        counts = Counter(ngrams(hypothesis, n))
        max_ref = Counter()
        for ref in references:
            for gram, c in Counter(ngrams(ref, n)).items():
                max_ref[gram] = max(max_ref[gram], c)
        clipped, total = sum(min(c, max_ref[g]) for g, c in counts.items()), sum(counts.values())
        smooth = 0 if n == 1 else 1
        if clipped + smooth == 0:  # no unigram in common
            return 0.0
        log_precision += math.log((clipped + smooth) / (total + smooth)) / max_n
    closest = min((abs(len(r) - len(hypothesis)), len(r)) for r in references)[1]
    brevity = 1.0 if len(hypothesis) > closest else math.exp(1 - closest / len(hypothesis))
    return brevity * math.exp(log_precision)


def self_bleu(texts: list[str], max_n: int = 4) -> float:
    """Mean BLEU of each text against the others (Zhu et al., 2018): high = the samples look alike."""
    if len(texts) < 2:
        raise ValueError(f"texts must hold at least 2 texts, got {len(texts)}")
    tokens = [words(t) for t in texts]
    return sum(bleu(h, tokens[:i] + tokens[i + 1:], max_n) for i, h in enumerate(tokens)) / len(tokens)


class QualityScorer:
    """``scorer(prompts, responses) -> list[float]``, higher is better.

    * a reward model (full: OpenAssistant/reward-model-deberta-v3-large-v2) on the (prompt, response)
      text pair, as its model card scores it (:class:`pa5.judge.RewardModelJudge`): an unbounded scalar;
    * ``quality_model=None`` (tiny): the gold judge (``pa5.judge``): 1.0 when the response shows the
      gold behaviour for its prompt family, else 0.0.
    """

    def __init__(self, quality_model: str | None, device: str | torch.device = "cpu", batch_size: int = 16):
        self.name = quality_model or "gold judge"
        self._model = None if quality_model is None else RewardModelJudge(quality_model, device, batch_size)

    def __call__(self, prompts: list[str], responses: list[str]) -> list[float]:
        if len(prompts) != len(responses):
            raise ValueError(f"prompts and responses must have the same length, got {len(prompts)} and {len(responses)}")
        if self._model is not None:
            return self._model(prompts, responses)
        return [judge(p, r).score for p, r in zip(prompts, responses)]
