"""The one place that loads real assets (full profile): hub models and data, CIFAR-100, ImageNet weights.

Every failure to fetch an asset becomes one :class:`AssetUnavailableError` that names the asset and
says how to proceed (tiny profile, or pre-download with ``python -m pa5.hub download``). The full
profile calls :func:`ensure_available` first, which fails in seconds instead of after the hub
client's retries (~25 s per file when the network is down).

Pre-download on a machine with internet, then copy the folders and set the same variables::

    HF_HOME=/path/hf TORCH_HOME=/path/torch PA5_DATA=/path/data python -m pa5.hub download
"""
from __future__ import annotations

import argparse
import os
import urllib.request
from pathlib import Path

from pa5.assets import ASSETS, CIFAR100, STANDIN_PREFIX, asset
from pa5.paths import cache_dir


class AssetUnavailableError(RuntimeError):
    """A full-profile asset could not be loaded from the network or the local caches."""


_CACHE_VARIABLE = {"hf-causal-lm": "HF_HOME", "hf-classifier": "HF_HOME", "hf-dataset": "HF_HOME",
                   "torchvision-dataset": "PA5_DATA", "torchvision-weights": "TORCH_HOME"}


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set: then nothing (hub or torchvision) touches the network."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def data_dir() -> Path:
    """Where torchvision datasets are stored: ``$PA5_DATA`` or ``<pa5 cache>/data``."""
    return Path(os.environ.get("PA5_DATA", cache_dir() / "data")).expanduser()


def unavailable(ref: str, cause: BaseException | str) -> AssetUnavailableError:
    """The error for an asset that cannot be fetched: names it and says how to proceed."""
    a = asset(ref)
    var = _CACHE_VARIABLE[a.kind]
    return AssetUnavailableError(
        f"Cannot load {a.ref} ({a.what}): {cause}\n"
        f"The full profile needs it from the internet{' (HF_HUB_OFFLINE is set)' if offline() else ''}. "
        f"To proceed, either\n"
        f"  * use the offline stand-ins: PA5_PROFILE=tiny (or PROFILE = \"tiny\" in the notebook's "
        f"first cell), or\n"
        f"  * pre-download it on a machine with internet:\n"
        f"      {var}=/path/to/cache python -m pa5.hub download {a.ref}\n"
        f"    copy /path/to/cache here and set {var} to it (plus HF_HUB_OFFLINE=1 to stay offline)."
    )


# ---------------------------------------------------------------- Hugging Face


def from_pretrained(auto_class, ref: str, **kwargs):
    """``auto_class.from_pretrained(ref)`` for a hub asset, with the clear error on failure.

    A ``standin:`` reference goes through the same call on the stand-in's local folder. Never
    passes ``trust_remote_code``: every model here is a stock transformers architecture.
    """
    if ref.startswith(STANDIN_PREFIX):
        return auto_class.from_pretrained(_standin(ref), **kwargs)
    asset(ref)
    try:
        return auto_class.from_pretrained(ref, **kwargs)
    # OSError: no network and no cache; ValueError / ImportError: a tokenizer that needs a package
    # this environment lacks (a sentencepiece-only repo without sentencepiece, say)
    except (OSError, ValueError, ImportError) as e:
        raise unavailable(ref, e) from e


def load_model(auto_class, ref: str, device, **kwargs):
    """A model of ``ref`` in float32 (whatever dtype it was saved in), placed on ``device`` and in
    eval mode: the one way every task loads a pretrained model (see :mod:`pa5.device`)."""
    import torch

    from pa5.device import place

    return place(from_pretrained(auto_class, ref, dtype=torch.float32, **kwargs), device).eval()


def load_hf_dataset(ref: str, **kwargs):
    """``datasets.load_dataset(ref)`` for a hub dataset, with the clear error on failure.

    ``standin:mini_orca`` loads its train / test JSON-lines files through the same function.
    """
    import datasets

    if ref.startswith(STANDIN_PREFIX):
        folder = _standin(ref)
        return datasets.load_dataset("json", data_files={s: str(folder / f"{s}.jsonl") for s in ("train", "test")},
                                     **kwargs)
    asset(ref)
    try:
        return datasets.load_dataset(ref, **kwargs)
    except (OSError, datasets.exceptions.DatasetNotFoundError) as e:
        raise unavailable(ref, e) from e


def _standin(ref: str) -> Path:
    from pa5 import standins

    return standins.get(ref)


# ---------------------------------------------------------------- torchvision


def cifar100(train: bool, transform=None, root: str | Path | None = None, ref: str = CIFAR100):
    """torchvision's ``CIFAR100`` (real data, md5-checked), downloaded unless offline.

    ``ref="standin:cifar100"`` reads the synthetic files through the same class (md5 check skipped).
    """
    if ref.startswith(STANDIN_PREFIX):
        from pa5.standins.cifar import SyntheticCIFAR100

        return SyntheticCIFAR100(_standin(ref), train=train, transform=transform)
    asset(ref)
    root = Path(root) if root is not None else data_dir()
    from pa5.profile import rehearsal

    # a rehearsal's fake CIFAR-100 (pa5.fake_assets) has the real format but cannot match its md5s
    dataset_class = _cifar100_class(check_md5=not rehearsal())
    try:
        return dataset_class(root, train=train, transform=transform, download=not offline())
    except (OSError, RuntimeError) as e:  # RuntimeError: "Dataset not found or corrupted"
        raise unavailable(CIFAR100, e) from e


def _cifar100_class(check_md5: bool):
    import torchvision

    if check_md5:
        return torchvision.datasets.CIFAR100

    real = torchvision.datasets.CIFAR100

    class UncheckedCIFAR100(real):  # md5 None: torchvision then only checks that each file exists
        train_list = [[name, None] for name, _ in real.train_list]
        test_list = [[name, None] for name, _ in real.test_list]
        meta = {**real.meta, "md5": None}

    return UncheckedCIFAR100


def _weights(ref: str):
    import torchvision

    asset(ref)
    return torchvision.models.get_weight(ref)


def _weights_file(ref: str) -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(_weights(ref).url).name


def imagenet_state_dict(ref: str) -> dict:
    """The ImageNet state dict of e.g. ``"ResNet50_Weights.IMAGENET1K_V2"`` (hash-checked,
    loaded with ``weights_only=True``), downloaded into ``$TORCH_HOME`` unless offline.

    ``ref="standin:imagenet/<network>"`` (``pa5.assets.imagenet_weights``): the stand-in's weights of
    that network, the same keys and shapes, from a safetensors file (``pa5.standins.backbones``)."""
    import torch

    if ref.startswith(STANDIN_PREFIX):
        from safetensors.torch import load_file

        standin, _, network = ref.partition("/")
        path = _standin(standin) / f"{network}.safetensors"
        if not path.exists():
            raise ValueError(f"weights {ref!r}: the stand-in has no network {network!r} ({path})")
        return load_file(str(path))

    if offline() and not _weights_file(ref).exists():
        raise unavailable(ref, f"{_weights_file(ref)} is not cached")
    try:
        return torch.hub.load_state_dict_from_url(_weights(ref).url, progress=True, check_hash=True,
                                                  weights_only=True)
    except OSError as e:  # urllib's URLError is an OSError
        raise unavailable(ref, e) from e


# ---------------------------------------------------------------- preflight and download


def ensure_available(refs) -> None:
    """Fail in seconds, with the clear error, if any of ``refs`` cannot be fetched or found cached.

    Cheap: hub assets fetch one small file (or find it cached); torchvision assets check the cache,
    else send one HEAD request.
    """
    import huggingface_hub

    for ref in refs:
        a = asset(ref)
        try:
            if a.kind.startswith("hf-"):
                is_data = a.kind == "hf-dataset"
                huggingface_hub.snapshot_download(ref, repo_type="dataset" if is_data else "model",
                                                  allow_patterns=["README.md" if is_data else "config.json"])
            else:
                path = data_dir() / "cifar-100-python" if ref == CIFAR100 else _weights_file(ref)
                if path.exists():
                    continue
                if offline():
                    raise FileNotFoundError(f"{path} is not cached")
                url = torchvision_url(ref)
                urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10).close()
        except OSError as e:  # huggingface_hub's errors and urllib's URLError are OSErrors
            raise unavailable(ref, e) from e


def torchvision_url(ref: str) -> str:
    import torchvision

    if ref == CIFAR100:
        return torchvision.datasets.CIFAR100.url
    return _weights(ref).url


def download(refs) -> None:
    """Fetch ``refs`` into the local caches exactly as the loaders above will read them."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    for ref in refs:
        a = asset(ref)
        print(f"downloading {ref} ({a.what})", flush=True)
        if a.kind in ("hf-causal-lm", "hf-classifier"):
            from_pretrained(AutoTokenizer, ref)
            from_pretrained(AutoModelForCausalLM if a.kind == "hf-causal-lm" else AutoModelForSequenceClassification, ref)
        elif a.kind == "hf-dataset":
            load_hf_dataset(ref)
        elif a.kind == "torchvision-dataset":
            cifar100(train=True)
            cifar100(train=False)
        else:
            imagenet_state_dict(ref)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pa5.hub", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    get = sub.add_parser("download", help="pre-download full-profile assets into the local caches")
    get.add_argument("refs", nargs="*", metavar="ASSET", help=f"any of: {', '.join(ASSETS)} (default: all)")
    args = parser.parse_args(argv)
    refs = args.refs or list(ASSETS)
    for ref in refs:
        asset(ref)  # unknown names fail before anything is downloaded
    download(refs)


if __name__ == "__main__":
    main()
