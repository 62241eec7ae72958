"""Offline stand-ins for the tiny profile: built by the repository itself, deterministic from a seed.

* ``standin:smollm2``   - a ~1M-parameter SmolLM2 look-alike trained on the tiny chat world (lm.py)
* ``standin:mini_orca`` - preference pairs in Intel/orca_dpo_pairs' schema from the tiny world (world.py),
  which the gold judge (``pa5.judge``) knows
* ``standin:cifar100``  - synthetic CIFAR-100 with known generative factors (cifar.py)
* ``standin:imagenet``  - "ImageNet" weights for task 3's ResNet50 and MobileNetV3-Large: pretrained on
  a synthetic set of their own, in torchvision's state-dict layout (backbones.py)

Each is built on first use and cached under ``$PA5_CACHE/standins/<name>-<hash>`` (default
``~/.cache/pa5``), the hash covering the whole build config and the code that builds it (the
package's files that stand-in uses and the pa5 modules they import). ``PA5_STANDIN_SEED`` (default
0) reseeds every stand-in: another seed is another stand-in, cached under its own hash. A build writes
into a temporary folder, records every file's sha256 in ``manifest.json`` last and renames the
folder into place; a folder without a valid manifest (an interrupted build, a corrupted file) is
deleted and rebuilt, never half-loaded. ``python -m pa5.standins build`` builds them explicitly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pa5.paths import cache_dir
from pa5.assets import STANDIN_PREFIX
from pa5.standins import backbones, cifar, lm
from pa5.standins.world import World, WorldConfig

FORMAT_VERSION = 1  # bump when the cache layout changes
ORCA_FIELDS = ("system", "question", "chosen", "rejected")  # Intel/orca_dpo_pairs' columns, nothing more
MANIFEST = "manifest.json"


def build_mini_orca(out_dir: Path, config: WorldConfig) -> dict:
    """``train.jsonl`` and ``test.jsonl`` in orca's schema; returns their statistics."""
    world = World(config)
    report = {}
    for split in ("train", "test"):
        rows = world.preference_pairs(split)
        with open(out_dir / f"{split}.jsonl", "w") as f:
            f.writelines(json.dumps({k: row[k] for k in ORCA_FIELDS}) + "\n" for row in rows)
        report[split] = {
            "pairs": len(rows),
            "mean_words_chosen": sum(len(r["chosen"].split()) for r in rows) / len(rows),
            "mean_words_rejected": sum(len(r["rejected"].split()) for r in rows) / len(rows),
        }
    return report


@dataclass(frozen=True)
class Standin:
    name: str
    config: object  # a frozen dataclass with a ``seed`` field: the whole build recipe
    build: Callable[[Path, object], dict]  # (empty folder, config) -> report
    sources: tuple[str, ...]  # this package's files the build runs (besides __init__.py)


STANDINS = {
    "smollm2": Standin("smollm2", lm.LMConfig(), lm.build, ("lm.py", "world.py")),
    "mini_orca": Standin("mini_orca", WorldConfig(), build_mini_orca, ("world.py",)),
    "cifar100": Standin("cifar100", cifar.CifarConfig(), cifar.build, ("cifar.py",)),
    "imagenet": Standin("imagenet", backbones.BackboneConfig(), backbones.build, ("backbones.py", "cifar.py")),
}


def standin_seed() -> int:
    """``$PA5_STANDIN_SEED`` (default 0): the seed every stand-in is built with."""
    value = os.environ.get("PA5_STANDIN_SEED", "0")
    if not value.isdigit():
        raise ValueError(f"PA5_STANDIN_SEED must be an integer >= 0, got {value!r}")
    return int(value)


def standins_root() -> Path:
    return cache_dir() / "standins"


# The pa5 modules a build runs besides this package: chat formatting, the optimizer step (and the
# checks it makes), the judge (its build report).
_BUILD_MODULES = ("llm.py", "optim.py", "checks.py", "judge.py")


def _source_digest(standin: Standin) -> str:
    """sha256 of the code that builds ``standin``: editing it invalidates that stand-in's cache (and
    only that one's: task 3's builders do not touch the language model's)."""
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for path in [*(here / name for name in ("__init__.py", *standin.sources)), *(here.parent / name for name in _BUILD_MODULES)]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def cache_key(standin: Standin, config) -> str:
    recipe = {"format": FORMAT_VERSION, "name": standin.name, "config": dataclasses.asdict(config),
              "source": _source_digest(standin)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def is_complete(folder: Path) -> bool:
    """True when ``folder`` holds a manifest and exactly the files it lists, with their sha256."""
    try:
        files = json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):  # missing, unreadable or not a JSON object
        return False
    if not isinstance(files, dict) or not all(isinstance(h, str) for h in files.values()):
        return False
    return _files(folder) == sorted(files) and all(_sha256(folder / n) == h for n, h in files.items())


@contextlib.contextmanager
def _locked(lock_path: Path):
    """One builder per stand-in at a time (a notebook kernel and pytest may ask together)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _recipe(name: str, config, root: Path | None) -> tuple[Standin, object, Path]:
    """(the stand-in, its build config, its cache folder) for ``name`` with or without ``standin:``."""
    name = name.removeprefix(STANDIN_PREFIX)
    if name not in STANDINS:
        raise ValueError(f"stand-in {name!r} is unknown; allowed: {', '.join(STANDINS)}")
    standin = STANDINS[name]
    config = config if config is not None else dataclasses.replace(standin.config, seed=standin_seed())
    root = Path(root) if root is not None else standins_root()
    return standin, config, root / f"{name}-{cache_key(standin, config)}"


def is_cached(name: str, config=None, root: Path | None = None) -> bool:
    """Whether ``get`` would load stand-in ``name`` from the cache rather than build it."""
    return is_complete(_recipe(name, config, root)[2])


def get(name: str, config=None, root: Path | None = None) -> Path:
    """The folder of stand-in ``name`` (``smollm2`` | ``mini_orca`` | ``cifar100`` | ``imagenet``), built if
    needed; ``config`` None: the default recipe with ``PA5_STANDIN_SEED``."""
    standin, config, folder = _recipe(name, config, root)
    with _locked(folder.with_suffix(".lock")):
        if is_complete(folder):
            return folder
        shutil.rmtree(folder, ignore_errors=True)  # partial or corrupted: rebuild from scratch
        for leftover in folder.parent.glob(f".{folder.name}.building-*"):  # interrupted builds (we hold the lock)
            shutil.rmtree(leftover, ignore_errors=True)
        staging = folder.with_name(f".{folder.name}.building-{os.getpid()}")
        staging.mkdir(parents=True)
        report = standin.build(staging, config)
        files = {n: _sha256(staging / n) for n in _files(staging)}
        manifest = {"name": standin.name, "config": dataclasses.asdict(config), "report": report, "files": files}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
        staging.rename(folder)
    return folder


def report(folder: Path) -> dict:
    """The build report stored in a stand-in's manifest (sizes, measured quality, build time)."""
    return json.loads((Path(folder) / MANIFEST).read_text())["report"]
