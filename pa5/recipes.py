"""Recipes and drivers for the graded tests: given code that runs in the grading worker.

A recipe builds an object from plain arguments - the trusted side calls the same recipe for its
own reference copy, so both hold identical weights (same seed, same CPU kernels). A driver runs a
student function in a loop or on a model and returns plain data (numbers, tensors, state dicts)
for the trusted side to check. Neither is graded; both ship in the student release.
"""
from __future__ import annotations

import torch


def tiny_llama(seed: int = 0, vocab_size: int = 48, hidden_size: int = 32, layers: int = 2):
    """A tiny random Llama with no hidden generation defaults (repetition penalty etc.)."""
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig()
    return model


def greedy_output_feeds_a_gradient_forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> bool:
    """Whether task 1's greedy output can feed a gradient-tracking forward pass (an inference-mode
    tensor cannot: torch raises)."""
    from task1.decoding import greedy_search
    out = greedy_search(model, input_ids, 3, attention_mask=attention_mask)
    return bool(model(input_ids=out).logits.sum().requires_grad)


def tiny_llama_generate(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Two greedy tokens with transformers' own generate (the guard test's given-code control)."""
    return model.generate(input_ids, max_new_tokens=2, do_sample=False)


def with_gradient(target: str, args: list, kwargs: dict | None = None, wrt: tuple[int, ...] = (),
                  of: int | None = None) -> dict:
    """``target(*args, **kwargs)`` ("module:function") with ``args[i]`` for i in ``wrt`` made leaves
    that require grad; the output (``output[of]`` for a tuple) is summed and backpropagated.
    Returns {"output", "requires_grad": whether each tensor of the output (or the output) tracks a
    gradient, "grads": [d sum / d args[i], zeros where none flowed, None if not connected]}."""
    import importlib
    module, _, function = target.partition(":")
    args = [a.detach().clone().requires_grad_() if i in wrt else a for i, a in enumerate(args)]
    output = getattr(importlib.import_module(module), function)(*args, **(kwargs or {}))
    parts = output if isinstance(output, tuple) else (output,)
    requires = [bool(isinstance(p, torch.Tensor) and p.requires_grad) for p in parts]
    loss = output if of is None else output[of]
    grads = [None] * len(wrt)
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        grads = [None if g is None else g for g in torch.autograd.grad(loss.sum(), [args[i] for i in wrt],
                                                                        allow_unused=True)]
    return {"output": output, "requires_grad": requires if isinstance(output, tuple) else requires[0],
            "grads": grads}
