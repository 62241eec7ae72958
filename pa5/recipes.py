"""Recipes and drivers for the graded tests: given code that runs in the grading worker.

A recipe builds an object from plain arguments - the trusted side calls the same recipe for its
own reference copy, so both hold identical weights (same seed, same CPU kernels). A driver runs a
student function in a loop or on a model and returns plain data (numbers, tensors, state dicts)
for the trusted side to check. Neither is graded; both ship in the student release.
"""
from __future__ import annotations

import types

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


class _NoCache:
    """The bigram model's stand-in KV cache: it has nothing to keep, so reordering is a no-op."""

    def reorder_cache(self, beam_idx: torch.Tensor) -> None:
        pass

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0


class BigramLM(torch.nn.Module):
    """A language model whose next-token distribution depends on the last token only:
    ``logits[b, t] = log(table[input_ids[b, t]])``. Task 1's hand-computed beam search runs on it.

    It takes decoding's usual keywords (attention_mask, position_ids, use_cache, cache, logits_to_keep)
    and ignores them: with or without a cache, the answer is the same."""

    def __init__(self, table: list[list[float]]):
        super().__init__()
        probs = torch.tensor(table, dtype=torch.float32)
        if probs.dim() != 2 or probs.shape[0] != probs.shape[1] or not torch.allclose(probs.sum(-1), torch.ones(len(probs))):
            raise ValueError("table must be a square [V, V] table whose rows are probability distributions")
        self.register_buffer("log_table", probs.log())
        self.config = types.SimpleNamespace(vocab_size=probs.shape[0])

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache=None,
                logits_to_keep: int = 0, **_):
        from transformers.modeling_outputs import CausalLMOutputWithPast
        logits = self.log_table[input_ids]
        if logits_to_keep:
            logits = logits[:, -logits_to_keep:]
        return CausalLMOutputWithPast(logits=logits, cache=cache if cache is not None else _NoCache())


def bigram_lm(table: list[list[float]]) -> BigramLM:
    return BigramLM(table).eval()


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


# --------------------------------------------------------------------------- task 2
# The same recipe runs on both sides: in the worker it imports the student's task2 modules, in the
# trusted process the instructors' - same seed, same weights, so the trusted side has a reference.
STANDIN = "standin:smollm2"


def tokenizer():
    from transformers import AutoTokenizer

    from pa5 import hub
    return hub.from_pretrained(AutoTokenizer, STANDIN)


def encoded_pairs(rows: list[dict], max_length: int = 256):
    from task2 import data
    return data.encode_pairs(tokenizer(), rows, max_length=max_length)


def policy_model(seed: int = 0, adapter: dict | None = None, eval: bool = False):
    """task2.policy.load_policy on the stand-in, its trainable (LoRA) weights set to ``adapter``
    ({parameter name: tensor}) when given."""
    from task2 import policy
    return _with_adapter(policy.load_policy(STANDIN, seed=seed), adapter, eval)


def reward_model(pad_token_id: int, seed: int = 0, adapter: dict | None = None, eval: bool = False):
    from task2 import reward_model as rm
    return _with_adapter(rm.load_reward_model(STANDIN, pad_token_id=pad_token_id, seed=seed), adapter, eval)


def _with_adapter(model, adapter: dict | None, eval: bool):
    if adapter is not None:
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in adapter.items():
                parameters[name].copy_(value)
    return model.eval() if eval else model


def trainable_state(model) -> dict[str, torch.Tensor]:
    """{name: value} of the parameters that train (LoRA, a reward head)."""
    return state(model, trainable_only=True)


def state(module: torch.nn.Module, trainable_only: bool = False) -> dict[str, torch.Tensor]:
    """{name: a copy of the value} of ``module``'s parameters (only those that train, if asked)."""
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad or not trainable_only}


def length_scorer(prompts: list[list[int]], completions: list[list[int]]) -> torch.Tensor:
    """A reward of completion length / 10 (in tokens): stands in for the reward model."""
    return torch.tensor([len(c) / 10 for c in completions])


def constant_scorer(prompts: list[list[int]], completions: list[list[int]]) -> torch.Tensor:
    return torch.ones(len(completions))


SCORERS = {"length": length_scorer, "constant": constant_scorer}


def dpo_training(rows: list[dict], config: dict, seed: int = 0, max_length: int = 256,
                 with_reference: bool = True) -> dict:
    """Sigmoid DPO with task2.dpo on ``rows``: the log-probs before, the reference (before and after
    training), evaluate_dpo before and after, the history and the trained adapter."""
    from task2 import dpo
    from task2.config import DPOConfig
    pad = tokenizer().pad_token_id
    pairs, model = encoded_pairs(rows, max_length), policy_model(seed)
    run = {}
    if with_reference:
        run["before"] = dpo.pair_logps(model, pairs, pad)
        run["reference"] = dpo.reference_logps(model, pairs, pad)
        run["start"] = dpo.evaluate_dpo(model, pairs, pad, beta=config["beta"])
    run["history"] = dpo.train_dpo(model, pairs, pad, DPOConfig(**config), ref_logps=run.get("reference"))
    if with_reference:
        run["reference_after"] = dpo.reference_logps(model, pairs, pad)
        run["end"] = dpo.evaluate_dpo(model, pairs, pad, beta=config["beta"])
    run["adapter"] = trainable_state(model)
    return run


def reward_model_training(rows: list[dict], config: dict, folder: str, prompts: list[list[int]],
                          completions: list[list[int]], max_length: int = 256) -> dict:
    """task2.reward_model trained on ``rows``, evaluated, saved to ``folder`` and used as a scorer."""
    from task2 import reward_model as rm
    from task2.config import RewardModelConfig
    pad = tokenizer().pad_token_id
    pairs, model = encoded_pairs(rows, max_length), reward_model(pad)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    history = rm.train_reward_model(model, pairs, pad, RewardModelConfig(**config))
    return {"trainable": trainable, "history": history, "evaluation": rm.evaluate_reward_model(model, pairs, pad),
            "saved": str(rm.save_adapter(model, folder)), "scores": rm.RewardScorer(model, pad)(prompts, completions)}


def logps_and_grads(model, batch: dict, temperature: float, head_chunk: int | None = None) -> dict:
    """task2.policy.policy_logps (with entropy) on ``model``, the gradient of the log-probs' sum with
    respect to each trainable parameter, and completion_kl - with ``policy.HEAD_CHUNK`` set to
    ``head_chunk`` while it runs."""
    from task2 import policy
    chunk = policy.HEAD_CHUNK
    policy.HEAD_CHUNK = head_chunk or chunk
    try:
        logps, entropy = policy.policy_logps(model, batch, temperature, entropy=True)
        names, parameters = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad])
        grads = torch.autograd.grad(logps.sum(), parameters)
        kl = policy.completion_kl(model, batch)
    finally:
        policy.HEAD_CHUNK = chunk
    return {"logps": logps, "entropy": entropy, "grads": dict(zip(names, grads)), "kl": kl}


def grpo_loss_and_grads(model, batch: dict, temperature: float, old_logps: torch.Tensor, advantages: torch.Tensor,
                        loss_type: str, **loss_options) -> dict:
    """task2.grpo.grpo_loss on task2.policy.policy_logps of ``model`` (train mode), and the loss's
    gradient with respect to each trainable parameter."""
    from task2 import grpo, policy
    model.train()
    logps = policy.policy_logps(model, batch, temperature)[0]
    loss, stats = grpo.grpo_loss(logps, old_logps, advantages, batch["loss_mask"], loss_type, **loss_options)
    names, parameters = zip(*[(n, p) for n, p in model.named_parameters() if p.requires_grad])
    return {"loss": loss, "stats": stats, "grads": dict(zip(names, torch.autograd.grad(loss, parameters)))}


_PROBE_IDS = [[1, 5, 6, 7]]


def reference_logits(model) -> torch.Tensor:
    """The logits of a fixed probe under task2.policy.reference_mode (the adapter disabled)."""
    from task2 import policy
    with torch.no_grad(), policy.reference_mode(model):
        return model(input_ids=torch.tensor(_PROBE_IDS)).logits


def base_logits() -> torch.Tensor:
    """The stand-in base model's logits on the same probe (the trusted side's reference)."""
    from transformers import AutoModelForCausalLM

    from pa5 import hub
    with torch.no_grad():
        return hub.from_pretrained(AutoModelForCausalLM, STANDIN)(input_ids=torch.tensor(_PROBE_IDS)).logits


def rl_training(algorithm: str, prompts: list[dict], config: dict, scorer: str = "length", seed: int = 0) -> dict:
    """task2's train_ppo (with a critic from the reward model) or train_grpo on the stand-in: the
    history, the trainable weights before and after (the policy's, and the critic's for PPO) and the
    reference's logits on a probe afterwards."""
    from task2.config import GRPOConfig, PPOConfig
    model = policy_model(seed)
    run = {"policy_before": trainable_state(model)}
    if algorithm == "ppo":
        from task2 import ppo
        critic = ppo.load_value_model(reward_model(0, seed))
        run["critic_before"] = trainable_state(critic)
        run["history"] = ppo.train_ppo(model, critic, tokenizer(), prompts, SCORERS[scorer], PPOConfig(**config), seed)
        run["critic_after"] = trainable_state(critic)
    elif algorithm == "grpo":
        from task2 import grpo
        run["history"] = grpo.train_grpo(model, tokenizer(), prompts, SCORERS[scorer], GRPOConfig(**config), seed)
    else:
        raise ValueError(f"algorithm must be 'ppo' or 'grpo', got {algorithm!r}")
    run["policy_after"] = trainable_state(model)
    run["reference_logits"] = reference_logits(model)
    return run


def _counting_optimizer(parameters: list[torch.nn.Parameter], lr: float) -> tuple[torch.optim.Optimizer, list[int]]:
    """task2's AdamW, and a one-element list that counts its steps."""
    from task2.training import make_optimizer
    optimizer, steps = make_optimizer(parameters, lr), [0]
    optimizer.register_step_post_hook(lambda *_: steps.__setitem__(0, steps[0] + 1))
    return optimizer, steps


def rl_update(algorithm: str, prompts: list[dict], config: dict, scorer: str = "length", seed: int = 0,
              log_kl: bool = False) -> dict:
    """One learning step of task2's PPO (``ppo_update``, with a critic from the reward model) or GRPO
    (``grpo_update``) on a rollout of ``prompts`` sampled by the given code with ``seed``: what the
    update returned, the optimizer's step count, the trainable weights before and after, the models'
    train modes afterwards and the reference's logits on a probe."""
    from task2 import rollout
    from task2.config import GRPOConfig, PPOConfig
    from task2.training import trainable_parameters
    model = policy_model(seed)
    run = {"policy_before": trainable_state(model)}
    if algorithm == "ppo":
        from task2 import ppo
        cfg, critic = PPOConfig(**config), ppo.load_value_model(reward_model(0, seed))
        batch = rollout.sample_rollout(model.eval(), tokenizer(), prompts, SCORERS[scorer], 1, cfg, seed=seed)
        parameters = trainable_parameters(model, critic.eval())
        optimizer, steps = _counting_optimizer(parameters, cfg.lr)
        run["critic_before"] = trainable_state(critic)
        run["update"] = ppo.ppo_update(model, critic, batch.batch, batch.score, cfg, optimizer, parameters,
                                       torch.Generator().manual_seed(seed))
        run["critic_after"], run["critic_training"] = trainable_state(critic), critic.training
    elif algorithm == "grpo":
        from task2 import grpo
        cfg = GRPOConfig(**config)
        batch = rollout.sample_rollout(model.eval(), tokenizer(), prompts, SCORERS[scorer], cfg.group_size, cfg, seed=seed)
        parameters = trainable_parameters(model)
        optimizer, steps = _counting_optimizer(parameters, cfg.lr)
        run["update"] = grpo.grpo_update(model, batch.batch, batch.score, cfg, optimizer, parameters, log_kl=log_kl)
    else:
        raise ValueError(f"algorithm must be 'ppo' or 'grpo', got {algorithm!r}")
    run["steps"], run["policy_training"] = steps[0], model.training
    run["policy_after"] = trainable_state(model)
    run["reference_logits"] = reference_logits(model)
    return run


# --------------------------------------------------------------------------- task 3
def two_model_usae(train: bool = True):
    """A seeded USAE over models a (6-d) and b (4-d), 12 concepts, TopK 3, its atoms already
    renormalised (overcomplete does that in place on first use in train mode)."""
    from task3.usae import UniversalSAE
    torch.manual_seed(0)
    usae = UniversalSAE({"a": 6, "b": 4}, nb_concepts=12, top_k=3).train(train)
    for name in usae.names:
        usae.dictionary(name)
    return usae


def usae_sgd_step(usae, batch: dict, sources: list[str], lr: float = 0.1, **options) -> dict:
    """One task3.usae.usae_step with SGD(lr) over all of ``usae``'s parameters: the loss and gradient
    norm it returns, the parameters before and after, and whether any ``.grad`` is left behind."""
    from task3.usae import usae_step
    before = state(usae)
    loss, grad_norm = usae_step(usae, torch.optim.SGD(usae.parameters(), lr=lr), batch, sources, **options)
    return {"loss": loss, "grad_norm": grad_norm, "before": before, "after": state(usae),
            "grads_left": any(p.grad is not None for p in usae.parameters())}


def usae_sgd_steps(usae, batch: dict, schedule: list[list[str]], lr: float = 0.1, momentum: float = 0.9) -> dict:
    """task3.usae.usae_step once per entry of ``schedule`` (its sources) with one SGD(lr, momentum)
    over all of ``usae``'s parameters: each step's loss and the parameters at the end. A gradient
    left from one step would add to the next (and move a model that is not a source)."""
    from task3.usae import usae_step
    optimizer = torch.optim.SGD(usae.parameters(), lr=lr, momentum=momentum)
    losses = [usae_step(usae, optimizer, batch, sources)[0] for sources in schedule]
    return {"losses": losses, "after": state(usae)}


def usae_epochs(usae, features: dict, config: dict, seed: int, epochs: int = 2) -> dict:
    """task3.usae.usae_epoch ``epochs`` times with one AdamW and one picker and generator from
    ``seed``, as train_usae runs it, each usae_step call recorded: per epoch its steps' (row indices of
    the batch, sources, cross weight, max_grad_norm) and the returned losses; the parameters at the end."""
    import random

    from task3 import usae as usae_module
    from task3.config import SAEConfig
    cfg = SAEConfig(**config)
    first = next(iter(features))
    calls = []
    step = usae_module.usae_step

    def recorded(usae_, optimizer_, batch, sources, cross_weight=1.0, max_grad_norm=1.0):
        rows = (batch[first][:, None, :] == features[first][None]).all(-1).float().argmax(1)
        calls[-1].append({"rows": rows.tolist(), "sources": list(sources), "cross_weight": cross_weight,
                          "max_grad_norm": max_grad_norm})
        return step(usae_, optimizer_, batch, sources, cross_weight, max_grad_norm)

    optimizer = torch.optim.AdamW(usae.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    picker, generator = random.Random(seed), torch.Generator().manual_seed(seed)
    losses = []
    usae_module.usae_step = recorded
    try:
        for _ in range(epochs):
            calls.append([])
            losses.append(list(usae_module.usae_epoch(usae, optimizer, features, cfg, picker, generator)[0]))
    finally:
        usae_module.usae_step = step
    return {"calls": calls, "losses": losses, "after": state(usae), "training": usae.training}


def usae_schedules(usae, batch: dict, config: dict, seed: int, monitor_rows: int) -> dict:
    """task3.usae.train_usae on ``usae`` with the paper's schedule, then the course's: the parameters
    at the start and after each."""
    from task3.config import SAEConfig
    from task3.usae import train_usae
    run = {"start": state(usae)}
    for schedule in ("paper", "course"):
        train_usae(usae, batch, SAEConfig(**config, schedule=schedule), seed=seed, monitor_rows=monitor_rows)
        run[schedule] = state(usae)
    return run


class TinyNet(torch.nn.Module):
    """A stand-in vision model whose 'avgpool' layer gives 6 features (hooked like ResNet50's)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.avgpool(torch.relu(self.conv(x))).flatten(1)


def tiny_vision_setup() -> tuple[dict, object, dict]:
    """Two TinyNets ("tiny_a", "tiny_b", registered as feature layers), a USAE over them with its
    BatchNorm statistics from 32 random feature rows, and their standardisers."""
    from task3.models import FEATURE_LAYERS, Standardizer
    from task3.usae import UniversalSAE
    for name in ("tiny_a", "tiny_b"):
        FEATURE_LAYERS[name] = ("avgpool", 6)
    torch.manual_seed(0)
    models = {"tiny_a": TinyNet().eval(), "tiny_b": TinyNet().eval()}
    usae = UniversalSAE({"tiny_a": 6, "tiny_b": 6}, nb_concepts=8, top_k=2)
    features = torch.rand(32, 6)
    usae.train()
    usae.encode("tiny_a", features), usae.encode("tiny_b", features)
    usae.eval()
    return models, usae, {name: Standardizer(features, "paper") for name in models}


def maximisation(setup, name: str, concept: int, size: int, config: dict) -> tuple[torch.Tensor, list[float]]:
    """task3.visualize.maximise of concept_objective(model ``name``, ``concept``)."""
    from task3 import visualize
    from task3.config import MaximisationConfig
    models, usae, normalisers = setup
    objective = visualize.concept_objective(models[name], name, normalisers[name], usae, concept=concept)
    return visualize.maximise(objective, size=size, config=MaximisationConfig(**config))


class PixelObjective(torch.nn.Module):
    """A smooth objective of the pixels [B, 3, S, S] -> [B] that records each call's (batch size,
    whether it tracks gradients): task 3's maximisation loop is tested on it, apart from concept_objective."""

    def __init__(self, size: int, seed: int = 0):
        super().__init__()
        self.register_buffer("pattern", torch.randn(3, size, size, generator=torch.Generator().manual_seed(seed)))
        self.calls: list[tuple[int, bool]] = []

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls.append((pixels.shape[0], torch.is_grad_enabled()))
        return torch.sigmoid(((pixels - 0.5) * self.pattern).mean(dim=(1, 2, 3)) * 4)


def maximise_pixels(size: int, config: dict, seed: int = 0) -> dict:
    """task3.visualize.maximise of a PixelObjective: the image, the history and the objective's calls."""
    from task3 import visualize
    from task3.config import MaximisationConfig
    objective = PixelObjective(size)
    image, history = visualize.maximise(objective, size, MaximisationConfig(**config), seed=seed)
    return {"image": image, "history": history, "calls": objective.calls}


def objective_and_gradient(setup, name: str, concept: int, images: torch.Tensor) -> dict:
    """task3.visualize.concept_objective of model ``name`` on ``images``: its values and the gradient
    of their sum with respect to the images (None when the objective has no graph to them)."""
    from task3 import visualize
    models, usae, normalisers = setup
    images = images.clone().requires_grad_(True)
    values = visualize.concept_objective(models[name], name, normalisers[name], usae, concept=concept)(images)
    grad = torch.autograd.grad(values.sum(), images)[0] if values.requires_grad else None
    return {"values": values.detach(), "grad": grad}


def coordinated_maximisation(setup, concept: int, size: int, config: dict) -> dict:
    from task3 import visualize
    from task3.config import MaximisationConfig
    models, usae, normalisers = setup
    return visualize.coordinated_maximisation(models, normalisers, usae, concept=concept, size=size,
                                              config=MaximisationConfig(**config))
