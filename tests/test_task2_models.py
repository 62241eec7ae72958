"""Task 2: the reward model and DPO on the tiny stand-in - reading rewards, log-probs, the reference,
training steps, saving - and every public function's bad input."""
import itertools
import math

import pytest
import torch

from pa5 import recipes
from task2 import data, dpo
from task2 import reward_model as rm
from task2.config import DPOConfig, LoRAConfig, RewardModelConfig
from task2.training import make_optimizer
from tests.test_task2_data import ROWS

MODEL = "standin:smollm2"


@pytest.fixture(scope="module")
def tokenizer(smollm2_standin):
    from transformers import AutoTokenizer

    from pa5 import hub
    return hub.from_pretrained(AutoTokenizer, MODEL)


@pytest.fixture(scope="module")
def pairs(tokenizer, mini_orca_standin):
    return data.encode_pairs(tokenizer, data.load_pairs(_tiny())["train"][:8], max_length=128)


def _tiny():
    from pa5 import task_profile
    return task_profile("task2", "tiny")


@pytest.fixture(scope="module")
def student_rm(student):
    """task2.reward_model as the student wrote it, in the worker."""
    return student.module("task2.reward_model")


@pytest.fixture(scope="module")
def student_policy(student):
    return student.module("task2.policy")


@pytest.mark.points(1, function="last_token_index")
def test_last_token_index_right_and_left_padding(student_rm):
    rm = student_rm
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    assert rm.last_token_index(mask).tolist() == [2, 4, 4, 0], (
        "the index of each row's last 1: right padding ends early, left padding ends at the last column")
    with pytest.raises(ValueError, match="attention_mask"):
        rm.last_token_index(torch.tensor([[1, 1], [0, 0]]))


@pytest.mark.points(2, function="token_scores")
def test_reward_is_read_at_the_closing_end_of_turn_whatever_the_padding(student, tokenizer):
    pairs = data.encode_pairs(tokenizer, ROWS, max_length=256)
    theirs = student.build("pa5.recipes:reward_model", pad_token_id=0, eval=True)  # 0 = <|endoftext|>, never in a chat
    model = recipes.reward_model(pad_token_id=0, eval=True)  # the same weights, on the trusted side
    right = data.collate_pairs(pairs, 0, "right")
    ours = student.call("task2.reward_model:sequence_rewards", theirs, right["input_ids"], right["attention_mask"],
                        right["position_ids"])
    with torch.no_grad():
        transformers_pooling = model(input_ids=right["input_ids"], attention_mask=right["attention_mask"]).logits.squeeze(-1)
    torch.testing.assert_close(ours, transformers_pooling, msg=lambda m: (
        "with a pad id no real token has, transformers' 'last non-pad token' is the last real token: read the "
        "reward at last_token_index(attention_mask)\n" + m))
    left = data.collate_pairs(pairs, tokenizer.pad_token_id, "left")
    torch.testing.assert_close(student.call("task2.reward_model:sequence_rewards", theirs, left["input_ids"],
                                            left["attention_mask"], left["position_ids"]), ours, msg=lambda m: (
        "left padding must give the same rewards: read the last real token, with real positions\n" + m))
    model.config.pad_token_id = tokenizer.pad_token_id  # pad == eos, as SmolLM2 ships
    eos_padded = data.collate_pairs(pairs, tokenizer.pad_token_id, "right")
    with torch.no_grad():
        pooled = model(input_ids=eos_padded["input_ids"], attention_mask=eos_padded["attention_mask"]).logits.squeeze(-1)
    assert not torch.allclose(pooled, ours), "with pad == eos, id-based pooling skips the closing <|im_end|>"


### BEGIN HIDDEN TESTS
@pytest.mark.points(2, function="token_logps")
def test_sequence_logps_matches_a_brute_force_loop_on_a_grid(student_policy):
    policy = student_policy
    generator = torch.Generator().manual_seed(0)
    for batch, length, vocab in itertools.product((1, 3), (2, 6), (5, 11)):
        logits = torch.randn(batch, length, vocab, generator=generator)
        labels = torch.randint(0, vocab, (batch, length), generator=generator)
        mask = torch.randint(0, 2, (batch, length), generator=generator)
        mask[:, 0] = 0
        expected = torch.zeros(batch)
        for b in range(batch):
            for t in range(1, length):
                if mask[b, t]:
                    expected[b] += logits[b, t - 1].log_softmax(-1)[labels[b, t]]
        torch.testing.assert_close(policy.sequence_logps(logits, labels, mask), expected, msg=lambda m: (
            "sum over completion tokens t of log softmax(logits[t - 1])[labels[t]]\n" + m))
### END HIDDEN TESTS


@pytest.mark.points(1, function="token_kl")
def test_token_kl_hand_case(student_policy):
    policy = student_policy
    # completion token t is predicted at position t - 1: only position 0 counts for row 0, none for row 1
    policy_logits = torch.tensor([[[0.0, 0.0], [9.0, -9.0]], [[0.0, 0.0], [0.0, 0.0]]])
    reference = torch.tensor([[[math.log(3.0), 0.0], [-9.0, 9.0]], [[5.0, 0.0], [0.0, 5.0]]])
    mask = torch.tensor([[0, 1], [0, 0]])
    # KL((1/2, 1/2) || (3/4, 1/4)) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
    torch.testing.assert_close(policy.token_kl(policy_logits, reference, mask), torch.tensor([0.5 * math.log(4 / 3), 0.0]),
                               msg=lambda m: "sum over completion tokens t of KL(policy || reference) at position "
                                             "t - 1, exact over the vocabulary\n" + m)
    assert policy.token_kl(policy_logits, policy_logits, mask).abs().max() < 1e-6, "a model has no KL to itself"


### BEGIN HIDDEN TESTS
@pytest.mark.points(1, function="token_kl")
def test_token_kl_is_exact_and_zero_for_identical_models(student_policy):
    policy = student_policy
    torch.manual_seed(0)
    p, q = torch.randn(2, 4, 6), torch.randn(2, 4, 6)
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 1, 1]])
    expected = torch.zeros(2)
    for b, t in itertools.product(range(2), range(1, 4)):
        if mask[b, t]:
            lp, lq = p[b, t - 1].log_softmax(-1), q[b, t - 1].log_softmax(-1)
            expected[b] += (lp.exp() * (lp - lq)).sum()
    torch.testing.assert_close(policy.token_kl(p, q, mask), expected, msg=lambda m: (
        "exact KL(p || q) over the vocabulary at position t - 1 for each completion token t, summed\n" + m))
    assert policy.token_kl(p, p, mask).abs().max() < 1e-6, "a model has no KL to itself"
    with pytest.raises(ValueError, match="policy_logits"):
        policy.token_kl(p, q[:, :3], mask)
### END HIDDEN TESTS


@pytest.mark.points(1, function="token_logps")
def test_log_probs_do_not_depend_on_the_padding_side(student, tokenizer, pairs):
    theirs = student.build("pa5.recipes:policy_model", eval=True)
    sides = []
    for side in ("right", "left"):
        batch = data.collate_pairs(pairs, tokenizer.pad_token_id, side)
        logits = student.call("task2.policy:forward_logits", theirs, batch)
        sides.append(student.call("task2.policy:sequence_logps", logits, batch["input_ids"], batch["loss_mask"]))
    torch.testing.assert_close(sides[0], sides[1], atol=1e-4, rtol=1e-5, msg=lambda m: (
        "left-padded rows need position_ids counted over real tokens\n" + m))


@pytest.mark.points(3, function="dpo_loss")
def test_dpo_training_starts_at_ln2_the_reference_stays_the_base_and_the_pairs_are_learned(student, tokenizer, pairs):
    rows = data.load_pairs(_tiny())["train"][:8]
    run = student.call("pa5.recipes:dpo_training", rows, dict(beta=0.1, steps=25, batch_size=8, lr=5e-3, kl_every=5),
                       max_length=128, _timeout=600)
    pad = tokenizer.pad_token_id
    model = recipes.policy_model()  # the trusted side's own copy, for its own measurements
    reference = dpo.reference_logps(model, pairs, pad)
    torch.testing.assert_close(run["before"], reference, msg=lambda m: (
        "pair_logps of a fresh policy must be the reference's log-probs (LoRA starts with B = 0): check the "
        "sum of log-probs over the completion tokens\n" + m))
    torch.testing.assert_close(run["reference"], reference, msg=lambda m: (
        "the reference log-probs are the base model's (adapter disabled), computed before training\n" + m))
    assert run["start"]["reward_accuracy"] == 0.0 and abs(run["start"]["margin"]) < 1e-6, \
        "accuracy is strict: ties are not wins"
    history = run["history"]
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-6), (
        f"step 0: policy == reference, so the loss is ln 2 = 0.6931; got {history[0]['loss']:.6f}")
    assert history[0]["kl"] == pytest.approx(0.0, abs=1e-6) and history[-5]["kl"] > 0, (
        "KL to the reference is 0 before the first update and grows with training")
    assert {"reward_accuracy", "margin", "chosen_reward", "rejected_reward", "grad_norm"} <= set(history[-1]), (
        f"each step logs reward_accuracy, margin, chosen_reward, rejected_reward, grad_norm; got {sorted(history[-1])}")
    torch.testing.assert_close(run["reference_after"], reference, msg=lambda m: (
        "the reference is the base: disabling the adapter must undo training\n" + m))
    assert run["end"]["reward_accuracy"] == 1.0 and run["end"]["margin"] > 0, "25 steps on 8 pairs must fit them"
    trained = recipes.policy_model(adapter=run["adapter"])
    end = dpo.evaluate_dpo(trained, pairs, pad, beta=0.1)  # the grader's own evaluation of the trained adapter
    assert end["reward_accuracy"] == 1.0 and end["margin"] > 0, "the returned adapter does not fit the pairs"


@pytest.mark.points(2, function="bradley_terry_loss")
def test_reward_model_learns_pairs_and_its_saved_adapter_reloads(student, tokenizer, pairs, tmp_path):
    from safetensors.torch import load_file

    rows = data.load_pairs(_tiny())["train"][:8]
    prompts = [data.prompt_ids(tokenizer, r["system"], r["question"]) for r in ROWS]
    completions = [data.completion_ids(tokenizer, r["chosen"]) for r in ROWS]
    run = student.call("pa5.recipes:reward_model_training", rows, dict(steps=30, batch_size=8, lr=3e-3),
                       str(tmp_path / "rm"), prompts, completions, max_length=128, _timeout=600)
    trainable = run["trainable"]
    assert any("lora_A" in n for n in trainable) and any("score" in n for n in trainable), \
        "LoRA on q/v and the score head are trained"
    assert not any("embed_tokens" in n or "mlp" in n for n in trainable), "the backbone stays frozen"
    history = run["history"]
    assert run["evaluation"]["accuracy"] == 1.0 and run["evaluation"]["margin"] > 0, (
        f"after training on these pairs every chosen response outscores its rejected one: {run['evaluation']}")
    assert history[-1]["loss"] < history[0]["loss"], "the Bradley-Terry loss falls over training"
    path = tmp_path / "rm" / "adapter_model.safetensors"
    assert run["saved"] == str(path) and path.exists(), "save_adapter writes adapter_model.safetensors"
    saved = load_file(path)  # the grader reloads it into its own model
    from peft import set_peft_model_state_dict
    reloaded = recipes.reward_model(tokenizer.pad_token_id, eval=True)
    result = set_peft_model_state_dict(reloaded, saved)
    assert not result.unexpected_keys, f"the saved adapter has keys a reward model does not: {result.unexpected_keys}"
    scorer = rm.RewardScorer(reloaded, tokenizer.pad_token_id)
    torch.testing.assert_close(scorer(prompts, completions), run["scores"], msg=lambda m: (
        "the saved adapter, reloaded by the grader, must score as the trained model did: save the LoRA weights "
        "and the reward head\n" + m))
    evaluation = rm.evaluate_reward_model(reloaded, pairs, tokenizer.pad_token_id)
    assert evaluation["accuracy"] == 1.0, "the saved adapter, reloaded, does not rank the pairs"


def test_bad_inputs_raise_value_errors_naming_the_argument(tokenizer, pairs):
    x = torch.zeros(3)
    cases = [
        (lambda: dpo.dpo_loss(x, x, x, x, beta=-1.0), "beta"),
        (lambda: dpo.dpo_loss(x, x, x, torch.zeros(2), beta=0.1), "ref_rejected_logps.*one shape"),
        (lambda: dpo.dpo_loss(*[torch.zeros(0)] * 4, beta=0.1), "empty"),
        (lambda: rm.bradley_terry_loss(torch.zeros(0), torch.zeros(0)), "empty"),
        (lambda: rm.bradley_terry_loss(x, x, margin=torch.zeros(2)), "margin"),
        (lambda: LoRAConfig(r=0), "r must be"),
        (lambda: LoRAConfig(alpha=0), "alpha"),
        (lambda: make_optimizer(list(torch.nn.Linear(1, 1).parameters()), 0.0), "lr"),
        (lambda: dpo.train_dpo(None, pairs, 0, DPOConfig(steps=1, batch_size=8, lr=1e-3), ref_logps=torch.zeros(3, 2)),
         "ref_logps"),
        (lambda: DPOConfig(steps=1, batch_size=8, lr=1e-3, nll_weight=-1.0), "nll_weight"),
        (lambda: RewardModelConfig(steps=-1, batch_size=8, lr=1e-3), "steps"),
        (lambda: data.pad_sequences([], [], 0), "sequences"),
    ]
    for call, name in cases:
        with pytest.raises(ValueError, match=name):
            call()
