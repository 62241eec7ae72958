"""Task 3: activation maximisation, top images and purity on small hand-made models."""
import pytest
import torch

from task3 import usae as U, visualize as V
from task3.config import MaximisationConfig
from task3.models import Standardizer


class TinyNet(torch.nn.Module):
    """A stand-in vision model whose 'avgpool' layer gives 6 features (hooked like ResNet50's)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.avgpool = torch.nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return self.avgpool(torch.relu(self.conv(x))).flatten(1)


@pytest.fixture()
def setup(monkeypatch):
    monkeypatch.setitem(V.FEATURE_LAYERS, "tiny_a", ("avgpool", 6))
    monkeypatch.setitem(V.FEATURE_LAYERS, "tiny_b", ("avgpool", 6))
    torch.manual_seed(0)
    models = {"tiny_a": TinyNet().eval(), "tiny_b": TinyNet().eval()}
    usae = U.UniversalSAE({"tiny_a": 6, "tiny_b": 6}, nb_concepts=8, top_k=2)
    features = torch.rand(32, 6)
    usae.train()
    usae.encode("tiny_a", features), usae.encode("tiny_b", features)  # BatchNorm statistics
    usae.eval()
    normalisers = {name: Standardizer(features, "paper") for name in models}
    return models, usae, normalisers


def test_fourier_image_is_in_range_with_the_expected_shape():
    image = V.FourierImage(16, seed=1)()
    assert image.shape == (1, 3, 16, 16)
    assert image.min() >= 0 and image.max() <= 1
    with pytest.raises(ValueError, match="size"):
        V.FourierImage(4)


@pytest.mark.points(2)
def test_maximisation_increases_the_pre_topk_code(setup):
    models, usae, normalisers = setup
    objective = V.concept_objective(models["tiny_a"], "tiny_a", normalisers["tiny_a"], usae, concept=3)
    image, history = V.maximise(objective, size=16, config=MaximisationConfig(steps=40, lr=0.1))
    assert image.shape == (3, 16, 16) and 0 <= image.min() and image.max() <= 1
    assert history[-1] > history[0] + 1e-3, f"the objective must rise: {history[0]:.4f} -> {history[-1]:.4f}"


@pytest.mark.points(1)
def test_coordinated_version_returns_one_image_per_model_for_the_same_concept(setup):
    models, usae, normalisers = setup
    out = V.coordinated_maximisation(models, normalisers, usae, concept=5, size=16, config=MaximisationConfig(steps=3))
    assert set(out) == {"tiny_a", "tiny_b"}
    assert all(image.shape == (3, 16, 16) for image, _ in out.values())


def test_top_images_and_purity_on_a_hand_made_case():
    codes = torch.zeros(6, 2)
    codes[:, 0] = torch.tensor([0.9, 0.1, 0.8, 0.7, 0.0, 0.6])
    assert V.top_images(codes, 0, k=3).tolist() == [0, 2, 3]
    labels = {"colour": torch.tensor([1, 0, 1, 2, 0, 1]), "shape": torch.tensor([0, 1, 2, 3, 4, 5])}
    result = V.purity(codes, labels, concept=0, k=4)  # top 4: images 0, 2, 3, 5 -> colours 1, 1, 2, 1
    assert result == {"colour": 0.75, "shape": 0.25}
    with pytest.raises(ValueError, match="concept"):
        V.top_images(codes, 2)


def test_coarse_labels_are_read_from_the_split_file():
    from pa5 import task_profile
    from task3 import data

    test_set = data.load_split(task_profile("task3", "tiny"), train=False)
    coarse = data.coarse_labels(test_set)
    assert len(coarse) == len(test_set)
    assert torch.equal(coarse, torch.as_tensor(test_set.factors["shape"])), "the stand-in's coarse label is its shape"


def test_purity_chance_is_the_largest_share_among_random_images():
    from task3 import analysis

    labels = {"ten values": torch.arange(1000) % 10, "one value": torch.zeros(1000, dtype=torch.long)}
    chance = analysis.purity_chance(labels, k=20, draws=500)
    assert chance["one value"] == 1.0
    assert 0.19 < chance["ten values"] < 0.25, "10 balanced values: the largest of 20 draws' counts is ~4.4, not 2"
