"""Task 2: the evaluation harness every model goes through (prompts, generation, KL, gold, summary)."""
import math

import pytest
import torch

from pa5.judge import gold_score
from task2 import data, policy
from task2 import evaluate as ev
from task2 import reward_model as rm
from task2.config import EvaluationConfig

MODEL = "standin:smollm2"


@pytest.fixture(scope="module")
def tokenizer(smollm2_standin):
    from transformers import AutoTokenizer

    from pa5 import hub
    return hub.from_pretrained(AutoTokenizer, MODEL)


@pytest.fixture(scope="module")
def test_rows(mini_orca_standin):
    from pa5 import task_profile
    return data.load_pairs(task_profile("task2", "tiny"))["test"]


def test_evaluation_prompts_are_the_course_prompts_then_distinct_test_questions(test_rows):
    prompts = ev.evaluation_prompts(test_rows, 20)
    assert [p["question"] for p in prompts[:3]] == list(ev.COURSE_PROMPTS)
    assert len(prompts) == 23 and len({p["question"] for p in prompts}) == 23
    assert gold_score("Summarise this article about tax law.", "OK.") == (pytest.approx(math.nan, nan_ok=True), "open")
    assert gold_score("What is the capital of France?", "Its capital is Paris.") == (1.0, "capital")


def test_batched_greedy_generation_matches_one_prompt_at_a_time(tokenizer, test_rows):
    from pa5 import hub
    from transformers import AutoModelForCausalLM
    model = hub.from_pretrained(AutoModelForCausalLM, MODEL).eval()
    prompts = ev.evaluation_prompts(test_rows, 5)
    batched_prompts, batched = policy.generate(model, tokenizer, prompts, max_new_tokens=24)
    end = data.end_of_turn_id(tokenizer)
    for prompt, ids, completion in zip(prompts, batched_prompts, batched):
        alone = model.generate(torch.tensor([ids]), max_new_tokens=24, do_sample=False, pad_token_id=end,
                               eos_token_id=end)[0, len(ids):].tolist()
        assert completion == alone[: alone.index(end) + 1] if end in alone else alone, (
            "left-padded batches must decode as single prompts do; completions stop at <|im_end|>, included")
        assert ids == data.prompt_ids(tokenizer, prompt["system"], prompt["question"])


def test_kl_estimate_is_zero_for_the_reference_and_positive_after_training(tokenizer, test_rows):
    model = policy.load_policy(MODEL)
    prompts = ev.evaluation_prompts(test_rows, 6)
    p, samples = policy.generate(model, tokenizer, prompts, 24, do_sample=True, samples=3, seed=0)
    assert len(samples) == 3 * len(prompts) and p[:3] == [p[0]] * 3, "samples of one prompt are consecutive"
    assert ev.log_ratios(model, p, samples, tokenizer.pad_token_id).abs().max() < 1e-5, "B = 0: policy == reference"
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)
    p, samples = policy.generate(model, tokenizer, prompts, 24, do_sample=True, samples=3, seed=0)  # from the new policy
    ratios = ev.log_ratios(model, p, samples, tokenizer.pad_token_id)
    with torch.no_grad():
        batch = data.pad_sequences([a + b for a, b in zip(p, samples)], [[0] * len(a) + [1] * len(b) for a, b in zip(p, samples)],
                                   tokenizer.pad_token_id)
        lp = policy.sequence_logps(policy.forward_logits(model, batch), batch["input_ids"], batch["loss_mask"])
        with model.disable_adapter():
            lq = policy.sequence_logps(policy.forward_logits(model, batch), batch["input_ids"], batch["loss_mask"])
    torch.testing.assert_close(ratios, lp - lq)
    assert ratios.mean() > 0, "a Monte-Carlo KL(policy || reference) on the policy's own samples is positive on average"


def test_evaluate_model_rows_and_summary(tokenizer, test_rows):
    model = policy.load_policy(MODEL)
    scorer = rm.RewardScorer(rm.load_reward_model(MODEL, tokenizer.pad_token_id), tokenizer.pad_token_id)
    prompts = ev.evaluation_prompts(test_rows, 8)
    frame = ev.evaluate_model("base", model, tokenizer, prompts, scorer, EvaluationConfig(n_prompts=8, max_new_tokens=24,
                                                                                          kl_samples=2))
    assert list(frame.columns) == ["model", "prompt", "family", "prompt_type", "response", "rm_reward", "gold", "length",
                                   "words", "kl"]
    assert set(frame["prompt_type"]) <= {"constraint", "safety", "factual"}
    assert len(frame) == 11 and set(frame["family"]) <= {"capital", "word_count", "safety", "listing"}
    prompt_ids, completions = policy.generate(model, tokenizer, prompts, 24)
    torch.testing.assert_close(torch.tensor(frame["rm_reward"].tolist()), scorer(prompt_ids, completions), msg=lambda m: (
        "the reward model scores each answer's own token ids (prompt + completion as generated)\n" + m))
    summary = ev.summarize(frame)["base"]
    assert summary["gold_success"] == pytest.approx(frame["gold"].mean())
    assert summary["kl"] == pytest.approx(0.0, abs=1e-5) and summary["n_prompts"] == 11
    with pytest.raises(ValueError, match="kl_samples"):
        EvaluationConfig(n_prompts=8, max_new_tokens=24, kl_samples=0)


def test_no_overoptimisation_verdict_from_missing_gold():
    """The programmatic judge gives NaN outside its families (every real orca question): a verdict needs
    at least two judged steps in the first and the last quarter, else it says there is too little data."""
    import math

    from task2.evaluate import overoptimisation

    steps = [{"rm_reward": 0.1 * i, "gold_success": math.nan, "kl": 0.0, "length": 10.0} for i in range(12)]
    assert overoptimisation(steps)["verdict"].startswith("too little gold data")
    for i, h in enumerate(steps):
        h["gold_success"] = 0.8 - 0.05 * i + 0.01 * (i % 2)
    result = overoptimisation(steps)
    assert result["judged_steps"] == (3, 3) and "FELL" in result["verdict"], result
    steps[0]["gold_success"] = steps[1]["gold_success"] = math.nan
    assert overoptimisation(steps)["verdict"].startswith("too little gold data"), "one judged step is not a trend"
