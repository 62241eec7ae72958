"""pa5.profile: parsing PA5_PROFILE and the per-task profile tables."""
import dataclasses

import pytest
import torch

from pa5.profile import CHOICES, TASKS, resolve_profile, task_profile


@pytest.mark.parametrize("raw, expected", [("tiny", "tiny"), ("full", "full"), (" TINY ", "tiny"), ("Full", "full")])
def test_explicit_profiles_parse(raw, expected):
    assert resolve_profile(raw) == expected


@pytest.mark.parametrize("cuda, expected", [(True, "full"), (False, "tiny")])
def test_auto_and_unset_follow_cuda(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.delenv("PA5_PROFILE", raising=False)
    assert resolve_profile() == expected, "unset PA5_PROFILE must mean 'auto'"
    monkeypatch.setenv("PA5_PROFILE", "auto")
    assert resolve_profile() == expected
    monkeypatch.setenv("PA5_PROFILE", "")
    assert resolve_profile() == expected, "an empty PA5_PROFILE must mean 'auto'"


def test_argument_overrides_environment(monkeypatch):
    monkeypatch.setenv("PA5_PROFILE", "full")
    assert resolve_profile("tiny") == "tiny"


@pytest.mark.parametrize("bad", ["small", "gpu", "tiny,full", "0"])
def test_unknown_profile_lists_the_allowed_ones(monkeypatch, bad):
    monkeypatch.setenv("PA5_PROFILE", bad)
    with pytest.raises(ValueError) as error:
        resolve_profile()
    message = str(error.value)
    assert "PA5_PROFILE" in message and repr(bad) in message, "name the variable and the bad value"
    assert all(choice in message for choice in CHOICES), "list every allowed profile"


@pytest.mark.parametrize("task", TASKS)
def test_tiny_profile_is_offline_and_full_uses_the_real_assets(task):
    tiny, full = task_profile(task, "tiny"), task_profile(task, "full")
    assert tiny.assets() == (), "the tiny profile must not need the network"
    assert full.assets(), "the full profile loads real models / data"
    assert type(tiny) is type(full), "one code path: the same fields, other values"
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny.name = "full"


def test_unknown_task_is_a_value_error():
    with pytest.raises(ValueError, match="task4"):
        task_profile("task4", "tiny")


def test_the_rehearsal_switch_cuts_only_counts(monkeypatch):
    """PA5_REHEARSAL=1 scales step, epoch and sample counts of the full profile down; batch sizes,
    max_length, image size, dictionary size and the gold model stay; the tiny profile ignores it."""
    monkeypatch.delenv("PA5_REHEARSAL", raising=False)
    full = {task: task_profile(task, "full") for task in TASKS}
    tiny = task_profile("task2", "tiny")
    monkeypatch.setenv("PA5_REHEARSAL", "1")
    rehearsal = {task: task_profile(task, "full") for task in TASKS}
    assert task_profile("task2", "tiny") == tiny, "the tiny profile ignores the switch"
    t2, f2 = rehearsal["task2"], full["task2"]
    assert t2.dpo.steps < f2.dpo.steps and t2.ppo.steps < f2.ppo.steps and t2.n_train_pairs < f2.n_train_pairs
    assert (t2.max_length, t2.dpo.batch_size, t2.ppo.prompts_per_step, t2.ppo.max_new_tokens, t2.gold_model) == \
        (f2.max_length, f2.dpo.batch_size, f2.ppo.prompts_per_step, f2.ppo.max_new_tokens, f2.gold_model)
    t3, f3 = rehearsal["task3"], full["task3"]
    assert t3.finetune.epochs <= f3.finetune.epochs and t3.maximisation.steps < f3.maximisation.steps
    assert (t3.image_size, t3.finetune.batch_size, t3.sae.nb_concepts, t3.weights) == \
        (f3.image_size, f3.finetune.batch_size, f3.sae.nb_concepts, f3.weights)
    assert rehearsal["task1"].max_new_tokens == full["task1"].max_new_tokens
    monkeypatch.setenv("PA5_REHEARSAL", "yes")
    with pytest.raises(ValueError, match="PA5_REHEARSAL"):
        task_profile("task2", "full")
