"""Decoding strategies that reproduce ``transformers`` 5.x ``generate`` token for token.

Every function takes any Hugging Face causal LM, a batch of (left-padded) prompts and returns the
prompts followed by the generated tokens, as ``generate`` does. All of them use the KV cache: one
forward pass over the prompts, then one token per sequence per step.

Shapes: ``B`` prompts, ``L`` prompt length (after left padding), ``V`` vocabulary, ``T`` new tokens.
"""
from __future__ import annotations

import functools
import inspect

import torch

from pa5.checks import check_int, check_logits, check_number, is_int
from pa5.llm import position_ids

# --------------------------------------------------------------------------- input checks and the model


def _check_inputs(input_ids: torch.Tensor, max_new_tokens: int, attention_mask: torch.Tensor | None,
                  eos_token_id: int | None, pad_token_id: int | None, vocab_size: int | None = None):
    """Validate the shared arguments; returns (attention_mask, pad_token_id) with generate's defaults.
    Token ids must lie in [0, vocab_size); a prompt batch must be left-padded (decoder-only models
    continue each row from its last column)."""
    if (not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.numel() == 0
            or input_ids.is_floating_point()):
        got = (f"{input_ids.dtype} {tuple(input_ids.shape)}" if isinstance(input_ids, torch.Tensor)
               else type(input_ids).__name__)
        raise ValueError(f"input_ids must be a non-empty integer [B, L] tensor, got {got}")
    check_int("max_new_tokens", max_new_tokens, 0)
    high = f" in [0, {vocab_size})" if vocab_size else " >= 0"
    for name, token in (("eos_token_id", eos_token_id), ("pad_token_id", pad_token_id)):
        if token is not None and (not is_int(token) or token < 0 or (vocab_size and token >= vocab_size)):
            raise ValueError(f"{name} must be None or one int token id{high}, got {token!r}")
    if input_ids.min() < 0 or (vocab_size and input_ids.max() >= vocab_size):
        raise ValueError(f"input_ids must hold token ids{high}, got ids from {input_ids.min().item()} to "
                         f"{input_ids.max().item()}")
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    elif not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape:
        raise ValueError(f"attention_mask must be a tensor of input_ids' shape {tuple(input_ids.shape)}, got "
                         f"{tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask)}")
    elif not ((attention_mask == 0) | (attention_mask == 1)).all():
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (token)")
    elif (attention_mask[:, -1] == 0).any():
        raise ValueError("attention_mask: every row must end with a real token (1): pad prompts on the left "
                         "(tokenizer.padding_side = 'left'); right padding would continue after the padding")
    # generate pads finished sequences with eos when no pad token is given
    return attention_mask.long(), pad_token_id if pad_token_id is not None else eos_token_id


def _inference(fn):
    """Run ``fn`` under ``torch.inference_mode`` (cheaper than no_grad per op) and return ordinary
    tensors, so results can feed a later forward pass that tracks gradients (as generate's can)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.inference_mode():
            out = fn(*args, **kwargs)
        return tuple(t.clone() for t in out) if isinstance(out, tuple) else out.clone()
    return wrapper


@functools.lru_cache(maxsize=None)
def _forward_arguments(model_class: type) -> tuple[str, bool]:
    """The KV-cache keyword (``cache`` from transformers 5.24 on, ``past_key_values`` before) and
    whether the model can skip the vocabulary projection for all but the last position."""
    parameters = inspect.signature(model_class.forward).parameters
    return ("cache" if "cache" in parameters else "past_key_values"), "logits_to_keep" in parameters


def _forward(model, tokens: torch.Tensor, attention_mask: torch.Tensor, cache):
    """Run ``tokens`` [B, t] (the prompt, then one token per step) through the model with the cache.

    Returns the last position's logits as float32 [B, V] and the updated cache.
    """
    cache_keyword, can_keep_last = _forward_arguments(type(model))
    extra = {"logits_to_keep": 1} if can_keep_last else {}
    out = model(input_ids=tokens, attention_mask=attention_mask, position_ids=position_ids(attention_mask)[:, -tokens.shape[1]:],
                use_cache=True, **{cache_keyword: cache}, **extra)
    return out.logits[:, -1].float(), out[cache_keyword]


# --------------------------------------------------------------------------- logit filters


def top_k_filter(logits: torch.Tensor, k: int, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Keep the ``max(k, min_tokens_to_keep)`` largest logits of each row, set the rest to -inf.

    Ties with the k-th largest value are all kept (as ``TopKLogitsWarper``). logits: [..., V].
    """
    check_logits("logits", logits)
    check_int("k", k, 0)
    check_int("min_tokens_to_keep", min_tokens_to_keep, 1)
    ### BEGIN SOLUTION
    k = min(max(k, min_tokens_to_keep), logits.shape[-1])
    kth_largest = torch.topk(logits, k).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))
    ### END SOLUTION


def top_p_filter(logits: torch.Tensor, p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Nucleus filter: keep the smallest set of most likely tokens whose probability mass is >= p
    (the token that crosses p included, at least ``min_tokens_to_keep``), set the rest to -inf.

    Identical to ``TopPLogitsWarper``: tokens are removed from the least likely end while the mass
    removed so far stays <= 1 - p. logits: [B, V].
    """
    check_logits("logits", logits)
    check_number("p", p, 0, 1, low_open=True)
    check_int("min_tokens_to_keep", min_tokens_to_keep, 1)
    ### BEGIN SOLUTION
    ascending, order = torch.sort(logits, descending=False)
    mass_below = ascending.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = mass_below <= 1 - p
    remove_sorted[..., -min_tokens_to_keep:] = False
    remove = remove_sorted.scatter(-1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))
    ### END SOLUTION


def min_p_filter(logits: torch.Tensor, min_p: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Min-p (Nguyen et al., 2024): keep the tokens whose probability is at least ``min_p`` times the
    most likely token's, set the rest to -inf; the ``min_tokens_to_keep`` most likely always stay.

    Identical to ``MinPLogitsWarper``: the threshold scales with the model's confidence, so a sure
    step keeps one token and an open one keeps many. logits: [B, V].
    """
    check_logits("logits", logits)
    check_number("min_p", min_p, 0, 1)
    check_int("min_tokens_to_keep", min_tokens_to_keep, 1)
    ### BEGIN SOLUTION
    probs = logits.softmax(dim=-1)
    remove = probs < min_p * probs.amax(dim=-1, keepdim=True)
    most_likely = torch.topk(probs, min(min_tokens_to_keep, probs.shape[-1]), dim=-1).indices
    remove = remove.scatter(-1, most_likely, False)
    return logits.masked_fill(remove, float("-inf"))
    ### END SOLUTION


def typical_filter(logits: torch.Tensor, mass: float, min_tokens_to_keep: int = 1) -> torch.Tensor:
    """Locally typical sampling (Meister et al., 2023): rank tokens by how close their surprisal
    ``-log p`` is to the distribution's entropy H, keep the closest ones until their probability mass
    reaches ``mass`` (the crossing token included, and every token as close as it), set the rest to -inf.

    Identical to ``TypicalLogitsWarper`` (``generate(typical_p=mass)``). logits: [B, V].
    """
    check_logits("logits", logits)
    check_number("mass", mass, 0, 1, low_open=True)
    check_int("min_tokens_to_keep", min_tokens_to_keep, 1)
    ### BEGIN SOLUTION
    log_probs = logits.log_softmax(dim=-1)
    entropy = -(log_probs * log_probs.exp()).nansum(dim=-1, keepdim=True)  # nansum: -inf * 0 is no mass
    distance, order = torch.sort((-log_probs - entropy).abs(), descending=False)
    mass_so_far = logits.gather(-1, order).softmax(dim=-1).cumsum(dim=-1)
    last_kept = (mass_so_far < mass).sum(dim=-1, keepdim=True).clamp(max=logits.shape[-1] - 1)
    remove_sorted = distance > distance.gather(-1, last_kept)
    remove_sorted[..., :min_tokens_to_keep] = False
    return logits.masked_fill(remove_sorted.scatter(-1, order, remove_sorted), float("-inf"))
    ### END SOLUTION


# --------------------------------------------------------------------------- repetition controls


def penalize_repetition(scores: torch.Tensor, sequences: torch.LongTensor, penalty: float,
                        prompt_start: torch.LongTensor | None = None) -> torch.Tensor:
    """CTRL's repetition penalty (Keskar et al., 2019), as ``RepetitionPenaltyLogitsProcessor``: every
    token that already occurs in its row of ``sequences`` (prompt included) has its score divided by
    ``penalty`` if positive, multiplied by it if negative - so ``penalty > 1`` always makes it less likely.

    scores: [B, V] (logits, or log-probs in beam search); sequences: [B, t]; prompt_start: [B], the
    first real position of each row - the left padding before it is no occurrence (generate's
    ``prompt_ignore_length``). Returns new scores [B, V].
    """
    check_number("penalty", penalty, 0, low_open=True)
    ### BEGIN SOLUTION
    if prompt_start is not None:  # padding points at a spare column past the vocabulary, dropped below
        padding = torch.arange(sequences.shape[1], device=sequences.device) < prompt_start[:, None]
        sequences = sequences.masked_fill(padding, scores.shape[-1])
    seen = torch.zeros(scores.shape[0], scores.shape[-1] + 1, dtype=torch.bool, device=scores.device)
    seen = seen.scatter(1, sequences, True)[:, :-1]
    penalized = torch.where(scores < 0, scores * penalty, scores / penalty)
    return torch.where(seen, penalized, scores)
    ### END SOLUTION


def ban_repeated_ngrams(scores: torch.Tensor, sequences: torch.LongTensor, ngram_size: int) -> torch.Tensor:
    """No n-gram twice (``NoRepeatNGramLogitsProcessor``): a token that would complete an n-gram
    already present in its row of ``sequences`` (prompt and padding included, as generate does) gets
    score -inf. Nothing is banned before a row holds ``ngram_size`` tokens.

    scores: [B, V]; sequences: [B, t]; ngram_size >= 1. Returns new scores [B, V].
    """
    check_int("ngram_size", ngram_size, 1)
    ### BEGIN SOLUTION
    length = sequences.shape[1]
    if length < ngram_size:
        return scores
    windows = sequences.unfold(dimension=1, size=ngram_size, step=1)  # [B, t - n + 1, n]: every n-gram
    suffix = sequences[:, length - (ngram_size - 1):]  # the n - 1 tokens the next one would extend
    repeats = (windows[..., :-1] == suffix[:, None]).all(dim=-1)  # n-grams that start with that suffix
    banned = torch.zeros(scores.shape[0], scores.shape[-1] + 1, dtype=torch.bool, device=scores.device)
    banned = banned.scatter(1, torch.where(repeats, windows[..., -1], scores.shape[-1]), True)[:, :-1]
    return scores.masked_fill(banned, float("-inf"))
    ### END SOLUTION


def _check_repetition_controls(repetition_penalty, no_repeat_ngram_size) -> None:
    if repetition_penalty is not None:
        check_number("repetition_penalty", repetition_penalty, 0, low_open=True)
    if no_repeat_ngram_size is not None:
        check_int("no_repeat_ngram_size", no_repeat_ngram_size, 0)


def _repetition_controls(scores: torch.Tensor, sequences: torch.LongTensor, prompt_start: torch.LongTensor,
                         repetition_penalty: float | None, no_repeat_ngram_size: int | None) -> torch.Tensor:
    """generate's logits processors, in its order: repetition penalty, then the n-gram ban. ``None``,
    a penalty of 1 and an n-gram size of 0 switch them off (generate does not even build them)."""
    if repetition_penalty is not None and repetition_penalty != 1.0:
        scores = penalize_repetition(scores, sequences, repetition_penalty, prompt_start)
    if no_repeat_ngram_size:
        scores = ban_repeated_ngrams(scores, sequences, no_repeat_ngram_size)
    return scores


# --------------------------------------------------------------------------- greedy and sampling


def _prompt_start(attention_mask: torch.Tensor) -> torch.LongTensor:
    """[B]: each row's first real position (the length of its left padding)."""
    return (attention_mask != 0).int().argmax(dim=1)


@_inference
def _one_token_at_a_time(model, input_ids, max_new_tokens, choose, eos_token_id, pad_token_id, attention_mask,
                         repetition_penalty=None, no_repeat_ngram_size=None) -> torch.LongTensor:
    """The loop greedy search and sampling share, one token per row per step until every row has
    finished or ``max_new_tokens`` are generated.

    Each step: the last position's logits [B, V] -> the repetition controls
    (:func:`_repetition_controls`, on the sequences so far) -> ``choose`` -> tokens [B]. ``choose``
    is called on every row, finished ones included (sampling then draws from the RNG exactly as
    generate does); a finished row's token is then replaced by ``pad_token_id``. Shapes as in
    :func:`greedy_search`.
    """
    attention_mask, pad_token_id = _check_inputs(input_ids, max_new_tokens, attention_mask, eos_token_id,
                                                 pad_token_id, getattr(model.config, "vocab_size", None))
    _check_repetition_controls(repetition_penalty, no_repeat_ngram_size)
    ### BEGIN SOLUTION
    sequences = input_ids
    if max_new_tokens == 0:
        return sequences
    prompt_start = _prompt_start(attention_mask)
    unfinished = torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
    logits, cache = _forward(model, input_ids, attention_mask, None)
    for step in range(max_new_tokens):
        scores = _repetition_controls(logits, sequences, prompt_start, repetition_penalty, no_repeat_ngram_size)
        tokens = choose(scores)  # for every row, finished or not: sampling consumes the RNG as generate does
        if eos_token_id is not None:
            tokens = torch.where(unfinished, tokens, pad_token_id)
            unfinished &= tokens != eos_token_id
        sequences = torch.cat([sequences, tokens[:, None]], dim=-1)
        if step == max_new_tokens - 1 or not unfinished.any():
            break
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(attention_mask.shape[0], 1)], dim=-1)
        logits, cache = _forward(model, tokens[:, None], attention_mask, cache)
    return sequences
    ### END SOLUTION


def greedy_search(model, input_ids: torch.LongTensor, max_new_tokens: int, *, repetition_penalty: float | None = None,
                  no_repeat_ngram_size: int | None = None, eos_token_id: int | None = None,
                  pad_token_id: int | None = None, attention_mask: torch.Tensor | None = None) -> torch.LongTensor:
    """The most likely next token at every step: ``generate(do_sample=False)``.

    ``repetition_penalty`` (> 0, 1 = off) and ``no_repeat_ngram_size`` (0 = off) are generate's
    repetition controls, applied to the logits before the argmax. input_ids, attention_mask: [B, L]
    (left-padded). Returns [B, L + T], T <= max_new_tokens; after its EOS a sequence is padded with
    ``pad_token_id`` (default: the EOS) until all have finished.
    """
    ### BEGIN SOLUTION
    return _one_token_at_a_time(model, input_ids, max_new_tokens, lambda logits: logits.argmax(dim=-1),
                                eos_token_id, pad_token_id, attention_mask, repetition_penalty, no_repeat_ngram_size)
    ### END SOLUTION


def sample(model, input_ids: torch.LongTensor, max_new_tokens: int, *, temperature: float = 1.0,
           top_k: int | None = None, top_p: float | None = None, min_p: float | None = None,
           typical_p: float | None = None, repetition_penalty: float | None = None,
           no_repeat_ngram_size: int | None = None, eos_token_id: int | None = None,
           pad_token_id: int | None = None, attention_mask: torch.Tensor | None = None) -> torch.LongTensor:
    """Ancestral sampling from softmax(logits / temperature), optionally restricted by top-k, top-p,
    min-p and typical filters: ``generate(do_sample=True, temperature, top_k, top_p, min_p, typical_p,
    repetition_penalty, no_repeat_ngram_size)``.

    The order is generate's: repetition penalty -> n-gram ban -> temperature -> top-k -> top-p ->
    min-p -> typical -> ``multinomial(softmax)``. ``top_k`` None or 0, ``top_p`` / ``typical_p`` None
    or 1, ``min_p`` None switch those filters off. Same ``torch.manual_seed`` -> same tokens as
    generate. Shapes as in :func:`greedy_search`.
    """
    check_number("temperature", temperature, 0, low_open=True)
    if top_k is not None:
        check_int("top_k", top_k, 0)
    if top_p is not None:
        check_number("top_p", top_p, 0, 1, low_open=True)
    if min_p is not None:
        check_number("min_p", min_p, 0, 1)
    if typical_p is not None:
        check_number("typical_p", typical_p, 0, 1, low_open=True)

    ### BEGIN SOLUTION
    def choose(logits: torch.Tensor) -> torch.Tensor:
        if temperature != 1.0:
            logits = logits / temperature
        if top_k:
            logits = top_k_filter(logits, top_k)
        if top_p is not None and top_p < 1.0:
            logits = top_p_filter(logits, top_p)
        if min_p is not None:
            logits = min_p_filter(logits, min_p)
        if typical_p is not None and typical_p < 1.0:
            logits = typical_filter(logits, typical_p)
        return torch.multinomial(logits.softmax(dim=-1), num_samples=1).squeeze(1)

    return _one_token_at_a_time(model, input_ids, max_new_tokens, choose, eos_token_id, pad_token_id,
                                attention_mask, repetition_penalty, no_repeat_ngram_size)
    ### END SOLUTION


# --------------------------------------------------------------------------- beam search


def _gather(tensor: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Select beams: tensor [B, m, ...], index [B, k] -> [B, k, ...]."""
    return torch.take_along_dim(tensor, index.view(*index.shape, *[1] * (tensor.dim() - 2)), dim=1)


@_inference
def beam_search(model, input_ids: torch.LongTensor, num_beams: int, max_new_tokens: int, *,
                length_penalty: float = 1.0, early_stopping: bool | str = False, num_return_sequences: int = 1,
                repetition_penalty: float | None = None, no_repeat_ngram_size: int | None = None,
                eos_token_id: int | None = None, pad_token_id: int | None = None,
                attention_mask: torch.Tensor | None = None) -> tuple[torch.LongTensor, torch.FloatTensor]:
    """Beam search exactly as ``generate(num_beams, length_penalty, early_stopping, num_return_sequences)``.

    Each step extends every running beam by every token, keeps the best ``2 * num_beams`` candidates
    by summed log-probability, moves candidates that end with EOS (or reach the length limit) and rank
    among the top ``num_beams`` to the finished set with score ``sum_logp / T ** length_penalty``
    (T = generated tokens, EOS included), and continues with the best ``num_beams`` unfinished ones.
    ``early_stopping``: True stops once ``num_beams`` hypotheses are finished; False stops when the
    best running beam, scored at its current length, cannot beat the worst finished one; "never"
    assumes (for a positive length penalty) it could still grow to the maximum length.
    ``repetition_penalty`` and ``no_repeat_ngram_size`` act on each beam's log-probabilities (after
    the log-softmax, as in generate), with that beam's own sequence.

    Returns sequences [B * num_return_sequences, L + T] (best first per prompt) and their scores
    [B * num_return_sequences].

    generate's bookkeeping, which token-for-token parity needs:
    - positions a hypothesis does not reach are filled with ``pad_token_id or eos_token_id`` (Python's
      ``or``: a pad id of 0 falls back to EOS), not with the pad id as in greedy search;
    - at step 1 every beam of a prompt is the same prompt: only beam 0 may expand (the others start
      at score -1e9), so the first candidates are distinct tokens;
    - a candidate enters the finished set only if it ended (EOS, or the length limit) and ranks among
      the best ``num_beams`` of the ``2 * num_beams`` candidates; a finished set that is full (with
      ``early_stopping=True``), a prompt that can no longer improve, and a candidate that did not just
      end each subtract 1e9 from its score separately (ties with empty finished slots depend on it);
    - "can no longer improve" is a per-prompt flag, once False it stays False; the loop stops when no
      prompt can improve, when every finished set is full (``early_stopping=True``) or at the limit;
    - the returned length T is that of the longest returned hypothesis (shorter ones filled as above);
    - after each step the KV cache is reordered to the beams that were kept (``cache.reorder_cache``).
    """
    attention_mask, pad_token_id = _check_inputs(input_ids, max_new_tokens, attention_mask, eos_token_id,
                                                 pad_token_id, getattr(model.config, "vocab_size", None))
    check_int("num_beams", num_beams, 1)
    check_int("num_return_sequences", num_return_sequences, 1, num_beams)  # at most num_beams
    if not (early_stopping is True or early_stopping is False or early_stopping == "never"):
        raise ValueError(f"early_stopping must be False, True or 'never', got {early_stopping!r}")
    check_number("length_penalty", length_penalty, -100, 100)  # T ** 1e308 overflows
    _check_repetition_controls(repetition_penalty, no_repeat_ngram_size)
    batch, prompt_len = input_ids.shape
    if max_new_tokens == 0:
        return (input_ids.repeat_interleave(num_return_sequences, dim=0),
                torch.zeros(batch * num_return_sequences, device=input_ids.device))
    ### BEGIN SOLUTION
    n, device = num_beams, input_ids.device
    max_length = prompt_len + max_new_tokens
    # generate's filler for unused positions: `pad_token_id or eos_token_id` (so pad 0 falls back to eos)
    fill = -1 if eos_token_id is None else (pad_token_id or eos_token_id)
    n_candidates = 2 * n  # = max(2, 1 + number of EOS tokens) * num_beams with one EOS token
    among_best_n = torch.arange(n_candidates, device=device) < n

    running = torch.full((batch, n, max_length), fill, dtype=torch.long, device=device)
    running[:, :, :prompt_len] = input_ids[:, None]
    finished = running.clone()
    running_scores = torch.zeros(batch, n, device=device)
    running_scores[:, 1:] = -1e9  # all beams start identical: only the first may expand at step 1
    finished_scores = torch.full((batch, n), -1e9, device=device)
    is_finished = torch.zeros(batch, n, dtype=torch.bool, device=device)
    finished_lengths = torch.zeros(batch, n, dtype=torch.long, device=device)
    may_improve = torch.ones(batch, 1, dtype=torch.bool, device=device)

    attention_mask = attention_mask.repeat_interleave(n, dim=0)
    prompt_start = _prompt_start(attention_mask)
    logits, cache = _forward(model, input_ids.repeat_interleave(n, dim=0), attention_mask, None)
    for cur_len in range(prompt_len, max_length):
        log_probs = _repetition_controls(logits.log_softmax(dim=-1), running[:, :, :cur_len].reshape(batch * n, cur_len),
                                         prompt_start, repetition_penalty, no_repeat_ngram_size)  # [B * n, V]
        vocab = log_probs.shape[-1]
        totals = (log_probs.view(batch, n, vocab) + running_scores[:, :, None]).view(batch, n * vocab)
        cand_scores, flat = torch.topk(totals, n_candidates)  # [B, 2n], best first
        cand_beam, cand_token = flat // vocab, flat % vocab
        cand = _gather(running, cand_beam)
        cand[:, :, cur_len] = cand_token
        ends = cand_token == eos_token_id if eos_token_id is not None else torch.zeros_like(cand_token, dtype=torch.bool)
        ends |= cur_len + 1 >= max_length

        # the best n candidates that go on
        keep = torch.topk(cand_scores - 1e9 * ends.float(), n).indices
        running, running_scores = _gather(cand, keep), _gather(cand_scores - 1e9 * ends.float(), keep)
        source_beam = _gather(cand_beam, keep)

        # candidates that end now (and rank among the best n) may enter the finished set
        generated = cur_len + 1 - prompt_len
        new_scores = cand_scores / generated**length_penalty
        full = is_finished.all(dim=-1, keepdim=True) & (early_stopping is True)
        just_ended = ends & among_best_n
        # generate adds the three penalties separately; keep that, ties with empty slots depend on it
        new_scores = new_scores - 1e9 * full.float() - 1e9 * (~may_improve).float() - 1e9 * (~just_ended).float()
        merged_scores = torch.cat([finished_scores, new_scores], dim=1)
        best = torch.topk(merged_scores, n).indices
        finished = _gather(torch.cat([finished, cand], dim=1), best)
        finished_scores = _gather(merged_scores, best)
        is_finished = _gather(torch.cat([is_finished, just_ended], dim=1), best)
        finished_lengths = _gather(torch.cat([finished_lengths, torch.full_like(cand_token, generated)], dim=1), best)

        # can a running beam still beat the worst finished one? (generate's heuristic)
        length = max_new_tokens if early_stopping == "never" and length_penalty > 0 else generated
        best_running = running_scores[:, :1] / length**length_penalty
        worst_finished = torch.where(is_finished, finished_scores.min(dim=1, keepdim=True).values, -1e9)
        may_improve = may_improve & (best_running > worst_finished).any(dim=-1, keepdim=True)
        done_early = is_finished.all() & (early_stopping is True)
        if not may_improve.any() or done_early or ends.all():
            break
        cache.reorder_cache((source_beam + torch.arange(batch, device=device)[:, None] * n).view(-1))
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(batch * n, 1)], dim=-1)
        logits, cache = _forward(model, running[:, :, cur_len].reshape(-1, 1), attention_mask, cache)

    r = num_return_sequences
    sequences = finished[:, :r].reshape(batch * r, max_length)
    length = int(finished_lengths[:, :r].max())
    return sequences[:, : prompt_len + length], finished_scores[:, :r].reshape(-1)
    ### END SOLUTION
