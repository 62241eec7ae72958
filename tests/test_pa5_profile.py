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
