"""Training runs, gradient-variance measurement, the side-by-side timing and the outputs of
``python -m gradext demo``."""

from __future__ import annotations

import csv
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import gradext
from gradext import reference
from gradext.demo import distributed
from gradext.demo.data import load_binary_images
from gradext.demo.models import DISCRETE_ESTIMATORS, DiscreteVAE, GaussianVAE

try:
    from tqdm import tqdm
except ImportError:  # progress bars are a nicety: plain iteration without tqdm

    def tqdm(iterable, **_):
        return iterable


@dataclass
class DemoConfig:
    data: str | None = None
    epochs: int = 60
    batch_size: int = 100
    num_samples: int = 8  # K: samples per image for the multi-sample estimators, IWAE
    eval_samples: int = 64
    variance_draws: int = 50  # gradient draws at fixed parameters
    timing_steps: int = 40  # per implementation, split over timing_rounds interleaved rounds
    timing_rounds: int = 8
    # 3e-3 and 60 epochs: at 1e-3 / 30 epochs the discrete VAE was still in the collapsed
    # state (test negative ELBO 24.3, the pixel marginals) that it leaves later (20.9).
    learning_rate: float = 3e-3
    seed: int = 0
    out: str = "demo_out"
    estimators: tuple = DISCRETE_ESTIMATORS
    progress: bool = True


@dataclass
class RunResult:
    model: str
    estimator: str
    metrics: dict
    curve: list = field(default_factory=list)  # (epoch, train objective, test negative ELBO)


def _make_model(name: str, pixels: int, estimator: str) -> torch.nn.Module:
    if name == "gaussian_vae":
        return GaussianVAE(pixels)
    return DiscreteVAE(pixels, estimator=estimator)


def _step(model, optimizer, x, estimator, cfg, ops) -> float:
    optimizer.zero_grad(set_to_none=True)
    objective = model(x, ops, estimator, cfg.num_samples).mean()
    (-objective).backward()
    optimizer.step()
    return objective.item()


def train(
    name: str, estimator: str, train_x, test_x, cfg: DemoConfig, ctx: distributed.Context
) -> RunResult:
    """Trains one model; under torchrun each rank takes its shard of every epoch (same global
    batch size), DDP averages the gradients, and rank 0 evaluates and measures."""
    device = ctx.device
    torch.manual_seed(cfg.seed)  # the same initial parameters on every rank
    model = _make_model(name, train_x.shape[1], estimator).to(device)
    trained = torch.nn.parallel.DistributedDataParallel(model) if ctx.distributed else model
    torch.manual_seed(distributed.noise_seed(cfg.seed, ctx.rank))  # independent noise per rank
    optimizer = torch.optim.Adam(trained.parameters(), lr=cfg.learning_rate)
    test_x = test_x.to(device)
    result = RunResult(name, estimator, {})
    evaluate = lambda: model.evaluate(test_x, gradext, cfg.eval_samples)["test_nelbo"]  # noqa: E731
    if ctx.is_main:
        result.curve.append((0, float("nan"), evaluate()))
    shard_size = train_x.shape[0] // ctx.world_size
    batch_size = max(1, cfg.batch_size // ctx.world_size)
    epochs = range(1, cfg.epochs + 1)
    progress = cfg.progress and ctx.is_main
    for epoch in tqdm(epochs, desc=f"{name}/{estimator}", disable=not progress, leave=False):
        # One permutation for all ranks (seeded by the epoch), split into equal shards.
        order = torch.randperm(
            train_x.shape[0], generator=torch.Generator().manual_seed(cfg.seed * 10_007 + epoch)
        )
        shard = order[ctx.rank :: ctx.world_size][:shard_size]
        total, batches = 0.0, 0
        for start in range(0, shard_size, batch_size):
            x = train_x[shard[start : start + batch_size]].to(device)
            total += _step(trained, optimizer, x, estimator, cfg, gradext)
            batches += 1
        if ctx.is_main:
            result.curve.append((epoch, total / batches, evaluate()))
    if ctx.is_main:
        result.metrics.update(model.evaluate(test_x, gradext, cfg.eval_samples))
        result.metrics["encoder_grad_variance"] = gradient_variance(model, test_x, estimator, cfg)
        result.metrics.update(time_steps(name, model, train_x, estimator, cfg, device))
    distributed.barrier(ctx)
    return result


def gradient_variance(model, x, estimator: str, cfg: DemoConfig) -> float:
    """Mean over the encoder's parameters of the variance of their gradient over repeated draws
    of the latents, at fixed parameters and a fixed batch."""
    params = list(model.encoder_parameters())
    draws = []
    for _ in range(cfg.variance_draws):
        objective = model(x[: cfg.batch_size], gradext, estimator, cfg.num_samples).mean()
        grads = torch.autograd.grad(objective, params)
        draws.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(draws).var(0).mean().item()


def time_steps(
    name: str, model, train_x, estimator: str, cfg: DemoConfig, device
) -> dict[str, float]:
    """Training samples per second on gradext's ops and on plain PyTorch (gradext.reference), on
    copies of the trained model. The two run interleaved in cfg.timing_rounds rounds of
    timing_steps / rounds steps each, in alternating order, so that a change in the machine's
    load falls on both alike; the result is the median rate of each and the median, lowest and
    highest of the per-round speed-ups (timed one after the other, once each, the printed
    speed-up of the same code ranged from 0.07x to 1.7x on a loaded machine)."""
    x = train_x[: cfg.batch_size].to(device)
    runs = {}
    for label, ops in (("gradext", gradext), ("pytorch", reference)):
        clone = _make_model(name, train_x.shape[1], estimator).to(device)
        clone.load_state_dict(model.state_dict())
        optimizer = torch.optim.Adam(clone.parameters(), lr=cfg.learning_rate)
        for _ in range(3):  # warm-up
            _step(clone, optimizer, x, estimator, cfg, ops)
        runs[label] = (clone, optimizer, ops)
    rounds = max(1, cfg.timing_rounds)
    steps = max(1, cfg.timing_steps // rounds)
    rates = {label: [] for label in runs}
    for r in range(rounds):
        for label in ("gradext", "pytorch") if r % 2 == 0 else ("pytorch", "gradext"):
            clone, optimizer, ops = runs[label]
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(steps):
                _step(clone, optimizer, x, estimator, cfg, ops)
            if device.type == "cuda":
                torch.cuda.synchronize()
            rates[label].append(steps * x.shape[0] / (time.perf_counter() - start))
    speedups = [g / p for g, p in zip(rates["gradext"], rates["pytorch"])]
    return {
        "samples_per_s_gradext": statistics.median(rates["gradext"]),
        "samples_per_s_pytorch": statistics.median(rates["pytorch"]),
        "speedup": statistics.median(speedups),
        "speedup_min": min(speedups),
        "speedup_max": max(speedups),
    }


def run_demo(cfg: DemoConfig) -> list[RunResult]:
    """Trains every model and estimator; rank 0 prints the table and writes the outputs."""
    ctx = distributed.start()
    try:
        return _run(cfg, ctx)
    finally:
        distributed.stop(ctx)


def _run(cfg: DemoConfig, ctx: distributed.Context) -> list[RunResult]:
    train_x, test_x = load_binary_images(cfg.data, seed=cfg.seed)
    if ctx.is_main:
        print(
            f"data: {train_x.shape[0]} train / {test_x.shape[0]} test images of "
            f"{train_x.shape[1]} pixels; device: {ctx.device}; ranks: {ctx.world_size}; "
            f"extension: {gradext.has_extension()}"
        )
    # Each rank's noise seed and first Gaussian draw, gathered: the ranks' noise must differ.
    seed = distributed.noise_seed(cfg.seed, ctx.rank)
    probe = gradext.gaussian_rsample(
        torch.zeros(4), torch.zeros(4), generator=torch.Generator().manual_seed(seed)
    )
    ranks = distributed.gather_rows(ctx, [ctx.rank, seed, *probe.tolist()])
    runs = [("gaussian_vae", "pathwise")] + [("discrete_vae", e) for e in cfg.estimators]
    results = [train(name, estimator, train_x, test_x, cfg, ctx) for name, estimator in runs]
    if ctx.is_main:
        out = Path(cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        write_outputs(results, out)
        with open(out / "ranks.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["rank", "noise_seed", "first_normals"])
            writer.writerows([r[0], r[1], " ".join(f"{v:.6f}" for v in r[2:])] for r in ranks)
        print(format_table(results))
        print(
            f"\nwrote {out / 'results.csv'}, {out / 'curves.csv'}, {out / 'ranks.csv'} and "
            f"the PNG plots in {out}"
        )
    return results


COLUMNS = (
    "test_nelbo",
    "test_iwae_nll",
    "encoder_grad_variance",
    "samples_per_s_gradext",
    "samples_per_s_pytorch",
    "speedup",
    "speedup_min",
    "speedup_max",
)


def format_table(results: list[RunResult]) -> str:
    lines = [
        "| model | estimator | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for r in results:
        cells = [f"{r.metrics[c]:.4g}" if c in r.metrics else "" for c in COLUMNS]
        lines.append(f"| {r.model} | {r.estimator} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(results: list[RunResult], out: Path) -> None:
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "estimator", *COLUMNS])
        for r in results:
            writer.writerow([r.model, r.estimator, *(r.metrics.get(c, "") for c in COLUMNS)])
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "estimator", "epoch", "train_objective", "test_nelbo"])
        for r in results:
            writer.writerows([r.model, r.estimator, *point] for point in r.curve)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        epochs = [p[0] for p in r.curve]
        ax.plot(epochs, [p[2] for p in r.curve], label=f"{r.model} / {r.estimator}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test negative ELBO (nats)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=120)
    plt.close(fig)
    discrete = [r for r in results if r.model == "discrete_vae"]
    if discrete:
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.bar(
            [r.estimator for r in discrete], [r.metrics["encoder_grad_variance"] for r in discrete]
        )
        ax.set_yscale("log")
        ax.set_ylabel("encoder gradient variance (mean per parameter)")
        fig.tight_layout()
        fig.savefig(out / "gradient_variance.png", dpi=120)
        plt.close(fig)
