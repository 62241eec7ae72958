"""The quality-diversity study: run every decoding setting on the same prompts and score the texts.

The notebook only calls these; the strategies themselves live in ``task1.decoding``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from task1.decoding import beam_search, greedy_search, sample
from task1.metrics import distinct_n, length_in_words, repetition_rate, self_bleu

TEMPERATURES = (0.2, 0.5, 0.8, 1.0, 1.2)
COURSE_PROMPTS = ("Explain gravity to a 5-year-old.", "Write a short poem about a robot.",
                  "List three healthy breakfast ideas.", "How do I change a tire on a car?", "Why is the sky blue?")


@dataclass(frozen=True)
class Setting:
    strategy: str  # "greedy" | "beam" | "top-k" | "top-p"
    temperature: float | None = None
    options: dict = field(default_factory=dict, hash=False)

    @property
    def deterministic(self) -> bool:
        return self.strategy in ("greedy", "beam")


def study_settings(temperatures=TEMPERATURES, top_k: int = 50, top_p: float = 0.9, num_beams: int = 3) -> list[Setting]:
    """Greedy and beam search as deterministic references, then top-k and top-p at each temperature."""
    return [Setting("greedy"), Setting("beam", options={"num_beams": num_beams})] + [
        Setting(name, t, {"top_k": top_k} if name == "top-k" else {"top_p": top_p})
        for name, t in itertools.product(("top-k", "top-p"), temperatures)]


def encode_chat(tokenizer, questions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded chat prompts (user turn + generation prompt): input_ids, attention_mask [B, L]."""
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False)
             for q in questions]
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    return batch["input_ids"], batch["attention_mask"]


def decode_new(tokenizer, sequences: torch.Tensor, prompt_len: int) -> list[str]:
    return tokenizer.batch_decode(sequences[:, prompt_len:], skip_special_tokens=True)


def run_setting(model, tokenizer, questions: list[str], setting: Setting, samples_per_prompt: int,
                max_new_tokens: int, seed: int, batch_size: int) -> list[list[str]]:
    """``samples_per_prompt`` texts per question; greedy and beam search give the same text every
    time, so their one text is repeated (diversity across samples is then as low as it gets)."""
    if not isinstance(samples_per_prompt, int) or samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt must be an int >= 1, got {samples_per_prompt!r}")
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    n = 1 if setting.deterministic else samples_per_prompt
    texts: list[list[str]] = []
    torch.manual_seed(seed)
    per_batch = max(1, batch_size // n)
    for start in range(0, len(questions), per_batch):
        ids, mask = encode_chat(tokenizer, questions[start: start + per_batch])
        ids, mask = ids.to(model.device), mask.to(model.device)
        if setting.strategy == "greedy":
            out = greedy_search(model, ids, max_new_tokens, eos_token_id=eos, pad_token_id=pad, attention_mask=mask)
        elif setting.strategy == "beam":
            out, _ = beam_search(model, ids, setting.options["num_beams"], max_new_tokens, eos_token_id=eos,
                                 pad_token_id=pad, attention_mask=mask)
        else:
            out = sample(model, ids.repeat_interleave(n, 0), max_new_tokens, temperature=setting.temperature,
                         eos_token_id=eos, pad_token_id=pad, attention_mask=mask.repeat_interleave(n, 0),
                         **setting.options)
        decoded = decode_new(tokenizer, out, ids.shape[1])
        texts += [decoded[i: i + n] * (samples_per_prompt // n) for i in range(0, len(decoded), n)]
    return texts


def score_setting(questions: list[str], texts: list[list[str]], scorer) -> dict:
    """Quality (mean score), diversity across samples of a prompt (distinct-2, self-BLEU), length."""
    flat_q = [q for q, group in zip(questions, texts) for _ in group]
    flat_t = [t for group in texts for t in group]
    quality = scorer(flat_q, flat_t)
    several = [group for group in texts if len(group) > 1]
    return {
        "quality": sum(quality) / len(quality),
        "distinct_2": sum(distinct_n(group, 2) for group in texts) / len(texts),
        "self_bleu": sum(self_bleu(g) for g in several) / len(several) if several else None,  # needs >= 2
        "repetition": sum(repetition_rate(t) for t in flat_t) / len(flat_t),
        "length": sum(length_in_words(t) for t in flat_t) / len(flat_t),
    }


def run_study(model, tokenizer, questions: list[str], scorer, settings: list[Setting], samples_per_prompt: int,
              max_new_tokens: int, seed: int, batch_size: int):
    """One row per setting: strategy, temperature and the metrics of :func:`score_setting`."""
    import pandas as pd

    rows, examples = [], {}
    for setting in tqdm(settings, desc="decoding settings"):
        texts = run_setting(model, tokenizer, questions, setting, samples_per_prompt, max_new_tokens, seed, batch_size)
        rows.append({"strategy": setting.strategy, "temperature": setting.temperature,
                     **score_setting(questions, texts, scorer)})
        examples[(setting.strategy, setting.temperature)] = texts
    return pd.DataFrame(rows), examples


def parity_with_generate(model, tokenizer, questions: list[str], max_new_tokens: int, seeds=(0, 1)) -> dict:
    """Compare our strategies with ``model.generate`` on a batch of the study's prompts."""
    ids, mask = encode_chat(tokenizer, questions)
    ids, mask = ids.to(model.device), mask.to(model.device)
    common = {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id, "attention_mask": mask}
    hf = {"max_new_tokens": max_new_tokens, **common}
    checks = [("greedy", lambda: greedy_search(model, ids, max_new_tokens, **common),
               lambda: model.generate(ids, do_sample=False, **hf))]
    def seeded(seed, fn, **kwargs):
        return lambda: (torch.manual_seed(seed), fn(**kwargs))[1]

    for t, seed in itertools.product((0.7, 1.0), seeds):
        for name, ours, theirs in (("top-k", {"top_k": 50}, {"top_k": 50, "top_p": 1.0}),
                                   ("top-p", {"top_p": 0.9}, {"top_k": 0, "top_p": 0.9})):
            checks.append((f"{name} T={t} seed={seed}",
                           seeded(seed, sample, model=model, input_ids=ids, max_new_tokens=max_new_tokens,
                                  temperature=t, **ours, **common),
                           seeded(seed, model.generate, inputs=ids, do_sample=True, temperature=t, **theirs, **hf)))
    for beams, lp in ((3, 1.0), (4, 0.5)):
        checks.append((f"beam {beams} lp={lp}",
                       lambda beams=beams, lp=lp: beam_search(model, ids, beams, max_new_tokens, length_penalty=lp,
                                                              **common)[0],
                       lambda beams=beams, lp=lp: model.generate(ids, do_sample=False, num_beams=beams,
                                                                 length_penalty=lp, **hf)))
    mismatches = [name for name, ours, theirs in checks if not torch.equal(ours(), theirs())]
    return {"prompts": len(questions), "settings": len(checks), "mismatched_settings": mismatches}


def study_prompts(profile) -> list[str]:
    """The course's five prompts (full) or held-out prompts of the stand-in's four families (tiny)."""
    if profile.name == "full":
        return list(COURSE_PROMPTS[: profile.n_prompts])
    from pa5 import hub

    questions = hub.load_hf_dataset("standin:mini_orca")["test"]["question"]
    return list(dict.fromkeys(questions))[: profile.n_prompts]  # unique, in a fixed order
