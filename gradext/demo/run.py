"""Training runs, gradient-variance measurement, the side-by-side timing and the outputs of
``python -m gradext demo``."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import gradext
from gradext import reference
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
    epochs: int = 30
    batch_size: int = 100
    num_samples: int = 8          # K: samples per image for the multi-sample estimators, IWAE
    eval_samples: int = 64
    variance_draws: int = 50      # gradient draws at fixed parameters
    timing_steps: int = 20
    learning_rate: float = 1e-3
    tau: float = 1.0
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


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() and gradext.has_cuda() else "cpu")


def _make_model(name: str, pixels: int) -> torch.nn.Module:
    return GaussianVAE(pixels) if name == "gaussian_vae" else DiscreteVAE(pixels)


def _step(model, optimizer, x, estimator, cfg, ops) -> float:
    optimizer.zero_grad(set_to_none=True)
    objective = model.objective(x, ops, estimator, cfg.num_samples).mean()
    (-objective).backward()
    optimizer.step()
    return objective.item()


def train(name: str, estimator: str, train_x, test_x, cfg: DemoConfig, device) -> RunResult:
    torch.manual_seed(cfg.seed)
    model = _make_model(name, train_x.shape[1]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    test_x = test_x.to(device)
    result = RunResult(name, estimator, {})
    result.curve.append((0, float("nan"), model.evaluate(test_x, gradext, cfg.eval_samples)["test_nelbo"]))
    epochs = range(1, cfg.epochs + 1)
    for epoch in tqdm(epochs, desc=f"{name}/{estimator}", disable=not cfg.progress, leave=False):
        order = torch.randperm(train_x.shape[0])
        total = 0.0
        batches = 0
        for start in range(0, train_x.shape[0], cfg.batch_size):
            x = train_x[order[start:start + cfg.batch_size]].to(device)
            total += _step(model, optimizer, x, estimator, cfg, gradext)
            batches += 1
        test_nelbo = model.evaluate(test_x, gradext, cfg.eval_samples)["test_nelbo"]
        result.curve.append((epoch, total / batches, test_nelbo))
    result.metrics.update(model.evaluate(test_x, gradext, cfg.eval_samples))
    result.metrics["encoder_grad_variance"] = gradient_variance(model, test_x, estimator, cfg)
    result.metrics.update(time_steps(name, model, train_x, estimator, cfg, device))
    return result


def gradient_variance(model, x, estimator: str, cfg: DemoConfig) -> float:
    """Mean over the encoder's parameters of the variance of their gradient over repeated draws
    of the latents, at fixed parameters and a fixed batch."""
    params = list(model.encoder_parameters())
    draws = []
    for _ in range(cfg.variance_draws):
        objective = model.objective(x[: cfg.batch_size], gradext, estimator, cfg.num_samples).mean()
        grads = torch.autograd.grad(objective, params)
        draws.append(torch.cat([g.flatten() for g in grads]))
    return torch.stack(draws).var(0).mean().item()


def time_steps(name: str, model, train_x, estimator: str, cfg: DemoConfig,
               device) -> dict[str, float]:
    """Training steps per second on gradext's ops and on plain PyTorch (gradext.reference), on
    copies of the trained model, one after the other in the same process."""
    x = train_x[: cfg.batch_size].to(device)
    rates = {}
    for label, ops in (("gradext", gradext), ("pytorch", reference)):
        clone = _make_model(name, train_x.shape[1]).to(device)
        clone.load_state_dict(model.state_dict())
        optimizer = torch.optim.Adam(clone.parameters(), lr=cfg.learning_rate)
        for _ in range(3):  # warm-up
            _step(clone, optimizer, x, estimator, cfg, ops)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(cfg.timing_steps):
            _step(clone, optimizer, x, estimator, cfg, ops)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates[label] = cfg.timing_steps * x.shape[0] / (time.perf_counter() - start)
    return {"samples_per_s_gradext": rates["gradext"], "samples_per_s_pytorch": rates["pytorch"],
            "speedup": rates["gradext"] / rates["pytorch"]}


def run_demo(cfg: DemoConfig) -> list[RunResult]:
    device = _device()
    train_x, test_x = load_binary_images(cfg.data, seed=cfg.seed)
    print(f"data: {train_x.shape[0]} train / {test_x.shape[0]} test images of {train_x.shape[1]} "
          f"pixels; device: {device}; extension: {gradext.has_extension()}")
    runs = [("gaussian_vae", "pathwise")] + [("discrete_vae", e) for e in cfg.estimators]
    results = [train(name, estimator, train_x, test_x, cfg, device) for name, estimator in runs]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(results, out)
    print(format_table(results))
    print(f"\nwrote {out / 'results.csv'}, {out / 'curves.csv'} and the PNG plots in {out}")
    return results


COLUMNS = ("test_nelbo", "test_iwae_nll", "encoder_grad_variance", "samples_per_s_gradext",
           "samples_per_s_pytorch", "speedup")


def format_table(results: list[RunResult]) -> str:
    lines = ["| model | estimator | " + " | ".join(COLUMNS) + " |",
             "|---|---|" + "---:|" * len(COLUMNS)]
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
        ax.bar([r.estimator for r in discrete], [r.metrics["encoder_grad_variance"] for r in discrete])
        ax.set_yscale("log")
        ax.set_ylabel("encoder gradient variance (mean per parameter)")
        fig.tight_layout()
        fig.savefig(out / "gradient_variance.png", dpi=120)
        plt.close(fig)
