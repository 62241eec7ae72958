"""Task 3's images: CIFAR-100 (full) or the synthetic CIFAR-100 stand-in (tiny), one code path.

Images are resized to the profile's ``image_size`` (224 in full, as the ImageNet weights expect;
the stand-in's native 32 in tiny) and normalised with ImageNet's channel statistics in both
profiles. No augmentation: features are extracted from the same deterministic views.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from pa5 import hub
from pa5.checks import check_int
from task3.config import Task3Config

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def image_transform(image_size: int):
    """PIL image -> normalised [3, image_size, image_size] tensor."""
    from torchvision import transforms

    check_int("image_size", image_size, 32)
    steps = [transforms.Resize(image_size, antialias=True)] if image_size != 32 else []
    return transforms.Compose(steps + [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def load_split(config: Task3Config, train: bool):
    """The profile's CIFAR-100 split (torchvision dataset: (image, fine label) pairs; the stand-in's
    also carries ``factors``, each image's generating factors)."""
    return hub.cifar100(train, transform=image_transform(config.image_size), ref=config.dataset)


def to_display_image(image: torch.Tensor) -> torch.Tensor:
    """A normalised [3, H, W] image back to pixels in [0, 1], as [H, W, 3] for ``imshow``."""
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    return (image * std + mean).clamp(0, 1).permute(1, 2, 0)


def loader(dataset, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=0,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None)


def first(dataset, n: int):
    """The first ``n`` items of ``dataset`` (all when n is 0 or larger than it) - the stand-in is
    already in random order and CIFAR-100's files too, so this is a fixed, unbiased subset."""
    from torch.utils.data import Subset

    check_int("n", n, 0)  # 0: all
    return dataset if n == 0 or n >= len(dataset) else Subset(dataset, range(n))


def coarse_labels(dataset) -> torch.Tensor:
    """[N] CIFAR-100's coarse labels (20 superclasses; the stand-in's: its shape) of a torchvision
    CIFAR100 split - torchvision reads only the fine ones, so they come from the same pickle."""
    import os
    import pickle

    files = dataset.train_list if dataset.train else dataset.test_list
    with open(os.path.join(dataset.root, dataset.base_folder, files[0][0]), "rb") as handle:
        entry = pickle.load(handle, encoding="latin1")
    return torch.as_tensor(entry["coarse_labels"])
