"""Seconds per epoch: one overcomplete TopKSAE trained with ``train_sae`` vs our Universal SAE over
two models, on the same data and sizes.

    python bench/bench_usae.py [--repeats 3] [--images 5000]

Data: random standardised features of ResNet50's and MobileNetV3-Large's widths (2048, 1280) - the
cost of an epoch does not depend on their values. Sizes: the tiny profile's (1024 concepts, k 16,
batch 256). The SAE baseline is trained on the wider model (2048-d). Our USAE epoch follows the paper
(one model encodes per batch, every model decodes) without its per-epoch monitoring (measured
separately). Runs alternate (SAE, USAE, ...) in one process; the best of ``--repeats`` is kept.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from pa5 import task_profile
from task3 import usae as U


def sae_epoch(features: torch.Tensor, config) -> float:
    from overcomplete.sae import train_sae
    from torch.utils.data import DataLoader, TensorDataset

    sae = U.make_sae(features.shape[1], config.nb_concepts, config.top_k)
    loader = DataLoader(TensorDataset(features), batch_size=config.batch_size, shuffle=True, drop_last=True)
    optimizer = torch.optim.AdamW(sae.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    started = time.perf_counter()
    train_sae(sae, loader, lambda x, x_hat, *_: ((x - x_hat) ** 2).mean(), optimizer, nb_epochs=1, monitoring=0)
    return time.perf_counter() - started


def usae_epoch(features: dict[str, torch.Tensor], config, monitor_rows: int) -> float:
    usae = U.UniversalSAE({k: v.shape[1] for k, v in features.items()}, config.nb_concepts, config.top_k)
    started = time.perf_counter()
    U.train_usae(usae, features, dataclasses.replace(config, epochs=1), monitor_rows=monitor_rows)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=5000)
    args = parser.parse_args()
    config = task_profile("task3", "tiny").sae
    torch.manual_seed(0)
    features = {"resnet50": torch.randn(args.images, 2048), "mobilenet_v3_large": torch.randn(args.images, 1280)}
    best = {"sae": float("inf"), "usae": float("inf"), "usae_monitored": float("inf")}
    for _ in range(args.repeats):
        best["sae"] = min(best["sae"], sae_epoch(features["resnet50"], config))
        # monitor_rows=2: the per-epoch R^2 / dead-concept log on 2 rows, i.e. (almost) none
        best["usae"] = min(best["usae"], usae_epoch(features, config, monitor_rows=2))
        best["usae_monitored"] = min(best["usae_monitored"], usae_epoch(features, config, monitor_rows=2000))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.images} images, "
          f"{config.nb_concepts} concepts, k {config.top_k}, batch {config.batch_size}, best of {args.repeats}\n")
    print("| trainer | s/epoch | / one SAE |\n|---|---|---|")
    print(f"| overcomplete TopKSAE + train_sae (2048-d) | {best['sae']:.2f} | 1.00x |")
    print(f"| our USAE, 2 models (paper schedule) | {best['usae']:.2f} | {best['usae'] / best['sae']:.2f}x |")
    print(f"| our USAE, 2 models, with the per-epoch log on 2,000 rows | {best['usae_monitored']:.2f} | "
          f"{best['usae_monitored'] / best['sae']:.2f}x |")


if __name__ == "__main__":
    main()
