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
    """The quality-diversity sweep: top-k and top-p at each temperature, greedy and beam as references."""

    temperatures: tuple[float, ...] = (0.2, 0.5, 0.8, 1.0, 1.2)  # each sampled setting is run at each
    top_k: int = 50  # generate's default k
    top_p: float = 0.9  # nucleus mass
    num_beams: int = 3  # beam search's width

    def __post_init__(self):
        for t in self.temperatures:
            check_number("temperatures", t, 0, low_open=True)
        check_int("top_k", self.top_k, 1)
        check_number("top_p", self.top_p, 0, 1, low_open=True)
        check_int("num_beams", self.num_beams, 1)


@dataclass(frozen=True, kw_only=True)
class Task1Config(TaskConfig):
    """Decoding strategies and the quality-diversity study."""

    model: str  # the causal LM decoded (hub id or stand-in)
    quality_model: str | None  # a reward model (hub id) scoring generations; None: the gold judge (pa5.judge)
    prompts: str  # where the study's prompts come from: COURSE, or a stand-in preference dataset's test questions
    n_prompts: int  # prompts in the study
    samples_per_prompt: int  # sampled continuations per prompt and setting
    max_new_tokens: int  # generation length limit
    batch_size: int  # sequences decoded together
    study: StudyConfig = field(default_factory=StudyConfig)  # the sweep, the same in both profiles

    def __post_init__(self):
        for name in ("n_prompts", "samples_per_prompt", "max_new_tokens", "batch_size"):
            check_int(name, getattr(self, name), 1)


PROFILES = {
    "full": Task1Config(
        name="full", model=SMOLLM2, quality_model=OASST_REWARD_MODEL, prompts=COURSE,
        n_prompts=5, samples_per_prompt=8, max_new_tokens=50, batch_size=40,
    ),
    # The stand-in only knows its tiny world: its held-out questions replace the course's prompts,
    # and the gold judge, which knows the right answers, replaces the reward model.
    "tiny": Task1Config(
        name="tiny", model="standin:smollm2", quality_model=None, prompts="standin:mini_orca",
        n_prompts=32, samples_per_prompt=8, max_new_tokens=48, batch_size=256,
    ),
}


def rehearse(config: Task1Config) -> Task1Config:
    """``PA5_REHEARSAL=1``: the full profile with only sample counts cut (``make rehearse``); every
    setting of the sweep, the length limit and the batch size stay."""
    return replace(config, n_prompts=2, samples_per_prompt=2)
