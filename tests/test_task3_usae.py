"""Task 3: the universality metrics, the USAE's loss and training schedule, the feature hooks."""
import dataclasses
import math
import random

import pytest
import torch

from pa5 import recipes
from task3 import models, usae as U, universality as UV


@pytest.fixture(scope="module")
def SUV(student):
    """task3.universality as the student wrote it, in the worker."""
    return student.module("task3.universality")


@pytest.mark.points(0.4, function="firing_entropy")
@pytest.mark.parametrize("counts, expected", [
    ([[50], [50]], 1.0), ([[100], [0]], 0.0), ([[75], [25]], 0.811278), ([[90], [10]], 0.468996),
    ([[50], [50], [0]], 0.630930)])
def test_firing_entropy_exact_values(SUV, counts, expected):
    value = SUV.firing_entropy(torch.tensor(counts)).item()
    assert value == pytest.approx(expected, abs=1e-6), "entropy of p_i = |F_i| / sum_j |F_j|, divided by log M"


@pytest.mark.points(0.5, function="firing_entropy")
def test_firing_entropy_of_a_never_firing_concept_is_nan(SUV):
    assert math.isnan(SUV.firing_entropy(torch.tensor([[0, 3], [0, 3]]))[0].item()), (
        "a concept that never fires has no firing distribution: its entropy is NaN, not 0 or 1")


@pytest.mark.points(0.5, function="firing_counts")
def test_firing_counts_use_the_threshold(SUV):
    codes = [torch.tensor([[0.1, 0.5], [0.2, 0.0]]), torch.tensor([[0.0, 0.11], [0.3, 0.05]])]
    assert SUV.firing_counts(codes).tolist() == [[1, 1], [1, 1]], "fires means z > 0.1 (strictly)"


@pytest.mark.points(1, function="cofire_proportion")
def test_cofire_proportion_hand_case(SUV):
    # 4 images, 3 concepts; fires means z > 0.1
    codes = [torch.tensor([[0.5, 0.0, 0.0], [0.5, 0.2, 0.0], [0.0, 0.5, 0.0], [0.2, 0.0, 0.0]]),
             torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.0, 0.0], [0.3, 0.4, 0.0], [0.2, 0.05, 0.0]])]
    result = SUV.cofire_proportion(codes)
    # concept 0: model 0 fires on {0, 1, 3}, model 1 on {0, 2, 3}, both on {0, 3}
    # concept 1: model 0 on {1, 2}, model 1 on {2} (0.05 is not a firing), both on {2}
    torch.testing.assert_close(result[:, :2], torch.tensor([[2 / 3, 1 / 2], [2 / 3, 1.0]]), msg=lambda m: (
        "row i, concept k: of the images where model i fires k, the share where every model fires k\n" + m))
    assert torch.isnan(result[:, 2]).all(), "a concept model i never fires has no proportion: NaN"


### BEGIN HIDDEN TESTS
@pytest.mark.points(2, function="cofire_proportion")
def test_cofire_proportion_matches_a_brute_force_loop(SUV):
    torch.manual_seed(0)
    codes = [torch.relu(torch.randn(40, 6)) for _ in range(3)]
    result = SUV.cofire_proportion(codes, threshold=0.3)
    for i in range(3):
        for k in range(6):
            fires_i = [n for n in range(40) if codes[i][n, k] > 0.3]
            in_all = [n for n in fires_i if all(codes[j][n, k] > 0.3 for j in range(3))]
            expected = len(in_all) / len(fires_i) if fires_i else math.nan
            got = result[i, k].item()
            assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected), (
                f"model {i}, concept {k}: expected {expected}, got {got} - of the images where model {i} fires "
                f"concept {k} (z > threshold), the share where every model fires it; NaN where it never fires")
### END HIDDEN TESTS


def _r2_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x [50, 8] with per-feature offsets and scales, a noisy reconstruction, the per-feature mean predictor."""
    torch.manual_seed(1)
    x = torch.randn(50, 8) * torch.linspace(0.5, 3, 8) + torch.linspace(-4, 4, 8)
    return x, x + 0.5 * torch.randn(50, 8), x.mean(0, keepdim=True).expand_as(x)


@pytest.mark.points(1, function="r2_global_mean")
def test_global_mean_r2_equals_overcomplete(SUV):
    from overcomplete.metrics import r2_score

    x, x_hat, mean_predictor = _r2_case()
    assert SUV.r2_global_mean(x, x_hat) == pytest.approx(r2_score(x, x_hat).item(), abs=1e-6), (
        "overcomplete's R^2: 1 - SSE / sum of squares around the global (all-feature) mean")
    assert SUV.r2_global_mean(x, mean_predictor) > 0.5, "the global-mean R^2 credits per-feature offsets"


@pytest.mark.points(1, function="r2_variance_weighted")
def test_variance_weighted_r2_equals_sklearn(SUV):
    from sklearn.metrics import r2_score as sklearn_r2

    x, x_hat, mean_predictor = _r2_case()
    assert SUV.r2_variance_weighted(x, x_hat) == pytest.approx(
        sklearn_r2(x.numpy(), x_hat.numpy(), multioutput="variance_weighted"), abs=1e-6), (
        "sklearn's variance_weighted R^2: 1 - SSE / sum of squares around each feature's own mean")
    assert SUV.r2_variance_weighted(x, mean_predictor) == pytest.approx(0.0, abs=1e-6), (
        "predicting each feature's mean explains none of its variance: R^2 = 0")


@pytest.mark.points(1, function="concept_energy")
def test_energy_dead_fraction_and_matching(SUV):
    codes, dictionary = torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    torch.testing.assert_close(SUV.concept_energy(codes, dictionary), torch.tensor([4.0, 0.0]), msg=lambda m: (
        "energy of concept k = ||E[z_k] D_k||^2 (Eq. 9): concept 0's mean code 2, squared, times its unit atom's "
        "squared norm = 4\n" + m))
    assert SUV.dead_fraction([codes, torch.zeros(2, 2)]) == 0.5, (
        "concept 1 fires in no model, concept 0 in one: half the concepts are dead")
    permuted = dictionary[[1, 0]]
    assert SUV.hungarian_match(dictionary, permuted)["matched"] == 1.0, "a permuted dictionary matches fully"


@pytest.mark.parametrize("call, argument", [
    (lambda: UV.firing_counts([torch.zeros(3, 4), torch.zeros(2, 4)]), "same N"),
    (lambda: UV.firing_counts([torch.zeros(3, 4), torch.zeros(3, 4)], threshold=-0.1), "threshold"),
    (lambda: UV.cofire_proportion([torch.zeros(3, 4)]), "at least 2"),
    (lambda: U.UniversalSAE({"a": 4, "b": 3}, 8, 2).encode("c", torch.zeros(2, 4)), "unknown"),
    (lambda: models.build_model("vgg16", None), "name must be one of"),
])
def test_bad_input_raises_value_error(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


def _batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return {"a": torch.randn(16, 6, generator=generator), "b": torch.randn(16, 4, generator=generator)}


def _moved_models(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    """Models with a parameter changed - with a tolerance, as renormalising a unit atom again changes
    it by float rounding only."""
    return {n.split(".")[1] for n in before if (before[n] - after[n]).abs().max() > 1e-6}


@pytest.mark.points(1, function="usae_step")
def test_usae_step_returns_the_summed_loss_and_steps_only_the_sources(student):
    batch = _batch()
    expected = U.usae_loss(recipes.two_model_usae(), batch, "b", cross_weight=2.0)[0].item()  # the grader's own
    usae = student.build("pa5.recipes:two_model_usae")
    run = student.call("pa5.recipes:usae_sgd_step", usae, batch, ["b"], cross_weight=2.0)
    assert run["loss"] == pytest.approx(expected, rel=1e-6), (
        f"usae_step returns the loss it stepped on: usae_loss for each source, summed - expected {expected:.6f}, "
        f"got {run['loss']}")
    assert run["grad_norm"] > 0, "and the gradient norm of the parameters it stepped"
    moved = _moved_models(run["before"], run["after"])
    assert moved == {"b"}, f"only the sources' SAEs move (model a's decoder is in the loss too), moved: {moved}"
    assert not run["grads_left"], "no gradient is left behind for a later step: zero (set_to_none) every .grad"
    with pytest.raises(ValueError, match="sources"):
        student.call("pa5.recipes:usae_sgd_step", usae, batch, ["c"])


### BEGIN HIDDEN TESTS
@pytest.mark.points(1, function="usae_step")
def test_several_usae_steps_follow_the_reference_trajectory(student):
    """Three steps with one momentum optimiser, sources a, then b, then both: a gradient left from an
    earlier step (not cleared) adds to the next one and moves a model that is not a source."""
    batch, schedule = _batch(), [["a"], ["b"], ["a", "b"]]
    expected = recipes.usae_sgd_steps(recipes.two_model_usae(), batch, schedule)  # the grader's own usae_step
    run = student.call("pa5.recipes:usae_sgd_steps", student.build("pa5.recipes:two_model_usae"), batch, schedule)
    for step, (theirs, ours) in enumerate(zip(run["losses"], expected["losses"]), 1):
        assert theirs == pytest.approx(ours, rel=1e-5), (
            f"step {step} of {schedule}: loss {theirs:.6f}, expected {ours:.6f} - "
            + ("the first step's loss is usae_loss summed over the sources" if step == 1 else
               "the steps before changed the SAEs differently: is a gradient left from an earlier step "
               "(every .grad must be cleared after the step), or a non-source model moved?"))
    for name, value in expected["after"].items():
        torch.testing.assert_close(run["after"][name], value, rtol=1e-5, atol=1e-6, msg=lambda m: (
            f"{name} after the three steps differs from the reference trajectory\n" + m))
### END HIDDEN TESTS


def _epoch_features() -> dict[str, torch.Tensor]:
    """17 images: with batches of 8, two full batches and a last one of a single row (skipped)."""
    generator = torch.Generator().manual_seed(5)
    return {"a": torch.randn(17, 6, generator=generator), "b": torch.randn(17, 4, generator=generator)}


EPOCH_CONFIG = dict(nb_concepts=12, top_k=3, epochs=1, batch_size=8, lr=1e-2)


@pytest.mark.points(0.75, function="usae_epoch")
@pytest.mark.parametrize("schedule", ["paper", "course"])
def test_usae_epoch_steps_on_shuffled_batches_with_the_schedules_sources(student, schedule):
    run = student.call("pa5.recipes:usae_epochs", student.build("pa5.recipes:two_model_usae", train=False),
                       _epoch_features(), {**EPOCH_CONFIG, "schedule": schedule}, seed=3)
    generator, picker = torch.Generator().manual_seed(3), random.Random(3)  # as train_usae makes them
    for epoch, calls in enumerate(run["calls"], 1):
        batches = [part.tolist() for part in torch.randperm(17, generator=generator).split(8) if len(part) >= 2]
        assert [call["rows"] for call in calls] == batches, (
            f"epoch {epoch}: the steps' rows {[c['rows'] for c in calls]}, expected {batches} - the rows in the order "
            "torch.randperm(N, generator=generator) (one generator for every epoch), split into batch_size; the last "
            "batch of one row is skipped (BatchNorm needs two)")
        sources = [[picker.choice(["a", "b"])] for _ in batches] if schedule == "paper" else [["a", "b"]] * len(batches)
        assert [call["sources"] for call in calls] == sources, (
            f"epoch {epoch}: sources {[c['sources'] for c in calls]}, expected {sources} - "
            + ("the paper's schedule: one model per step, picker.choice(usae.names)" if schedule == "paper" else
               "the course's schedule: every model at every step"))
        weight = 1.0 if schedule == "paper" else 1.5  # SAEConfig's default cross_weight
        assert all(c["cross_weight"] == weight and c["max_grad_norm"] == 1.0 for c in calls), (
            f"cross weight {weight} ({schedule}'s) and config.max_grad_norm, got "
            f"{[(c['cross_weight'], c['max_grad_norm']) for c in calls]}")
        assert len(run["losses"][epoch - 1]) == len(batches), "usae_epoch returns one loss per step"
    assert run["training"], "usae_epoch trains in train mode (BatchNorm's batch statistics): call usae.train()"


### BEGIN HIDDEN TESTS
@pytest.mark.points(1, function="usae_epoch")
def test_usae_epoch_follows_the_reference_trajectory(student):
    config = {**EPOCH_CONFIG, "schedule": "course"}
    expected = recipes.usae_epochs(recipes.two_model_usae(train=False), _epoch_features(), config, seed=3)
    run = student.call("pa5.recipes:usae_epochs", student.build("pa5.recipes:two_model_usae", train=False),
                       _epoch_features(), config, seed=3)
    assert sum(run["losses"], []) == pytest.approx(sum(expected["losses"], []), rel=1e-5), (
        f"the epochs' losses {run['losses']} differ from the reference's {expected['losses']}")
    for name, value in expected["after"].items():
        torch.testing.assert_close(run["after"][name], value, rtol=1e-5, atol=1e-6, msg=lambda m: (
            f"{name} after two epochs differs from the reference trajectory\n" + m))
### END HIDDEN TESTS


@pytest.mark.points(1.5, function="usae_loss")
def test_usae_loss_sums_every_models_reconstruction_from_one_models_codes(student):
    batch = _batch()
    reference = recipes.two_model_usae()
    _, codes = reference.encode("a", batch["a"])
    expected = sum(((batch[t] - reference.decode(t, codes)) ** 2).mean() for t in ("a", "b"))
    usae = student.build("pa5.recipes:two_model_usae")
    loss, errors = student.call("task3.usae:usae_loss", usae, batch, "a")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6), (
        f"sum over every model of its own MSE from the shared codes: expected {expected.item():.6f}, got {loss.item():.6f}")
    assert (codes > 0).sum(-1).max() <= 3, "TopK keeps at most k concepts"


@pytest.mark.points(1, function="usae_epoch")
def test_the_papers_schedule_moves_one_model_per_step_the_courses_every_model(student):
    batch = _batch()
    config = dict(nb_concepts=12, top_k=3, epochs=1, batch_size=16, lr=1e-2)
    run = student.call("pa5.recipes:usae_schedules", student.build("pa5.recipes:two_model_usae"), batch, config,
                       seed=3, monitor_rows=16)
    moved = _moved_models(run["start"], run["paper"])
    assert len(moved) == 1, f"the paper's schedule steps only the chosen model's SAE, moved: {moved}"
    assert all(not torch.equal(run["paper"][n], run["course"][n]) for n in run["paper"]
               if "weight" in n and "dictionary" in n), "the course's schedule steps every model"


@pytest.mark.parametrize("name", ["resnet50", "mobilenet_v3_large"])
def test_feature_hooks_give_2048_and_1280_dims_at_the_profile_size(name):
    from pa5 import task_profile

    size = task_profile("task3", "tiny").image_size
    model = models.build_model(name, None)
    images = torch.randn(4, 3, size, size)
    features = models.extract_features(model, name, [(images, torch.zeros(4))], "cpu")
    assert features.shape == (4, models.FEATURE_LAYERS[name][1])


def test_standardizer_is_fitted_on_train_and_reused_on_test():
    torch.manual_seed(0)
    train, test = torch.randn(100, 5) * 3 + 7, torch.randn(20, 5) + 1
    paper = models.Standardizer(train, "paper")
    assert paper(train).mean().item() == pytest.approx(0.0, abs=1e-5) and paper(train).std().item() == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(paper(test), (test - train.mean()) / train.std(), msg=lambda m: (
        "the paper's standardisation: ONE scalar mean and std from the train split, applied unchanged to test\n" + m))
    l2 = models.Standardizer(train, "l2_center")
    unit = torch.nn.functional.normalize(train, dim=1)
    torch.testing.assert_close(l2(train).mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(l2(test), (torch.nn.functional.normalize(test, dim=1) - unit.mean(0)) / (unit - unit.mean(0)).std())
    with pytest.raises(ValueError, match="mode"):
        models.Standardizer(train, "zscore")


class LinearSAE(torch.nn.Module):
    """A hand-made SAE: codes relu(x W), reconstruction z W^T (W [D, C])."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.weight = torch.nn.Parameter(weight.clone())

    def encode(self, x):
        pre = x @ self.weight
        return pre, torch.relu(pre)

    def decode(self, z):
        return z @ self.weight.T

    def get_dictionary(self):
        return self.weight.T


def test_matching_independent_saes_by_code_correlation_recovers_a_renumbering():
    torch.manual_seed(0)
    weight = torch.linalg.qr(torch.randn(8, 8))[0]  # orthonormal: each concept a direction
    permutation = torch.randperm(8)
    saes = {"a": LinearSAE(weight), "b": LinearSAE(weight[:, permutation])}  # b's concept j is a's permutation[j]
    features = {"a": torch.randn(200, 8), "b": None}
    features["b"] = features["a"]
    unaligned = U.cross_r2(saes, features)
    aligned, quality = U.align_by_code_correlation(saes, features)
    assert torch.equal(aligned["b"].order, permutation.argsort()), "shared index k must be b's concept that copies a's k"
    assert quality["b"] == pytest.approx(1.0, abs=1e-5)
    matched = U.cross_r2(aligned, features)
    assert matched["a->b"]["variance_weighted"] == pytest.approx(matched["a->a"]["variance_weighted"], abs=1e-5), \
        "after matching, b decodes a's codes as a itself does"
    assert unaligned["a->b"]["variance_weighted"] < matched["a->b"]["variance_weighted"] - 0.2, \
        "unaligned indices are the strawman the matched baseline corrects"
    torch.testing.assert_close(aligned["b"].get_dictionary(), saes["a"].get_dictionary())
    with pytest.raises(ValueError, match="permutation"):
        U.AlignedSAE(saes["b"], torch.tensor([0, 0, 1, 2, 3, 4, 5, 6]))


def test_untrained_control_and_weights_are_checked():
    from pa5 import task_profile

    tiny = task_profile("task3", "tiny")
    control = tiny.untrained()
    assert (control.weights, control.finetune.epochs) == (None, 0), "the control: random init, never trained"
    assert control.weights_ref("resnet50") is None and tiny.weights_ref("resnet50") == "standin:imagenet/resnet50"
    assert models.cache_key(control, "resnet50", "checkpoint", 0) != models.cache_key(tiny, "resnet50", "checkpoint", 0)
    with pytest.raises(ValueError, match="weights"):
        dataclasses.replace(tiny, weights="imagenet21k")
