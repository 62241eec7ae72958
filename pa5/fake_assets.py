"""Fake full-profile assets in the real on-disk formats, built offline, for rehearsing on a CPU.

The full profile (``PA5_PROFILE=full``) loads six real assets through ``pa5.hub``. This module writes
a stand-in for each *where the real one would be cached and in the format the real one has*, so
every loader, cache lookup, config field and tokenizer class on the full-profile code path runs as
it will on the course machines - only the numbers (weights, images, texts) are fake:

=========================================  ====================================================
asset                                      what is written (all weights random-init, seeded)
=========================================  ====================================================
HuggingFaceTB/SmolLM2-135M-Instruct        ``$HF_HOME/hub/models--HuggingFaceTB--SmolLM2-135M-Instruct``
                                           (``refs/main`` + ``snapshots/<commit>/``): the real
                                           config.json except ``num_hidden_layers`` (30 -> ``layers``),
                                           generation_config.json, bf16 ``model.safetensors``, and a
                                           byte-level BPE tokenizer trained here on generated English-like
                                           text (tokenizer.json, vocab.json, merges.txt) wrapped in the
                                           real tokenizer_config.json (``GPT2Tokenizer``, ChatML template,
                                           special tokens at the real ids 0..16, pad == eos ==
                                           ``<|im_end|>``). The vocabulary is small; vocab_size stays 49152.
OpenAssistant/reward-model-deberta-v3-     ``DebertaV2ForSequenceClassification`` (num_labels 1) with the
large-v2                                   real config's architecture fields but TINY sizes: hidden 64,
                                           2 layers, 2 heads, intermediate 128 (real: 1024 / 24 / 16 /
                                           4096); float32 ``model.safetensors``; a sentencepiece-style
                                           Unigram tokenizer.json built here from word counts ([PAD] 0,
                                           [CLS] 1, [SEP] 2, [UNK] 3, [MASK] last) + tokenizer_config.json
                                           (``DebertaV2Tokenizer``). No ``spm.model``: reading one needs
                                           sentencepiece + protobuf (or tiktoken), which the venv lacks.
                                           Whether the real repo ships tokenizer.json is NOT settled; if
                                           it ships only spm.model, the real load needs those packages.
Intel/orca_dpo_pairs                       the datasets cache, ``$HF_HOME/datasets/Intel___orca_dpo_pairs/
                                           default/0.0.0/<hash>/`` (dataset_info.json + arrow stream file,
                                           train split only, columns system/question/chosen/rejected) plus
                                           the hub repo's README.md (what ``pa5.hub.ensure_available``
                                           fetches). Rows: ~25 % empty systems, long-tailed questions,
                                           chosen usually longer, a few percent over 1024 tokens.
cifar100                                   ``$PA5_DATA/cifar-100-python/{train,test,meta}``: the python
                                           pickle format (real class names and fine -> coarse mapping),
                                           coloured-noise images. Their md5s cannot match the real ones.
ResNet50_Weights.IMAGENET1K_V2,            ``$TORCH_HOME/hub/checkpoints/<the URL's file name>``: a
MobileNet_V3_Large_Weights.IMAGENET1K_V2   ``torch.save``-d state dict. torch only checks a file's hash when
                                           it downloads it, so an existing file loads as is.
=========================================  ====================================================

Rehearse a change without a GPU: ``make rehearse`` builds these (once; a marker file makes a second
build with the same key return at once) and runs the three notebooks with ``PA5_PROFILE=full
PA5_REHEARSAL=1`` and the variables :func:`build` returns. By hand::

    eval "$(python -m pa5.fake_assets /tmp/pa5-fake --layers 2)"   # prints export K=V lines
    PA5_PROFILE=full PA5_REHEARSAL=1 jupyter nbconvert --execute ...

A rehearsal proves the code path (file formats, shapes, dtypes such as SmolLM2's bf16, over-long
pairs being dropped), never the results: every model here is untrained, and the fake vocabularies
are small, so token counts (hence lengths, memory, time) differ from the real tokenizers'.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import pickle
import random
import shutil
from collections import Counter
from pathlib import Path

FORMAT_VERSION = 1
MARKER = "fake_assets.json"
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
REWARD_MODEL = "OpenAssistant/reward-model-deberta-v3-large-v2"
ORCA = "Intel/orca_dpo_pairs"
WEIGHTS = {"ResNet50_Weights.IMAGENET1K_V2": "resnet50",
           "MobileNet_V3_Large_Weights.IMAGENET1K_V2": "mobilenet_v3_large"}

# SmolLM2-135M-Instruct's config.json; only num_hidden_layers is replaced (30 on the hub).
SMOLLM2_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 1, "eos_token_id": 2, "head_dim": 64, "hidden_act": "silu", "hidden_size": 576,
    "initializer_range": 0.041666666666666664, "intermediate_size": 1536, "is_llama_config": True,
    "max_position_embeddings": 8192, "mlp_bias": False, "model_type": "llama", "num_attention_heads": 9,
    "num_hidden_layers": 30, "num_key_value_heads": 3, "pad_token_id": 2, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05, "rope_interleaved": False, "rope_scaling": None, "rope_theta": 100000,
    "tie_word_embeddings": True, "torch_dtype": "bfloat16", "transformers_version": "4.42.3",
    "use_cache": True, "vocab_size": 49152,
}
# DeBERTa-v3-large's architecture fields (relative attention, shared keys, no absolute positions),
# with the sizes shrunk so a CPU can run it; vocab_size is the real one (embedding rows are cheap).
REWARD_CONFIG = {
    "architectures": ["DebertaV2ForSequenceClassification"], "attention_probs_dropout_prob": 0.1,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 64, "id2label": {"0": "LABEL_0"},
    "initializer_range": 0.02, "intermediate_size": 128, "label2id": {"LABEL_0": 0}, "layer_norm_eps": 1e-07,
    "max_position_embeddings": 512, "max_relative_positions": -1, "model_type": "deberta-v2",
    "norm_rel_ebd": "layer_norm", "num_attention_heads": 2, "num_hidden_layers": 2, "pad_token_id": 0,
    "pooler_dropout": 0, "pooler_hidden_act": "gelu", "pooler_hidden_size": 64, "pos_att_type": ["p2c", "c2p"],
    "position_biased_input": False, "position_buckets": 256, "relative_attention": True, "share_att_key": True,
    "torch_dtype": "float32", "transformers_version": "4.26.1", "type_vocab_size": 0, "vocab_size": 128100,
}
# CIFAR-100's 20 superclasses (coarse_label_names order) and their 5 classes each.
CIFAR_COARSE = {
    "aquatic_mammals": "beaver dolphin otter seal whale", "fish": "aquarium_fish flatfish ray shark trout",
    "flowers": "orchid poppy rose sunflower tulip", "food_containers": "bottle bowl can cup plate",
    "fruit_and_vegetables": "apple mushroom orange pear sweet_pepper",
    "household_electrical_devices": "clock keyboard lamp telephone television",
    "household_furniture": "bed chair couch table wardrobe", "insects": "bee beetle butterfly caterpillar cockroach",
    "large_carnivores": "bear leopard lion tiger wolf",
    "large_man-made_outdoor_things": "bridge castle house road skyscraper",
    "large_natural_outdoor_scenes": "cloud forest mountain plain sea",
    "large_omnivores_and_herbivores": "camel cattle chimpanzee elephant kangaroo",
    "medium_mammals": "fox porcupine possum raccoon skunk",
    "non-insect_invertebrates": "crab lobster snail spider worm",
    "people": "baby boy girl man woman", "reptiles": "crocodile dinosaur lizard snake turtle",
    "small_mammals": "hamster mouse rabbit shrew squirrel",
    "trees": "maple_tree oak_tree palm_tree pine_tree willow_tree",
    "vehicles_1": "bicycle bus motorcycle pickup_truck train", "vehicles_2": "lawn_mower rocket streetcar tank tractor",
}
ORCA_SYSTEMS = (  # orca's system prompts are a handful of fixed instructions
    "You are an AI assistant. User will give you a task. Your goal is to complete the task as faithfully as you can.",
    "You are a helpful assistant, who always provide explanation. Think like you are answering to a five year old.",
    "You are an AI assistant that helps people find information.",
    "You should describe the task and explain your answer. While answering a multiple choice question, first output "
    "the correct answer(s). Then explain why other answers are wrong.",
    "Explain how you used the definition to come up with the answer.",
)
_WORDS = (
    "the of and to a in is that it for as was with be by on not he this are or his from at which but have an they "
    "you were her she there been one all we their has would when if so no what can more will about other some time "
    "could these two may first then do any like my now over such our man me even most made after also did many "
    "before must through back years where much your way well down should because each just those people how too "
    "little state good very make world still own see men work long get here between both life being under never "
    "day same another know while last might us great old year off come since against go came right used take three "
    "question number river city system water energy reason example light story answer market science "
    "history music family student animal country language process result problem government island mountain"
).split()


def build(root: Path, layers: int = 2, seed: int = 0) -> dict[str, str]:
    """Write every fake asset under ``root``; return the environment that makes the loaders find them.

    Idempotent: returns at once when ``root`` holds a finished build with the same key (layers, seed,
    format version, this file's sha); any other key rebuilds from scratch. Same key, same bytes.
    """
    root = Path(root).expanduser().resolve()
    env = {"HF_HOME": str(root / "hf"), "HF_DATASETS_CACHE": str(root / "hf" / "datasets"),
           "TORCH_HOME": str(root / "torch"), "PA5_DATA": str(root / "data"),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    key = {"layers": layers, "seed": seed, "format": FORMAT_VERSION,
           "source_sha256": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()}
    marker = root / MARKER
    if marker.exists() and json.loads(marker.read_text()) == key:
        return env
    marker.unlink(missing_ok=True)  # the marker is written last: without it a build is unfinished
    for name in ("hf", "torch", "data"):  # only what a build writes: root may hold other things
        shutil.rmtree(root / name, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same bytes on every machine, and polite on 2 cores
    try:
        texts = _corpus(random.Random(f"{seed}-corpus"), 6000)
        _smollm2(root / "hf", layers, seed, texts)
        _reward_model(root / "hf", seed, texts)
        _orca(root / "hf", seed)
        _cifar(root / "data", seed)
        _checkpoints(root / "torch", seed)
    finally:
        torch.set_num_threads(threads)
    marker.write_text(json.dumps(key, indent=2))
    return env


# ---------------------------------------------------------------- hub cache layout


def _snapshot(hf_home: Path, repo_id: str, seed: int, repo_type: str = "model") -> Path:
    """``<repo folder>/refs/main`` -> a fake 40-hex commit, and its empty ``snapshots/<commit>/``.

    Files are plain files in the snapshot, not symlinks into ``blobs/`` (huggingface_hub does the same
    where symlinks are unsupported), so the tree survives copies that drop links.
    """
    folder = hf_home / "hub" / f"{repo_type}s--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(f"pa5-fake {repo_type} {repo_id} {seed} {FORMAT_VERSION}".encode()).hexdigest()
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)  # no trailing newline, as huggingface_hub writes it
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    return snapshot


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def _save_safetensors(model, path: Path, dtype) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:  # tied checkpoints on the hub store the embedding only
        tensors.pop("lm_head.weight", None)
    save_file(tensors, str(path), metadata={"format": "pt"})


# ---------------------------------------------------------------- text


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(max(3, int(rng.gauss(13, 5))))]
    if rng.random() < 0.15:
        words.insert(rng.randrange(len(words)), str(rng.randrange(1, 2030)))
    if rng.random() < 0.2:
        words[rng.randrange(len(words))] += ","
    return " ".join(words).capitalize() + rng.choice(".....?!")


def _text(rng: random.Random, n_words: int) -> str:
    """About ``n_words`` words of sentences, paragraphs every ~60 words."""
    out, count = [], 0
    while count < n_words:
        s = _sentence(rng)
        out.append(s + ("\n\n" if rng.random() < 0.2 else " "))
        count += s.count(" ") + 1
    return "".join(out).strip()


def _corpus(rng: random.Random, n: int) -> list[str]:
    return [_text(rng, rng.randint(5, 120)) for _ in range(n)] + [" ".join(_WORDS), "0123456789 " * 3]


# ---------------------------------------------------------------- SmolLM2


def _smollm2(hf_home: Path, layers: int, seed: int, texts: list[str]) -> None:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM

    from pa5.standins.lm import CHAT_TEMPLATE, SPECIAL_TOKENS

    snap = _snapshot(hf_home, SMOLLM2, seed)
    # The hub tokenizer.json's pieces: individual digits, then GPT-2 byte-level (transformers 5's
    # GPT2Tokenizer swaps this pre-tokenizer for plain ByteLevel on load, as it does for the real one).
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False)])
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=49152, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    assert [bpe.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    bpe.save(str(snap / "tokenizer.json"), pretty=True)
    bpe.model.save(str(snap))  # vocab.json + merges.txt, as the hub repo also ships them

    def token(content: str) -> dict:
        return {"content": content, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}

    _write_json(snap / "tokenizer_config.json", {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(i): {**token(t), "special": True} for i, t in enumerate(SPECIAL_TOKENS)},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": "<|im_start|>",
        "chat_template": CHAT_TEMPLATE, "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>",
        "model_max_length": 8192, "pad_token": "<|im_end|>", "tokenizer_class": "GPT2Tokenizer",
        "unk_token": "<|endoftext|>", "vocab_size": 49152})
    _write_json(snap / "special_tokens_map.json", {
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"], "bos_token": token("<|im_start|>"),
        "eos_token": token("<|im_end|>"), "pad_token": token("<|im_end|>"), "unk_token": token("<|endoftext|>")})
    config = {**SMOLLM2_CONFIG, "num_hidden_layers": layers}
    _write_json(snap / "config.json", config)
    _write_json(snap / "generation_config.json", {"_from_model_config": True, "bos_token_id": 1, "eos_token_id": 2,
                                                  "pad_token_id": 2, "transformers_version": "4.42.3"})
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in config.items() if k != "torch_dtype"}))
    _save_safetensors(model, snap / "model.safetensors", torch.bfloat16)  # the hub file is bf16


# ---------------------------------------------------------------- reward model


def _reward_model(hf_home: Path, seed: int, texts: list[str]) -> None:
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    snap = _snapshot(hf_home, REWARD_MODEL, seed)
    specials = ["[PAD]", "[CLS]", "[SEP]", "[UNK]"]  # DeBERTa-v3's ids 0..3
    # A sentencepiece-style Unigram: whole words and single characters, score = log frequency.
    # Built from counts, not with tokenizers' UnigramTrainer, whose output varies from run to run.
    words, chars = Counter(), Counter()
    for text in texts:
        for word in text.split():
            words["▁" + word] += 1
            chars.update(word)
    pieces = [(w, c) for w, c in words.items() if c >= 2] + list(chars.items()) + [("▁", sum(words.values()))]
    total = sum(c for _, c in pieces)
    ranked = sorted(pieces, key=lambda piece: (-piece[1], piece[0]))  # a fixed order: same bytes every run
    vocab = [(t, 0.0) for t in specials] + [(p, math.log(c / total)) for p, c in ranked]
    uni = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    uni.normalizer = normalizers.Sequence([normalizers.Replace(Regex(r"\s{2,}|[\n\r\t]"), " ")])
    uni.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    uni.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    uni.add_special_tokens(specials)
    uni.add_special_tokens(["[MASK]"])  # after the sentencepiece pieces, as in DeBERTa-v3 (id 128000)
    uni.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    uni.save(str(snap / "tokenizer.json"), pretty=True)
    _write_json(snap / "tokenizer_config.json", {
        "bos_token": "[CLS]", "cls_token": "[CLS]", "do_lower_case": False, "eos_token": "[SEP]",
        "mask_token": "[MASK]", "model_max_length": 512, "pad_token": "[PAD]", "sep_token": "[SEP]",
        "split_by_punct": False, "tokenizer_class": "DebertaV2Tokenizer", "unk_token": "[UNK]", "vocab_type": "spm"})
    _write_json(snap / "special_tokens_map.json", {t: f"[{v}]" for t, v in (
        ("bos_token", "CLS"), ("cls_token", "CLS"), ("eos_token", "SEP"), ("mask_token", "MASK"),
        ("pad_token", "PAD"), ("sep_token", "SEP"), ("unk_token", "UNK"))})
    _write_json(snap / "config.json", REWARD_CONFIG)
    torch.manual_seed(seed)
    model = DebertaV2ForSequenceClassification(DebertaV2Config(**REWARD_CONFIG))
    _save_safetensors(model, snap / "model.safetensors", torch.float32)


# ---------------------------------------------------------------- orca


def _orca_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        system = "" if rng.random() < 0.25 else rng.choice(ORCA_SYSTEMS)
        question = _text(rng, min(900, int(rng.lognormvariate(math.log(45), 0.9)) + 4))  # long-tailed
        rejected_words = int(rng.lognormvariate(math.log(70), 0.8)) + 3
        ratio = rng.lognormvariate(math.log(1.6), 0.5)  # GPT-4's answers run longer than Llama-2's
        if rng.random() < 0.03:  # a few pairs no 1024-token budget fits (the loader drops them)
            ratio = rng.uniform(1100, 1500) / rejected_words
        rows.append({"system": system, "question": question, "chosen": _text(rng, int(rejected_words * ratio) + 1),
                     "rejected": _text(rng, rejected_words)})
    return rows


def _orca(hf_home: Path, seed: int, n_rows: int = 600) -> None:
    import pyarrow as pa
    from datasets import DatasetInfo, Features, SplitDict, SplitInfo, Value
    from datasets.arrow_writer import ArrowWriter

    snap = _snapshot(hf_home, ORCA, seed, repo_type="dataset")
    (snap / "README.md").write_text("---\nlicense: apache-2.0\ntask_categories:\n- text-generation\n---\n"
                                    "Fake Intel/orca_dpo_pairs written by pa5.fake_assets (generated text).\n")
    rows = _orca_rows(random.Random(f"{seed}-orca"), n_rows)
    # The hub's datasets builder caches under <namespace>___<name>/<config>/<version>/<hash>/; the
    # offline "cache" module picks the newest such folder and reads dataset_info.json's splits.
    folder = hf_home / "datasets" / "Intel___orca_dpo_pairs" / "default" / "0.0.0" / snap.name
    folder.mkdir(parents=True)
    features = Features({k: Value("string") for k in ("system", "question", "chosen", "rejected")})
    table = pa.Table.from_pylist(rows, schema=features.arrow_schema)
    with ArrowWriter(features=features, path=str(folder / "orca_dpo_pairs-train.arrow")) as writer:
        writer.write_table(table)
        n_examples, n_bytes = writer.finalize()
    splits = SplitDict(dataset_name="orca_dpo_pairs")
    splits.add(SplitInfo(name="train", num_bytes=n_bytes, num_examples=n_examples, dataset_name="orca_dpo_pairs"))
    DatasetInfo(features=features, builder_name="json", dataset_name="orca_dpo_pairs", config_name="default",
                version="0.0.0", splits=splits, dataset_size=n_bytes).write_to_directory(str(folder))


# ---------------------------------------------------------------- torchvision


def cifar_label_names() -> tuple[list[str], list[str], dict[str, int]]:
    """``(fine_label_names, coarse_label_names, fine name -> coarse id)`` as in the real meta file."""
    coarse = list(CIFAR_COARSE)
    fine_to_coarse = {f: i for i, c in enumerate(coarse) for f in CIFAR_COARSE[c].split()}
    return sorted(fine_to_coarse), coarse, fine_to_coarse


def _cifar(data: Path, seed: int, n_train: int = 1000, n_test: int = 200) -> None:
    import numpy as np

    folder = data / "cifar-100-python"
    folder.mkdir(parents=True)
    fine, coarse, fine_to_coarse = cifar_label_names()
    rng = np.random.default_rng(seed)
    colours = rng.integers(30, 226, size=(100, 3, 1, 1))  # one mean colour per class: learnable, barely
    for name, n, label in (("train", n_train, "training batch 1 of 1"), ("test", n_test, "testing batch 1 of 1")):
        labels = np.concatenate([np.arange(100), rng.integers(0, 100, size=n - 100)])  # every class present
        rng.shuffle(labels)
        images = np.clip(colours[labels] + rng.normal(0, 40, size=(n, 3, 32, 32)), 0, 255).astype(np.uint8)
        entry = {"filenames": [f"{fine[y]}_s_{i:06d}.png" for i, y in enumerate(labels)], "batch_label": label,
                 "fine_labels": labels.tolist(), "coarse_labels": [fine_to_coarse[fine[y]] for y in labels],
                 "data": images.reshape(n, 3072)}  # rows are CHW-flattened, as in the real archive
        # str keys: what torchvision gets from the real (Python 2) pickles with encoding="latin1"
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": fine, "coarse_label_names": coarse}, protocol=2))


def _checkpoints(torch_home: Path, seed: int) -> None:
    import torch
    import torchvision

    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    for ref, arch in WEIGHTS.items():
        torch.manual_seed(seed)
        model = getattr(torchvision.models, arch)(weights=None)
        torch.save(model.state_dict(), folder / Path(torchvision.models.get_weight(ref).url).name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pa5.fake_assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="folder to build under (created)")
    parser.add_argument("--layers", type=int, default=2, help="SmolLM2 depth (the real one has 30)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for k, v in build(args.root, args.layers, args.seed).items():
        print(f"export {k}={v}")


if __name__ == "__main__":
    main()
