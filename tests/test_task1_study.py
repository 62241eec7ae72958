"""Task 1: the study's bookkeeping (settings, per-setting scores, prompts), without decoding."""
import math

import pytest

from pa5 import task_profile
from task1 import study
from task1.config import StudyConfig


def test_settings_have_unique_labels_and_the_controls_under_generates_names():
    settings = study.study_settings(StudyConfig())
    labels = [s.label for s in settings]
    assert len(set(labels)) == len(labels), "the per-family table and the examples are keyed by label"
    options = {key for s in settings for key in s.options}
    assert {"repetition_penalty", "no_repeat_ngram_size", "min_p", "typical_p", "top_k", "top_p", "num_beams"} <= options
    assert all(s.temperature is None for s in settings if s.deterministic)


def test_a_deterministic_setting_has_no_diversity_across_samples():
    scorer = lambda prompts, texts: [1.0 if "cat" in t else 0.0 for t in texts]  # noqa: E731
    row, per_prompt = study.score_setting(["q1", "q2"], [["the cat the cat"], ["a dog"]], scorer)
    assert row["distinct_2"] is None and row["self_bleu"] is None, (
        "one sample per prompt: diversity across samples is not defined (not 0.125 or 1.0)")
    assert per_prompt == [1.0, 0.0] and row["quality"] == 0.5
    assert row["quality_se"] == pytest.approx(math.sqrt(0.5) / math.sqrt(2)), "SE = sd over prompts (ddof 1) / sqrt(n)"
    assert row["longest_repeat"] == pytest.approx((2 + 0) / 2), "'the cat' occurs twice in the first text"
    sampled, _ = study.score_setting(["q1"], [["the cat sat", "a dog ran"]], scorer)
    assert sampled["distinct_2"] == 1.0 and sampled["self_bleu"] is not None


@pytest.mark.usefixtures("mini_orca_standin")
def test_tiny_study_prompts_add_stories_the_model_has_read_about():
    config = task_profile("task1", "tiny")
    questions = study.study_prompts(config)
    families = study.prompt_families(questions)
    assert len(questions) == config.n_prompts + config.n_story_prompts == len(set(questions))
    assert families.count("story") == config.n_story_prompts
    assert {"capital", "word_count", "safety", "listing"} <= set(families)
    from pa5.standins.world import World

    assert set(questions[config.n_prompts:]) <= set(World().story_prompts("train"))
