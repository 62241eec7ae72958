"""Synthetic CIFAR-100: 32x32 RGB images of 10 shapes x 10 colours with known nuisance factors,
written in CIFAR-100's on-disk format and read through torchvision's ``CIFAR100`` class.

Class ``c`` = ``shape * 10 + colour`` (fine label); the coarse label is the shape. Nuisance factors:
background texture (flat, noise, stripes, checker) and its grey level, position and scale of the
shape, and a small colour jitter. Every image's factors are stored in ``factors.npz`` so concept
purity can be measured against them.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torchvision

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring", "star", "crescent", "ellipse", "semicircle")
COLOURS = {"red": (220, 40, 40), "orange": (240, 140, 20), "yellow": (235, 220, 40), "lime": (150, 230, 40),
           "green": (30, 140, 60), "cyan": (40, 210, 220), "blue": (40, 70, 220), "purple": (130, 50, 190),
           "magenta": (230, 60, 180), "brown": (120, 75, 35)}
TEXTURES = ("flat", "noise", "stripes", "checker")
FACTORS = ("shape", "colour", "texture", "background", "x", "y", "scale")
SIZE = 32


@dataclass(frozen=True)
class CifarConfig:
    seed: int = 0
    n_train: int = 10_000  # 100 per class
    n_test: int = 2_000  # 20 per class


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of ``shape`` on coordinates normalised to the shape's box ([-1, 1]^2, v downwards)."""
    r, theta = np.hypot(u, v), np.arctan2(v, u)
    if shape == "circle":
        return r <= 1
    if shape == "square":
        return np.maximum(abs(u), abs(v)) <= 0.8
    if shape == "triangle":
        return (v <= 0.8) & (abs(u) <= (v + 1) * 0.55)
    if shape == "diamond":
        return abs(u) + abs(v) <= 1
    if shape == "cross":
        return ((abs(u) <= 0.3) & (abs(v) <= 0.95)) | ((abs(v) <= 0.3) & (abs(u) <= 0.95))
    if shape == "ring":
        return (r <= 1) & (r >= 0.55)
    if shape == "star":
        return r <= 0.5 + 0.45 * np.cos(5 * (theta + np.pi / 2))
    if shape == "crescent":
        return (r <= 1) & (np.hypot(u - 0.45, v) > 0.8)
    if shape == "ellipse":
        return (u / 1.0) ** 2 + (v / 0.5) ** 2 <= 1
    if shape == "semicircle":
        return (r <= 1) & (v >= -0.1)
    raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")


def render(factors: dict, rng: np.random.Generator) -> np.ndarray:
    """One uint8 image [32, 32, 3] from its factors (texture noise drawn from ``rng``)."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    grey = factors["background"]
    texture = TEXTURES[factors["texture"]]
    if texture == "flat":
        bg = np.full((SIZE, SIZE), grey, np.float32)
    elif texture == "noise":
        bg = grey + rng.normal(0, 18, (SIZE, SIZE))
    elif texture == "stripes":
        bg = grey + 22 * np.sign(np.sin(xs * np.pi / 3 + ys * np.pi / 5))
    else:
        bg = grey + 22 * ((xs // 4 + ys // 4) % 2 * 2 - 1)
    image = np.repeat(bg[..., None], 3, axis=2)
    u = (xs - factors["x"]) / factors["scale"]
    v = (ys - factors["y"]) / factors["scale"]
    mask = _shape_mask(SHAPES[factors["shape"]], u, v)
    colour = np.array(list(COLOURS.values())[factors["colour"]], np.float32) + rng.normal(0, 10, 3)
    image[mask] = colour
    return np.clip(image, 0, 255).astype(np.uint8)


def make_split(n: int, rng: np.random.Generator, label_factors: tuple[str, ...] = ("shape", "colour"),
               ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``n`` images balanced over every combination of ``label_factors`` (CIFAR-100's classes: shape x
    colour; the pretraining set's: shape x colour x texture) in random order, the other factors drawn
    at random: (data uint8 [n, 3072] in R,G,B planes, factors)."""
    sizes = {"shape": len(SHAPES), "colour": len(COLOURS), "texture": len(TEXTURES)}
    unknown = set(label_factors) - set(sizes)
    if unknown:
        raise ValueError(f"label_factors must be among {tuple(sizes)}, got {sorted(unknown)}")
    combination = rng.permutation(np.arange(n) % int(np.prod([sizes[f] for f in label_factors])))
    factors = {}
    for name in reversed(label_factors):  # the last factor varies fastest, as in class = shape * 10 + colour
        factors[name], combination = combination % sizes[name], combination // sizes[name]
    for name in sizes:
        if name not in label_factors:
            factors[name] = rng.integers(0, sizes[name], n)
    factors |= {"background": rng.integers(60, 200, n), "scale": rng.uniform(6.0, 11.0, n).astype(np.float32)}
    margin = factors["scale"] * 0.8
    factors["x"] = rng.uniform(margin, SIZE - margin).astype(np.float32)
    factors["y"] = rng.uniform(margin, SIZE - margin).astype(np.float32)
    images = np.stack([render({k: v[i] for k, v in factors.items()}, rng) for i in range(n)])
    return images.transpose(0, 3, 1, 2).reshape(n, 3 * SIZE * SIZE), factors


def build(out_dir: Path, config: CifarConfig) -> dict:
    """Write ``cifar-100-python/{train,test,meta}`` and ``factors.npz`` into ``out_dir``."""
    rng = np.random.default_rng(config.seed)
    folder = out_dir / SyntheticCIFAR100.base_folder
    folder.mkdir(parents=True)
    all_factors = {}
    for split, n in (("train", config.n_train), ("test", config.n_test)):
        data, factors = make_split(n, rng)
        entry = {"filenames": [f"{split}_{i:05d}.png" for i in range(n)], "batch_label": f"synthetic {split}",
                 "fine_labels": (factors["shape"] * 10 + factors["colour"]).tolist(),
                 "coarse_labels": factors["shape"].tolist(), "data": data}
        with open(folder / split, "wb") as f:
            pickle.dump(entry, f, protocol=4)
        all_factors.update({f"{split}_{k}": v for k, v in factors.items()})
    meta = {"fine_label_names": [f"{c}_{s}" for s in SHAPES for c in COLOURS], "coarse_label_names": list(SHAPES)}
    with open(folder / "meta", "wb") as f:
        pickle.dump(meta, f, protocol=4)
    np.savez(out_dir / "factors.npz", **all_factors)
    return {"n_train": config.n_train, "n_test": config.n_test, "classes": 100}


class SyntheticCIFAR100(torchvision.datasets.CIFAR100):
    """torchvision's CIFAR100 reading the synthetic files: only the md5 check is skipped (the real
    class always verifies the real archive's checksums). ``factors`` holds each image's factors."""

    train_list = [["train", None]]
    test_list = [["test", None]]
    meta = {"filename": "meta", "key": "fine_label_names", "md5": None}

    def __init__(self, root, train: bool = True, transform=None, target_transform=None):
        super().__init__(root, train=train, transform=transform, target_transform=target_transform, download=False)
        split = "train" if train else "test"
        with np.load(Path(root) / "factors.npz") as npz:
            self.factors = {name: npz[f"{split}_{name}"] for name in FACTORS}
