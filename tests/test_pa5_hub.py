"""pa5.hub offline: every real asset fails fast with one clear error that says how to proceed.

Run in fresh interpreters with empty caches and HF_HUB_OFFLINE=1 (huggingface_hub reads it at
import). The subprocess timeout is the issue's 2-minute budget.
"""
import json
import os
import subprocess
import sys

import pytest

from pa5 import hub
from pa5.profile import TASKS

_LOADERS = """
import json, pa5
from pa5 import hub
from transformers import AutoTokenizer
attempts = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": lambda: hub.from_pretrained(AutoTokenizer, "HuggingFaceTB/SmolLM2-135M-Instruct"),
    "Intel/orca_dpo_pairs": lambda: hub.load_hf_dataset("Intel/orca_dpo_pairs"),
    "cifar100": lambda: hub.cifar100(train=True),
    "ResNet50_Weights.IMAGENET1K_V2": lambda: hub.imagenet_state_dict("ResNet50_Weights.IMAGENET1K_V2"),
}
errors = {}
for ref, attempt in attempts.items():
    try:
        attempt()
        errors[ref] = None
    except hub.AssetUnavailableError as e:
        errors[ref] = str(e)
print(json.dumps(errors))
"""


def _offline_python(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"),
               PA5_CACHE=str(tmp_path / "pa5"), PA5_RUNS_DIR=str(tmp_path / "runs"))
    env.pop("PA5_DATA", None)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def _assert_says_how_to_proceed(message: str, ref: str):
    assert ref in message, "the error must name the asset"
    assert "PA5_PROFILE=tiny" in message, "the error must point to the offline tiny profile"
    assert f"python -m pa5.hub download {ref}" in message, "the error must give the pre-download command"


@pytest.mark.parametrize("task", TASKS)
def test_full_profile_offline_fails_at_setup_with_instructions(task, tmp_path):
    result = _offline_python(f"import pa5; pa5.setup({task!r}, 'full')", tmp_path)
    assert result.returncode != 0, "setup must fail when the full profile's assets are unreachable"
    last_line = result.stderr.strip().splitlines()
    assert any(line.startswith("pa5.hub.AssetUnavailableError") for line in last_line), result.stderr[-2000:]
    assert "PA5_PROFILE=tiny" in result.stderr


def test_each_loader_offline_raises_the_clear_error(tmp_path):
    result = _offline_python(_LOADERS, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    errors = json.loads(result.stdout.strip().splitlines()[-1])
    for ref, message in errors.items():
        assert message is not None, f"{ref} loaded although nothing is cached and the hub is off"
        _assert_says_how_to_proceed(message, ref)


def test_unknown_asset_is_a_value_error():
    with pytest.raises(ValueError, match="allowed"):
        hub.asset("gpt2")


@pytest.mark.parametrize("error", [ImportError("sentencepiece is not installed"), ValueError("cannot convert spm.model")])
def test_a_missing_tokenizer_package_is_the_same_clear_error(error):
    """A repo with only a sentencepiece model needs packages; their absence surfaces as ValueError /
    ImportError inside transformers - it must become the one AssetUnavailableError naming the asset."""
    from pa5.assets import OASST_REWARD_MODEL
    from pa5.hub import AssetUnavailableError, from_pretrained

    class Failing:
        @staticmethod
        def from_pretrained(ref, **kwargs):
            raise error

    with pytest.raises(AssetUnavailableError, match="reward-model-deberta") as caught:
        from_pretrained(Failing, OASST_REWARD_MODEL)
    assert str(error) in str(caught.value)


def test_the_reward_model_judge_scores_text_pairs(monkeypatch):
    """OpenAssistant's card scores tokenizer(question, answer): a text pair, not one joined string."""
    import torch

    from pa5 import hub, judge

    calls = []

    class Tokenizer:
        def __call__(self, first, second=None, **kwargs):
            calls.append((first, second))
            ids = torch.ones(len(first), 3, dtype=torch.long)
            return type("Batch", (dict,), {"to": lambda self, device: self})(input_ids=ids)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(1))

        def forward(self, input_ids):
            return type("Out", (), {"logits": input_ids.float().sum(-1, keepdim=True) * self.weight})()

    monkeypatch.setattr(hub, "from_pretrained", lambda cls, ref, **kw: Tokenizer())
    monkeypatch.setattr(hub, "load_model", lambda cls, ref, device, **kw: Model())
    scorer = judge.RewardModelJudge("OpenAssistant/reward-model-deberta-v3-large-v2", batch_size=2)
    assert scorer(["q1", "q2", "q3"], ["a1", "a2", "a3"]) == [3.0, 3.0, 3.0]
    assert calls == [(["q1", "q2"], ["a1", "a2"]), (["q3"], ["a3"])], "questions and answers go in as a pair"
    with pytest.raises(ValueError, match="same length"):
        scorer(["q"], [])
