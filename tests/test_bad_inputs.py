"""Issue 19's bad inputs: each once returned a silently wrong result or a deep library traceback;
each must now raise a ValueError that names the argument."""
import dataclasses
import math

import pytest
import torch

from pa5 import recipes
from task1 import decoding, metrics
from task2 import config as task2_config, data, grpo, policy, ppo, reward_model
from task3 import config as task3_config, models as vision, usae as U, visualize as V

IDS = torch.tensor([[1, 2, 3], [4, 5, 6]])
X = torch.zeros(2, 3)
MASK = torch.ones(2, 3)


def _llama():
    return recipes.tiny_llama(vocab_size=48)


CASES = {
    "right padding": (lambda: decoding.greedy_search(_llama(), IDS, 2, attention_mask=torch.tensor([[1, 1, 0], [1, 1, 1]])),
                      "attention_mask.*left"),
    "id >= vocabulary": (lambda: decoding.greedy_search(_llama(), IDS + 45, 2), "input_ids.*in \\[0, 48\\)"),
    "negative id": (lambda: decoding.greedy_search(_llama(), IDS - 2, 2), "input_ids"),
    "pad id >= vocabulary": (lambda: decoding.greedy_search(_llama(), IDS, 2, pad_token_id=48), "pad_token_id"),
    "length_penalty overflow": (lambda: decoding.beam_search(_llama(), IDS, 2, 2, length_penalty=1e308),
                                "length_penalty"),
    "fewer masks than sequences": (lambda: data.pad_sequences([[1, 2], [3]], [[0, 1]], 0), "masks.*one mask per"),
    "mask of another length": (lambda: data.pad_sequences([[1, 2], [3]], [[0, 1], [1, 1]], 0), "masks\\[i\\]"),
    "integer rewards in GAE": (lambda: ppo.compute_gae(torch.ones(2, 3, dtype=torch.long), X, MASK), "rewards.*floating"),
    "long log-probs in the policy loss": (lambda: ppo.policy_loss(X.long(), X, X, MASK), "logps.*floating"),
    "num_items = 0": (lambda: grpo.grpo_loss(X, X, torch.zeros(2), MASK, "dapo", num_items=0), "num_items"),
    "num_items < 0": (lambda: grpo.grpo_loss(X, X, torch.zeros(2), MASK, "dapo", num_items=-3), "num_items"),
    "kl_estimate shapes": (lambda: policy.kl_estimate(X, torch.zeros(2, 1)), "logps, ref_logps"),
    "token_scores mask shape": (lambda: reward_model.token_scores(None, IDS, torch.ones(2, 2)), "attention_mask"),
    "max_grad_norm = -1": (lambda: U.usae_step(recipes.two_model_usae(), None, {"a": torch.zeros(4, 6),
                                                                             "b": torch.zeros(4, 4)}, ["a"],
                                               max_grad_norm=-1.0), "max_grad_norm"),
    "max_grad_norm = 0": (lambda: U.usae_step(recipes.two_model_usae(), None, {"a": torch.zeros(4, 6),
                                                                            "b": torch.zeros(4, 4)}, ["a"],
                                              max_grad_norm=0.0), "max_grad_norm"),
    "cross_weight < 0": (lambda: U.usae_loss(recipes.two_model_usae(), {"a": torch.zeros(4, 6), "b": torch.zeros(4, 4)},
                                             "a", cross_weight=-1.0), "cross_weight"),
    "concept = -1": (lambda: V.concept_objective(recipes.TinyNet(), "resnet50", None, recipes.two_model_usae(), -1),
                     "concept"),
    "concept past the last": (lambda: V.concept_objective(recipes.TinyNet(), "resnet50", None, recipes.two_model_usae(),
                                                          12), "concept"),
    "a string, not a list": (lambda: metrics.distinct_n("hello world", 1), "texts.*list of strings"),
    "seed None": (lambda: data.batch_indices(8, 2, 3, None), "seed"),
    "NaN kl_coef": (lambda: ppo.token_rewards(torch.zeros(2), X, X, MASK, kl_coef=math.nan), "kl_coef"),
    "NaN DPO beta": (lambda: task2_config.DPOConfig(steps=1, batch_size=1, lr=1e-4, beta=math.nan), "beta"),
    "inf GRPO beta": (lambda: dataclasses.replace(task2_config.PROFILES["tiny"].grpo, beta=math.inf), "beta"),
    "n_train_pairs < 0": (lambda: dataclasses.replace(task2_config.PROFILES["tiny"], n_train_pairs=-5), "n_train_pairs"),
    "NaN logits to top-k": (lambda: decoding.top_k_filter(torch.tensor([[0.0, math.nan]]), 1), "logits.*NaN"),
    "+inf logits to top-p": (lambda: decoding.top_p_filter(torch.tensor([[0.0, math.inf]]), 0.5), "logits.*inf"),
    "integer logits to min-p": (lambda: decoding.min_p_filter(torch.tensor([[0, 1]]), 0.5), "logits.*floating"),
    "NaN decay": (lambda: V.FourierImage(16, decay=math.nan), "decay"),
    "unknown network": (lambda: vision.build_model("resnet18", None), "name.*resnet50"),
    "unknown network in the objective": (lambda: V.concept_objective(recipes.TinyNet(), "vgg", None,
                                                                     recipes.two_model_usae(), 0), "name.*resnet50"),
    "one image to train_usae": (lambda: U.train_usae(recipes.two_model_usae(), {"a": torch.zeros(1, 6),
                                                                                "b": torch.zeros(1, 4)},
                                                     task3_config.PROFILES["tiny"].sae), "features.*at least 2"),
    "SAE batch_size = 1": (lambda: dataclasses.replace(task3_config.PROFILES["tiny"].sae, batch_size=1), "batch_size"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_raises_a_value_error_naming_the_argument(case):
    call, argument = CASES[case]
    with pytest.raises(ValueError, match=argument):
        call()
