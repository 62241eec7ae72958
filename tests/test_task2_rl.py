"""Task 2: PPO's and GRPO's pure functions on closed forms and hand-computed cases."""
import math

import pytest
import torch

from task2 import grpo, policy, ppo
from task2.config import GRPO_LOSS_TYPES, GRPOConfig, PPOConfig

# three rows over T = 6: prompt positions (0), completion (1), right padding (0) - and in row 2 a hole
MASK = torch.tensor([[0, 0, 1, 1, 1, 0],
                     [0, 1, 1, 1, 1, 1],
                     [0, 1, 0, 1, 1, 0]], dtype=torch.float)


def _garbage_outside(x: torch.Tensor) -> torch.Tensor:
    """``x`` with large values where MASK is 0: a correct masked function must ignore them."""
    return torch.where(MASK.bool(), x, torch.full_like(x, 1e3))


@pytest.mark.points(1)
def test_gae_with_gamma_lambda_one_and_zero_values_is_reward_to_go():
    torch.manual_seed(0)
    rewards = torch.randn(3, 6) * MASK
    advantages, returns = ppo.compute_gae(_garbage_outside(rewards), _garbage_outside(torch.zeros(3, 6)), MASK,
                                          gamma=1.0, lam=1.0)
    reward_to_go = rewards.flip(-1).cumsum(-1).flip(-1) * MASK
    torch.testing.assert_close(advantages, reward_to_go, msg=lambda m: (
        "gamma = lambda = 1 and V = 0: A_t is the sum of the rewards from t to the end of the completion; "
        "masked-out positions must be skipped, not read\n" + m))
    torch.testing.assert_close(returns, reward_to_go)


@pytest.mark.points(1)
def test_gae_with_lambda_zero_is_the_one_step_td_error():
    torch.manual_seed(1)
    rewards, values = torch.randn(3, 6) * MASK, torch.randn(3, 6) * MASK
    advantages, returns = ppo.compute_gae(_garbage_outside(rewards), _garbage_outside(values), MASK, gamma=0.9, lam=0.0)
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


@pytest.mark.points(1)
def test_gae_matches_a_brute_force_loop_on_a_grid():
    torch.manual_seed(2)
    for gamma, lam in ((1.0, 0.95), (0.99, 0.9), (0.5, 1.0)):
        rewards, values = torch.randn(3, 6), torch.randn(3, 6)
        advantages, _ = ppo.compute_gae(rewards, values, MASK, gamma, lam)
        torch.testing.assert_close(advantages, _brute_force_gae(rewards, values, MASK, gamma, lam))
    with pytest.raises(ValueError, match="lam"):
        ppo.compute_gae(rewards, values, MASK, lam=1.5)
    with pytest.raises(ValueError, match="shape"):
        ppo.compute_gae(rewards, values[:, :5], MASK)
### END HIDDEN TESTS


@pytest.mark.points(1)
def test_masked_whiten_has_masked_mean_zero_and_bessel_variance_one():
    torch.manual_seed(3)
    x = _garbage_outside(torch.randn(3, 6) * 3 + 2)
    selected = x[MASK.bool()]
    white = ppo.masked_whiten(x, MASK)[MASK.bool()]
    assert white.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert white.var(unbiased=True).item() == pytest.approx(1.0, abs=1e-5), "TRL's masked_var is Bessel-corrected"
    expected = (selected - selected.mean()) / torch.sqrt(selected.var(unbiased=True) + 1e-8)
    torch.testing.assert_close(white, expected)
    rescaled = ppo.masked_whiten(x, MASK, shift_mean=False)[MASK.bool()]
    torch.testing.assert_close(rescaled, expected + selected.mean(), msg=lambda m: "shift_mean=False adds the mean back\n" + m)
    with pytest.raises(ValueError, match="2 masked"):
        ppo.masked_whiten(x, torch.zeros_like(MASK))


@pytest.mark.points(1)
def test_token_rewards_put_the_score_on_the_last_completion_token():
    logps, ref = torch.full((3, 6), -1.0) * MASK, torch.full((3, 6), -1.5) * MASK
    scores = torch.tensor([2.0, -1.0, 0.5])
    rewards, kl = ppo.token_rewards(scores, logps, ref, MASK, kl_coef=0.1)
    torch.testing.assert_close(kl, 0.5 * MASK)
    expected = -0.1 * 0.5 * MASK
    expected[0, 4] += 2.0
    expected[1, 5] += -1.0
    expected[2, 4] += 0.5
    torch.testing.assert_close(rewards, expected, msg=lambda m: (
        "r_t = -kl_coef * KL_t on completion tokens, + the score on the LAST completion token (not the last column)\n" + m))
    k3 = policy.kl_estimate(torch.tensor([-1.0]), torch.tensor([-1.5]), "k3")
    assert k3.item() == pytest.approx(math.exp(-0.5) - 1 + 0.5), "k3 = exp(ref - logp) - (ref - logp) - 1"
    with pytest.raises(ValueError, match="estimator"):
        policy.kl_estimate(logps, ref, "k2")
    with pytest.raises(ValueError, match="kl_coef"):
        ppo.token_rewards(scores, logps, ref, MASK, kl_coef=-1.0)


@pytest.mark.points(2)
def test_policy_loss_clips_at_the_boundaries():
    eps = 0.2
    mask = torch.ones(1, 4)
    advantages = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    ratios = torch.tensor([[1.5, 0.5, 0.5, 1.5]])  # above / below the clip range, for A > 0 and A < 0
    logps = torch.log(ratios).requires_grad_()
    loss, clip_fraction = ppo.policy_loss(logps, torch.zeros(1, 4), advantages, mask, eps)
    # A > 0: min(1.5, 1.2) * A -> clipped (1.2); min(0.5, 0.8) -> 0.5 unclipped. A < 0: max over -A*r.
    expected = (-1.2 + -0.5 + 0.8 + 1.5) / 4
    assert loss.item() == pytest.approx(expected), "loss = masked mean of max(-A r, -A clip(r, 1 - eps, 1 + eps))"
    assert clip_fraction.item() == pytest.approx(0.5), "two of four tokens take the clipped branch"
    loss.backward()
    grad = logps.grad.flatten()
    assert grad[0] == 0 and grad[2] == 0, "a clipped token gets no gradient"
    assert grad[1] != 0 and grad[3] != 0, "the pessimistic (unclipped) branch keeps its gradient"
    at_boundary, fraction = ppo.policy_loss(torch.log(torch.tensor([[1.2]])), torch.zeros(1, 1), torch.ones(1, 1),
                                            torch.ones(1, 1), eps)
    assert fraction.item() == 0.0 and at_boundary.item() == pytest.approx(-1.2)
    with pytest.raises(ValueError, match="clip_range"):
        ppo.policy_loss(logps, torch.zeros(1, 4), advantages, mask, 0.0)


@pytest.mark.points(1)
def test_value_loss_clips_around_the_old_values():
    old, returns, mask = torch.zeros(1, 3), torch.tensor([[1.0, 1.0, -1.0]]), torch.tensor([[1.0, 1.0, 1.0]])
    values = torch.tensor([[0.5, -0.5, 0.1]], requires_grad=True)
    loss, clip_fraction = ppo.value_loss(values, old, returns, mask, clip_range=0.2)
    # token 0: unclipped (0.5-1)^2 = .25, clipped (0.2-1)^2 = .64 -> .64 (clipped, no gradient)
    # token 1: unclipped 2.25, clipped (-0.2-1)^2 = 1.44 -> 2.25 (unclipped); token 2: inside the range, 1.21
    assert loss.item() == pytest.approx(0.5 * (0.64 + 2.25 + 1.21) / 3)
    assert clip_fraction.item() == pytest.approx(1 / 3)
    loss.backward()
    assert values.grad[0, 0] == 0 and values.grad[0, 1] != 0 and values.grad[0, 2] != 0


@pytest.mark.points(2)
def test_group_advantages_on_hand_computed_groups():
    rewards = torch.tensor([1.0, 1.0, 3.0, 1.0, 2.0, 4.0, 2.0, 4.0])
    none = grpo.group_advantages(rewards, 4, scale="none")
    torch.testing.assert_close(none, torch.tensor([-0.5, -0.5, 1.5, -0.5, -1.0, 1.0, -1.0, 1.0]))
    group = grpo.group_advantages(rewards, 4, scale="group")
    # group 1: Bessel std of [1, 1, 3, 1] = 1; group 2: of [2, 4, 2, 4] = sqrt(4/3)
    expected = torch.cat([none[:4] / (1 + 1e-4), none[4:] / (math.sqrt(4 / 3) + 1e-4)])
    torch.testing.assert_close(group, expected, msg=lambda m: "divide by the group's Bessel-corrected std + eps\n" + m)
    batch = grpo.group_advantages(rewards, 4, scale="batch", eps=0.5)
    torch.testing.assert_close(batch, none / (rewards.std() + 0.5))
    assert grpo.zero_spread_fraction(torch.tensor([1.0, 1.0, 2.0, 3.0]), 2) == 0.5
    torch.testing.assert_close(grpo.group_advantages(torch.ones(4), 2), torch.zeros(4),
                               msg=lambda m: "equal rewards in a group: advantage 0 (no gradient), not NaN\n" + m)


@pytest.mark.parametrize("call, argument", [
    (lambda: grpo.group_advantages(torch.ones(6), 4), "group_size"),
    (lambda: grpo.group_advantages(torch.ones(4), 1), "group_size"),
    (lambda: grpo.group_advantages(torch.ones(4), 2, eps=0.0), "eps"),
    (lambda: grpo.group_advantages(torch.ones(4), 2, scale="global"), "scale"),
    (lambda: grpo.grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3), "ppo"), "loss_type"),
    (lambda: grpo.grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3), "dr_grpo"),
     "max_completion_length"),
    (lambda: grpo.grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3), beta=0.1),
     "ref_logps"),
    (lambda: grpo.grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3), torch.ones(2, 3)), "advantages"),
    (lambda: grpo.grpo_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2), torch.ones(2, 3), epsilon=0), "epsilon"),
])
def test_grpo_bad_input_raises_value_error_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


@pytest.mark.points(2)
def test_grpo_loss_aggregations_on_a_hand_computed_batch():
    # ratio 1 (on-policy): every completion token's loss is -A
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    advantages = torch.tensor([1.0, -0.5])
    logps = torch.zeros(2, 4)
    losses = {t: grpo.grpo_loss(logps, logps, advantages, mask, t, max_completion_length=8, num_items=12)[0].item()
              for t in GRPO_LOSS_TYPES}
    assert losses["grpo"] == pytest.approx((-1.0 + 0.5) / 2), "grpo: token mean per sequence, then mean"
    assert losses["bnpo"] == pytest.approx((-2.0 + 2.0) / 6), "bnpo: all tokens / number of tokens"
    assert losses["dr_grpo"] == pytest.approx(0.0 / (2 * 8)), "dr_grpo: all tokens / (N * max_completion_length)"
    assert losses["dapo"] == pytest.approx(0.0 / 12), "dapo: all tokens / tokens in the generation batch"
    advantages = torch.tensor([1.0, 1.0])
    grpo_value = grpo.grpo_loss(logps, logps, advantages, mask, "grpo")[0].item()
    bnpo_value = grpo.grpo_loss(logps, logps, advantages, mask, "bnpo")[0].item()
    dr_value = grpo.grpo_loss(logps, logps, advantages, mask, "dr_grpo", max_completion_length=8)[0].item()
    assert (grpo_value, bnpo_value, dr_value) == pytest.approx((-1.0, -1.0, -6 / 16))
    # KL: k3 = e^{-1} - 1 + 1 at every token with ref = logps - 1, ratio 1 -> the correction changes nothing here
    _, stats = grpo.grpo_loss(logps, logps, advantages, mask, "bnpo", beta=0.1, ref_logps=logps - 1)
    assert stats["kl"] == pytest.approx(math.exp(-1.0))


# --- the training loops on the tiny stand-in ----------------------------------------------------

MODEL = "standin:smollm2"
PROMPTS = [{"system": "", "question": q} for q in
           ("What is the capital of France?", "Describe a cat in exactly 5 words.", "Name three fruits.",
            "Name the capital of Ceia.")]


def _length_scorer(prompts, completions):
    return torch.tensor([len(c) / 10 for c in completions])


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from pa5 import hub
    return hub.from_pretrained(AutoTokenizer, MODEL)


def _rl_config(max_new_tokens: int, missing_eos_penalty: float = 1.0) -> GRPOConfig:
    return GRPOConfig(steps=1, prompts_per_step=1, lr=1e-3, max_new_tokens=max_new_tokens,
                      missing_eos_penalty=missing_eos_penalty)


def test_rollout_penalises_a_completion_that_never_ends(tokenizer):
    from task2.rollout import sample_rollout

    model = policy.load_policy(MODEL)
    cut = sample_rollout(model, tokenizer, PROMPTS, _length_scorer, samples=2, config=_rl_config(1, 1.5), seed=0)
    assert len(cut.responses) == 8 and cut.batch["loss_mask"].sum(-1).eq(1).all()
    assert not cut.ended.any(), "one token is never a whole answer here: nothing ended"
    torch.testing.assert_close(cut.score, cut.rm_reward - 1.5, msg=lambda m: (
        "a completion without <|im_end|> gets missing_eos_penalty subtracted from its score\n" + m))
    full = sample_rollout(model, tokenizer, PROMPTS, _length_scorer, samples=2, config=_rl_config(48, 1.5), seed=0)
    assert full.ended.all() and torch.equal(full.score, full.rm_reward)
    assert full.prompts[0] == full.prompts[1] == PROMPTS[0], "samples of one prompt are consecutive rows"
    with pytest.raises(ValueError, match="missing_eos_penalty"):
        _rl_config(4, -1.0)


def _lora_state(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


@pytest.mark.points(2)
def test_ppo_updates_policy_and_critic_keeps_the_reference_and_reruns_identically(tokenizer):
    from transformers import AutoModelForCausalLM

    from pa5 import hub
    from task2 import reward_model as rm

    config = PPOConfig(steps=2, prompts_per_step=4, minibatch_size=2, epochs=2, lr=1e-3, max_new_tokens=16)
    runs = []
    for _ in range(2):
        model, critic = policy.load_policy(MODEL), ppo.load_value_model(rm.load_reward_model(MODEL, 0))
        before_policy, before_critic = _lora_state(model), _lora_state(critic)
        history = ppo.train_ppo(model, critic, tokenizer, PROMPTS, _length_scorer, config)
        runs.append((history, model))
    history, model = runs[0]
    for key in ("rm_reward", "gold_success", "kl", "clip_fraction", "entropy", "value_loss", "policy_loss", "length",
                "grad_norm"):
        assert all(math.isfinite(h[key]) for h in history), f"{key} is logged every step"
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-5), "step 1 samples from the reference itself: KL 0"
    assert any(not torch.equal(before_policy[n], p) for n, p in _lora_state(model).items()), "the policy's LoRA moved"
    assert any(not torch.equal(before_critic[n], p) for n, p in _lora_state(critic).items()), "the critic's LoRA moved"
    base = hub.from_pretrained(AutoModelForCausalLM, MODEL)
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad(), policy.reference_mode(model):
        torch.testing.assert_close(model(input_ids=ids).logits, base(input_ids=ids).logits,
                                   msg=lambda m: "the reference (adapter disabled) must stay the base model\n" + m)
    assert [h["rm_reward"] for h in runs[0][0]] == [h["rm_reward"] for h in runs[1][0]], "a seeded rerun is identical"


@pytest.mark.points(2)
def test_grpo_trains_on_groups_and_logs_zero_spread(tokenizer):
    config = GRPOConfig(steps=2, prompts_per_step=2, group_size=4, lr=1e-3, max_new_tokens=16)
    model = policy.load_policy(MODEL)
    before = _lora_state(model)
    history = grpo.train_grpo(model, tokenizer, PROMPTS, _length_scorer, config)
    assert len(history) == 2
    for key in ("rm_reward", "gold_success", "kl", "zero_spread_groups", "clip_fraction", "entropy", "loss", "grad_norm"):
        assert math.isfinite(history[0][key]), f"{key} is logged"
    assert 0.0 <= history[0]["zero_spread_groups"] <= 1.0
    assert history[0]["clip_fraction"] == 0.0, "one update per generation: the ratio is 1, nothing is clipped"
    assert any(not torch.equal(before[n], p) for n, p in _lora_state(model).items()), "the policy's LoRA moved"
    constant = grpo.train_grpo(policy.load_policy(MODEL), tokenizer, PROMPTS, lambda p, c: torch.ones(len(c)), config)
    assert constant[0]["zero_spread_groups"] == 1.0 and constant[0]["loss"] == 0.0, \
        "equal rewards in every group: all advantages 0, loss exactly 0"


@pytest.mark.points(1)
def test_policy_logps_skips_prompt_logits_without_changing_a_value(tokenizer):
    from task2.data import pad_completions, prompt_ids

    model = policy.load_policy(MODEL)
    prompts = [prompt_ids(tokenizer, "", p["question"]) for p in PROMPTS]  # prompts of different lengths
    completions = [[5, 6, 7, 2], [8, 2], [9, 10, 11, 12, 13, 2], [14, 2]]
    batch = pad_completions(prompts, completions, tokenizer.pad_token_id)
    with torch.no_grad():
        logps, entropy = policy.policy_logps(model, batch, temperature=0.7, entropy=True)
        logits = policy.forward_logits(model, batch)
    torch.testing.assert_close(logps, policy.token_logps(logits, batch["input_ids"], batch["loss_mask"], 0.7))
    torch.testing.assert_close(entropy, policy.token_entropy(logits, batch["loss_mask"], 0.7))
    assert (logps != 0).sum() == sum(map(len, completions)), "one log-prob per completion token, <|im_end|> included"
