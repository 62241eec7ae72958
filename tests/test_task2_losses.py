"""Task 2: the reward-model and DPO losses on hand-computed cases (student code in the worker)."""
import math

import pytest
import torch


@pytest.fixture(scope="module")
def rm(student):
    return student.module("task2.reward_model")


@pytest.fixture(scope="module")
def policy(student):
    return student.module("task2.policy")


@pytest.mark.points(1, function="bradley_terry_loss")
def test_bradley_terry_hand_values(rm):
    chosen, rejected = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 1.0])
    expected = (-math.log(1 / (1 + math.exp(-2.0))) - math.log(1 / (1 + math.exp(1.0)))) / 2
    assert rm.bradley_terry_loss(chosen, rejected).item() == pytest.approx(expected), "mean of -log sigma(r_c - r_r)"
    with_margin = rm.bradley_terry_loss(chosen, rejected, margin=torch.tensor([2.0, -1.0]))
    assert with_margin.item() == pytest.approx(math.log(2)), "the margin is subtracted: sigma(0) both times"
    with pytest.raises(ValueError, match="rewards"):
        rm.bradley_terry_loss(torch.zeros(2), torch.zeros(3))


@pytest.mark.points(2, function="token_logps")
def test_sequence_logps_reads_the_previous_position_and_only_the_mask(policy):
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[1, 2, 3, 4, 6], [5, 6, 6, 6, 6]])  # row 2: 6 is both eos and pad
    mask = torch.tensor([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]])
    log_probs = logits.log_softmax(-1)
    expected = torch.stack([log_probs[0, 1, 3] + log_probs[0, 2, 4] + log_probs[0, 3, 6],
                            log_probs[1, 0, 6] + log_probs[1, 1, 6]])
    torch.testing.assert_close(policy.sequence_logps(logits, labels, mask), expected, msg=lambda m: (
        "token t's log-prob comes from logits[:, t - 1]; count exactly the masked tokens, "
        "including an end token equal to the pad id\n" + m))
    with pytest.raises(ValueError, match="loss_mask"):
        policy.sequence_logps(logits, labels, torch.ones_like(mask))


@pytest.mark.points(2, function="dpo_loss")
def test_dpo_loss_formula_and_rewards(student):
    dpo = student.module("task2.dpo")
    pc, pr = torch.tensor([-10.0, -5.0]), torch.tensor([-12.0, -4.0])
    rc, rr = torch.tensor([-11.0, -5.0]), torch.tensor([-11.0, -5.0])
    run = student.call("pa5.recipes:with_gradient", "task2.dpo:dpo_loss", [pc, pr, rc, rr], {"beta": 0.5},
                       wrt=(0,), of=0)
    loss, chosen_rewards, rejected_rewards = run["output"]
    margins = 0.5 * torch.tensor([(-10 + 11) - (-12 + 11), (-5 + 5) - (-4 + 5)])
    assert loss.item() == pytest.approx(float(-torch.nn.functional.logsigmoid(margins).mean())), (
        "loss = mean of -log sigma(beta * ((pi_c - ref_c) - (pi_r - ref_r)))")
    torch.testing.assert_close(chosen_rewards, torch.tensor([0.5, 0.0]), msg=lambda m: (
        "chosen reward = beta * (pi_c - ref_c)\n" + m))
    torch.testing.assert_close(rejected_rewards, torch.tensor([-0.5, 0.5]), msg=lambda m: (
        "rejected reward = beta * (pi_r - ref_r)\n" + m))
    assert run["requires_grad"][0] and not run["requires_grad"][1], (
        "the loss carries the gradient; implicit rewards are logged, not trained: detach them")
    assert (run["grads"][0] < 0).all(), "lowering the loss must raise the chosen log-probs"
    same, _, _ = dpo.dpo_loss(pc, pr, pc, pr, beta=0.1)
    assert same.item() == pytest.approx(math.log(2)), "policy == reference gives loss ln 2 exactly"
    with pytest.raises(ValueError, match="beta"):
        dpo.dpo_loss(pc, pr, rc, rr, beta=0.0)
