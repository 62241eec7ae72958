"""Tokens per second of task 1's decoding strategies vs ``model.generate`` with identical settings.

    python bench/bench_decoding.py [--repeats 3] [--new-tokens 32]

Runs alternate (ours, generate, ours, ...) in one process and the best of ``--repeats`` is kept.
Models: the tiny SmolLM2 stand-in and a random-init model with SmolLM2-135M's exact config. No EOS,
so every run generates exactly ``--new-tokens`` tokens per prompt.
"""
from __future__ import annotations

import argparse
import time

import torch
from transformers import AutoModelForCausalLM, GenerationConfig, LlamaConfig, LlamaForCausalLM

from pa5 import hub
from pa5.runtime import seed_everything
from task1.decoding import beam_search, greedy_search, sample

SMOLLM2_135M = LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                           num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
                           max_position_embeddings=8192, rope_theta=100000.0)

STRATEGIES = {  # name: (ours, generate's keyword arguments)
    "greedy": (lambda m, ids, mask, n: greedy_search(m, ids, n, attention_mask=mask), {"do_sample": False}),
    "top-k 50, T=0.8": (lambda m, ids, mask, n: sample(m, ids, n, temperature=0.8, top_k=50, attention_mask=mask),
                        {"do_sample": True, "temperature": 0.8, "top_k": 50, "top_p": 1.0}),
    "top-p 0.9, T=0.8": (lambda m, ids, mask, n: sample(m, ids, n, temperature=0.8, top_p=0.9, attention_mask=mask),
                         {"do_sample": True, "temperature": 0.8, "top_k": 0, "top_p": 0.9}),
    "beam 3": (lambda m, ids, mask, n: beam_search(m, ids, 3, n, attention_mask=mask)[0],
               {"do_sample": False, "num_beams": 3}),
}


def seconds(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    seed_everything(0)
    tiny = hub.from_pretrained(AutoModelForCausalLM, "standin:smollm2").eval()
    big = LlamaForCausalLM(SMOLLM2_135M).eval()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.new_tokens} new tokens, "
          f"best of {args.repeats}\n")
    print("| model | batch | strategy | ours tok/s | generate tok/s | ours / generate |\n|---|---|---|---|---|---|")
    for model_name, model in (("tiny stand-in (0.95M)", tiny), ("SmolLM2-135M config, random init", big)):
        model.generation_config = GenerationConfig()
        for batch in (1, 8):
            ids = torch.randint(3, 2000, (batch, 24))
            mask = torch.ones_like(ids)
            mask[batch // 2:, :6] = 0  # half the batch left-padded
            for name, (ours, theirs) in STRATEGIES.items():
                ours_s = theirs_s = float("inf")
                for _ in range(args.repeats):  # alternate so drift in machine load hits both alike
                    ours_s = min(ours_s, seconds(lambda: ours(model, ids, mask, args.new_tokens)))
                    theirs_s = min(theirs_s, seconds(lambda: model.generate(
                        ids, attention_mask=mask, max_new_tokens=args.new_tokens, min_new_tokens=0,
                        pad_token_id=0, **theirs)))
                tokens = batch * args.new_tokens
                print(f"| {model_name} | {batch} | {name} | {tokens / ours_s:,.0f} | {tokens / theirs_s:,.0f} | "
                      f"{theirs_s / ours_s:.2f} |", flush=True)


if __name__ == "__main__":
    with torch.no_grad():
        main()
