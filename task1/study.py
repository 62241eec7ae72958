"""The quality-diversity study: run every decoding setting on the same prompts and score the texts.

The notebook only calls these; the strategies themselves live in ``task1.decoding``.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from pa5 import hub
from pa5.judge import gold_score
from pa5.llm import encode_prompts, entropy
from task1.config import COURSE, COURSE_PROMPTS, StudyConfig, Task1Config
from task1.decoding import beam_search, greedy_search, sample
from task1.metrics import distinct_n, length_in_words, longest_repeated_span, repetition_rate, self_bleu


@dataclass(frozen=True)
class Setting:
    name: str  # the table's label, e.g. "top-p 0.9" or "greedy, no repeat 3-gram"
    strategy: str  # "greedy" | "beam" | "sample": which decoding function
    temperature: float | None = None  # sampling only
    options: dict = field(default_factory=dict, hash=False)  # the function's other keyword arguments

    @property
    def deterministic(self) -> bool:
        return self.strategy in ("greedy", "beam")

    @property
    def label(self) -> str:
        """Unique within a study: the name, and the temperature of a sampled setting."""
        return self.name if self.temperature is None else f"{self.name}, T={self.temperature:g}"


def study_settings(study: StudyConfig) -> list[Setting]:
    """Deterministic references (greedy and beam, plain and with each repetition control), top-k and
    top-p at each temperature, min-p and typical at ``study.filter_temperature``."""
    rp, ngram, beams = study.repetition_penalty, study.no_repeat_ngram_size, study.num_beams
    settings = [Setting("greedy", "greedy"),
                Setting(f"greedy, repetition penalty {rp:g}", "greedy", options={"repetition_penalty": rp}),
                Setting(f"greedy, no repeat {ngram}-gram", "greedy", options={"no_repeat_ngram_size": ngram}),
                Setting(f"beam {beams}", "beam", options={"num_beams": beams}),
                Setting(f"beam {beams}, no repeat {ngram}-gram", "beam",
                        options={"num_beams": beams, "no_repeat_ngram_size": ngram})]
    for name, options in ((f"top-k {study.top_k}", {"top_k": study.top_k}), (f"top-p {study.top_p:g}", {"top_p": study.top_p})):
        settings += [Setting(name, "sample", t, options) for t in study.temperatures]
    return settings + [Setting(f"min-p {study.min_p:g}", "sample", study.filter_temperature, {"min_p": study.min_p}),
                       Setting(f"typical {study.typical_p:g}", "sample", study.filter_temperature,
                               {"typical_p": study.typical_p})]


def encode_chat(tokenizer, questions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded chat prompts (the template's default system prompt, the user turn, the generation
    prompt): input_ids, attention_mask [B, L]."""
    return encode_prompts(tokenizer, [{"system": "", "question": q} for q in questions])


def decode_new(tokenizer, sequences: torch.Tensor, prompt_len: int) -> list[str]:
    return tokenizer.batch_decode(sequences[:, prompt_len:], skip_special_tokens=True)


def decode(model, tokenizer, ids: torch.Tensor, mask: torch.Tensor, setting: Setting, max_new_tokens: int,
           copies: int = 1) -> torch.Tensor:
    """``setting`` applied to left-padded prompts ids, mask [B, L]; a sampled setting decodes each
    prompt ``copies`` times (rows repeated). Returns the sequences [B * copies, L + T] (one per prompt
    for a deterministic setting)."""
    common = {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    if setting.strategy == "greedy":
        return greedy_search(model, ids, max_new_tokens, attention_mask=mask, **setting.options, **common)
    if setting.strategy == "beam":
        options = dict(setting.options)
        return beam_search(model, ids, options.pop("num_beams"), max_new_tokens, attention_mask=mask, **options,
                           **common)[0]
    return sample(model, ids.repeat_interleave(copies, 0), max_new_tokens, temperature=setting.temperature,
                  attention_mask=mask.repeat_interleave(copies, 0), **setting.options, **common)


def run_setting(model, tokenizer, questions: list[str], setting: Setting, config: Task1Config,
                seed: int) -> list[list[str]]:
    """The texts of ``setting`` per question: ``config.samples_per_prompt`` samples, or the one text of
    a deterministic setting (its diversity across samples is not defined: it has one sample)."""
    n = 1 if setting.deterministic else config.samples_per_prompt
    texts: list[list[str]] = []
    torch.manual_seed(seed)
    per_batch = max(1, config.batch_size // n)
    for start in range(0, len(questions), per_batch):
        ids, mask = encode_chat(tokenizer, questions[start: start + per_batch])
        out = decode(model, tokenizer, ids.to(model.device), mask.to(model.device), setting, config.max_new_tokens, n)
        decoded = decode_new(tokenizer, out, ids.shape[1])
        texts += [decoded[i: i + n] for i in range(0, len(decoded), n)]
    return texts


def _mean_and_se(values: list[float]) -> tuple[float, float]:
    """Mean and its standard error (sd with ddof 1 / sqrt(n); 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, sd / math.sqrt(n)


def score_setting(questions: list[str], texts: list[list[str]], scorer) -> tuple[dict, list[float]]:
    """The setting's row - quality (mean over prompts of the prompt's mean score) with its standard
    error over prompts; diversity across a prompt's samples (distinct-2, self-BLEU; None for one
    sample); repetition within each text (rep-1, rep-2: repeated 1- and 2-gram rates; the longest
    repeated span in words); length in words - and each prompt's mean quality."""
    flat_q = [q for q, group in zip(questions, texts) for _ in group]
    flat_t = [t for group in texts for t in group]
    scores, per_prompt, at = scorer(flat_q, flat_t), [], 0
    for group in texts:
        per_prompt.append(sum(scores[at: at + len(group)]) / len(group))
        at += len(group)
    quality, quality_se = _mean_and_se(per_prompt)
    several = all(len(group) > 1 for group in texts)
    mean = lambda values: sum(values) / len(values)  # noqa: E731
    return {
        "quality": quality, "quality_se": quality_se,
        "distinct_2": mean([distinct_n(group, 2) for group in texts]) if several else None,
        "self_bleu": mean([self_bleu(group) for group in texts]) if several else None,
        "rep_1": mean([repetition_rate(t, 1) for t in flat_t]),
        "rep_2": mean([repetition_rate(t, 2) for t in flat_t]),
        "longest_repeat": mean([longest_repeated_span(t) for t in flat_t]),
        "length": mean([length_in_words(t) for t in flat_t]),
    }, per_prompt


def prompt_families(questions: list[str]) -> list[str]:
    """The gold judge's family of each prompt ("open" outside its families, e.g. the course's prompts)."""
    return [gold_score(q, "")[1] for q in questions]


def run_study(model, tokenizer, questions: list[str], scorer, config: Task1Config, seed: int):
    """Every setting of ``config.study`` on ``questions``. Returns (table: one row per setting with
    label, name, strategy, temperature and :func:`score_setting`'s metrics; by_family: mean quality
    and its standard error per setting label and prompt family; examples: the texts per label)."""
    import pandas as pd

    families = prompt_families(questions)
    rows, family_rows, examples = [], [], {}
    for setting in tqdm(study_settings(config.study), desc="decoding settings"):
        texts = run_setting(model, tokenizer, questions, setting, config, seed)
        row, per_prompt = score_setting(questions, texts, scorer)
        rows.append({"label": setting.label, "setting": setting.name, "strategy": setting.strategy,
                     "temperature": setting.temperature, **row})
        for family in dict.fromkeys(families):
            mean, se = _mean_and_se([q for q, f in zip(per_prompt, families) if f == family])
            family_rows.append({"label": setting.label, "family": family, "quality": mean, "quality_se": se,
                                "prompts": families.count(family)})
        examples[setting.label] = texts
    return pd.DataFrame(rows), pd.DataFrame(family_rows), examples


def length_penalty_effect(model, tokenizer, questions: list[str], penalties: tuple[float, ...], num_beams: int,
                          max_new_tokens: int, scorer):
    """Beam search's best hypothesis under each ``length_penalty`` alpha, for one question among
    ``questions``: finished hypotheses are ranked by sum log p / T**alpha, so alpha < 1 favours short
    answers, alpha > 1 long ones. The question shown is one where alpha changes the answer's quality
    if there is one, and among those the one whose answer length changes the most.

    Returns (the question, a table: length_penalty, words, score, quality, hypothesis)."""
    import pandas as pd

    ids, mask = encode_chat(tokenizer, questions)
    ids, mask = ids.to(model.device), mask.to(model.device)
    texts, scores = {}, {}
    for alpha in penalties:
        out, best_scores = beam_search(model, ids, num_beams, max_new_tokens, length_penalty=alpha, attention_mask=mask,
                                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        texts[alpha], scores[alpha] = decode_new(tokenizer, out, ids.shape[1]), best_scores.tolist()
    quality = {alpha: scorer(questions, texts[alpha]) for alpha in penalties}

    def interest(i: int) -> tuple[float, int]:
        lengths = [length_in_words(texts[a][i]) for a in penalties]
        return (max(quality[a][i] for a in penalties) - min(quality[a][i] for a in penalties),
                max(lengths) - min(lengths))

    best = max(range(len(questions)), key=interest)
    return questions[best], pd.DataFrame({
        "length_penalty": penalties, "words": [length_in_words(texts[a][best]) for a in penalties],
        "score": [scores[a][best] for a in penalties], "quality": [quality[a][best] for a in penalties],
        "hypothesis": [texts[a][best] for a in penalties]})


def parity_with_generate(model, tokenizer, questions: list[str], max_new_tokens: int, seeds=(0, 1)) -> dict:
    """Compare our strategies with ``model.generate`` on a batch of the study's prompts: greedy (plain,
    repetition penalty, no-repeat n-grams), top-k, top-p, min-p and typical sampling at two
    temperatures and ``seeds``, beam search (plain and with no-repeat n-grams)."""
    ids, mask = encode_chat(tokenizer, questions)
    ids, mask = ids.to(model.device), mask.to(model.device)
    common = {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id, "attention_mask": mask}
    hf = {"max_new_tokens": max_new_tokens, **common}

    def seeded(seed, fn, **kwargs):
        return lambda: (torch.manual_seed(seed), fn(**kwargs))[1]

    checks = []
    for controls in ({}, {"repetition_penalty": 1.3}, {"no_repeat_ngram_size": 3}):
        checks.append((f"greedy {controls or ''}".strip(),
                       seeded(0, greedy_search, model=model, input_ids=ids, max_new_tokens=max_new_tokens,
                              **controls, **common),
                       seeded(0, model.generate, inputs=ids, do_sample=False, **controls, **hf)))
    filters = (("top-k", {"top_k": 50}, {"top_k": 50, "top_p": 1.0}), ("top-p", {"top_p": 0.9}, {"top_k": 0, "top_p": 0.9}),
               ("min-p", {"min_p": 0.1}, {"top_k": 0, "min_p": 0.1}),
               ("typical", {"typical_p": 0.9}, {"top_k": 0, "typical_p": 0.9}))
    for t, seed in itertools.product((0.7, 1.0), seeds):
        for name, ours, theirs in filters:
            checks.append((f"{name} T={t} seed={seed}",
                           seeded(seed, sample, model=model, input_ids=ids, max_new_tokens=max_new_tokens,
                                  temperature=t, **ours, **common),
                           seeded(seed, model.generate, inputs=ids, do_sample=True, temperature=t, **theirs, **hf)))
    for beams, lp, controls in ((3, 1.0, {}), (4, 0.5, {}), (3, 1.0, {"no_repeat_ngram_size": 3})):
        checks.append((f"beam {beams} lp={lp} {controls or ''}".strip(),
                       lambda beams=beams, lp=lp, c=controls: beam_search(model, ids, beams, max_new_tokens,
                                                                          length_penalty=lp, **c, **common)[0],
                       lambda beams=beams, lp=lp, c=controls: model.generate(ids, do_sample=False, num_beams=beams,
                                                                             length_penalty=lp, **c, **hf)))
    mismatches = [name for name, ours, theirs in checks if not torch.equal(ours(), theirs())]
    return {"prompts": len(questions), "settings": len(checks), "mismatched_settings": mismatches}


def study_prompts(config: Task1Config) -> list[str]:
    """The study's prompts: the course's own (full), or the first ``config.n_prompts`` distinct held-out
    questions of a preference dataset (in a fixed order) followed by ``config.n_story_prompts`` story
    requests of the stand-in's world (tiny: the long answers where decoding loops). The stories are
    about objects the language model's corpus has stories of: this task studies decoding, not
    generalisation (about held-out objects, some seeds' stand-ins do not even keep the subject)."""
    if config.prompts == COURSE:
        return list(COURSE_PROMPTS[: config.n_prompts])
    questions = list(dict.fromkeys(hub.load_hf_dataset(config.prompts)["test"]["question"]))[: config.n_prompts]
    if config.n_story_prompts:
        from pa5.standins.world import World  # the stand-in's world: tiny profile only

        questions += World().story_prompts("train")[: config.n_story_prompts]
    return questions


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


def describe(table, by_family) -> str:
    """What this run's tables say, in a few lines: the deterministic settings' repetition and what the
    controls do to it, the long answers' quality per setting, and per sampling filter how quality and
    diversity move from the lowest to the highest temperature (means ± standard errors over prompts)."""
    lines = []
    deterministic = table[table.temperature.isna()]
    long = by_family[by_family.family == "story"].set_index("label") if (by_family.family == "story").any() else None
    for _, row in deterministic.iterrows():
        story = (f"; stories {long.loc[row.label, 'quality']:.2f} ± {long.loc[row.label, 'quality_se']:.2f}"
                 if long is not None else "")
        lines.append(f"{row.setting}: quality {row.quality:.3f} ± {row.quality_se:.3f}{story}, longest repeated span "
                     f"{row.longest_repeat:.1f} words, rep-2 {row.rep_2:.3f}, {row.length:.1f} words")
    sampled = table[table.temperature.notna()]
    for name, rows in sampled.groupby("setting", sort=False):
        if len(rows) < 2:
            row = rows.iloc[0]
            lines.append(f"{name} (T={row.temperature:g}): quality {row.quality:.3f} ± {row.quality_se:.3f}, "
                         f"distinct-2 {row.distinct_2:.3f}, longest repeated span {row.longest_repeat:.1f}")
            continue
        lo, hi = rows.iloc[0], rows.iloc[-1]
        lines.append(f"{name}: T {lo.temperature:g} -> {hi.temperature:g}: distinct-2 {lo.distinct_2:.3f} -> "
                     f"{hi.distinct_2:.3f}, quality {lo.quality:.3f} ± {lo.quality_se:.3f} -> {hi.quality:.3f} ± "
                     f"{hi.quality_se:.3f}")
    return "\n".join(lines)
