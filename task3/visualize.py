"""Task 3's concept visualisation: top-activating images, coordinated activation maximisation, purity.

Activation maximisation (after MACO, Fel et al. 2023, and Horama's Fourier feature visualisation):
an image is parameterised by its 2-D Fourier coefficients, scaled by a 1/f^decay spectrum so that
gradient steps favour natural-image-like low frequencies; a sigmoid keeps pixels in (0, 1). Each
step scores a few randomly jittered, slightly noisy copies and ascends the concept's **pre-TopK**
code (after TopK a concept that is not selected has code 0 and no gradient). The objective goes
image -> ImageNet normalisation -> model -> hooked features -> the model's normaliser -> USAE
encoder, everything in eval mode. *Coordinated*: the same concept index, maximised in every model.

Shapes: images [3, H, W] in [0, 1]; codes [N, C].
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from pa5.checks import check_int, check_number
from pa5.device import module_device, place
from pa5.optim import optimizer_step
from task3.config import MaximisationConfig
from task3.data import IMAGENET_MEAN, IMAGENET_STD
from task3.models import feature_layer
from task3.universality import FIRING_THRESHOLD


class FourierImage(torch.nn.Module):
    """A [1, 3, size, size] image in (0, 1) from learnable Fourier coefficients scaled by 1/f^decay."""

    def __init__(self, size: int, decay: float = 1.5, seed: int = 0):
        super().__init__()
        check_int("size", size, 8)
        check_number("decay", decay, 0)  # 0: white noise; NaN / inf would make every coefficient NaN / 0
        generator = torch.Generator().manual_seed(seed)
        fy = torch.fft.fftfreq(size)[:, None]
        fx = torch.fft.rfftfreq(size)[None, :]
        frequency = torch.sqrt(fx ** 2 + fy ** 2).clamp(min=1.0 / size)
        self.register_buffer("scale", frequency ** -decay / size)
        self.size = size
        self.coefficients = torch.nn.Parameter(0.01 * torch.randn(2, 3, size, size // 2 + 1, generator=generator))

    def forward(self) -> torch.Tensor:
        spectrum = torch.complex(self.coefficients[0], self.coefficients[1]) * self.scale
        pixels = torch.fft.irfft2(spectrum, s=(self.size, self.size), norm="ortho")
        return torch.sigmoid(pixels * 4.0)[None]  # [1, 3, H, W] in (0, 1)


def concept_objective(model: torch.nn.Module, name: str, normaliser, usae, concept: int) -> Callable:
    """images [B, 3, H, W] in [0, 1] -> [B] pre-TopK code of ``concept`` in model ``name``'s encoder.

    Differentiable in the images: maximisation climbs its gradient, so the features must keep the
    graph back to the pixels - no ``torch.no_grad`` and no ``.detach()`` on the way (which is why
    ``task3.models.extract_features``, built for the analysis, is not the template here)."""
    check_int("concept", concept, 0, usae.nb_concepts - 1)
    layer = model.get_submodule(feature_layer(name)[0])
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]

    def objective(images: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        captured = []
        hook = layer.register_forward_hook(lambda module, inputs, output: captured.append(output.flatten(1).clone()))
        try:
            model((images - mean.to(images)) / std.to(images))
        finally:
            hook.remove()
        pre_codes, _ = usae.encode(name, normaliser(captured[0]))
        return pre_codes[:, concept]
        ### END SOLUTION

    return objective


def random_view(pixels: torch.Tensor, config: MaximisationConfig) -> torch.Tensor:
    """[1, 3, S, S] a random crop of ``pixels`` [1, 3, S, S] (side in [crop * S, S], anywhere), resized back
    to S, then rolled by up to ``config.jitter`` pixels each way."""
    size = pixels.shape[-1]
    side = int(torch.randint(max(1, round(config.crop * size)), size + 1, ()).item())
    top, left = (int(v) for v in torch.randint(0, size - side + 1, (2,)))
    view = pixels[..., top:top + side, left:left + side]
    if side != size:
        view = torch.nn.functional.interpolate(view, size=(size, size), mode="bilinear", align_corners=False)
    dy, dx = (int(v) for v in torch.randint(-config.jitter, config.jitter + 1, (2,)))
    return torch.roll(view, shifts=(dy, dx), dims=(2, 3))


def maximise(objective: Callable, size: int, config: MaximisationConfig,
             seed: int = 0, device="cpu") -> tuple[torch.Tensor, list[float]]:
    """Ascend ``objective`` over a Fourier-parameterised image for ``config.steps`` steps; returns
    (image [3, size, size] in [0, 1], the objective of the un-jittered image at every step).

    Each step scores ``config.copies`` copies of the image (MACO's transformation robustness): each a
    random square crop of side in [crop * size, size] resized back to ``size`` (bilinear: a random
    zoom and shift), rolled by a random (dy, dx) in [-jitter, jitter] pixels, plus N(0, noise^2) pixel
    noise, clamped to [0, 1] - so the image must excite the concept at any position and scale, not
    through single-pixel patterns - and takes one NAdam step (``pa5.optim.optimizer_step``, not
    clipped) on loss = -mean objective.

    The loop, in the order a seeded run must follow to be reproducible: ``torch.manual_seed(seed)``;
    the image ``FourierImage(size, seed=seed)`` (``pa5.device.place`` on ``device``) and
    ``torch.optim.NAdam(its parameters, lr=config.lr)``; per step: ``pixels = image()``, the
    objective of ``pixels`` recorded under ``torch.no_grad()``, the ``config.copies`` views made one
    after another with :func:`random_view` and concatenated, noise added with ``torch.randn_like``,
    the clamp, the step. After the last step the objective of the final image is recorded too:
    the history has ``config.steps + 1`` entries."""
    ### BEGIN SOLUTION
    torch.manual_seed(seed)
    image = place(FourierImage(size, seed=seed), device)
    optimizer = torch.optim.NAdam(image.parameters(), lr=config.lr)
    history = []
    for _ in range(config.steps):
        pixels = image()
        with torch.no_grad():
            history.append(objective(pixels).mean().item())
        batch = torch.cat([random_view(pixels, config) for _ in range(config.copies)])
        batch = (batch + config.noise * torch.randn_like(batch)).clamp(0, 1)
        loss = -objective(batch).mean()
        optimizer_step(loss, image.parameters(), optimizer, max_norm=None)
    with torch.no_grad():
        final = image()
        history.append(objective(final).mean().item())
    return final[0].detach().cpu(), history
    ### END SOLUTION


def coordinated_maximisation(models: dict, normalisers: dict, usae, concept: int, size: int,
                             config: MaximisationConfig, seed: int = 0) -> dict[str, tuple[torch.Tensor, list[float]]]:
    """The same concept index maximised in every model: {model name: (image, objective history)}."""
    out = {}
    for name in tqdm(list(models), desc=f"activation maximisation, concept {concept}", unit="model"):
        models[name].eval()
        usae.eval()
        out[name] = maximise(concept_objective(models[name], name, normalisers[name], usae, concept), size, config,
                             seed=seed, device=module_device(models[name]))
    return out


def concept_maximisations(models: dict, normalisers: dict, usae, concepts: list[int], size: int,
                          config: MaximisationConfig, class_names: list[str], seed: int = 0) -> dict[int, dict[str, dict]]:
    """:func:`coordinated_maximisation` of every concept, each result read: {concept: {model: {"image",
    "history", "start", "end", "rose" (:func:`rose`), "reads_as", "probability" (:func:`read_back`)}}}."""
    out = {}
    for concept in concepts:
        out[concept] = {}
        for name, (image, history) in coordinated_maximisation(models, normalisers, usae, concept, size, config,
                                                                seed).items():
            reads_as, probability = read_back(models[name], image, class_names)
            out[concept][name] = {"image": image, "history": history, "start": history[0], "end": history[-1],
                                  "rose": rose(history), "reads_as": reads_as, "probability": probability}
    return out


def rose(history: list[float]) -> bool:
    """Whether a maximisation's objective ended above where it started."""
    return history[-1] > history[0]


@torch.no_grad()
def read_back(model: torch.nn.Module, image: torch.Tensor, class_names: list[str]) -> tuple[str, float]:
    """The maximised image [3, H, W] in [0, 1] fed back through the classifier: (its most likely class
    name, that probability) - what the network itself sees in the image."""
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    model.eval()
    device = module_device(model)
    probabilities = model(((image - mean) / std)[None].to(device)).float().softmax(-1)[0].cpu()
    best = int(probabilities.argmax())
    return class_names[best], probabilities[best].item()


def top_images(codes: torch.Tensor, concept: int, k: int = 8, threshold: float = FIRING_THRESHOLD) -> torch.Tensor:
    """Indices of the (at most ``k``) inputs on which ``concept`` fires (code > ``threshold``), largest
    code first (codes [N, C]); empty when it never fires - never ties at zero standing in for images."""
    if not 0 <= concept < codes.shape[1]:
        raise ValueError(f"concept must be in [0, {codes.shape[1]}), got {concept!r}")
    values = codes[:, concept]
    top = values.topk(min(k, len(codes)))
    return top.indices[top.values > threshold]


def purity(codes: torch.Tensor, labels: dict[str, torch.Tensor], concept: int, k: int = 20) -> dict[str, float]:
    """For each labelling (e.g. a generating factor): the share of the concept's top-activating inputs
    (:func:`top_images`: at most ``k``, only where it fires) that carry that labelling's most common
    value among them (1 = all the same value); NaN when the concept never fires."""
    top = top_sets(codes, [concept], k)
    return {name: set_purities(top, torch.as_tensor(values).long())[0].item() for name, values in labels.items()}


def top_sets(codes: torch.Tensor, concepts: list[int], k: int = 20) -> torch.Tensor:
    """[G, k] each concept's top-activating inputs (:func:`top_images`: only where it fires),
    padded with -1 where it fires on fewer than ``k``."""
    out = torch.full((len(concepts), k), -1, dtype=torch.long)
    for row, concept in enumerate(concepts):
        top = top_images(codes, concept, k)
        out[row, :len(top)] = top
    return out


def set_purities(top: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """[G] purity of each row's inputs (top [G, k], -1 = none) under labels ``values`` [N] (ints >= 0):
    the share carrying the row's most common value; NaN for an empty row."""
    present = top >= 0
    picked = torch.where(present, values[top.clamp(min=0)], torch.zeros_like(top))
    counts = torch.zeros(len(top), int(values.max()) + 1).scatter_add_(1, picked, present.float())
    sizes = present.sum(1).float()
    return torch.where(sizes > 0, counts.max(1).values / sizes.clamp(min=1), torch.full_like(sizes, float("nan")))
