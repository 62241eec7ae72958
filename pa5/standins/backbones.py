"""Stand-in "ImageNet" weights for task 3's networks: ResNet50 and MobileNetV3-Large pretrained on a
synthetic pretraining set of their own, saved as safetensors in torchvision's state-dict layout.

The full profile starts task 3's networks from ImageNet weights and fine-tunes them on CIFAR-100; the
tiny profile does the same from these. The pretraining set is drawn by the CIFAR stand-in's renderer
(``cifar.render``) from another random stream, so its images are not the stand-in CIFAR-100's, and it
has other labels: every shape x colour x texture combination, balanced (400 kinds of image). The
network keeps torchvision's 1,000-way ImageNet head (so every key and shape is torchvision's); its
first 24 logits are read as three softmax heads - shape (10), colour (10), texture (4) - and the loss
is a weighted sum of their cross-entropies: each factor gets its own gradient, so shape, the hardest
and the one a CIFAR class needs most, is learnt from the first step rather than after colour.
MobileNetV3 weighs colour and texture 0.1: at equal weights it reached 45 % shape accuracy held out,
at 0.1 it reaches 90 % (colour 73 %, relearnt in the fine-tune in no time); ResNet50 reaches 80 %
at equal weights (development machine, seed 0).

AdamW with a one-cycle schedule, batch 128, channels-last memory (2x faster on the CPU for
MobileNetV3). BatchNorm running statistics are recalibrated at the end (a cumulative average over
training images; MobileNetV3's momentum 0.01 leaves them far from the data's after a short run).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pa5.standins import cifar

MODELS = ("resnet50", "mobilenet_v3_large")
FACTOR_HEADS = (("shape", len(cifar.SHAPES)), ("colour", len(cifar.COLOURS)), ("texture", len(cifar.TEXTURES)))
LABEL_FACTORS = tuple(name for name, _ in FACTOR_HEADS)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # task 3's input normalisation


@dataclass(frozen=True)
class BackboneConfig:
    seed: int = 0
    n_train: int = 24_000  # pretraining images (60 per shape x colour x texture)
    n_test: int = 2_000  # held-out pretraining images: the build report's accuracies
    resnet50_epochs: int = 2  # ~5 min on 2 cores: 80 % shape accuracy held out
    mobilenet_v3_large_epochs: int = 3  # ~2 min (channels-last)
    resnet50_lr: float = 2e-3  # AdamW's peak learning rate (one-cycle)
    mobilenet_v3_large_lr: float = 1e-3
    # the factor heads' loss weights (shape, colour, texture)
    resnet50_factor_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    mobilenet_v3_large_factor_weights: tuple[float, float, float] = (1.0, 0.1, 0.1)
    weight_decay: float = 0.05
    batch_size: int = 128
    recalibration_images: int = 4_000  # BatchNorm statistics re-estimated on these


def pretraining_set(n: int, rng: np.random.Generator):
    """(images float [n, 3, 32, 32] normalised as task 3's inputs, labels {factor: int64 [n]})."""
    import torch

    data, factors = cifar.make_split(n, rng, LABEL_FACTORS)
    pixels = torch.from_numpy(data).view(n, 3, cifar.SIZE, cifar.SIZE).float() / 255
    images = (pixels - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]
    return images, {name: torch.as_tensor(factors[name]).long() for name in LABEL_FACTORS}


def factor_loss(logits, labels: dict, weights: tuple[float, ...] = (1.0, 1.0, 1.0)):
    """Weighted sum over factors of the cross-entropy of its slice of the 1,000 logits (``FACTOR_HEADS``
    and ``weights`` in order). logits [B, 1000], labels {factor: [B]}."""
    import torch

    loss, start = 0.0, 0
    for (name, size), weight in zip(FACTOR_HEADS, weights, strict=True):
        loss = loss + weight * torch.nn.functional.cross_entropy(logits[:, start:start + size].float(), labels[name])
        start += size
    return loss


def factor_predictions(logits) -> dict:
    """{factor: [B] argmax of its slice of the logits}."""
    out, start = {}, 0
    for name, size in FACTOR_HEADS:
        out[name] = logits[:, start:start + size].argmax(-1)
        start += size
    return out


def _recalibrate_batchnorm(model, images, batch_size: int) -> None:
    import torch

    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average
    model.train()
    with torch.no_grad():
        for part in images.split(batch_size):
            model(part.contiguous(memory_format=torch.channels_last))
    for m, momentum in zip(layers, saved):
        m.momentum = momentum
    model.eval()


def pretrain(name: str, config: BackboneConfig, train, test) -> tuple[dict, dict]:
    """Pretrain torchvision's ``name`` (random init, 1,000-way head) on ``train`` = (images, labels);
    returns (state dict on the CPU, report with held-out accuracy per factor)."""
    import torch
    import torchvision
    from tqdm.auto import tqdm

    from pa5.optim import optimizer_step

    torch.manual_seed(config.seed)
    # ResNet50: each residual branch's last BatchNorm starts at zero (torchvision's zero_init_residual),
    # so every block starts as the identity - it learns much faster from scratch (Goyal et al., 2017)
    extra = {"zero_init_residual": True} if name == "resnet50" else {}
    model = getattr(torchvision.models, name)(weights=None, **extra).to(memory_format=torch.channels_last)
    images, labels = train
    epochs, lr, weights = (getattr(config, f"{name}_{field}") for field in ("epochs", "lr", "factor_weights"))
    steps_per_epoch = len(images) // config.batch_size
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                   pct_start=0.15)
    generator = torch.Generator().manual_seed(config.seed)
    start, losses = time.perf_counter(), []
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(images), generator=generator)[:steps_per_epoch * config.batch_size]
        for batch in tqdm(order.split(config.batch_size), desc=f"pretraining {name} {epoch + 1}/{epochs}", unit="batch"):
            x = images[batch].contiguous(memory_format=torch.channels_last)
            loss = factor_loss(model(x), {k: v[batch] for k, v in labels.items()}, weights)
            optimizer_step(loss, model.parameters(), optimizer, max_norm=None)
            schedule.step()
            losses.append(loss.item())
    _recalibrate_batchnorm(model, images[:config.recalibration_images], 256)
    with torch.no_grad():
        logits = torch.cat([model(part.contiguous(memory_format=torch.channels_last)) for part in test[0].split(256)])
    predicted = factor_predictions(logits)
    accuracy = {k: (predicted[k] == test[1][k]).float().mean().item() for k in LABEL_FACTORS}
    accuracy["all three"] = torch.stack([predicted[k] == test[1][k] for k in LABEL_FACTORS]).all(0).float().mean().item()
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return state, {"epochs": epochs, "steps": len(losses), "final_loss": sum(losses[-20:]) / len(losses[-20:]),
                   "held_out_accuracy": accuracy, "seconds": time.perf_counter() - start}


def build(out_dir: Path, config: BackboneConfig) -> dict:
    """``<model>.safetensors`` for every model in ``MODELS``; returns each one's report."""
    from safetensors.torch import save_file

    # another stream than the CIFAR stand-in's (default_rng(seed)): none of its images
    rng = np.random.default_rng([config.seed, 1])
    train, test = pretraining_set(config.n_train, rng), pretraining_set(config.n_test, rng)
    report = {"pretraining_images": config.n_train, "classes": "shape x colour x texture (400)"}
    for name in MODELS:
        state, report[name] = pretrain(name, config, train, test)
        save_file(state, str(out_dir / f"{name}.safetensors"))
    return report
