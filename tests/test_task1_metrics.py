"""Task 1: diversity and quality metrics on hand-computed examples."""
import pytest

from task1.metrics import QualityScorer, bleu, self_bleu


@pytest.fixture(scope="module")
def metrics(student):
    """task1.metrics, as the student wrote it, in the worker."""
    return student.module("task1.metrics")


@pytest.mark.points(1, function="distinct_n")
def test_distinct_n_hand_cases(metrics):
    distinct_n, distinct_n_per_text = metrics.distinct_n, metrics.distinct_n_per_text
    assert distinct_n(["a b a b"], 1) == 0.5, "2 distinct unigrams out of 4"
    assert distinct_n(["a b", "a c"], 2) == 1.0, "bigrams (a, b) and (a, c): both distinct"
    assert distinct_n(["a b", "A B"], 2) == 0.5, "n-grams are compared lower-cased, over the whole set"
    assert distinct_n(["a"], 2) == 0.0, "no bigram at all -> 0"
    assert distinct_n_per_text(["a a a", "a b c"], 1) == [1 / 3, 1.0], "distinct-n of each text on its own"


@pytest.mark.points(1, function="longest_repeated_span")
def test_longest_repeated_span(metrics):
    longest_repeated_span = metrics.longest_repeated_span
    assert longest_repeated_span("one two three") == 0, "no word occurs twice"
    assert longest_repeated_span("the cat sat and the cat ran") == 2, "'the cat' occurs twice"
    assert longest_repeated_span("a a a") == 2, "overlapping occurrences count: 'a a' at positions 0 and 1"
    loop = "the owl sang a song. " * 3
    assert longest_repeated_span(loop) == 10, "three copies of a 5-word sentence: the first two copies recur"
    assert longest_repeated_span("Golden golden") == 1, "words are lower-cased first"
    assert longest_repeated_span("") == 0, "an empty text repeats nothing"


@pytest.mark.points(1, function="repetition_rate")
def test_repetition_and_length(metrics):
    repetition_rate, length_in_words = metrics.repetition_rate, metrics.length_in_words
    assert repetition_rate("a b c a b c", n=3) == 0.25, "trigrams abc, bca, cab, abc: one repeat of four"
    assert repetition_rate("one two three", n=3) == 0.0, "a single trigram cannot repeat"
    assert repetition_rate("so so so so", n=1) == 0.75, "four unigrams, one distinct: 3 of 4 are repeats"
    assert length_in_words("  The cat\nsat. ") == 3, "words split on any whitespace, surrounding spaces ignored"


def test_bleu_and_self_bleu():
    sentence = "the cat sat on the mat".split()
    assert bleu(sentence, [sentence]) == pytest.approx(1.0)
    assert bleu("dogs run fast".split(), [sentence]) == 0.0
    assert self_bleu(["a b c d e", "a b c d e"]) == pytest.approx(1.0), "identical samples: self-BLEU 1"
    assert self_bleu(["a b c", "x y z"]) == 0.0
    with pytest.raises(ValueError, match="texts"):
        self_bleu(["only one"])


def test_tiny_quality_is_the_gold_judge():
    score = QualityScorer(None)
    assert score(["What is the capital of France?", "Describe a cat in exactly 3 words."],
                 ["Its capital is Paris.", "A small cat sleeps."]) == [1.0, 0.0]
    with pytest.raises(ValueError, match="same length"):
        score(["a"], [])
