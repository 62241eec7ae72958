"""pa5.fake_assets: the fake full-profile assets load through the project's own loaders, offline.

huggingface_hub and datasets read HF_HOME and the offline switches at import, so every load runs in
a fresh interpreter with the environment that ``build`` returns. One build per module (~6 s), a
second one elsewhere for determinism, a third there for "a different key rebuilds".
"""
import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pa5 import fake_assets
from pa5.standins.lm import SPECIAL_TOKENS

_LOAD = r"""
import json, torch
torch.set_num_threads(1)
import torchvision
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from pa5 import hub
from pa5.assets import ASSETS
from pa5.llm import prompt_ids

out = {}
hub.ensure_available(list(ASSETS))  # fails fast unless every asset is found in the caches
out["ensure_available"] = True

lm = "HuggingFaceTB/SmolLM2-135M-Instruct"
tok = hub.from_pretrained(AutoTokenizer, lm)
text = "The river, 1995 years old?\n\nAnswer:  well 42."
ids = tok(text, add_special_tokens=False)["input_ids"]
chat = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
model = hub.from_pretrained(AutoModelForCausalLM, lm)
out["lm"] = {"tokenizer_class": type(tok).__name__, "round_trip": tok.decode(ids) == text, "chat": chat,
             "eos": tok.eos_token_id, "pad": tok.pad_token_id, "im_end": tok.convert_tokens_to_ids("<|im_end|>"),
             "specials": tok.convert_tokens_to_ids(%(specials)r), "dtype": str(model.dtype),
             "layers": model.config.num_hidden_layers, "vocab": model.config.vocab_size,
             "logits": list(model(torch.tensor([ids])).logits.shape)}

rm = "OpenAssistant/reward-model-deberta-v3-large-v2"
rtok = hub.from_pretrained(AutoTokenizer, rm)
batch = rtok(["q1 what is it", "q2"], ["a1 is the answer", "a2"], padding=True, truncation=True, return_tensors="pt")
scorer = hub.from_pretrained(AutoModelForSequenceClassification, rm)
out["rm"] = {"logits": list(scorer(**batch).logits.shape), "first": batch["input_ids"][:, 0].tolist(),
             "token_types": sorted(set(batch["token_type_ids"].flatten().tolist())),
             "pad": rtok.pad_token_id, "hidden": scorer.config.hidden_size}

orca = hub.load_hf_dataset("Intel/orca_dpo_pairs")
train = list(orca["train"])
n_tokens = lambda s: len(tok(s, add_special_tokens=False)["input_ids"])
out["orca"] = {"splits": sorted(orca), "columns": orca["train"].column_names, "rows": len(train),
               "strings": all(isinstance(r[k], str) for r in train for k in r),
               "empty_system": sum(r["system"] == "" for r in train) / len(train),
               "chosen_longer": sum(len(r["chosen"]) > len(r["rejected"]) for r in train) / len(train),
               "over_1024": sum(len(prompt_ids(tok, r["system"], r["question"])) + 1
                                + max(n_tokens(r["chosen"]), n_tokens(r["rejected"])) > 1024 for r in train)}

# Fake files cannot match torchvision's md5s: skipped here only (pa5.hub decides how it handles them).
torchvision.datasets.cifar.check_integrity = lambda *args, **kwargs: True
torchvision.datasets.CIFAR100._check_integrity = lambda self: True
cifar = hub.cifar100(train=False)
image, label = cifar[0]
out["cifar"] = {"n": len(cifar), "size": list(image.size), "classes": len(cifar.classes), "label": label}

out["weights"] = {}
for ref, arch in (("ResNet50_Weights.IMAGENET1K_V2", "resnet50"),
                  ("MobileNet_V3_Large_Weights.IMAGENET1K_V2", "mobilenet_v3_large")):
    state = hub.imagenet_state_dict(ref)
    net = getattr(torchvision.models, arch)(weights=None)
    net.load_state_dict(state)  # strict: same keys and shapes as the torchvision model
    out["weights"][ref] = sorted(state) == sorted(net.state_dict())
print("RESULT " + json.dumps(out))
""" % {"specials": list(SPECIAL_TOKENS)}


def _files(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file the build wrote (the loaders' lock files and hub
    ``.no_exist`` entries skipped)."""
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files if ".no_exist" not in p.parts}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake") / "assets"
    env = fake_assets.build(root, layers=2, seed=0)
    return root, env


@pytest.fixture(scope="module")
def loaded(built):
    _, env = built
    result = subprocess.run([sys.executable, "-c", _LOAD], capture_output=True, text=True, timeout=180,
                            env={**os.environ, **env, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def _snapshot(env: dict, repo: str) -> Path:
    folder = Path(env["HF_HOME"]) / "hub" / f"models--{repo.replace('/', '--')}"
    commit = (folder / "refs" / "main").read_text()
    assert len(commit) == 40 and int(commit, 16) >= 0
    return folder / "snapshots" / commit


def test_environment_points_at_the_build(built):
    root, env = built
    assert env["HF_HUB_OFFLINE"] == env["HF_DATASETS_OFFLINE"] == "1"
    assert Path(env["HF_HOME"]) == root / "hf" and Path(env["TORCH_HOME"]) == root / "torch"
    assert Path(env["PA5_DATA"]) == root / "data"
    marker = json.loads((root / fake_assets.MARKER).read_text())
    assert marker["layers"] == 2 and marker["seed"] == 0 and marker["format"] == fake_assets.FORMAT_VERSION
    assert marker["source_sha256"] == hashlib.sha256(Path(fake_assets.__file__).read_bytes()).hexdigest()


def test_smollm2_files_have_the_hub_formats(built):
    from safetensors import safe_open

    snapshot = _snapshot(built[1], "HuggingFaceTB/SmolLM2-135M-Instruct")
    config = json.loads((snapshot / "config.json").read_text())
    assert config["num_hidden_layers"] == 2 and config["vocab_size"] == 49152 and config["torch_dtype"] == "bfloat16"
    assert (config["hidden_size"], config["num_key_value_heads"], config["tie_word_embeddings"]) == (576, 3, True)
    assert (config["bos_token_id"], config["eos_token_id"], config["pad_token_id"]) == (1, 2, 2)
    tokenizer_config = json.loads((snapshot / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "GPT2Tokenizer"
    assert tokenizer_config["eos_token"] == tokenizer_config["pad_token"] == "<|im_end|>"
    for name in ("tokenizer.json", "vocab.json", "merges.txt", "special_tokens_map.json", "generation_config.json"):
        assert (snapshot / name).is_file(), name
    with safe_open(str(snapshot / "model.safetensors"), "pt") as f:
        assert "lm_head.weight" not in f.keys()  # tied, as on the hub
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"BF16"}
        assert f.get_slice("model.embed_tokens.weight").get_shape() == [49152, 576]


def test_smollm2_loads_like_the_hub_model(loaded):
    lm = loaded["lm"]
    assert loaded["ensure_available"]
    assert lm["tokenizer_class"] == "GPT2Tokenizer" and lm["round_trip"]
    system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert lm["chat"].startswith(f"<|im_start|>system\n{system}<|im_end|>\n")
    assert lm["chat"].endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    assert lm["eos"] == lm["pad"] == lm["im_end"] == 2
    assert lm["specials"] == list(range(len(SPECIAL_TOKENS)))
    assert lm["dtype"] == "torch.bfloat16" and lm["layers"] == 2 and lm["vocab"] == 49152
    assert lm["logits"][0] == 1 and lm["logits"][2] == 49152


def test_reward_model_scores_text_pairs(loaded):
    rm = loaded["rm"]
    assert rm["logits"] == [2, 1] and rm["hidden"] == 64
    assert rm["first"] == [1, 1] and rm["token_types"] == [0, 1] and rm["pad"] == 0  # [CLS] A [SEP] B [SEP]


def test_orca_has_only_a_train_split_with_realistic_lengths(loaded):
    orca = loaded["orca"]
    assert orca["splits"] == ["train"] and orca["rows"] == 600 and orca["strings"]
    assert orca["columns"] == ["system", "question", "chosen", "rejected"]
    assert 0.15 <= orca["empty_system"] <= 0.35
    assert orca["chosen_longer"] >= 0.6
    assert 0 < orca["over_1024"] <= 0.1 * orca["rows"]  # some pairs the full profile's max_length drops


def test_cifar100_files_have_the_python_pickle_format(built, loaded):
    folder = Path(built[1]["PA5_DATA"]) / "cifar-100-python"
    with open(folder / "meta", "rb") as f:
        meta = pickle.load(f, encoding="latin1")
    fine, coarse = meta["fine_label_names"], meta["coarse_label_names"]
    assert len(fine) == 100 and len(coarse) == 20 and fine[:3] == ["apple", "aquarium_fish", "baby"]
    assert coarse[0] == "aquatic_mammals" and coarse[-1] == "vehicles_2"
    for name, n in (("train", 1000), ("test", 200)):
        with open(folder / name, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
        assert entry["data"].dtype.name == "uint8" and entry["data"].shape == (n, 3072)
        assert len(entry["fine_labels"]) == len(entry["coarse_labels"]) == len(entry["filenames"]) == n
        assert set(entry["fine_labels"]) == set(range(100)) and isinstance(entry["batch_label"], str)
        pairs = {(fine[f], coarse[c]) for f, c in zip(entry["fine_labels"], entry["coarse_labels"])}
        assert len(pairs) == 100  # one superclass per class ...
        assert {("beaver", "aquatic_mammals"), ("maple_tree", "trees"), ("tractor", "vehicles_2")} <= pairs  # real
    assert loaded["cifar"] == {"n": 200, "size": [32, 32], "classes": 100, "label": loaded["cifar"]["label"]}


def test_imagenet_checkpoints_match_the_torchvision_models(built, loaded):
    assert all(loaded["weights"].values()) and len(loaded["weights"]) == 2
    names = sorted(p.name for p in (Path(built[1]["TORCH_HOME"]) / "hub" / "checkpoints").iterdir())
    assert names == ["mobilenet_v3_large-5c1a4163.pth", "resnet50-11ad3fa6.pth"]  # the weight URLs' file names


def test_second_build_returns_at_once_without_rewriting(built):
    root, env = built
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    started = time.perf_counter()
    assert fake_assets.build(root, layers=2, seed=0) == env
    assert time.perf_counter() - started < 1.0
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_cli_prints_exports(built):
    root, env = built
    result = subprocess.run([sys.executable, "-m", "pa5.fake_assets", str(root), "--layers", "2"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert dict(line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines()) == env


def test_same_key_same_bytes_and_a_new_key_rebuilds(built, tmp_path):
    root, _ = built
    other = tmp_path / "again"
    env = fake_assets.build(other, layers=2, seed=0)
    assert _files(other) == _files(root)  # configs, tokenizers, safetensors, arrow, pickles, checkpoints
    fake_assets.build(other, layers=1, seed=0)
    config = json.loads((_snapshot(env, "HuggingFaceTB/SmolLM2-135M-Instruct") / "config.json").read_text())
    assert config["num_hidden_layers"] == 1
    assert json.loads((other / fake_assets.MARKER).read_text())["layers"] == 1
