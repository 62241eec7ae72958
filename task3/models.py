"""Task 3's vision models: ResNet50 and MobileNetV3-Large with 100-class heads, fine-tuning, and
pooled features read with forward hooks.

* Starting weights (``config.weights``), loaded by one function, ``pa5.hub.imagenet_state_dict``: full,
  ImageNet's (``pa5.assets.IMAGENET_WEIGHTS``, hash-checked, ``weights_only=True``); tiny, the
  stand-in's "ImageNet" weights (``standin:imagenet``, safetensors in torchvision's layout, pretrained
  offline on synthetic shapes, ``pa5.standins.backbones``); None, random init (the untrained control).
  The head is replaced, and the network fine-tuned on the profile's CIFAR-100.
* MobileNetV3 uses BatchNorm momentum 0.01: after a short fine-tune its running statistics are far
  from the data's and eval-mode features collapse to constants. ``recalibrate_batchnorm`` resets
  them to a cumulative average over training images (no weight changes) before evaluation.
* Features: ResNet50 ``avgpool`` (2048-d, flattened) and MobileNetV3-Large ``classifier[1]`` (the
  Hardswish after the 960 -> 1280 projection; 1280-d). ``classifier[2]`` is an in-place Dropout, so
  the hooked output is cloned.
* Normalisation per model, fitted on the train split and reused on test: the paper's scalar
  standardisation, or (both profiles' choice, a deviation from the paper) unit norm + centring first.

Shapes: N images, D features.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pa5.assets import STANDIN_PREFIX
from pa5.checks import check_choice
from pa5.device import autocast, grad_scaler, memory_stage, place
from pa5.optim import optimizer_step
from task3.config import NORMALISATIONS, FinetuneConfig, Task3Config

# one ResNet50 fine-tune step at the full profile's sizes (an upper bound measured on the CPU, task3/README.md):
# what an out-of-memory message quotes
FINETUNE_PEAK_GIB = 6.1
FEATURE_LAYERS = {"resnet50": ("avgpool", 2048), "mobilenet_v3_large": ("classifier.1", 1280)}


def feature_layer(name: str) -> tuple[str, int]:
    """(hooked submodule, feature width) of network ``name``; ValueError naming the allowed ones."""
    check_choice("name", name, FEATURE_LAYERS)
    return FEATURE_LAYERS[name]


def build_model(name: str, weights: str | None, num_classes: int = 100) -> torch.nn.Module:
    """``name`` with a ``num_classes`` head, starting from ``weights`` (a ``pa5.hub.imagenet_state_dict``
    reference: ImageNet's, hash-checked, or the stand-in's - loaded the same way, strictly) or random
    init (None)."""
    import torchvision

    feature_layer(name)
    model = getattr(torchvision.models, name)(weights=None)
    if weights is not None:
        from pa5 import hub
        model.load_state_dict(hub.imagenet_state_dict(weights))
    if name == "resnet50":
        model.fc = torch.nn.Linear(model.fc.in_features, num_classes)
    else:
        model.classifier[3] = torch.nn.Linear(model.classifier[3].in_features, num_classes)
    return model


@torch.no_grad()
def accuracy(model, loader, device) -> float:
    model.eval()
    correct = total = 0
    for images, labels in loader:
        with autocast(device):
            logits = model(images.to(device))
        correct += (logits.argmax(-1).cpu() == labels).sum().item()
        total += len(labels)
    return correct / total


@torch.no_grad()
def recalibrate_batchnorm(model, loader, device, max_images: int = 2000) -> None:
    """Replace every BatchNorm's running statistics by their cumulative average over up to
    ``max_images`` training images (momentum None), weights untouched."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum) for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    seen = 0
    for images, _ in loader:
        with autocast(device):
            model(images.to(device))
        seen += len(images)
        if seen >= max_images:
            break
    for m, momentum in saved:
        m.momentum = momentum
    model.eval()


def finetune_step(model, images: torch.Tensor, labels: torch.Tensor, optimizer, scaler, device) -> tuple[float, float]:
    """One cross-entropy step on a batch (images [B, 3, H, W], labels [B]); (loss, gradient norm)."""
    images, labels = images.to(device), labels.to(device)
    with autocast(device):
        loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
    return loss.item(), optimizer_step(loss, model.parameters(), optimizer, max_norm=None, scaler=scaler)


def finetune(model, train_loader, test_loader, config: FinetuneConfig, device) -> list[dict]:
    """Adam, cross-entropy, no gradient clipping; forward passes under the precision policy
    (``pa5.device``: bf16, or fp16 with a GradScaler, on CUDA) and channels_last on CUDA; BatchNorm
    recalibrated and test accuracy measured after every epoch. ``config.epochs`` 0: no step, the
    BatchNorm statistics recalibrated only (the untrained control)."""
    model = place(model, device)
    if torch.device(device).type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if config.epochs == 0:  # the untrained control: only the BatchNorm statistics are measured on the images
        recalibrate_batchnorm(model, train_loader, device)
        return []
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    scaler = grad_scaler(device)
    history = []
    for epoch in range(config.epochs):
        model.train()
        losses, grad_norms = [], []
        for images, labels in (bar := tqdm(train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch")):
            with memory_stage("fine-tuning", "config.finetune.batch_size", FINETUNE_PEAK_GIB):
                loss, grad_norm = finetune_step(model, images, labels, optimizer, scaler, device)
            losses.append(loss), grad_norms.append(grad_norm)
            bar.set_postfix(loss=f"{loss:.3f}")
        recalibrate_batchnorm(model, train_loader, device)
        history.append({"epoch": epoch + 1, "train_loss": sum(losses) / len(losses),
                        "grad_norm": sum(grad_norms) / len(grad_norms),
                        "test_accuracy": accuracy(model, test_loader, device)})
    return history


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, key: str) -> None:
    """safetensors file at ``path`` with ``key`` in its metadata, written atomically (a temporary file,
    then a rename): an interrupted run never leaves a half-written file under the real name."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(partial), metadata={"key": key})
    os.replace(partial, path)


def load_tensors(path: Path, key: str) -> dict[str, torch.Tensor] | None:
    """The tensors saved at ``path`` under ``key``; None when there is no such file, it is not a readable
    safetensors file (it is then deleted, to be rebuilt) or it was made from other inputs."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as stored:
            if (stored.metadata() or {}).get("key") != key:
                return None
            return {name: stored.get_tensor(name) for name in stored.keys()}
    except Exception:  # truncated or corrupt: safetensors raises its own error types
        path.unlink()
        return None


def cache_key(config: Task3Config, name: str, part: str, seed: int) -> str:
    """A short hash of everything that produced a cached file: ``part`` "checkpoint" (the network, its
    starting weights, the data - a stand-in's with its ``PA5_STANDIN_SEED`` -, image size, fine-tune
    settings, seed) or "features" (the same plus
    which images are read). The feature normalisation is applied after loading, so it is not in it."""
    from pa5.standins import standin_seed

    def seeded(ref: str | None) -> str | None:  # another stand-in seed is other weights, other images
        return f"{ref}@seed{standin_seed()}" if ref is not None and ref.startswith(STANDIN_PREFIX) else ref

    fields = {"model": name, "weights": seeded(config.weights_ref(name)) or "random-init",
              "dataset": seeded(config.dataset), "image_size": config.image_size,
              "finetune": dataclasses.asdict(config.finetune),
              "seed": seed, "format": 1}
    if part == "features":
        fields |= {"n_train_images": config.n_train_images, "n_test_images": config.n_test_images}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@torch.no_grad()
def extract_features(model, name: str, loader, device) -> torch.Tensor:
    """[N, D] pooled features of every image in ``loader`` (eval mode, in order), via a forward hook."""
    layer_name, dim = feature_layer(name)
    captured = []
    hook = model.get_submodule(layer_name).register_forward_hook(
        lambda module, inputs, output: captured.append(output.detach().flatten(1).float().cpu().clone()))
    model.eval()
    try:
        for images, _ in tqdm(loader, desc=f"features {name}", unit="batch"):
            with autocast(device):
                model(images.to(device))
    finally:
        hook.remove()
    features = torch.cat(captured)
    if features.shape[1] != dim:
        raise RuntimeError(f"{name}.{layer_name} gave {features.shape[1]} features, expected {dim}")
    return features


class Standardizer:
    """Per-model feature normalisation, fitted on the train split and reused unchanged on test.

    "paper": x -> (x - m) / s with ONE scalar mean m and std s (Thasarathan et al.).
    "l2_center" (a deviation, as the original course): each image's feature vector scaled to unit
    norm, then each feature centred by its train mean, then divided by one scalar std. Pooled CNN
    features are dominated by one direction - the per-image feature norm and per-feature offsets
    (a scalar standardisation keeps both) - which SAEs then spend their concepts on.
    """

    def __init__(self, train_features: torch.Tensor, mode: str = "paper"):
        check_choice("mode", mode, NORMALISATIONS)
        self.mode = mode
        x = self._unit(train_features)
        self.mean = x.mean(dim=0) if mode == "l2_center" else x.mean()
        self.std = (x - self.mean).std().item()
        if not self.std > 0:
            raise ValueError("train_features are constant: nothing to standardise (collapsed features?)")

    def _unit(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(x, dim=1) if self.mode == "l2_center" else x

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(x.device) if torch.is_tensor(self.mean) else self.mean
        return (self._unit(x) - mean) / self.std


def prepare_features(config: Task3Config, name: str, folder: Path, device, seed: int = 0) -> dict:
    """Fine-tune ``name`` (or load its checkpoint from ``folder``) and extract its features of the
    profile's train / test images (or load them from ``folder``) - cached under names that carry a
    hash of their inputs (:func:`cache_key`), so another profile or setting never reuses them - normalised by
    ``config.feature_normalisation`` (see :class:`Standardizer`).

    Returns {"train": [N, D], "test": [N', D] normalised features, "raw_train", "raw_test" (as
    extracted), "normaliser" (fitted on train), "accuracy": test accuracy, "history": fine-tuning log
    (empty when loaded), "model"}.
    """
    from task3 import data

    folder = Path(folder)
    checkpoint_key, features_key = cache_key(config, name, "checkpoint", seed), cache_key(config, name, "features", seed)
    checkpoint = folder / f"{name}-{checkpoint_key}.safetensors"
    cache = folder / f"{name}-{features_key}_features.safetensors"
    train_set, test_set = data.load_split(config, True), data.load_split(config, False)
    test_loader = data.loader(data.first(test_set, config.n_test_images), 256, shuffle=False)
    torch.manual_seed(seed)
    model = place(build_model(name, config.weights_ref(name)), device)
    history = []
    weights = load_tensors(checkpoint, checkpoint_key)
    if weights is not None:
        model.load_state_dict(weights)
        model.eval()
    else:
        tune_loader = data.loader(data.first(train_set, config.finetune.images), config.finetune.batch_size, True, seed)
        history = finetune(model, tune_loader, test_loader, config.finetune, device)
        save_tensors(model.state_dict(), checkpoint, checkpoint_key)
    stored = load_tensors(cache, features_key)
    if stored is not None:
        train, test, test_accuracy = stored["train"], stored["test"], stored["accuracy"].item()
    else:
        train = extract_features(model, name, data.loader(data.first(train_set, config.n_train_images), 256, False),
                                 device)
        test = extract_features(model, name, test_loader, device)
        test_accuracy = accuracy(model, test_loader, device)
        save_tensors({"train": train, "test": test, "accuracy": torch.tensor(test_accuracy)}, cache, features_key)
    standardize = Standardizer(train, config.feature_normalisation)
    return {"train": standardize(train), "test": standardize(test), "accuracy": test_accuracy,
            "history": history, "model": model, "normaliser": standardize, "raw_train": train, "raw_test": test}
