"""What every task-2 algorithm shares about the policy: loading it with LoRA, its reference, the
forward pass, per-token log-probabilities, entropy and KL, masked means, and sampling.

* policy = the base checkpoint + a LoRA adapter on q_proj / v_proj (seeded A, zero B), so at step 0
  it *is* the base; reference = the same model with the adapter disabled - no second copy in memory.
* Completion token t is predicted at position t - 1: its log-probability, entropy and KL are read
  from ``logits[:, t - 1]``. Which tokens count is decided by a completion mask built from positions,
  never from the pad id (SmolLM2's pad == eos == ``<|im_end|>``, and the closing ``<|im_end|>``
  must count).
* RL samples at a temperature, so its log-probs are those of the tempered policy softmax(logits / T).

Shapes: N sequences, T tokens, V vocabulary. dpo.py, ppo.py and grpo.py import this module, never
each other.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from pa5 import llm
from pa5.checks import check_choice, check_int, check_number
from task2.config import KL_ESTIMATORS, LoRAConfig
from task2.data import end_of_turn_id
from task2.training import peft_lora_config

# --------------------------------------------------------------------------- the model


def load_policy(ref: str, lora: LoRAConfig = LoRAConfig(), seed: int = 0):
    """The base causal LM with a fresh LoRA adapter (seeded A, zero B: the policy starts as the base)."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from pa5 import hub

    torch.manual_seed(seed)
    return get_peft_model(hub.from_pretrained(AutoModelForCausalLM, ref), peft_lora_config("CAUSAL_LM", lora))


def reference_mode(model):
    """Context in which ``model`` is the reference: its LoRA adapter disabled (a plain model: itself)."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()


def forward_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """[N, T, V] logits, with positions counted over real tokens (right or left padding alike)."""
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                 position_ids=batch["position_ids"], use_cache=False).logits


# --------------------------------------------------------------------------- per-token quantities


def _check_token_inputs(logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor) -> None:
    if logits.dim() != 3 or labels.shape != logits.shape[:2] or loss_mask.shape != labels.shape:
        raise ValueError(f"expected logits [B, T, V] and labels, loss_mask [B, T]; got {tuple(logits.shape)}, "
                         f"{tuple(labels.shape)}, {tuple(loss_mask.shape)}")
    if loss_mask[:, 0].any():
        raise ValueError("loss_mask[:, 0] must be 0: the first token has no prediction before it")


def token_logps(logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor,
                temperature: float = 1.0) -> torch.Tensor:
    """Per-token log-probabilities of the completion tokens under softmax(logits / temperature).

    logits [B, T, V]; labels, loss_mask [B, T]. ``loss_mask[b, t]`` marks token t of ``labels`` as a
    completion token; its log-probability is read from ``logits[b, t - 1]`` (the next-token
    prediction made at t - 1). The mask, not a pad id, decides what counts: with pad == eos (SmolLM2)
    the end-of-turn token must be in the mask. Returns [B, T] float32, 0 where the mask is 0.
    RL samples at a temperature, so its log-probs must be those of the tempered policy.
    """
    _check_token_inputs(logits, labels, loss_mask)
    check_number("temperature", temperature, 0, low_open=True)
    ### BEGIN SOLUTION
    mask = loss_mask[:, 1:].bool()
    targets = labels[:, 1:].masked_fill(~mask, 0)  # masked labels may be -100 or pad: never gathered
    scaled = logits[:, :-1].float() / temperature
    log_probs = scaled.log_softmax(dim=-1).gather(-1, targets[..., None]).squeeze(-1)
    return F.pad(log_probs * mask, (1, 0))
    ### END SOLUTION


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """[B] sum of the log-probabilities of the completion tokens of each sequence (see :func:`token_logps`)."""
    return token_logps(logits, labels, loss_mask).sum(dim=-1)


def token_entropy(logits: torch.Tensor, loss_mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """[B, T] entropy (nats) of the tempered next-token distribution that predicted each completion
    token (read at t - 1, as :func:`token_logps`); 0 where the mask is 0. No gradient."""
    _check_token_inputs(logits, loss_mask, loss_mask)
    check_number("temperature", temperature, 0, low_open=True)
    with torch.no_grad():
        return F.pad(llm.entropy(logits[:, :-1].float() / temperature) * loss_mask[:, 1:], (1, 0))


def token_kl(policy_logits: torch.Tensor, reference_logits: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """[N] sum over completion tokens of KL(policy(.|prefix) || reference(.|prefix)), exact over the
    vocabulary at each predicting position (t - 1 for completion token t). Logits [N, T, V]."""
    if policy_logits.shape != reference_logits.shape or loss_mask.shape != policy_logits.shape[:2]:
        raise ValueError(f"expected policy_logits, reference_logits [N, T, V] and loss_mask [N, T]; got "
                         f"{tuple(policy_logits.shape)}, {tuple(reference_logits.shape)}, {tuple(loss_mask.shape)}")
    ### BEGIN SOLUTION
    log_p = policy_logits[:, :-1].float().log_softmax(-1)
    log_q = reference_logits[:, :-1].float().log_softmax(-1)
    per_position = (log_p.exp() * (log_p - log_q)).sum(-1)  # [N, T-1]
    return (per_position * loss_mask[:, 1:]).sum(-1)
    ### END SOLUTION


def kl_estimate(logps: torch.Tensor, ref_logps: torch.Tensor, estimator: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from the sampled token's log-probs (Schulman's k1 / k3).

    k1 = log pi - log pi_ref (unbiased, can be negative); k3 = exp(-k1) - 1 + k1 (unbiased, >= 0).
    """
    check_choice("estimator", estimator, KL_ESTIMATORS)
    ### BEGIN SOLUTION
    log_ratio = logps - ref_logps
    return log_ratio if estimator == "k1" else torch.expm1(-log_ratio) + log_ratio
    ### END SOLUTION


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1 (a scalar)."""
    if mask.sum() == 0:
        raise ValueError("mask selects no position: nothing to average")
    return (x * mask).sum() / mask.sum()


# --------------------------------------------------------------------------- the policy on a batch


def policy_logps(policy, batch: dict[str, torch.Tensor], temperature: float,
                 entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """([N, T] per-token log-probs of the completion tokens under the tempered policy, [N, T] entropy
    or None). With gradient if enabled by the caller.

    Only positions from the batch's earliest completion token on need logits (``logits_to_keep``):
    the LM head over the prompts - half the tokens, a 49k-way projection each in SmolLM2 - is skipped.
    """
    loss_mask = batch["loss_mask"]
    start = max(int(loss_mask.float().argmax(-1).min()) - 1, 0)  # predicts the earliest completion token
    logits = policy(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    position_ids=batch["position_ids"], use_cache=False,
                    logits_to_keep=loss_mask.shape[1] - start).logits  # [N, T - start, V]
    kept_ids, kept_mask = batch["input_ids"][:, start:], loss_mask[:, start:]
    logps = F.pad(token_logps(logits, kept_ids, kept_mask, temperature), (start, 0))
    return logps, F.pad(token_entropy(logits, kept_mask, temperature), (start, 0)) if entropy else None


@torch.no_grad()
def reference_token_logps(policy, batch: dict[str, torch.Tensor], temperature: float) -> torch.Tensor:
    """[N, T] per-token log-probs under the reference (the policy's LoRA adapter disabled)."""
    with reference_mode(policy):
        return policy_logps(policy, batch, temperature)[0]


# --------------------------------------------------------------------------- sampling


def _trim(completion: list[int], eos_id: int) -> list[int]:
    """Generated tokens up to and including the first end-of-turn (generate pads after it)."""
    return completion[: completion.index(eos_id) + 1] if eos_id in completion else completion


@torch.no_grad()
def generate(model, tokenizer, prompts: list[dict], max_new_tokens: int, do_sample: bool = False,
             samples: int = 1, seed: int = 0, batch_size: int = 64,
             temperature: float = 1.0) -> tuple[list[list[int]], list[list[int]]]:
    """(prompt ids, completion ids) per prompt and sample (``samples`` consecutive rows per prompt).

    ``prompts``: {"system", "question"}; their ids are the chat template's, system prompt included.
    Greedy by default; ``do_sample`` draws from softmax(logits / temperature) over the whole
    vocabulary (no top-k / top-p), seeded. A completion ends at its first ``<|im_end|>``, included;
    one that never emitted it stops at ``max_new_tokens`` without it - it did not end.
    """
    check_int("samples", samples, 1)
    eos_id = end_of_turn_id(tokenizer)
    encoded = [llm.prompt_ids(tokenizer, p["system"], p["question"]) for p in prompts]
    options = (dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) if do_sample
               else dict(do_sample=False))
    torch.manual_seed(seed)
    model.eval()
    out_prompts, out_completions = [], []
    per_batch = max(1, batch_size // samples)
    for start in range(0, len(encoded), per_batch):
        chunk = encoded[start: start + per_batch]
        input_ids, attention_mask = llm.left_pad(chunk, tokenizer.pad_token_id)
        sequences = model.generate(input_ids=input_ids.to(model.device), attention_mask=attention_mask.to(model.device),
                                   max_new_tokens=max_new_tokens, num_return_sequences=samples,
                                   eos_token_id=eos_id, pad_token_id=tokenizer.pad_token_id, **options)
        width = input_ids.shape[1]
        for row, sequence in enumerate(sequences.tolist()):
            out_prompts.append(chunk[row // samples])
            out_completions.append(_trim(sequence[width:], eos_id))
    return out_prompts, out_completions
