"""Task 3: activation maximisation, top images and purity on small hand-made models."""
import pytest
import torch

from pa5 import recipes
from task3 import visualize as V
from task3.config import MaximisationConfig
from task3.models import FEATURE_LAYERS


@pytest.fixture()
def setup(monkeypatch):
    for name in ("tiny_a", "tiny_b"):  # the recipe registers them; undone after the test
        monkeypatch.setitem(FEATURE_LAYERS, name, ("avgpool", 6))
    return recipes.tiny_vision_setup()


def test_fourier_image_is_in_range_with_the_expected_shape():
    image = V.FourierImage(16, seed=1)()
    assert image.shape == (1, 3, 16, 16)
    assert image.min() >= 0 and image.max() <= 1
    with pytest.raises(ValueError, match="size"):
        V.FourierImage(4)


MAXIMISE = dict(steps=12, copies=4, lr=0.1)


@pytest.mark.points(1.5, function="maximise")
def test_maximise_ascends_its_objective_on_jittered_noisy_copies(student):
    run = student.call("pa5.recipes:maximise_pixels", 16, MAXIMISE, seed=1)
    image, history, calls = run["image"], run["history"], run["calls"]
    assert image.shape == (3, 16, 16) and 0 <= image.min() and image.max() <= 1, (
        f"one image [3, 16, 16] in [0, 1], got {tuple(image.shape)}")
    assert len(history) == 13, f"the objective before each of the 12 steps and of the final image: 13, got {len(history)}"
    assert history[-1] > history[0] + 1e-3, f"the objective must rise: {history[0]:.4f} -> {history[-1]:.4f}"
    scored = [batch for batch, grad in calls if grad]
    assert scored == [4] * 12, (
        f"each step scores config.copies = 4 transformed copies at once, with gradients: got batches {scored}")
    logged = [batch for batch, grad in calls if not grad]
    assert logged == [1] * 13, (
        f"the history scores the plain image under torch.no_grad(), once per step and once at the end: got {logged}")


### BEGIN HIDDEN TESTS
@pytest.mark.points(1, function="maximise")
def test_maximise_follows_the_reference_trajectory(student):
    expected = recipes.maximise_pixels(16, MAXIMISE, seed=1)  # the grader's own maximise
    run = student.call("pa5.recipes:maximise_pixels", 16, MAXIMISE, seed=1)
    assert run["history"] == pytest.approx(expected["history"], rel=1e-5), (
        "the seeded run differs from the reference - the docstring's order: manual_seed, FourierImage(seed), NAdam; "
        "per step the logged objective, the copies one after another with random_view, randn_like noise, clamp, step")
    torch.testing.assert_close(run["image"], expected["image"], rtol=1e-5, atol=1e-6, msg=lambda m: (
        "the same history but another final image: return image() of the last parameters, [3, S, S] on the CPU\n" + m))
### END HIDDEN TESTS


@pytest.mark.points(1, function="maximise")
def test_maximisation_increases_the_pre_topk_code(student, setup):
    image, history = student.call("pa5.recipes:maximisation", student.build("pa5.recipes:tiny_vision_setup"), "tiny_a",
                                  concept=3, size=16, config=dict(steps=40, lr=0.1))
    assert image.shape == (3, 16, 16) and 0 <= image.min() and image.max() <= 1, (
        f"one image [3, 16, 16] in [0, 1], got {tuple(image.shape)}")
    assert history[-1] > history[0] + 1e-3, (
        f"the objective must rise: {history[0]:.4f} -> {history[-1]:.4f}. If it stays flat, check that "
        "concept_objective's features keep the graph to the pixels (no torch.no_grad, no .detach())")
    models, usae, normalisers = setup  # the grader's own objective, on the returned image
    objective = V.concept_objective(models["tiny_a"], "tiny_a", normalisers["tiny_a"], usae, concept=3)
    with torch.no_grad():
        start, end = objective(V.FourierImage(16, seed=0)()).item(), objective(image[None]).item()
    assert end > start + 1e-3, f"the returned image does not excite concept 3 more than the start: {start:.4f} -> {end:.4f}"


@pytest.mark.points(1, function="concept_objective.objective")
def test_concept_objective_is_the_pre_topk_code_and_differentiable_in_the_pixels(student, setup):
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    expected = recipes.objective_and_gradient(setup, "tiny_a", 3, images)  # the grader's own objective
    run = student.call("pa5.recipes:objective_and_gradient", student.build("pa5.recipes:tiny_vision_setup"), "tiny_a",
                       3, images)
    torch.testing.assert_close(run["values"], expected["values"], msg=lambda m: (
        "[B] pre-TopK codes of concept 3: the hooked layer's features, standardised by the normaliser, through "
        "the model's encoder - images normalised with ImageNet's mean and std first\n" + m))
    assert run["grad"] is not None, ("the objective has no gradient to the images: do not run the model under "
                                     "torch.no_grad() and do not .detach() the captured features")
    torch.testing.assert_close(run["grad"], expected["grad"], msg=lambda m: (
        "the gradient to the pixels differs: is part of the path detached or computed without grad?\n" + m))


@pytest.mark.points(0.5, function="maximise")
def test_coordinated_version_returns_one_image_per_model_for_the_same_concept(student):
    out = student.call("pa5.recipes:coordinated_maximisation", student.build("pa5.recipes:tiny_vision_setup"),
                       concept=5, size=16, config=dict(steps=3))
    assert set(out) == {"tiny_a", "tiny_b"}, f"one entry per model, got {sorted(out)}"
    assert all(image.shape == (3, 16, 16) for image, _ in out.values()), "each an image [3, 16, 16]"


def test_top_images_and_purity_on_a_hand_made_case():
    codes = torch.zeros(6, 2)
    codes[:, 0] = torch.tensor([0.9, 0.1, 0.8, 0.7, 0.0, 0.6])
    assert V.top_images(codes, 0, k=3).tolist() == [0, 2, 3]
    labels = {"colour": torch.tensor([1, 0, 1, 2, 0, 1]), "shape": torch.tensor([0, 1, 2, 3, 4, 5])}
    result = V.purity(codes, labels, concept=0, k=4)  # top 4: images 0, 2, 3, 5 -> colours 1, 1, 2, 1
    assert result == {"colour": 0.75, "shape": 0.25}
    with pytest.raises(ValueError, match="concept"):
        V.top_images(codes, 2)


@pytest.mark.usefixtures("cifar100_standin")
def test_coarse_labels_are_read_from_the_split_file():
    from pa5 import task_profile
    from task3 import data

    test_set = data.load_split(task_profile("task3", "tiny"), train=False)
    coarse = data.coarse_labels(test_set)
    assert len(coarse) == len(test_set)
    assert torch.equal(coarse, torch.as_tensor(test_set.factors["shape"])), "the stand-in's coarse label is its shape"


def test_purity_chance_by_permutation_on_a_hand_case():
    from task3 import analysis

    values = torch.tensor([0, 0, 1, 1])
    top = torch.tensor([[0, 1], [2, -1]])  # a set of 2 images, and one of 1 (a concept that fires once)
    assert V.set_purities(top, values).tolist() == [1.0, 1.0]
    null = analysis.permutation_purities(top, values, permutations=6000, seed=0)
    # two images drawn without replacement from {0, 0, 1, 1} share their value with probability 1/3:
    # purity 1 then, 1/2 otherwise - chance 1/3 + 2/3 * 1/2 = 2/3, not 1/2 (= 1 / number of values)
    assert null[:, 0].mean().item() == pytest.approx(2 / 3, abs=0.02)
    assert (null[:, 1] == 1).all(), "one image is always pure: its chance level is 1"
    empty = V.set_purities(torch.tensor([[-1, -1]]), values)
    assert torch.isnan(empty).all(), "a concept that never fires has no purity"


def test_purity_table_and_detectors_find_a_shape_detector_against_chance():
    from task3 import analysis

    torch.manual_seed(0)
    n = 400
    labels = {"shape": torch.arange(n) % 10, "colour": torch.randint(0, 10, (n,))}
    codes = [torch.zeros(n, 3), torch.zeros(n, 3)]
    for z in codes:
        z[:, 0] = (labels["shape"] == 3).float() * (1 + torch.rand(n))  # fires on shape 3 only
        z[:, 1] = torch.rand(n)  # fires everywhere, at random
    entropy = torch.tensor([1.0, 1.0, float("nan")])
    table = analysis.purity_table(["a", "b"], codes, entropy, labels, permutations=200)
    assert table.loc["universal, a", "concepts"] == 2
    assert 0.1 < table.loc["universal, a", "colour chance"] < 0.35, "chance is the permuted statistic, above 1/10"
    detectors = analysis.concept_detectors(["a", "b"], codes, [0, 1], labels, permutations=200)
    assert detectors.loc[0, "detects"] == "shape" and detectors.loc[0, "shape, a"] == 1.0
    assert detectors.loc[1, "detects"] == "-", "a concept that fires at random detects nothing"


def test_a_concept_that_never_fires_in_a_model_has_no_top_images(monkeypatch):
    from task3 import plots

    codes = torch.zeros(5, 2)
    codes[:, 0] = torch.tensor([0.0, 0.05, 0.1, 0.0, 0.0])
    assert V.top_images(codes, 0, k=3).tolist() == [], "no image fires (z > 0.1): no 'top' images, not ties at zero"
    assert V.top_images(torch.tensor([[0.5], [0.0], [0.3]]), 0, k=3).tolist() == [0, 2], "only images that fire"
    assert all(v != v for v in V.purity(codes, {"shape": torch.arange(5)}, 0).values()), "never fires: purity NaN"
    figures = []
    monkeypatch.setattr(plots, "save_and_show", lambda fig, path: figures.append(fig))
    fires = torch.zeros(5, 2)
    fires[:, 0] = torch.tensor([0.9, 0.0, 0.5, 0.0, 0.2])
    images = [(torch.zeros(3, 32, 32), 0)] * 5
    plots.top_image_grid({"universal": [0]}, ["a", "b"], [fires, codes], torch.tensor([-0.001, 0.0]), images, None, k=3)
    texts = [t.get_text() for ax in figures[0].axes for t in ax.texts]
    titles = [ax.get_title(loc="left") for ax in figures[0].axes]
    assert "never fires in b" in texts
    assert not any("-0.00" in t for t in titles), "no negative zero in titles"
    assert plots.number(-0.001) == "0.00" and plots.number(-0.5) == "-0.50"


def test_universal_share_has_a_bootstrap_interval_around_it():
    from task3 import analysis

    torch.manual_seed(0)
    codes = [torch.rand(300, 20), torch.rand(300, 20)]
    codes[1][:, :5] = 0  # concepts 0-4 fire in model a only
    result = analysis.universal_share_interval(codes, draws=100)
    assert result["share"] == pytest.approx(15 / 20)
    assert result["low"] <= result["share"] <= result["high"]
    with pytest.raises(ValueError, match="level"):
        analysis.universal_share_interval(codes, level=1.5)


def test_maximisation_views_keep_the_size_and_read_back_names_a_class(setup):
    models, _, _ = setup
    pixels = torch.rand(1, 3, 16, 16)
    view = V.random_view(pixels, MaximisationConfig(steps=1, crop=0.5, jitter=2))
    assert view.shape == pixels.shape
    assert V.rose([0.2, 0.5]) and not V.rose([1.12, 1.11])
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3))
    name, probability = V.read_back(classifier, pixels[0], ["red_circle", "blue_square", "lime_star"])
    assert name in {"red_circle", "blue_square", "lime_star"} and 1 / 3 <= probability <= 1
