"""Task 1's configuration in both profiles: ``pa5.task_profile("task1", "tiny" | "full")``.

The study's settings (temperatures, k, p, beam width) are the same in both profiles; only the
model, the quality score and the sizes differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from pa5.assets import OASST_REWARD_MODEL, SMOLLM2
from pa5.checks import check_int, check_number
from pa5.profile import TaskConfig

COURSE = "course"  # the study's prompt source in full: the course's own prompts, below
COURSE_PROMPTS = ("Explain gravity to a 5-year-old.", "Write a short poem about a robot.",
                  "List three healthy breakfast ideas.", "How do I change a tire on a car?", "Why is the sky blue?")


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """The quality-diversity sweep: top-k and top-p at each temperature, min-p and typical sampling at
    one; greedy and beam search, plain and with each repetition control, as deterministic references."""

    temperatures: tuple[float, ...] = (0.2, 0.5, 0.8, 1.0, 1.2)  # top-k and top-p are run at each
    top_k: int = 50  # generate's default k
    top_p: float = 0.9  # nucleus mass
    min_p: float = 0.1  # min-p's fraction of the top probability
    typical_p: float = 0.9  # typical sampling's mass
    filter_temperature: float = 1.0  # min-p and typical are run at this temperature
    num_beams: int = 3  # beam search's width
    repetition_penalty: float = 1.3  # CTRL's value (Keskar et al., 2019)
    no_repeat_ngram_size: int = 4  # 3 forbids "The <subject> <verb>" twice: a story must change its subject
    length_penalties: tuple[float, ...] = (-1.0, 0.0, 1.0, 2.0)  # beam search's alpha, on one example

    def __post_init__(self):
        for t in (*self.temperatures, self.filter_temperature):
            check_number("temperatures", t, 0, low_open=True)
        check_int("top_k", self.top_k, 1)
        check_number("top_p", self.top_p, 0, 1, low_open=True)
        check_number("min_p", self.min_p, 0, 1)
        check_number("typical_p", self.typical_p, 0, 1, low_open=True)
        check_int("num_beams", self.num_beams, 1)
        check_number("repetition_penalty", self.repetition_penalty, 0, low_open=True)
        check_int("no_repeat_ngram_size", self.no_repeat_ngram_size, 1)
        for alpha in self.length_penalties:
            check_number("length_penalties", alpha)


@dataclass(frozen=True, kw_only=True)
class Task1Config(TaskConfig):
    """Decoding strategies and the quality-diversity study."""

    model: str  # the causal LM decoded (hub id or stand-in)
    quality_model: str | None  # a reward model (hub id) scoring generations; None: the gold judge (pa5.judge)
    prompts: str  # where the study's prompts come from: COURSE, or a stand-in preference dataset's test questions
    n_prompts: int  # prompts in the study (from ``prompts``)
    n_story_prompts: int  # tiny: story requests of the stand-in's world added to the study (long answers)
    samples_per_prompt: int  # sampled continuations per prompt and setting
    max_new_tokens: int  # generation length limit
    batch_size: int  # sequences decoded together
    study: StudyConfig = field(default_factory=StudyConfig)  # the sweep, the same in both profiles

    def __post_init__(self):
        for name in ("n_prompts", "samples_per_prompt", "max_new_tokens", "batch_size"):
            check_int(name, getattr(self, name), 1)
        check_int("n_story_prompts", self.n_story_prompts, 0)


PROFILES = {
    "full": Task1Config(
        name="full", model=SMOLLM2, quality_model=OASST_REWARD_MODEL, prompts=COURSE,
        n_prompts=5, n_story_prompts=0, samples_per_prompt=8, max_new_tokens=50, batch_size=40,
    ),
    # The stand-in only knows its tiny world: its held-out questions replace the course's prompts,
    # and the gold judge, which knows the right answers, replaces the reward model. Stories (29-59
    # words, ~80 tokens) need the longer limit; the other answers end by EOS within 30 tokens.
    "tiny": Task1Config(
        name="tiny", model="standin:smollm2", quality_model=None, prompts="standin:mini_orca",
        n_prompts=48, n_story_prompts=24, samples_per_prompt=8, max_new_tokens=96, batch_size=256,
    ),
}


def rehearse(config: Task1Config) -> Task1Config:
    """``PA5_REHEARSAL=1``: the full profile with only sample counts cut (``make rehearse``); every
    setting of the sweep, the length limit and the batch size stay."""
    return replace(config, n_prompts=2, n_story_prompts=0, samples_per_prompt=2)
