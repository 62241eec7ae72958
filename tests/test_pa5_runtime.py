"""pa5.runtime: seeding and the tiny profile's deterministic CPU execution."""
import random

import numpy as np
import pytest
import torch

from pa5.runtime import configure_torch, seed_everything


def _draws():
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def _one_training_step() -> torch.Tensor:
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x, y = torch.randn(32, 8), torch.randn(32, 1)
    torch.nn.functional.mse_loss(model(torch.nn.functional.dropout(x, 0.5)), y).backward()
    optimizer.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_same_seed_same_numbers_everywhere():
    seed_everything(123)
    first, first_weights = _draws(), _one_training_step()
    seed_everything(123)
    second, second_weights = _draws(), _one_training_step()
    assert first == second, "python, numpy and torch must all be seeded"
    assert torch.equal(first_weights, second_weights), "init, dropout and data must be reproducible"
    seed_everything(124)
    assert _draws() != first, "a different seed must give different numbers"


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "0", True])
def test_bad_seed_is_rejected(bad):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)


def test_tiny_profile_runs_deterministically_on_cpu():
    previous = torch.are_deterministic_algorithms_enabled()
    try:
        assert configure_torch("tiny") == torch.device("cpu")
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(previous)
