"""Task 2: what the algorithms share about the policy - rollouts scored on their own tokens, log-probs."""
import pytest
import torch

from pa5 import recipes
from task2 import policy
from task2.config import GRPOConfig
from tests.task2_common import MODEL, PROMPTS, length_scorer, load_tokenizer


@pytest.fixture(scope="module")
def tokenizer(smollm2_standin):
    return load_tokenizer()


def _rl_config(max_new_tokens: int, missing_eos_penalty: float = 1.0) -> GRPOConfig:
    return GRPOConfig(steps=1, prompts_per_step=1, lr=1e-3, max_new_tokens=max_new_tokens,
                      missing_eos_penalty=missing_eos_penalty)


def test_rollout_penalises_a_completion_that_never_ends(tokenizer):
    """Per completion, whatever the weights sampled: ended iff its last token is <|im_end|>, and the
    score is the reward minus the penalty if it did not end."""
    from task2.data import end_of_turn_id
    from task2.rollout import sample_rollout

    model, end = policy.load_policy(MODEL), end_of_turn_id(tokenizer)
    rollouts = {n: sample_rollout(model, tokenizer, PROMPTS, length_scorer, samples=2, config=_rl_config(n, 1.5), seed=0)
                for n in (1, 48)}
    for max_new_tokens, rollout in rollouts.items():
        assert len(rollout.responses) == 8 and all(1 <= len(c) <= max_new_tokens for c in rollout.completions)
        ended = torch.tensor([c[-1] == end for c in rollout.completions])
        assert torch.equal(rollout.ended, ended), "a completion has ended exactly when its last token is <|im_end|>"
        torch.testing.assert_close(rollout.score, rollout.rm_reward - 1.5 * (~ended).float(), msg=lambda m: (
            "a completion without <|im_end|> gets missing_eos_penalty subtracted from its score, an ended one does not\n"
            + m))
    # both cases occur: one token is rarely a whole answer, and the stand-in learned to end its answers
    assert not rollouts[1].ended.all() and rollouts[48].ended.any()
    assert rollouts[48].prompts[0] == rollouts[48].prompts[1] == PROMPTS[0], "samples of one prompt are consecutive rows"
    with pytest.raises(ValueError, match="missing_eos_penalty"):
        _rl_config(4, -1.0)


def test_rollouts_are_scored_on_the_policys_own_token_ids(tokenizer):
    """The reward model must see what the policy produced: the prompt with its system prompt, then the
    completion's ids as sampled - a completion cut off at max_new_tokens has no <|im_end|> to be read at."""
    from task2.data import end_of_turn_id, prompt_ids
    from task2.rollout import sample_rollout

    seen = []

    def recording_scorer(prompts, completions):
        seen.append((prompts, completions))
        return length_scorer(prompts, completions)

    prompts = [{"system": "You are a careful assistant that follows instructions exactly.", "question": q["question"]}
               for q in PROMPTS]
    rollout = sample_rollout(policy.load_policy(MODEL), tokenizer, prompts, recording_scorer, samples=2,
                             config=_rl_config(3), seed=0)
    scored_prompts, scored_completions = seen[0]
    assert scored_prompts == [prompt_ids(tokenizer, p["system"], p["question"]) for p in prompts for _ in range(2)], \
        "each prompt is scored with its own system prompt, exactly as the policy saw it"
    assert scored_completions == rollout.completions, "completions are scored as sampled, never re-tokenised"
    eos = end_of_turn_id(tokenizer)
    assert all((c[-1] == eos) == bool(ended) for c, ended in zip(scored_completions, rollout.ended)), \
        "a completion that did not end reaches the reward model without an end token"


def _batch(tokenizer):
    from task2.data import pad_completions, prompt_ids

    prompts = [prompt_ids(tokenizer, "", p["question"]) for p in PROMPTS]  # prompts of different lengths
    completions = [[5, 6, 7, 2], [8, 2], [9, 10, 11, 12, 13, 2], [14, 2]]
    return pad_completions(prompts, completions, tokenizer.pad_token_id)


@pytest.mark.points(1, function="selective_logps")
def test_selective_logps_is_log_softmax_then_gather_on_a_grid(student):
    policy = student.module("task2.policy")
    torch.manual_seed(0)
    for shape, temperature in (((7, 11), 1.0), ((2, 5, 13), 0.7), ((3, 4, 6), 1.9)):
        logits = torch.randn(*shape) * 4
        targets = torch.randint(0, shape[-1], shape[:-1])
        expected = (logits / temperature).log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)
        torch.testing.assert_close(policy.selective_logps(logits, targets, temperature), expected, rtol=1e-6, atol=1e-6,
                                   msg=lambda m: f"logsumexp + gather must equal log_softmax + gather\n{m}")
    half = torch.randn(4, 9).half()
    assert policy.selective_logps(half, torch.zeros(4, dtype=torch.long)).dtype == torch.float32, \
        "half-precision logits (fp16 autocast) are read in float32"


def _nonzero_adapter(seed: int = 3) -> dict[str, torch.Tensor]:
    """LoRA weights with a non-zero B, so the policy differs from its reference."""
    generator = torch.Generator().manual_seed(seed)
    return {name: (value.normal_(0, 0.05, generator=generator) if "lora_B" in name else value)
            for name, value in recipes.trainable_state(recipes.policy_model(seed)).items()}


@pytest.mark.points(1, function="token_logps")
def test_chunked_head_equals_the_full_computation_values_and_gradients(student, tokenizer):
    """policy_logps runs the LM head only at completion positions, a chunk at a time, under activation
    checkpointing: the numbers and the gradients must be those of the full [N, T, V] computation."""
    batch, adapter = _batch(tokenizer), _nonzero_adapter()
    model = recipes.policy_model(seed=3, adapter=adapter)  # the grader's own full computation
    names, lora = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad])
    logits = policy.forward_logits(model, batch)
    full = policy.token_logps(logits, batch["input_ids"], batch["loss_mask"], 0.8)
    full_grads = dict(zip(names, torch.autograd.grad(full.sum(), lora)))
    with torch.no_grad():
        with policy.reference_mode(model):
            reference_logits = policy.forward_logits(model, batch)
        expected_kl = policy.token_kl(logits.detach(), reference_logits, batch["loss_mask"])
    theirs = student.build("pa5.recipes:policy_model", seed=3, adapter=adapter)
    run = student.call("pa5.recipes:logps_and_grads", theirs, batch, 0.8, head_chunk=3)  # chunks, one partial
    torch.testing.assert_close(run["logps"], full.detach(), rtol=1e-6, atol=1e-6, msg=lambda m: (
        "policy_logps with HEAD_CHUNK = 3 must equal token_logps of the full logits: each chunk's positions "
        "and targets must line up\n" + m))
    for name, reference in full_grads.items():
        ours = run["grads"].get(name)
        assert ours is not None and (ours - reference).norm() <= 1e-5 * reference.norm(), (
            f"the chunked path's gradient differs at {name}: the head must run on tensors that keep the graph")
    kl = run["kl"]
    assert kl.min() > 0, "a non-zero adapter has a positive KL to its reference"
    torch.testing.assert_close(kl, expected_kl, rtol=1e-5, atol=1e-6, msg=lambda m: (
        "completion_kl must equal token_kl of the full logits against the reference's\n" + m))


@pytest.mark.points(1, function="token_logps")
def test_policy_logps_skips_prompt_logits_without_changing_a_value(student, tokenizer):
    batch = _batch(tokenizer)
    model = recipes.policy_model()
    with torch.no_grad():
        logits = policy.forward_logits(model, batch)
    run = student.call("pa5.recipes:logps_and_grads", student.build("pa5.recipes:policy_model"), batch, 0.7)
    torch.testing.assert_close(run["logps"], policy.token_logps(logits, batch["input_ids"], batch["loss_mask"], 0.7),
                               msg=lambda m: "policy_logps must equal token_logps of the full logits at temperature 0.7\n" + m)
    torch.testing.assert_close(run["entropy"], policy.token_entropy(logits, batch["loss_mask"], 0.7), msg=lambda m: (
        "and its entropy the full computation's, of the tempered distribution\n" + m))
    completions = sum(int(n) for n in batch["loss_mask"].sum(-1))
    assert (run["logps"] != 0).sum() == completions, "one log-prob per completion token, <|im_end|> included"
