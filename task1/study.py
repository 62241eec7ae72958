"""The quality-diversity study: run every decoding setting on the same prompts and score the texts.

The notebook only calls these; the strategies themselves live in ``task1.decoding``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from pa5 import hub
from pa5.llm import encode_prompts, entropy
from task1.config import COURSE, COURSE_PROMPTS, StudyConfig, Task1Config
from task1.decoding import beam_search, greedy_search, sample
from task1.metrics import distinct_n, length_in_words, repetition_rate, self_bleu


@dataclass(frozen=True)
class Setting:
    strategy: str  # "greedy" | "beam" | "top-k" | "top-p"
    temperature: float | None = None
    options: dict = field(default_factory=dict, hash=False)

    @property
    def deterministic(self) -> bool:
        return self.strategy in ("greedy", "beam")


def study_settings(study: StudyConfig) -> list[Setting]:
    """Greedy and beam search as deterministic references, then top-k and top-p at each temperature."""
    return [Setting("greedy"), Setting("beam", options={"num_beams": study.num_beams})] + [
        Setting(name, t, {"top_k": study.top_k} if name == "top-k" else {"top_p": study.top_p})
        for name, t in itertools.product(("top-k", "top-p"), study.temperatures)]


def encode_chat(tokenizer, questions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded chat prompts (the template's default system prompt, the user turn, the generation
    prompt): input_ids, attention_mask [B, L]."""
    return encode_prompts(tokenizer, [{"system": "", "question": q} for q in questions])


def decode_new(tokenizer, sequences: torch.Tensor, prompt_len: int) -> list[str]:
    return tokenizer.batch_decode(sequences[:, prompt_len:], skip_special_tokens=True)


def run_setting(model, tokenizer, questions: list[str], setting: Setting, config: Task1Config,
                seed: int) -> list[list[str]]:
    """``config.samples_per_prompt`` texts per question; greedy and beam search give the same text every
    time, so their one text is repeated (diversity across samples is then as low as it gets)."""
    samples_per_prompt, max_new_tokens = config.samples_per_prompt, config.max_new_tokens
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    n = 1 if setting.deterministic else samples_per_prompt
    texts: list[list[str]] = []
    torch.manual_seed(seed)
    per_batch = max(1, config.batch_size // n)
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


def run_study(model, tokenizer, questions: list[str], scorer, config: Task1Config, seed: int):
    """One row per setting of ``config.study``: strategy, temperature and the metrics of
    :func:`score_setting`; and the texts, per (strategy, temperature)."""
    import pandas as pd

    rows, examples = [], {}
    for setting in tqdm(study_settings(config.study), desc="decoding settings"):
        texts = run_setting(model, tokenizer, questions, setting, config, seed)
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


def study_prompts(config: Task1Config) -> list[str]:
    """The first ``config.n_prompts`` prompts of ``config.prompts``: the course's own, or a
    preference dataset's distinct held-out questions (in a fixed order)."""
    if config.prompts == COURSE:
        questions = COURSE_PROMPTS
    else:
        questions = list(dict.fromkeys(hub.load_hf_dataset(config.prompts)["test"]["question"]))
    return list(questions[: config.n_prompts])


@torch.no_grad()
def most_uncertain_step(model, tokenizer, questions: list[str], max_new_tokens: int) -> dict:
    """Where the filters matter most: over the greedy answers to ``questions``, the step whose
    next-token distribution has the highest entropy. Returns {"question", "answer_so_far",
    "entropy" (nats), "probs" [V]}."""
    best = None
    for question in questions:
        prompt = encode_chat(tokenizer, [question])[0].to(model.device)
        answer = greedy_search(model, prompt, max_new_tokens, eos_token_id=tokenizer.eos_token_id)
        logits = model(input_ids=answer).logits[0, prompt.shape[1] - 1:-1].float()  # [T, V]: predicts each new token
        per_step = entropy(logits)
        step = int(per_step.argmax())
        if best is None or per_step[step] > best["entropy"]:
            best = {"question": question, "entropy": float(per_step[step]), "probs": logits[step].softmax(-1),
                    "answer_so_far": tokenizer.decode(answer[0, prompt.shape[1]: prompt.shape[1] + step])}
    return best


def describe(table) -> str:
    """What the study's table says, in a few lines: diversity and quality from the lowest to the
    highest temperature per filter, the best quality and the most diverse setting."""
    sampled = table[table.temperature.notna()]
    best = table.loc[table.quality.idxmax()]
    most_diverse = sampled.loc[sampled.distinct_2.idxmax()]
    lines = []
    for strategy, rows in sampled.groupby("strategy"):
        lo, hi = rows.iloc[0], rows.iloc[-1]
        lines.append(f"{strategy}: T {lo.temperature:g} -> {hi.temperature:g}: distinct-2 {lo.distinct_2:.3f} -> "
                     f"{hi.distinct_2:.3f}, quality {lo.quality:.3f} -> {hi.quality:.3f}")
    lines.append(f"highest quality: {best.strategy} (T={best.temperature}) {best.quality:.3f}; most diverse: "
                 f"{most_diverse.strategy} T={most_diverse.temperature:g} (distinct-2 {most_diverse.distinct_2:.3f})")
    return "\n".join(lines)
