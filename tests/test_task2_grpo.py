"""Task 2: GRPO's pure functions on hand-computed cases, and its training loop."""
import math

import pytest
import torch

from pa5 import recipes
from task2.config import GRPO_LOSS_TYPES
from tests.task2_common import PROMPTS, moved


@pytest.fixture(scope="module")
def GRPO(student):
    """task2.grpo as the student wrote it, in the worker."""
    return student.module("task2.grpo")


@pytest.mark.points(2, function="group_advantages")
def test_group_advantages_on_hand_computed_groups(GRPO):
    rewards = torch.tensor([1.0, 1.0, 3.0, 1.0, 2.0, 4.0, 2.0, 4.0])
    none = GRPO.group_advantages(rewards, 4, scale="none")
    torch.testing.assert_close(none, torch.tensor([-0.5, -0.5, 1.5, -0.5, -1.0, 1.0, -1.0, 1.0]), msg=lambda m: (
        "scale='none': reward minus its group's mean, groups of 4 consecutive completions\n" + m))
    group = GRPO.group_advantages(rewards, 4, scale="group")
    # group 1: Bessel std of [1, 1, 3, 1] = 1; group 2: of [2, 4, 2, 4] = sqrt(4/3)
    expected = torch.cat([none[:4] / (1 + 1e-4), none[4:] / (math.sqrt(4 / 3) + 1e-4)])
    torch.testing.assert_close(group, expected, msg=lambda m: "divide by the group's Bessel-corrected std + eps\n" + m)
    batch = GRPO.group_advantages(rewards, 4, scale="batch", eps=0.5)
    torch.testing.assert_close(batch, none / (rewards.std() + 0.5), msg=lambda m: (
        "scale='batch': group-centred, divided by the whole batch's std + eps\n" + m))
    assert GRPO.zero_spread_fraction(torch.tensor([1.0, 1.0, 2.0, 3.0]), 2) == 0.5, (
        "groups (1, 1) and (2, 3): one of two has equal rewards (no learning signal)")
    torch.testing.assert_close(GRPO.group_advantages(torch.ones(4), 2), torch.zeros(4),
                               msg=lambda m: "equal rewards in a group: advantage 0 (no gradient), not NaN\n" + m)


@pytest.mark.parametrize("call, argument", [
    (lambda GRPO: GRPO.group_advantages(torch.ones(6), 4), "group_size"),
    (lambda GRPO: GRPO.group_advantages(torch.ones(4), 1), "group_size"),
    (lambda GRPO: GRPO.group_advantages(torch.ones(4), 2, eps=0.0), "eps"),
    (lambda GRPO: GRPO.group_advantages(torch.ones(4), 2, scale="global"), "scale"),
    (lambda GRPO: GRPO.grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3), "ppo"), "loss_type"),
    (lambda GRPO: GRPO.grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3), "dr_grpo"),
     "max_completion_length"),
    (lambda GRPO: GRPO.grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3), beta=0.1),
     "ref_logps"),
    (lambda GRPO: GRPO.grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3), torch.ones(2, 3)), "advantages"),
    (lambda GRPO: GRPO.grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3), epsilon=0), "epsilon"),
])
def test_grpo_bad_input_raises_value_error_naming_the_argument(GRPO, call, argument):
    with pytest.raises(ValueError, match=argument):
        call(GRPO)


@pytest.mark.points(2, function="grpo_loss")
def test_grpo_loss_aggregations_on_a_hand_computed_batch(GRPO):
    # ratio 1 (on-policy): every completion token's loss is -A
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    advantages = torch.tensor([1.0, -0.5])
    logps = torch.zeros(2, 4)
    losses = {t: GRPO.grpo_loss(logps, logps, advantages, mask, t, max_completion_length=8, num_items=12)[0].item()
              for t in GRPO_LOSS_TYPES}
    assert losses["grpo"] == pytest.approx((-1.0 + 0.5) / 2), "grpo: token mean per sequence, then mean"
    assert losses["bnpo"] == pytest.approx((-2.0 + 2.0) / 6), "bnpo: all tokens / number of tokens"
    assert losses["dr_grpo"] == pytest.approx(0.0 / (2 * 8)), "dr_grpo: all tokens / (N * max_completion_length)"
    assert losses["dapo"] == pytest.approx(0.0 / 12), "dapo: all tokens / tokens in the generation batch"
    advantages = torch.tensor([1.0, 1.0])
    grpo_value = GRPO.grpo_loss(logps, logps, advantages, mask, "grpo")[0].item()
    bnpo_value = GRPO.grpo_loss(logps, logps, advantages, mask, "bnpo")[0].item()
    dr_value = GRPO.grpo_loss(logps, logps, advantages, mask, "dr_grpo", max_completion_length=8)[0].item()
    assert (grpo_value, bnpo_value, dr_value) == pytest.approx((-1.0, -1.0, -6 / 16)), (
        "A = 1 everywhere: grpo and bnpo average to -1, dr_grpo sums the 6 tokens over N * max_completion_length = 16")
    # KL: k3 = e^{-1} - 1 + 1 at every token with ref = logps - 1, ratio 1 -> the correction changes nothing here
    _, stats = GRPO.grpo_loss(logps, logps, advantages, mask, "bnpo", beta=0.1, ref_logps=logps - 1)
    assert stats["kl"] == pytest.approx(math.exp(-1.0)), (
        "stats['kl'] is the masked mean of k3 = exp(ref - logp) - (ref - logp) - 1 = e^-1 here")


# --- the training loop on the tiny stand-in ------------------------------------------------------

GRPO_STEP = dict(steps=1, prompts_per_step=2, group_size=4, lr=1e-3, max_new_tokens=16)
# Every completion scores 1, ended or not: with the missing-EOS penalty on, a group whose samples end
# differently (which depends on what the stand-in learned on this machine) would not be constant.
CONSTANT_SCORES = dict(missing_eos_penalty=0.0)


@pytest.mark.points(1.5, function="grpo_update")
@pytest.mark.usefixtures("smollm2_standin")
def test_grpo_update_steps_once_per_iteration_on_group_advantages(student):
    one = student.call("pa5.recipes:rl_update", "grpo", PROMPTS[:2], GRPO_STEP, log_kl=True, _timeout=600)
    assert one["steps"] == 1, f"iterations = 1: one optimizer step, got {one['steps']}"
    update = one["update"]
    for key in ("loss", "clip_fraction", "entropy", "grad_norm", "kl"):
        assert key in update and math.isfinite(update[key]), f"grpo_update returns {key} (kl only with log_kl); got {update}"
    assert update["clip_fraction"] == 0.0, "one iteration: old log-probs = the current ones detached, ratio 1, no clipping"
    assert update["kl"] == pytest.approx(0.0, abs=1e-5), "the first policy is the reference: KL 0"
    assert moved(one["policy_before"], one["policy_after"]), "the policy's LoRA moved"
    assert not one["policy_training"], "the policy is back in eval mode afterwards"
    three = student.call("pa5.recipes:rl_update", "grpo", PROMPTS[:2], {**GRPO_STEP, "iterations": 3, "beta": 0.04},
                         _timeout=600)
    assert three["steps"] == 3, f"iterations = 3: three optimizer steps on the same rollout, got {three['steps']}"
    assert "kl" not in three["update"], "kl is logged only when log_kl is set"
    constant = student.call("pa5.recipes:rl_update", "grpo", PROMPTS[:2], {**GRPO_STEP, **CONSTANT_SCORES},
                            scorer="constant", _timeout=600)
    assert constant["update"]["loss"] == 0.0, (
        "equal rewards in every group: group_advantages gives 0 to every completion, so the loss is exactly 0")


### BEGIN HIDDEN TESTS
@pytest.mark.points(1, function="grpo_update")
@pytest.mark.usefixtures("smollm2_standin")
def test_grpo_update_follows_the_reference_update(student):
    config = {**GRPO_STEP, "iterations": 2, "beta": 0.04}
    expected = recipes.rl_update("grpo", PROMPTS[:2], config, log_kl=True)  # the grader's own grpo_update
    run = student.call("pa5.recipes:rl_update", "grpo", PROMPTS[:2], config, log_kl=True, _timeout=600)
    for key, value in expected["update"].items():
        assert run["update"][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (
            f"{key}: {run['update'][key]:.6f}, the reference update gives {value:.6f} - old log-probs from before the "
            "first iteration, the reference's for beta > 0, one optimizer step per iteration")
    for name, value in expected["policy_after"].items():
        torch.testing.assert_close(run["policy_after"][name], value, rtol=1e-4, atol=1e-6, msg=lambda m: (
            f"{name} differs from the reference update's\n" + m))
### END HIDDEN TESTS


@pytest.mark.points(2, function="grpo_update")
@pytest.mark.usefixtures("smollm2_standin")
def test_grpo_trains_on_groups_and_logs_zero_spread(student):
    config = dict(steps=2, prompts_per_step=2, group_size=4, lr=1e-3, max_new_tokens=16)
    run = student.call("pa5.recipes:rl_training", "grpo", PROMPTS, config, _timeout=600)
    history = run["history"]
    assert len(history) == 2, f"one history entry per step (steps=2), got {len(history)}"
    for key in ("rm_reward", "gold_success", "kl", "zero_spread_groups", "clip_fraction", "entropy", "loss", "grad_norm"):
        assert math.isfinite(history[0][key]), f"{key} is logged"
    assert 0.0 <= history[0]["zero_spread_groups"] <= 1.0, "zero_spread_groups is a fraction of the step's groups"
    assert history[0]["clip_fraction"] == 0.0, "one update per generation: the ratio is 1, nothing is clipped"
    assert moved(run["policy_before"], run["policy_after"]), "the policy's LoRA moved"
    constant = student.call("pa5.recipes:rl_training", "grpo", PROMPTS, {**config, **CONSTANT_SCORES}, scorer="constant",
                            _timeout=600)
    assert constant["history"][0]["zero_spread_groups"] == 1.0 and constant["history"][0]["loss"] == 0.0, \
        "equal rewards in every group: all advantages 0, loss exactly 0"
