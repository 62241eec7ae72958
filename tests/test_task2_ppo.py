"""Task 2: PPO's pure functions on closed forms and hand-computed cases, and its training loop."""
import math

import pytest
import torch

from pa5 import recipes
from pa5.worker import StudentError
from tests.task2_common import PROMPTS, moved

# three rows over T = 6: prompt positions (0), completion (1), right padding (0) - and in row 2 a hole
MASK = torch.tensor([[0, 0, 1, 1, 1, 0],
                     [0, 1, 1, 1, 1, 1],
                     [0, 1, 0, 1, 1, 0]], dtype=torch.float)


@pytest.fixture(scope="module")
def PPO(student):
    """task2.ppo as the student wrote it, in the worker."""
    return student.module("task2.ppo")


@pytest.fixture(scope="module")
def POLICY(student):
    return student.module("task2.policy")


def _garbage_outside(x: torch.Tensor) -> torch.Tensor:
    """``x`` with large values where MASK is 0: a correct masked function must ignore them."""
    return torch.where(MASK.bool(), x, torch.full_like(x, 1e3))


@pytest.mark.points(1, function="compute_gae")
def test_gae_with_gamma_lambda_one_and_zero_values_is_reward_to_go(PPO):
    torch.manual_seed(0)
    rewards = torch.randn(3, 6) * MASK
    advantages, returns = PPO.compute_gae(_garbage_outside(rewards), _garbage_outside(torch.zeros(3, 6)), MASK,
                                          gamma=1.0, lam=1.0)
    reward_to_go = rewards.flip(-1).cumsum(-1).flip(-1) * MASK
    torch.testing.assert_close(advantages, reward_to_go, msg=lambda m: (
        "gamma = lambda = 1 and V = 0: A_t is the sum of the rewards from t to the end of the completion; "
        "masked-out positions must be skipped, not read\n" + m))
    torch.testing.assert_close(returns, reward_to_go, msg=lambda m: "returns = advantages + values (here V = 0)\n" + m)


@pytest.mark.points(1, function="compute_gae")
def test_gae_with_lambda_zero_is_the_one_step_td_error(PPO):
    torch.manual_seed(1)
    rewards, values = torch.randn(3, 6) * MASK, torch.randn(3, 6) * MASK
    advantages, returns = PPO.compute_gae(_garbage_outside(rewards), _garbage_outside(values), MASK, gamma=0.9, lam=0.0)
    expected = torch.zeros(3, 6)
    for row in range(3):
        positions = MASK[row].nonzero().flatten().tolist()
        for i, t in enumerate(positions):
            next_value = values[row, positions[i + 1]] if i + 1 < len(positions) else 0.0
            expected[row, t] = rewards[row, t] + 0.9 * next_value - values[row, t]
    torch.testing.assert_close(advantages, expected, msg=lambda m: (
        "lambda = 0: A_t = r_t + gamma V(next completion position) - V_t, and V = 0 past the last one\n" + m))
    torch.testing.assert_close(returns, (expected + values) * MASK, msg=lambda m: "returns = A + V on the mask\n" + m)


### BEGIN HIDDEN TESTS
def _brute_force_gae(rewards, values, mask, gamma, lam):
    """GAE on each row's masked-in positions taken out as one short sequence."""
    advantages = torch.zeros_like(rewards)
    for row in range(len(rewards)):
        positions = mask[row].nonzero().flatten().tolist()
        running, next_value = 0.0, 0.0
        for t in reversed(positions):
            delta = rewards[row, t] + gamma * next_value - values[row, t]
            running = delta + gamma * lam * running
            advantages[row, t], next_value = running, values[row, t]
    return advantages


@pytest.mark.points(1, function="compute_gae")
def test_gae_matches_a_brute_force_loop_on_a_grid(PPO):
    torch.manual_seed(2)
    for gamma, lam in ((1.0, 0.95), (0.99, 0.9), (0.5, 1.0)):
        rewards, values = torch.randn(3, 6), torch.randn(3, 6)
        advantages, _ = PPO.compute_gae(rewards, values, MASK, gamma, lam)
        torch.testing.assert_close(advantages, _brute_force_gae(rewards, values, MASK, gamma, lam), msg=lambda m: (
            f"gamma={gamma}, lambda={lam}: A_t = delta_t + gamma * lambda * A_next over completion tokens only (a masked "
            "position is skipped, V past the last token is 0)\n" + m))
    with pytest.raises(ValueError, match="lam"):
        PPO.compute_gae(rewards, values, MASK, lam=1.5)
    with pytest.raises(ValueError, match="shape"):
        PPO.compute_gae(rewards, values[:, :5], MASK)
### END HIDDEN TESTS


@pytest.mark.points(1, function="masked_whiten")
def test_masked_whiten_has_masked_mean_zero_and_bessel_variance_one(PPO):
    torch.manual_seed(3)
    x = _garbage_outside(torch.randn(3, 6) * 3 + 2)
    selected = x[MASK.bool()]
    white = PPO.masked_whiten(x, MASK)[MASK.bool()]
    assert white.mean().item() == pytest.approx(0.0, abs=1e-6), "whitened values have mean 0 over the mask"
    assert white.var(unbiased=True).item() == pytest.approx(1.0, abs=1e-5), "TRL's masked_var is Bessel-corrected"
    expected = (selected - selected.mean()) / torch.sqrt(selected.var(unbiased=True) + 1e-8)
    torch.testing.assert_close(white, expected, msg=lambda m: "(x - masked mean) / sqrt(masked var + 1e-8)\n" + m)
    rescaled = PPO.masked_whiten(x, MASK, shift_mean=False)[MASK.bool()]
    torch.testing.assert_close(rescaled, expected + selected.mean(), msg=lambda m: "shift_mean=False adds the mean back\n" + m)
    with pytest.raises(ValueError, match="2 masked"):
        PPO.masked_whiten(x, torch.zeros_like(MASK))


# token_rewards is the one graded function that calls graded functions of other files; its test says so.
_TOKEN_REWARDS_USES = ("token_rewards calls task2.policy.kl_estimate and task2.reward_model.last_token_index: "
                       "if their tests fail too, fix those first")


@pytest.mark.points(1, function="token_rewards")
def test_token_rewards_put_the_score_on_the_last_completion_token(PPO):
    logps, ref = torch.full((3, 6), -1.0) * MASK, torch.full((3, 6), -1.5) * MASK
    scores = torch.tensor([2.0, -1.0, 0.5])
    try:
        rewards, kl = PPO.token_rewards(scores, logps, ref, MASK, kl_coef=0.1)
    except StudentError as error:
        pytest.fail(f"{error}\n({_TOKEN_REWARDS_USES})")
    torch.testing.assert_close(kl, 0.5 * MASK, msg=lambda m: f"kl = k1 = logps - ref_logps, 0 off the mask ({_TOKEN_REWARDS_USES})\n" + m)
    expected = -0.1 * 0.5 * MASK
    expected[0, 4] += 2.0
    expected[1, 5] += -1.0
    expected[2, 4] += 0.5
    torch.testing.assert_close(rewards, expected, msg=lambda m: (
        "r_t = -kl_coef * KL_t on completion tokens, + the score on the LAST completion token (not the last column) "
        f"({_TOKEN_REWARDS_USES})\n" + m))
    with pytest.raises(ValueError, match="kl_coef"):
        PPO.token_rewards(scores, logps, ref, MASK, kl_coef=-1.0)


@pytest.mark.points(1, function="kl_estimate")
def test_kl_estimate_k1_and_k3_by_hand(POLICY):
    logps, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]])
    torch.testing.assert_close(POLICY.kl_estimate(logps, ref, "k1"), torch.tensor([[0.5, -1.0]]),
                               msg=lambda m: "k1 = log pi - log pi_ref, sign included (it is unbiased, not >= 0)\n" + m)
    k3 = torch.tensor([[math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0]])
    torch.testing.assert_close(POLICY.kl_estimate(logps, ref, "k3"), k3, msg=lambda m: (
        "k3 = exp(ref - logp) - (ref - logp) - 1 = exp(-k1) - 1 + k1, >= 0 on every token\n" + m))
    with pytest.raises(ValueError, match="estimator"):
        POLICY.kl_estimate(logps, ref, "k2")


@pytest.mark.points(2, function="policy_loss")
def test_policy_loss_clips_at_the_boundaries(student, PPO):
    eps = 0.2
    mask = torch.ones(1, 4)
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    ratios = torch.tensor([[1.5, 0.5, 0.5, 1.5]])  # above / below the clip range, for A > 0 and A < 0
    logps = torch.log(ratios)
    run = student.call("pa5.recipes:with_gradient", "task2.ppo:policy_loss", [logps, torch.zeros(1, 4), advantages,
                                                                              mask, eps], wrt=(0,), of=0)
    loss, clip_fraction = run["output"]
    # A > 0: min(1.5, 1.2) * A -> clipped (1.2); min(0.5, 0.8) -> 0.5 unclipped. A < 0: max over -A*r.
    expected = (-1.2 + -0.5 + 0.8 + 1.5) / 4
    assert loss.item() == pytest.approx(expected), "loss = masked mean of max(-A r, -A clip(r, 1 - eps, 1 + eps))"
    assert clip_fraction.item() == pytest.approx(0.5), "two of four tokens take the clipped branch"
    grad = run["grads"][0].flatten()
    assert grad[0] == 0 and grad[2] == 0, "a clipped token gets no gradient"
    assert grad[1] != 0 and grad[3] != 0, "the pessimistic (unclipped) branch keeps its gradient"
    at_boundary, fraction = PPO.policy_loss(torch.log(torch.tensor([[1.2]])), torch.zeros(1, 1), torch.ones(1, 1),
                                            torch.ones(1, 1), eps)
    assert fraction.item() == 0.0 and at_boundary.item() == pytest.approx(-1.2), (
        "ratio exactly 1 + eps: both branches agree, so it is not counted as clipped (strictly greater)")
    with pytest.raises(ValueError, match="clip_range"):
        PPO.policy_loss(logps, torch.zeros(1, 4), advantages, mask, 0.0)


@pytest.mark.points(1, function="value_loss")
def test_value_loss_clips_around_the_old_values(student, PPO):
    old, returns, mask = torch.zeros(1, 3), torch.tensor([[1.0, 1.0, -1.0]]), torch.tensor([[1.0, 1.0, 1.0]])
    values = torch.tensor([[0.5, -0.5, 0.1]])
    run = student.call("pa5.recipes:with_gradient", "task2.ppo:value_loss", [values, old, returns, mask],
                       {"clip_range": 0.2}, wrt=(0,), of=0)
    loss, clip_fraction = run["output"]
    # token 0: unclipped (0.5-1)^2 = .25, clipped (0.2-1)^2 = .64 -> .64 (clipped, no gradient)
    # token 1: unclipped 2.25, clipped (-0.2-1)^2 = 1.44 -> 2.25 (unclipped); token 2: inside the range, 1.21
    assert loss.item() == pytest.approx(0.5 * (0.64 + 2.25 + 1.21) / 3), (
        "0.5 * masked mean of max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2): per token .64, 2.25, 1.21")
    assert clip_fraction.item() == pytest.approx(1 / 3), "only token 0 takes the clipped branch"
    grad = run["grads"][0]
    assert grad[0, 0] == 0 and grad[0, 1] != 0 and grad[0, 2] != 0, (
        "a token whose clipped loss is the larger one gets no gradient; the others do")


# --- the learning step and the training loop on the tiny stand-in, in the worker ----------------

PPO_STEP = dict(steps=1, prompts_per_step=4, minibatch_size=2, epochs=2, lr=1e-3, max_new_tokens=16)
UPDATE_LOGS = ("policy_loss", "value_loss", "clip_fraction", "value_clip_fraction", "entropy", "grad_norm", "kl")


@pytest.mark.points(2, function="ppo_update")
@pytest.mark.usefixtures("smollm2_standin")
def test_ppo_update_steps_epochs_times_minibatches_on_policy_and_critic(student):
    run = student.call("pa5.recipes:rl_update", "ppo", PROMPTS[:4], PPO_STEP, _timeout=600)
    assert run["steps"] == 4, (
        f"2 epochs x (4 rollouts / minibatch_size 2) = 4 optimizer steps, got {run['steps']} - loop over epochs, "
        "then over torch.randperm(N, generator=generator).split(minibatch_size), one optimizer_step per minibatch")
    update = run["update"]
    assert set(UPDATE_LOGS) <= set(update) and all(math.isfinite(update[k]) for k in UPDATE_LOGS), (
        f"ppo_update returns the means of {UPDATE_LOGS[:-1]} over its minibatch updates, and kl; got {update}")
    assert 0 <= update["clip_fraction"] <= 1 and 0 <= update["value_clip_fraction"] <= 1, "clip fractions are shares"
    assert update["kl"] == pytest.approx(0.0, abs=1e-5), (
        f"the first rollout's policy is the reference (LoRA starts at zero): its KL must be 0, got {update['kl']} - "
        "are the old log-probs and the reference's computed at config.temperature on the same batch?")
    assert moved(run["policy_before"], run["policy_after"]), "the policy's LoRA moved: the policy loss is optimised"
    assert moved(run["critic_before"], run["critic_after"]), (
        "the critic's LoRA moved: policy_loss + vf_coef * value_loss is what one optimizer steps on")
    assert not run["policy_training"] and not run["critic_training"], "both models are back in eval mode afterwards"
    torch.testing.assert_close(run["reference_logits"], recipes.base_logits(),
                               msg=lambda m: "the reference (adapter disabled) must stay the base model\n" + m)


### BEGIN HIDDEN TESTS
@pytest.mark.points(2, function="ppo_update")
@pytest.mark.usefixtures("smollm2_standin")
def test_ppo_update_follows_the_reference_update(student):
    expected = recipes.rl_update("ppo", PROMPTS[:4], PPO_STEP)  # the grader's own ppo_update, same rollout
    run = student.call("pa5.recipes:rl_update", "ppo", PROMPTS[:4], PPO_STEP, _timeout=600)
    for key in UPDATE_LOGS:
        assert run["update"][key] == pytest.approx(expected["update"][key], rel=1e-4, abs=1e-6), (
            f"{key}: {run['update'][key]:.6f}, the reference update gives {expected['update'][key]:.6f} - check the "
            "order of the docstring: frozen log-probs and values, rewards, GAE, whitening, then the minibatches")
    for side in ("policy_after", "critic_after"):
        for name, value in expected[side].items():
            torch.testing.assert_close(run[side][name], value, rtol=1e-4, atol=1e-6, msg=lambda m: (
                f"{side} {name} differs from the reference update's\n" + m))
### END HIDDEN TESTS


# --- the training loop ----------------------------------------------------------------------------

@pytest.mark.points(2, function="ppo_update")
@pytest.mark.usefixtures("smollm2_standin")
def test_ppo_updates_policy_and_critic_keeps_the_reference_and_reruns_identically(student):
    config = dict(steps=2, prompts_per_step=4, minibatch_size=2, epochs=2, lr=1e-3, max_new_tokens=16)
    runs = [student.call("pa5.recipes:rl_training", "ppo", PROMPTS, config, _timeout=600) for _ in range(2)]
    history = runs[0]["history"]
    for key in ("rm_reward", "gold_success", "kl", "clip_fraction", "entropy", "value_loss", "policy_loss", "length",
                "grad_norm"):
        assert all(math.isfinite(h[key]) for h in history), f"{key} is logged every step"
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-5), "step 1 samples from the reference itself: KL 0"
    assert moved(runs[0]["policy_before"], runs[0]["policy_after"]), "the policy's LoRA moved"
    assert moved(runs[0]["critic_before"], runs[0]["critic_after"]), "the critic's LoRA moved"
    torch.testing.assert_close(runs[0]["reference_logits"], recipes.base_logits(),
                               msg=lambda m: "the reference (adapter disabled) must stay the base model\n" + m)
    assert [h["rm_reward"] for h in runs[0]["history"]] == [h["rm_reward"] for h in runs[1]["history"]], \
        "a seeded rerun is identical"
