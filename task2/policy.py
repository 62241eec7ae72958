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
from torch.utils.checkpoint import checkpoint

from pa5 import llm
from pa5.checks import check_choice, check_floating, check_int, check_number, check_same_shape
from pa5.device import autocast
from task2.config import KL_ESTIMATORS, LoRAConfig
from task2.data import end_of_turn_id
from task2.training import peft_lora_config

# --------------------------------------------------------------------------- the model


def load_policy(ref: str, lora: LoRAConfig = LoRAConfig(), seed: int = 0, device="cpu"):
    """The base causal LM (float32) with a fresh LoRA adapter (seeded A, zero B: the policy starts as
    the base), on ``device``."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from pa5 import hub
    from pa5.device import place

    torch.manual_seed(seed)
    base = hub.load_model(AutoModelForCausalLM, ref, device)
    return place(get_peft_model(base, peft_lora_config("CAUSAL_LM", lora)), device)


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


def selective_logps(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log softmax(logits / temperature)[target] without the full [..., V] log-softmax.

    logits [..., V]; targets [...] (ids). logsumexp + gather, in float32: the only [..., V] tensor
    is the float32 copy of ``logits`` itself (a log_softmax would add another), which is why callers
    feed it the LM head's output a chunk of positions at a time. Returns [...] float32.
    """
    ### BEGIN SOLUTION
    scaled = logits.float() / temperature
    return scaled.gather(-1, targets[..., None]).squeeze(-1) - scaled.logsumexp(dim=-1)
    ### END SOLUTION


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
    return F.pad(selective_logps(logits[:, :-1], targets, temperature) * mask, (1, 0))
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
    check_same_shape(None, logps=logps, ref_logps=ref_logps)
    check_floating(logps=logps, ref_logps=ref_logps)
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
#
# Memory: the LM head turns each position into 49,152 logits; over all positions of a 16 x 1024 batch
# their float32 copies alone are 3 GB, a log-softmax doubles it and autograd keeps both. So the head
# runs only on the positions that predict a completion token, a chunk of HEAD_CHUNK positions at a
# time, each chunk under activation checkpointing when gradients flow (its logits are recomputed in
# the backward pass instead of kept): the peak is one chunk's logits, whatever the batch.

HEAD_CHUNK = 2048  # positions per LM-head chunk: 2048 x 49,152 float32 logits = 400 MB


def causal_lm(model):
    """The transformers causal LM inside ``model`` (a PeftModel's LoRA layers live inside it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def completion_hidden(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """([M, H] final hidden states at the M positions that predict a completion token, (rows, columns)
    of the M predicted tokens in the batch). The LM head is not applied."""
    lm = causal_lm(model)
    backbone = getattr(lm, lm.base_model_prefix)
    with autocast(batch["input_ids"].device):
        hidden = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      position_ids=batch["position_ids"], use_cache=False).last_hidden_state  # [N, T, H]
    rows, columns = batch["loss_mask"][:, 1:].nonzero(as_tuple=True)  # token columns + 1 is predicted at columns
    return hidden[rows, columns], (rows, columns + 1)


def _head_logps(head, hidden: torch.Tensor, targets: torch.Tensor, temperature: float,
                entropy: bool) -> tuple[torch.Tensor, torch.Tensor]:
    with autocast(hidden.device):
        logits = head(hidden)
    logps = selective_logps(logits, targets, temperature)
    if not entropy:
        return logps, logps.new_zeros(0)
    with torch.no_grad():
        return logps, llm.entropy(logits.float() / temperature)


def policy_logps(policy, batch: dict[str, torch.Tensor], temperature: float,
                 entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """([N, T] per-token log-probs of the completion tokens under the tempered policy, [N, T] entropy
    or None); 0 outside the completion mask. With gradient if enabled by the caller.

    Equal to :func:`token_logps` / :func:`token_entropy` on the full logits (tested to 1e-6), at the
    memory of one head chunk (see above).
    """
    check_number("temperature", temperature, 0, low_open=True)
    hidden, index = completion_hidden(policy, batch)
    targets = batch["input_ids"][index]
    head = causal_lm(policy).get_output_embeddings()
    checkpointed = torch.is_grad_enabled() and hidden.requires_grad
    logps, entropies = [hidden.new_zeros(0, dtype=torch.float32)], [hidden.new_zeros(0, dtype=torch.float32)]
    for start in range(0, len(hidden), HEAD_CHUNK):
        part = (head, hidden[start: start + HEAD_CHUNK], targets[start: start + HEAD_CHUNK], temperature, entropy)
        chunk_logps, chunk_entropy = (checkpoint(_head_logps, *part, use_reentrant=False) if checkpointed
                                      else _head_logps(*part))
        logps.append(chunk_logps), entropies.append(chunk_entropy)
    shape = batch["input_ids"].shape
    logps = torch.zeros(shape, device=hidden.device).index_put(index, torch.cat(logps))
    if not entropy:
        return logps, None
    return logps, torch.zeros(shape, device=hidden.device).index_put(index, torch.cat(entropies))


@torch.no_grad()
def reference_token_logps(policy, batch: dict[str, torch.Tensor], temperature: float) -> torch.Tensor:
    """[N, T] per-token log-probs under the reference (the policy's LoRA adapter disabled)."""
    with reference_mode(policy):
        return policy_logps(policy, batch, temperature)[0]


@torch.no_grad()
def completion_kl(policy, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """[N] sum over completion tokens of the exact KL(policy || reference) at each predicting position:
    :func:`token_kl` on the full logits (tested), a head chunk at a time."""
    hidden, (rows, _) = completion_hidden(policy, batch)
    with reference_mode(policy):
        reference_hidden, _ = completion_hidden(policy, batch)
    head = causal_lm(policy).get_output_embeddings()
    per_position = [hidden.new_zeros(0, dtype=torch.float32)]
    for start in range(0, len(hidden), HEAD_CHUNK):
        part = slice(start, start + HEAD_CHUNK)
        with autocast(hidden.device):
            logits, reference_logits = head(hidden[part]), head(reference_hidden[part])
        log_p, log_q = logits.float().log_softmax(-1), reference_logits.float().log_softmax(-1)
        per_position.append((log_p.exp() * (log_p - log_q)).sum(-1))
    return torch.zeros(len(batch["input_ids"]), device=hidden.device).index_add(0, rows, torch.cat(per_position))


def batch_logps(policy, batch: dict[str, torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """[N] summed completion log-probs of each sequence (DPO's log pi(y | x)); with gradient if enabled."""
    return policy_logps(policy, batch, temperature)[0].sum(-1)


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
        with autocast(model.device):
            sequences = model.generate(input_ids=input_ids.to(model.device), attention_mask=attention_mask.to(model.device),
                                       max_new_tokens=max_new_tokens, num_return_sequences=samples,
                                       eos_token_id=eos_id, pad_token_id=tokenizer.pad_token_id, **options)
        width = input_ids.shape[1]
        for row, sequence in enumerate(sequences.tolist()):
            out_prompts.append(chunk[row // samples])
            out_completions.append(_trim(sequence[width:], eos_id))
    return out_prompts, out_completions
