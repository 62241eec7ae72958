"""Task 3's caches: named by a hash of their inputs, written atomically, rebuilt when corrupt."""
import torch

from pa5 import task_profile
from task3 import models


def test_another_profile_or_setting_never_reuses_a_cached_file():
    tiny, full = task_profile("task3", "tiny"), task_profile("task3", "full")
    for name in tiny.models:
        for part in ("checkpoint", "features"):
            assert models.cache_key(tiny, name, part, 0) != models.cache_key(full, name, part, 0), \
                "a full run on a tiny run's folder must not load the tiny checkpoint or features"
            assert models.cache_key(tiny, name, part, 0) != models.cache_key(tiny, name, part, 1), "the seed counts"
    from dataclasses import replace
    longer = replace(tiny, finetune=replace(tiny.finetune, epochs=tiny.finetune.epochs + 1))
    assert models.cache_key(longer, "resnet50", "checkpoint", 0) != models.cache_key(tiny, "resnet50", "checkpoint", 0)
    more_images = replace(tiny, n_train_images=tiny.n_train_images + 1)
    assert models.cache_key(more_images, "resnet50", "checkpoint", 0) == models.cache_key(tiny, "resnet50", "checkpoint", 0), \
        "the fine-tuned checkpoint does not depend on how many images' features are read"
    assert models.cache_key(more_images, "resnet50", "features", 0) != models.cache_key(tiny, "resnet50", "features", 0)


def test_another_standin_seed_never_reuses_a_cached_file(monkeypatch):
    tiny = task_profile("task3", "tiny")

    def keys(standin_seed: str) -> dict[str, str]:  # the run's own PA5_STANDIN_SEED may be any of them
        monkeypatch.setenv("PA5_STANDIN_SEED", standin_seed)
        return {part: models.cache_key(tiny.untrained(), "resnet50", part, 0) for part in ("checkpoint", "features")}

    zero, one = keys("0"), keys("1")
    for part in zero:
        assert zero[part] != one[part], "even random-init networks read other images under another stand-in seed"


def test_cache_files_are_atomic_keyed_and_rebuilt_when_corrupt(tmp_path):
    path = tmp_path / "cache" / "x.safetensors"
    tensors = {"train": torch.randn(3, 4), "accuracy": torch.tensor(0.5)}
    models.save_tensors(tensors, path, key="abc")
    assert [p.name for p in path.parent.iterdir()] == ["x.safetensors"], "no temporary file is left behind"
    loaded = models.load_tensors(path, "abc")
    assert torch.equal(loaded["train"], tensors["train"])
    assert models.load_tensors(path, "other") is None, "a file made from other inputs is not reused"
    path.write_bytes(path.read_bytes()[:40])  # an interrupted copy
    assert models.load_tensors(path, "abc") is None and not path.exists(), "a corrupt file is deleted, to be rebuilt"
    assert models.load_tensors(tmp_path / "missing.safetensors", "abc") is None
