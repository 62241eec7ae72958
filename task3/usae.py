"""Task 3's Universal Sparse Autoencoder (Thasarathan et al., ICML 2025) on overcomplete's TopKSAE.

One TopKSAE per model - its own encoder (Linear -> BatchNorm -> ReLU -> TopK, overcomplete's
``mlp_bn_1``, the official code's) and its own l2-normalised dictionary - and all of them share one
concept index space: concept k of model i's code is decoded by atom k of every model's dictionary.

Training (the paper's Algorithm 1, the official code's schedule): each batch picks one model i
uniformly at random, encodes that model's activations Z = E_i(A_i), and every model j reconstructs
its own activations of the same images from Z; the loss sums the reconstruction errors over j,
unweighted, and only model i's encoder and dictionary step, with their gradient clipped at 1. The
course's variant (``schedule="course"``): every batch, every model encodes; each reconstructs itself
(weight 1) and the others (``cross_weight``, 1.5); every model's SAE steps, the gradient clipped
jointly. One AdamW holds every SAE: AdamW moves only parameters that received a gradient, so
stepping it on model i's gradient alone is exactly model i's own optimizer step.

Shapes: N images, D_i features of model i, C concepts.
"""
from __future__ import annotations

import random

import torch
from tqdm.auto import tqdm

from pa5.checks import check_int, check_number
from pa5.device import module_device, place
from pa5.optim import optimizer_step
from task3.config import SAEConfig
from task3.universality import dead_fraction, r2_global_mean, r2_variance_weighted


def make_sae(input_dim: int, nb_concepts: int, top_k: int, device="cpu"):
    """overcomplete's TopKSAE with the official code's encoder (Linear -> BatchNorm -> ReLU), on
    ``device``. SAEs train in float32 whatever the precision policy: they are small, and TopK on
    half-precision codes would tie."""
    from overcomplete.sae import TopKSAE

    return place(TopKSAE(input_dim, nb_concepts, top_k=top_k, encoder_module="mlp_bn_1", device=str(device)), device)


class UniversalSAE(torch.nn.Module):
    """One TopKSAE per model over one shared concept space; ``input_dims`` = {model name: D_i}."""

    def __init__(self, input_dims: dict[str, int], nb_concepts: int, top_k: int, device="cpu"):
        super().__init__()
        if len(input_dims) < 2:
            raise ValueError(f"input_dims must name at least 2 models, got {list(input_dims)}")
        check_int("top_k", top_k, 1, nb_concepts)  # at most nb_concepts
        self.nb_concepts, self.top_k = nb_concepts, top_k
        self.saes = torch.nn.ModuleDict({name: make_sae(dim, nb_concepts, top_k, device)
                                         for name, dim in input_dims.items()})
        place(self, device)

    @property
    def names(self) -> list[str]:
        return list(self.saes)

    def sae(self, name: str):
        if name not in self.saes:
            raise ValueError(f"model name {name!r} is unknown; allowed: {', '.join(self.saes)}")
        return self.saes[name]

    def encode(self, name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pre_codes [N, C] before ReLU/TopK, codes [N, C] with at most top_k non-zeros per row)."""
        return self.sae(name).encode(x)

    def decode(self, name: str, z: torch.Tensor) -> torch.Tensor:
        """[N, D_name] model ``name``'s activations reconstructed from shared codes z [N, C]."""
        return self.sae(name).decode(z)

    def dictionary(self, name: str) -> torch.Tensor:
        """[C, D_name] model ``name``'s atoms (l2-normalised rows)."""
        return self.sae(name).get_dictionary()


def usae_loss(usae: UniversalSAE, batch: dict[str, torch.Tensor], source: str,
              cross_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Encode ``batch[source]``; every model decodes its own activations from those codes.

    loss = sum_j w_j * mean((A_j - D_j(E_source(A_source)))^2), w_source = 1, others ``cross_weight``
    (1 in the paper). batch: {model name: [B, D_j]} of the same B images. Returns (loss, {j: mse_j}).
    """
    if set(batch) != set(usae.names):
        raise ValueError(f"batch must hold every model's activations {usae.names}, got {list(batch)}")
    if len({len(x) for x in batch.values()}) != 1:
        raise ValueError(f"batch tensors must hold the same images (same N), got "
                         f"{ {k: len(v) for k, v in batch.items()} }")
    check_number("cross_weight", cross_weight, 0)
    ### BEGIN SOLUTION
    _, codes = usae.encode(source, batch[source])
    errors = {target: ((batch[target] - usae.decode(target, codes)) ** 2).mean() for target in usae.names}
    loss = sum(error * (1.0 if target == source else cross_weight) for target, error in errors.items())
    return loss, {target: error.item() for target, error in errors.items()}
    ### END SOLUTION


def usae_step(usae: UniversalSAE, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
              sources: list[str], cross_weight: float = 1.0, max_grad_norm: float = 1.0) -> tuple[float, float]:
    """One optimisation step: loss = sum over ``sources`` of ``usae_loss(batch, source, cross_weight)``;
    the parameters of the sources' SAEs (and only those) updated on it with ``pa5.optim.optimizer_step``,
    their gradient clipped to ``max_grad_norm``. ``optimizer`` holds every SAE's parameters. The
    paper's schedule passes one random source (only its encoder and dictionary move, although every
    decoder is in the loss); the course's passes every model. Every parameter's ``.grad`` is cleared
    after the step (set to None; ``optimizer_step`` does it), so nothing leaks into the next step.
    Returns (loss, gradient norm before clipping)."""
    if not sources or not set(sources) <= set(usae.names):
        raise ValueError(f"sources must be a non-empty list of {usae.names}, got {sources!r}")
    check_number("max_grad_norm", max_grad_norm, 0, low_open=True)
    ### BEGIN SOLUTION
    loss = sum(usae_loss(usae, batch, source, cross_weight)[0] for source in sources)
    trained = [p for source in sources for p in usae.sae(source).parameters()]
    grad_norm = optimizer_step(loss, trained, optimizer, max_grad_norm)
    return loss.item(), grad_norm
    ### END SOLUTION


@torch.no_grad()
def all_codes(sae, features: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """[N, C] codes of ``features`` [N, D] under one model's SAE (``usae.sae(name)`` or a TopKSAE), in
    eval mode, computed on the SAE's device and returned on the CPU (for the analysis)."""
    sae.eval()
    device = module_device(sae)
    return torch.cat([sae.encode(part.to(device))[1].cpu() for part in features.split(batch_size)])


@torch.no_grad()
def cross_r2(saes, features: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """{"src->tgt": {"global_mean", "variance_weighted"}}: R^2 of model tgt's activations decoded by
    tgt's SAE from the codes of model src's SAE on the same images (src == tgt: ordinary
    reconstruction). ``saes``: {model name: SAE} - ``usae.saes``, or independent SAEs, whose
    concept indices mean nothing across models."""
    out = {}
    for source in features:
        codes = all_codes(saes[source], features[source])
        for target in features:
            x_hat = torch.cat([saes[target].decode(part.to(module_device(saes[target]))).cpu() for part in codes.split(4096)])
            out[f"{source}->{target}"] = {"global_mean": r2_global_mean(features[target], x_hat),
                                          "variance_weighted": r2_variance_weighted(features[target], x_hat)}
    return out


def usae_epoch(usae: UniversalSAE, optimizer: torch.optim.Optimizer, features: dict[str, torch.Tensor],
               config: SAEConfig, picker: random.Random, generator: torch.Generator) -> tuple[list[float], list[float]]:
    """One epoch of ``config.schedule`` over ``features`` ({model name: [N, D_i]}, row n = image n in
    every model), one :func:`usae_step` per batch.

    ``usae.train()``, then the rows in the order ``torch.randperm(N, generator=generator)``, split into
    batches of ``config.batch_size`` (a last batch of fewer than 2 rows is skipped: BatchNorm needs
    two), each batch's rows of every model moved to the USAE's device. The sources of a step: the
    paper's schedule one model, ``picker.choice(usae.names)``, with cross weight 1; the course's every
    model (``usae.names``) with ``config.cross_weight``; both with ``config.max_grad_norm``. ``picker``
    and ``generator`` carry on from epoch to epoch (:func:`train_usae` makes them from its seed).

    Returns (each step's loss, each step's gradient norm).
    """
    ### BEGIN SOLUTION
    usae.train()
    device, paper = module_device(usae), config.schedule == "paper"
    losses, grad_norms = [], []
    for indices in torch.randperm(len(next(iter(features.values()))), generator=generator).split(config.batch_size):
        if len(indices) < 2:  # BatchNorm needs two rows
            continue
        batch = {k: v[indices].to(device) for k, v in features.items()}
        sources = [picker.choice(usae.names)] if paper else usae.names
        loss, grad_norm = usae_step(usae, optimizer, batch, sources, 1.0 if paper else config.cross_weight,
                                    config.max_grad_norm)
        losses.append(loss), grad_norms.append(grad_norm)
    return losses, grad_norms
    ### END SOLUTION


def train_usae(usae: UniversalSAE, features: dict[str, torch.Tensor], config: SAEConfig, seed: int = 0,
               monitor_rows: int = 1000) -> list[dict]:
    """Train ``usae`` on ``features`` ({model name: [N, D_i]}, row n = image n in every model) with
    ``config.schedule``.

    AdamW (``config.lr``, ``config.weight_decay`` as the official code), constant lr. Logs per epoch:
    mean loss and gradient norm, R^2 (both definitions) for every (source, target) on the first
    ``monitor_rows`` rows, the dead-concept fraction on them, and L0 (mean non-zero codes per input).
    """
    if set(features) != set(usae.names):
        raise ValueError(f"features must hold every model's activations {usae.names}, got {list(features)}")
    n = {len(x) for x in features.values()}
    if len(n) != 1:
        raise ValueError(f"features must hold the same images for every model, got N = { {k: len(v) for k, v in features.items()} }")
    n = n.pop()
    if n < 2:
        raise ValueError(f"features must hold at least 2 images (BatchNorm needs two rows per step), got N = {n}")
    check_int("config.batch_size", config.batch_size, 2)
    optimizer = torch.optim.AdamW(usae.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    picker, generator = random.Random(seed), torch.Generator().manual_seed(seed)
    monitor = {k: v[:monitor_rows] for k, v in features.items()}
    history = []
    for epoch in (bar := tqdm(range(config.epochs), desc=f"USAE ({config.schedule})", unit="epoch")):
        losses, grad_norms = usae_epoch(usae, optimizer, features, config, picker, generator)
        r2 = cross_r2(usae.saes, monitor)
        codes = [all_codes(usae.sae(name), monitor[name]) for name in usae.names]
        record = {"epoch": epoch + 1, "loss": sum(losses) / len(losses),
                  "grad_norm": sum(grad_norms) / len(grad_norms), "r2": r2,
                  "dead_fraction": dead_fraction(codes),
                  "l0": sum((z > 0).sum(-1).float().mean().item() for z in codes) / len(codes)}
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
    usae.eval()
    return history


def train_independent(features: dict[str, torch.Tensor], config: SAEConfig, seed: int = 0, device="cpu") -> dict:
    """The baseline: one TopKSAE per model, same sizes, epochs and optimiser, trained alone with
    overcomplete's ``train_sae`` (MSE; its own loop clips each step's gradient at
    ``config.max_grad_norm``) on ``device``. Returns {model name: trained TopKSAE} in eval mode."""
    from overcomplete.sae import train_sae
    from torch.utils.data import DataLoader, TensorDataset

    check_int("config.batch_size", config.batch_size, 2)
    saes = {}
    for name, x in features.items():
        if len(x) < 2:
            raise ValueError(f"features[{name!r}] must hold at least 2 rows (BatchNorm), got {len(x)}")
        torch.manual_seed(seed)
        sae = make_sae(x.shape[1], config.nb_concepts, config.top_k, device)
        loader = DataLoader(TensorDataset(x), batch_size=config.batch_size, shuffle=True,
                            drop_last=len(x) > config.batch_size,  # a partial batch only when it is the only one
                            generator=torch.Generator().manual_seed(seed))
        optimizer = torch.optim.AdamW(sae.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        train_sae(sae, loader, lambda x, x_hat, *_: ((x - x_hat) ** 2).mean(), optimizer, nb_epochs=config.epochs,
                  clip_grad=config.max_grad_norm, monitoring=0, device=str(device))
        saes[name] = sae.eval()
    return saes


class AlignedSAE(torch.nn.Module):
    """An independent SAE whose concepts are renumbered: shared index k is its concept ``order[k]``.

    encode(x) -> (pre_codes[:, order], codes[:, order]); decode(z) -> its own decode of z with each
    shared index put back in its place. Wrapping the other models' SAEs so that their indices follow
    the first model's gives independent SAEs one (matched) concept space: the fair "no shared
    dictionary" baseline for cross-model reconstruction and firing entropy."""

    def __init__(self, sae, order: torch.Tensor):
        super().__init__()
        order = torch.as_tensor(order).long().cpu()
        if sorted(order.tolist()) != list(range(len(order))):
            raise ValueError(f"order must be a permutation of range({len(order)})")
        self.sae = sae
        self.register_buffer("order", order, persistent=False)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre_codes, codes = self.sae.encode(x)
        order = self.order.to(codes.device)
        return pre_codes[:, order], codes[:, order]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        own = torch.empty_like(z)
        own[:, self.order.to(z.device)] = z  # shared index k -> own concept order[k]
        return self.sae.decode(own)

    def get_dictionary(self) -> torch.Tensor:
        return self.sae.get_dictionary()[self.order.to(module_device(self.sae))]


def correlation_matrix(codes_a: torch.Tensor, codes_b: torch.Tensor) -> torch.Tensor:
    """[C_a, C_b] Pearson correlation over the N inputs of every concept of a with every concept of b
    (codes [N, C]); 0 where a code is constant (a dead concept correlates with nothing)."""
    a = codes_a.double() - codes_a.double().mean(0)
    b = codes_b.double() - codes_b.double().mean(0)
    a, b = a / a.norm(dim=0).clamp(min=1e-12), b / b.norm(dim=0).clamp(min=1e-12)  # a constant column is 0
    return (a.T @ b).float()


def align_by_code_correlation(saes: dict, features: dict[str, torch.Tensor], rows: int = 10_000) -> tuple[dict, dict[str, float]]:
    """Renumber every SAE after the first so that its concepts follow the first one's: a one-to-one
    matching (Hungarian algorithm) of the concepts whose code is not constant on the first ``rows``
    rows of ``features`` (train images; a bound on memory: the full profile's 8,192 concepts) -
    correlation is defined for them only, so this is "z > 0 somewhere", not the firing threshold -
    maximising the summed correlation of their codes; the rest pair up in index order.
    Returns ({model name: SAE or AlignedSAE}, {model name: mean correlation of the matched pairs})."""
    from scipy.optimize import linear_sum_assignment

    check_int("rows", rows, 2)
    names = list(saes)
    reference = all_codes(saes[names[0]], features[names[0]][:rows])
    aligned, quality = {names[0]: saes[names[0]]}, {}
    for name in names[1:]:
        codes = all_codes(saes[name], features[name][:rows])
        live_reference, live_codes = (reference > 0).any(0).nonzero().flatten(), (codes > 0).any(0).nonzero().flatten()
        correlation = correlation_matrix(reference[:, live_reference], codes[:, live_codes])
        matched_rows, matched_columns = linear_sum_assignment(correlation.numpy(), maximize=True)
        order = torch.full((reference.shape[1],), -1, dtype=torch.long)
        order[live_reference[matched_rows]] = live_codes[matched_columns]
        unused = sorted(set(range(len(order))) - set(order.tolist()))
        order[order < 0] = torch.tensor(unused, dtype=torch.long)
        aligned[name] = place(AlignedSAE(saes[name], order), module_device(saes[name]))
        quality[name] = correlation[matched_rows, matched_columns].mean().item()
    return aligned, quality
