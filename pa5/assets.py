"""The full profile's real assets, in one table: the profiles name them, ``pa5.hub`` loads them and
checks them before a run, task 3 finds each network's ImageNet weights here.

A reference starting with ``standin:`` names an offline stand-in instead (``pa5.standins``).
"""
from __future__ import annotations

from dataclasses import dataclass

STANDIN_PREFIX = "standin:"


@dataclass(frozen=True)
class Asset:
    ref: str  # hub repo id, or torchvision dataset / weights name
    kind: str  # "hf-causal-lm" | "hf-classifier" | "hf-dataset" | "torchvision-dataset" | "torchvision-weights"
    what: str  # what the course uses it for


SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
OASST_REWARD_MODEL = "OpenAssistant/reward-model-deberta-v3-large-v2"
ORCA = "Intel/orca_dpo_pairs"
CIFAR100 = "cifar100"
# torchvision weight enums (``torchvision.models.get_weight`` names), per task 3 network
IMAGENET_WEIGHTS = {"resnet50": "ResNet50_Weights.IMAGENET1K_V2",
                    "mobilenet_v3_large": "MobileNet_V3_Large_Weights.IMAGENET1K_V2"}

# the tiny profile's counterpart: ResNet50 and MobileNetV3-Large pretrained on a synthetic set of their
# own, in torchvision's state-dict layout (pa5.standins.backbones)
STANDIN_IMAGENET = "standin:imagenet"
WEIGHT_SOURCES = ("imagenet", STANDIN_IMAGENET)


def imagenet_weights(name: str, source: str) -> str:
    """The reference of network ``name``'s starting weights from ``source``: "imagenet" (torchvision's
    enum, ``IMAGENET_WEIGHTS``) or ``STANDIN_IMAGENET`` ("standin:imagenet/<name>") - both loaded by
    ``pa5.hub.imagenet_state_dict``."""
    if name not in IMAGENET_WEIGHTS:
        raise ValueError(f"network name {name!r} is unknown; allowed: {', '.join(IMAGENET_WEIGHTS)}")
    if source not in WEIGHT_SOURCES:
        raise ValueError(f"weights source {source!r} is unknown; allowed: {', '.join(WEIGHT_SOURCES)}")
    return IMAGENET_WEIGHTS[name] if source == "imagenet" else f"{STANDIN_IMAGENET}/{name}"


ASSETS: dict[str, Asset] = {
    a.ref: a
    for a in (
        Asset(SMOLLM2, "hf-causal-lm", "the policy / base model (tasks 1, 2)"),
        Asset(OASST_REWARD_MODEL, "hf-classifier", "task 1's quality score and task 2's gold"),
        Asset(ORCA, "hf-dataset", "task 2's preference data"),
        Asset(CIFAR100, "torchvision-dataset", "task 3's images"),
        Asset(IMAGENET_WEIGHTS["resnet50"], "torchvision-weights", "task 3's ResNet50"),
        Asset(IMAGENET_WEIGHTS["mobilenet_v3_large"], "torchvision-weights", "task 3's MobileNetV3-Large"),
    )
}


def asset(ref: str) -> Asset:
    """The table's entry for ``ref``; ValueError listing the known ones otherwise."""
    if ref not in ASSETS:
        raise ValueError(f"asset {ref!r} is unknown; allowed: {', '.join(ASSETS)}")
    return ASSETS[ref]
