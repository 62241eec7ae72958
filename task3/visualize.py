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

from pa5.checks import check_int
from pa5.device import module_device, place
from pa5.optim import optimizer_step
from task3.config import MaximisationConfig
from task3.data import IMAGENET_MEAN, IMAGENET_STD
from task3.models import FEATURE_LAYERS


class FourierImage(torch.nn.Module):
    """A [1, 3, size, size] image in (0, 1) from learnable Fourier coefficients scaled by 1/f^decay."""

    def __init__(self, size: int, decay: float = 1.5, seed: int = 0):
        super().__init__()
        check_int("size", size, 8)
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
    """images [B, 3, H, W] in [0, 1] -> [B] pre-TopK code of ``concept`` in model ``name``'s encoder."""
    layer = model.get_submodule(FEATURE_LAYERS[name][0])
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


def maximise(objective: Callable, size: int, config: MaximisationConfig,
             seed: int = 0, device="cpu") -> tuple[torch.Tensor, list[float]]:
    """Ascend ``objective`` over a Fourier-parameterised image for ``config.steps`` steps; returns
    (image [3, size, size] in [0, 1], the objective of the un-jittered image at every step).

    Each step scores ``config.copies`` copies of the image, each rolled by a random (dy, dx) in
    [-jitter, jitter] pixels, plus N(0, noise^2) pixel noise, clamped to [0, 1] - so the image must
    excite the concept wherever it sits, not through single-pixel patterns - and takes one NAdam step
    (``pa5.optim.optimizer_step``, not clipped) on loss = -mean objective."""
    torch.manual_seed(seed)
    image = place(FourierImage(size, seed=seed), device)
    optimizer = torch.optim.NAdam(image.parameters(), lr=config.lr)
    history = []
    for _ in range(config.steps):
        pixels = image()
        with torch.no_grad():
            history.append(objective(pixels).mean().item())
        ### BEGIN SOLUTION
        shifts = torch.randint(-config.jitter, config.jitter + 1, (config.copies, 2)).tolist()
        batch = torch.cat([torch.roll(pixels, shifts=tuple(s), dims=(2, 3)) for s in shifts])
        batch = (batch + config.noise * torch.randn_like(batch)).clamp(0, 1)
        loss = -objective(batch).mean()
        optimizer_step(loss, image.parameters(), optimizer, max_norm=None)
        ### END SOLUTION
    with torch.no_grad():
        final = image()
        history.append(objective(final).mean().item())
    return final[0].detach().cpu(), history


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


def top_images(codes: torch.Tensor, concept: int, k: int = 8) -> torch.Tensor:
    """[k] indices of the inputs with the largest code of ``concept`` (codes [N, C])."""
    if not 0 <= concept < codes.shape[1]:
        raise ValueError(f"concept must be in [0, {codes.shape[1]}), got {concept!r}")
    return codes[:, concept].topk(min(k, len(codes))).indices


def purity(codes: torch.Tensor, labels: dict[str, torch.Tensor], concept: int, k: int = 20) -> dict[str, float]:
    """For each labelling (e.g. a generating factor): the share of the concept's ``k`` top-activating
    inputs that carry that labelling's most common value among them (1 = all the same value)."""
    top = top_images(codes, concept, k)
    out = {}
    for name, values in labels.items():
        chosen = torch.as_tensor(values)[top]
        out[name] = chosen.bincount().max().item() / len(chosen) if chosen.min() >= 0 else float("nan")
    return out
