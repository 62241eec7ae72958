"""The tiny SmolLM2: a ~1M-parameter ``LlamaForCausalLM`` and a byte-level BPE tokenizer, trained
on the tiny world, saved with ``save_pretrained`` so it loads exactly like the hub model.

Faithful to SmolLM2-135M-Instruct where code could notice: the same architecture class (tied
embeddings, grouped-query attention), the same special tokens at the same ids (0 ``<|endoftext|>``,
1 ``<|im_start|>``, 2 ``<|im_end|>``), the same ChatML chat template with its default system
prompt, and the same **pad == eos == ``<|im_end|>``**. That last one is deliberate: masking
``labels == pad_token_id`` out of a loss also masks the end-of-turn token, and a policy trained
that way never learns to stop. Build completion masks from positions, never from the pad id.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pa5.llm import encode_prompts, prompt_ids
from pa5.optim import optimizer_step
from pa5.standins.world import DEFAULT_SYSTEM_PROMPT, World, WorldConfig

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>", "<file_sep>",
                  "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>", "<issue_closed>",
                  "<jupyter_start>", "<jupyter_text>", "<jupyter_code>", "<jupyter_output>",
                  "<jupyter_script>", "<empty_output>")
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\n" + DEFAULT_SYSTEM_PROMPT + "<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class LMConfig:
    world: WorldConfig = field(default_factory=WorldConfig)
    seed: int = 0
    vocab_size: int = 2048
    hidden_size: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2
    ffn_size: int = 320
    steps: int = 700  # ~4 min on 2 cores; the model only starts using the prompt after ~150 s
    batch_size: int = 64  # documents per step, one document per sequence (no packing)
    lr: float = 5e-3
    warmup_steps: int = 50
    fact_fraction: float = 0.2  # plain "The capital of X is Y." documents
    family_weights: tuple[float, ...] = (0.4, 0.2, 0.25, 0.15)  # chats per family (capital needs the most)
    story_fraction: float = 0.1  # stories among the chats (task 1's long answers)
    n_eval_prompts: int = 120  # held-out prompts for the build report


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE on ``texts``, wrapped like SmolLM2's tokenizer (special tokens, template, pad == eos)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>",
        unk_token="<|endoftext|>", additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        chat_template=CHAT_TEMPLATE, model_max_length=2048, clean_up_tokenization_spaces=False,
    )


def new_model(config: LMConfig, vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(config.seed)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab_size, hidden_size=config.hidden_size, intermediate_size=config.ffn_size,
        num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_kv_heads, max_position_embeddings=512, rope_theta=100000.0,
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2,
    ))


def encode_document(tokenizer, document: dict) -> tuple[list[int], list[int]]:
    """``(input_ids, loss_mask)``: a chat trains on the assistant turn including ``<|im_end|>``;
    a fact line trains on every token, ending with ``<|endoftext|>`` as pretraining documents do."""
    if "text" in document:
        ids = tokenizer(document["text"] + "<|endoftext|>", add_special_tokens=False)["input_ids"]
        return ids, [1] * len(ids)
    prompt = prompt_ids(tokenizer, document["system"], document["question"])
    completion = tokenizer(document["response"] + "<|im_end|>", add_special_tokens=False)["input_ids"]
    return prompt + completion, [0] * len(prompt) + [1] * len(completion)


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, ...]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (-100 outside the loss mask)."""
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100)
    for row, (ids, mask) in enumerate(examples):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        labels[row, : len(ids)] = torch.where(torch.tensor(mask, dtype=torch.bool), torch.tensor(ids), -100)
    return input_ids, attention, labels


@torch.no_grad()
def mean_completion_loss(model, examples, pad_id: int, batch_size: int = 64) -> float:
    """Mean next-token NLL (nats per token) over the loss-masked tokens of ``examples``."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        input_ids, attention, labels = collate(examples[start: start + batch_size], pad_id)
        logits = model(input_ids=input_ids, attention_mask=attention).logits[:, :-1]
        targets = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100, reduction="sum")
        total, count = total + nll.item(), count + int((targets != -100).sum())
    return total / count


def length_bucketed_batches(lengths: list[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of similar-length documents: ~40 % less padding than random batches."""
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for start in range(0, len(order), batch_size * 16):
        chunk = sorted(order[start: start + batch_size * 16], key=lengths.__getitem__)
        batches += [chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def train(model, examples, config: LMConfig, pad_id: int) -> list[dict]:
    """AdamW with linear warm-up and cosine decay; one pass over the shuffled ``examples``.
    Returns one {"loss", "grad_norm"} record per step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.95), weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / config.warmup_steps)
                                                 * 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    batches = length_bucketed_batches([len(ids) for ids, _ in examples], config.batch_size, config.seed)
    history = []
    model.train()
    for step in (bar := tqdm(range(config.steps), desc="tiny SmolLM2", unit="step")):
        input_ids, attention, labels = collate([examples[i] for i in batches[step % len(batches)]], pad_id)
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        grad_norm = optimizer_step(loss, model.parameters(), optimizer, max_norm=1.0)
        schedule.step()
        history.append({"loss": loss.item(), "grad_norm": grad_norm})
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", grad_norm=f"{grad_norm:.2f}")
    model.eval()
    return history


@torch.no_grad()
def greedy_gold(model, tokenizer, rows: list[dict], max_new_tokens: int = 48) -> dict:
    """Greedy answers to ``rows`` (orca schema): gold success overall / per family, well-formedness."""
    from pa5.judge import judge  # the judge knows the world of this package: imported here, not at the top

    verdicts, ended = [], 0
    for start in range(0, len(rows), 64):
        input_ids, attention_mask = encode_prompts(tokenizer, rows[start: start + 64])
        out = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                             do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        for row, completion in zip(rows[start: start + 64], out[:, input_ids.shape[1]:]):
            ended += int((completion == tokenizer.eos_token_id).any())
            text = tokenizer.decode(completion, skip_special_tokens=True)
            verdicts.append((row["family"], judge(row["question"], text).score))
    per_family = {f: sum(s for g, s in verdicts if g == f) / max(1, sum(g == f for g, _ in verdicts))
                  for f in sorted({g for g, _ in verdicts})}
    return {"gold_success": sum(s for _, s in verdicts) / len(verdicts), "gold_by_family": per_family,
            "ended_with_im_end": ended / len(verdicts), "n_prompts": len(verdicts)}


def build(out_dir: Path, config: LMConfig) -> dict:
    """Train tokenizer and model, save both into ``out_dir`` and return the build report."""
    from transformers import GenerationConfig

    started = time.perf_counter()
    world = World(config.world)
    documents = world.lm_documents(config.steps * config.batch_size, config.fact_fraction, seed=config.seed,
                                   family_weights=config.family_weights, story_fraction=config.story_fraction)
    texts = [d.get("text") or f"{d['system']}\n{d['question']}\n{d['response']}" for d in documents]
    tokenizer = train_tokenizer(texts + world.vocabulary_text(), config.vocab_size)
    examples = [encode_document(tokenizer, d) for d in documents]
    test_rows = world.preference_pairs("test")
    held_out = [encode_document(tokenizer, {"system": r["system"], "question": r["question"], "response": r["chosen"]})
                for r in test_rows]
    model = new_model(config, len(tokenizer))
    random_init_loss = mean_completion_loss(model, held_out, tokenizer.pad_token_id)
    history = train(model, examples, config, tokenizer.pad_token_id)
    unique = list({r["question"]: r for r in test_rows}.values())[: config.n_eval_prompts]
    report = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "final_train_loss": sum(h["loss"] for h in history[-20:]) / len(history[-20:]),
        "final_grad_norm": sum(h["grad_norm"] for h in history[-20:]) / len(history[-20:]),
        "held_out_loss": mean_completion_loss(model, held_out, tokenizer.pad_token_id),
        "held_out_loss_random_init": random_init_loss,
        **greedy_gold(model, tokenizer, unique),
        "greedy_story_success": greedy_gold(model, tokenizer, [
            {"system": "", "question": q, "family": "story"} for q in world.story_prompts("test")], 96)["gold_success"],
        "build_seconds": time.perf_counter() - started,
    }
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=2)
    model.save_pretrained(out_dir)  # safetensors
    tokenizer.save_pretrained(out_dir)
    return report
