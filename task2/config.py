"""Task 2's configuration in both profiles: ``pa5.task_profile("task2", "tiny" | "full")``.

One frozen dataclass per algorithm, nested in :class:`Task2Config`; the training functions take
theirs (``train_dpo(..., config.dpo, seed)``). Defaults are the algorithms' references (TRL's
trainers; for PPO the last TRL PPO trainer) unless their comment says otherwise. The profiles set
sizes; where one sets an algorithm setting otherwise, the reason stands next to it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from pa5.assets import OASST_REWARD_MODEL, ORCA, SMOLLM2
from pa5.checks import check_choice, check_int, check_number
from pa5.profile import TaskConfig

KL_ESTIMATORS = ("k1", "k3")  # Schulman's estimators of KL(pi || pi_ref) from sampled tokens
GRPO_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo")  # TRL's aggregations of the per-token loss
GRPO_SCALES = ("group", "batch", "none")  # what an advantage is divided by (TRL's scale_rewards)


@dataclass(frozen=True, kw_only=True)
class LoRAConfig:
    """The adapter every task-2 model trains (the course's: the attention queries and values)."""

    r: int = 8  # rank
    alpha: int = 32  # scale numerator: the update is (alpha / r) * B A

    def __post_init__(self):
        check_int("r", self.r, 1)
        check_number("alpha", self.alpha, 0, low_open=True)


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """What every trainer has: AdamW (no weight decay, TRL's) at a constant learning rate."""

    steps: int  # optimizer steps (PPO and GRPO: rollouts, each followed by its updates)
    lr: float  # learning rate
    max_grad_norm: float = 1.0  # gradients clipped to this global L2 norm (TRL's default)
    # recompute each transformer layer's activations in the backward pass instead of keeping them: one more
    # forward per step, and a step's activation memory drops from ~0.9-1.7 MB to tens of kB per token
    gradient_checkpointing: bool = False

    def __post_init__(self):
        check_int("steps", self.steps, 0)
        check_number("lr", self.lr, 0, low_open=True)
        check_number("max_grad_norm", self.max_grad_norm, 0, low_open=True)


@dataclass(frozen=True, kw_only=True)
class RewardModelConfig(OptimConfig):
    """Bradley-Terry reward model: SmolLM2 + LoRA + a scalar head (TRL's RewardTrainer)."""

    batch_size: int  # preference pairs per step

    def __post_init__(self):
        super().__post_init__()
        check_int("batch_size", self.batch_size, 1)


@dataclass(frozen=True, kw_only=True)
class DPOConfig(OptimConfig):
    """Sigmoid DPO (TRL's DPOTrainer), optionally with an NLL term on the chosen responses (RPO)."""

    batch_size: int  # preference pairs per step
    beta: float = 0.1  # strength of the implicit KL constraint (TRL's default)
    nll_weight: float = 0.0  # > 0: RPO, + nll_weight * token-mean NLL of the chosen responses
    kl_every: int = 10  # log the exact token KL to the reference every k steps (0: never)

    def __post_init__(self):
        super().__post_init__()
        check_int("batch_size", self.batch_size, 1)
        check_number("beta", self.beta, 0, low_open=True)
        check_number("nll_weight", self.nll_weight, 0)
        check_int("kl_every", self.kl_every, 0)


@dataclass(frozen=True, kw_only=True)
class RLConfig(OptimConfig):
    """What PPO and GRPO share: sampled rollouts scored by the reward model."""

    prompts_per_step: int  # distinct prompts sampled per step
    max_new_tokens: int  # rollout length limit; a completion cut off here did not end
    temperature: float  # sampling temperature (each trainer's default below); log-probs are the tempered policy's
    # subtracted from the score of a completion that never emits <|im_end|> (TRL's missing_eos_penalty,
    # off by default there): "never stop" must not become a way to collect reward
    missing_eos_penalty: float = 1.0

    def __post_init__(self):
        super().__post_init__()
        check_int("prompts_per_step", self.prompts_per_step, 1)
        check_int("max_new_tokens", self.max_new_tokens, 1)
        check_number("temperature", self.temperature, 0, low_open=True)
        check_number("missing_eos_penalty", self.missing_eos_penalty, 0)


@dataclass(frozen=True, kw_only=True)
class PPOConfig(RLConfig):
    """PPO with a critic; defaults of TRL's last PPO trainer (removed in TRL 1.16)."""

    minibatch_size: int  # rollouts per update; must divide prompts_per_step
    epochs: int = 4  # passes over each rollout batch
    temperature: float = 0.7  # the last TRL PPO trainer's
    kl_coef: float = 0.05  # per-token reward -kl_coef * KL_t(pi || pi_ref)
    kl_estimator: str = "k1"  # one of KL_ESTIMATORS
    clip_range: float = 0.2  # epsilon of the clipped surrogate
    clip_range_value: float = 0.2  # how far a value may move from its rollout value before it is clipped
    vf_coef: float = 0.1  # weight of the value loss
    gamma: float = 1.0  # discount
    lam: float = 0.95  # GAE's lambda

    def __post_init__(self):
        super().__post_init__()
        check_int("minibatch_size", self.minibatch_size, 1)
        if self.prompts_per_step % self.minibatch_size:
            raise ValueError(f"minibatch_size ({self.minibatch_size}) must divide prompts_per_step "
                             f"({self.prompts_per_step})")
        check_int("epochs", self.epochs, 1)
        check_number("kl_coef", self.kl_coef, 0)
        check_choice("kl_estimator", self.kl_estimator, KL_ESTIMATORS)
        check_number("clip_range", self.clip_range, 0, 1, low_open=True, high_open=True)
        check_number("clip_range_value", self.clip_range_value, 0, low_open=True)
        check_number("vf_coef", self.vf_coef, 0)
        check_number("gamma", self.gamma, 0, 1)
        check_number("lam", self.lam, 0, 1)


@dataclass(frozen=True, kw_only=True)
class GRPOConfig(RLConfig):
    """GRPO: group-relative advantages, no critic; defaults of TRL's GRPOConfig except group_size."""

    group_size: int = 4  # completions sampled per prompt (the course's G; TRL's num_generations is 8)
    iterations: int = 1  # optimizer steps per generation (TRL's num_iterations)
    temperature: float = 1.0  # TRL GRPOConfig's
    loss_type: str = "dapo"  # one of GRPO_LOSS_TYPES
    scale_rewards: str = "group"  # one of GRPO_SCALES
    epsilon: float = 0.2  # clip range of the ratio
    beta: float = 0.0  # k3 KL coefficient (TRL's default: no KL term)
    kl_every: int = 1  # log the KL to the reference every k steps (0: never; computed anyway when beta > 0)

    def __post_init__(self):
        super().__post_init__()
        check_int("group_size", self.group_size, 2)
        check_int("iterations", self.iterations, 1)
        check_choice("loss_type", self.loss_type, GRPO_LOSS_TYPES)
        check_choice("scale_rewards", self.scale_rewards, GRPO_SCALES)
        check_number("epsilon", self.epsilon, 0, low_open=True)
        check_number("beta", self.beta, 0)
        check_int("kl_every", self.kl_every, 0)


@dataclass(frozen=True, kw_only=True)
class EvaluationConfig:
    """The harness every model goes through: the course's prompts + held-out test prompts."""

    n_prompts: int  # held-out test prompts (besides the course's three)
    max_new_tokens: int  # greedy answers' length limit
    kl_samples: int = 4  # sampled answers per prompt for the Monte-Carlo KL(policy || reference)

    def __post_init__(self):
        check_int("n_prompts", self.n_prompts, 0)
        check_int("max_new_tokens", self.max_new_tokens, 1)
        check_int("kl_samples", self.kl_samples, 1)


@dataclass(frozen=True, kw_only=True)
class FrontierConfig:
    """Over-optimisation on the evaluation prompts (``task2.overoptimisation``): best-of-n from the base
    policy, and PPO / GRPO checkpoints, each measured by proxy, gold and KL to the base on samples at
    ``temperature``."""

    best_of_n: int = 64  # the largest n; the curve has every power of 2 up to it
    best_of_n_prompts: int | None = None  # evaluation prompts in the best-of-n pool (None: all)
    every: int = 5  # RL checkpoints measured every k steps (and at the last)
    samples: int = 4  # sampled answers per prompt at each checkpoint
    temperature: float = 0.7  # every point's sampling temperature: PPO's rollouts'
    batch_size: int = 512  # sequences generated together

    def __post_init__(self):
        check_int("best_of_n", self.best_of_n, 1)
        if self.best_of_n_prompts is not None:
            check_int("best_of_n_prompts", self.best_of_n_prompts, 1)
        for name in ("every", "samples", "batch_size"):
            check_int(name, getattr(self, name), 1)
        check_number("temperature", self.temperature, 0, low_open=True)


@dataclass(frozen=True, kw_only=True)
class Task2Config(TaskConfig):
    """Reward model, DPO, PPO and GRPO with LoRA on one base model and one preference dataset."""

    model: str  # the base / policy model (hub id or stand-in)
    dataset: str  # preference pairs in Intel/orca_dpo_pairs' schema
    n_train_pairs: int  # at most this many training pairs are used
    n_test_pairs: int  # held-out pairs (carved out of the train split where the dataset has no test split)
    max_length: int  # prompt + completion tokens; longer pairs are dropped
    lora: LoRAConfig = field(default_factory=LoRAConfig)  # every model's adapter
    reward_model: RewardModelConfig  # task2.reward_model.train_reward_model
    dpo: DPOConfig  # task2.dpo.train_dpo
    ppo: PPOConfig  # task2.ppo.train_ppo
    grpo: GRPOConfig  # task2.grpo.train_grpo
    evaluation: EvaluationConfig  # task2.evaluate.evaluate_model
    frontier: FrontierConfig = field(default_factory=FrontierConfig)  # task2.overoptimisation
    # the gold scorer (never optimised): a reward model (hub id) scoring (question, answer) text pairs, or
    # None for the programmatic judge (pa5.judge), which knows only the stand-in's world
    gold_model: str | None

    def __post_init__(self):
        for name in ("n_train_pairs", "n_test_pairs"):
            check_int(name, getattr(self, name), 1)
        check_int("max_length", self.max_length, 2)


# Learning rates differ by profile: the full profile fine-tunes the pretrained 135M model at TRL's LoRA
# rates (1e-4 for the reward model, 1e-5 for RL); the ~1M-parameter stand-in needs larger steps to move
# within the tiny notebook's steps. At the full profile's rates on the tiny stand-ins (bench/tiny_settings.py,
# seed 0): reward-model test accuracy 0.70 instead of 0.90; the rollouts' reward-model score over PPO's 30
# steps +0.11 -> +0.17 instead of +0.15 -> +1.18, over GRPO's 40 steps +0.23 -> +0.19 instead of +0.23 -> +0.78.
PROFILES = {
    "full": Task2Config(
        name="full", model=SMOLLM2, dataset=ORCA, n_train_pairs=3000, n_test_pairs=300, max_length=1024,
        # sizes chosen to fit a T4 in 30 minutes (bench/t4_budget.py); every training step checkpoints
        # activations, so a worst-case batch (8 pairs x 1024 tokens) stays far inside 14 GB (task2/README.md)
        reward_model=RewardModelConfig(steps=300, batch_size=8, lr=1e-4, gradient_checkpointing=True),
        # the course's DPO: beta 0.3, plain sigmoid loss
        dpo=DPOConfig(steps=300, batch_size=8, lr=5e-5, beta=0.3, gradient_checkpointing=True),
        ppo=PPOConfig(steps=40, prompts_per_step=32, minibatch_size=8, lr=1e-5, max_new_tokens=128,
                      gradient_checkpointing=True),
        grpo=GRPOConfig(steps=60, prompts_per_step=8, lr=1e-5, max_new_tokens=128, gradient_checkpointing=True),
        evaluation=EvaluationConfig(n_prompts=100, max_new_tokens=128, kl_samples=2),
        # best-of-64 on 32 prompts (2,048 samples scored by both reward models), one sample per prompt at
        # every 20th RL step keep the T4 estimate inside its 30 minutes (bench/t4_budget.py)
        frontier=FrontierConfig(best_of_n_prompts=32, every=20, samples=1, batch_size=256),
        gold_model=OASST_REWARD_MODEL,
    ),
    "tiny": Task2Config(
        name="tiny", model="standin:smollm2", dataset="standin:mini_orca", n_train_pairs=2000, n_test_pairs=300,
        max_length=128,
        reward_model=RewardModelConfig(steps=100, batch_size=32, lr=1e-3),
        # RPO (NLL weight 1) at beta 0.1 instead of the course's plain DPO: on the stand-in plain DPO at this
        # rate collapses generation (gold success 0.46 -> 0.31 after 125 steps, 0.22 after 200) and the
        # course's beta 0.3, lr 5e-5 barely moves it (0.49); RPO reaches 0.58 (bench/tiny_settings.py, seed 0).
        dpo=DPOConfig(steps=125, batch_size=32, lr=1e-3, beta=0.1, nll_weight=1.0),
        # 60 PPO steps: long enough to over-optimise (seed 0: greedy gold 0.50 -> 0.61 at step 50 -> 0.52 at
        # step 60 while the proxy kept rising; 30 steps end near the peak's start)
        ppo=PPOConfig(steps=60, prompts_per_step=32, minibatch_size=16, lr=1e-3, max_new_tokens=48),
        grpo=GRPOConfig(steps=40, prompts_per_step=16, lr=2e-3, max_new_tokens=48),
        evaluation=EvaluationConfig(n_prompts=100, max_new_tokens=48),
        frontier=FrontierConfig(every=10),
        gold_model=None,
    ),
}


def rehearse(config: Task2Config) -> Task2Config:
    """``PA5_REHEARSAL=1``: the full profile with only step, epoch and sample counts cut (``make rehearse``);
    batch sizes, rollout sizes, max_length, max_new_tokens, precision and the gold model stay."""
    return replace(config, n_train_pairs=64, n_test_pairs=16,
                   reward_model=replace(config.reward_model, steps=2), dpo=replace(config.dpo, steps=2, kl_every=1),
                   ppo=replace(config.ppo, steps=1, epochs=1), grpo=replace(config.grpo, steps=2),
                   evaluation=replace(config.evaluation, n_prompts=2, kl_samples=1),
                   frontier=replace(config.frontier, best_of_n=4, best_of_n_prompts=2, every=1, samples=1))
