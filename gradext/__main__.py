"""Command line of gradext: ``python -m gradext <command>``.

demo       train a Gaussian VAE and a discrete VAE (seven gradient estimators) on the digits
           that ship with scikit-learn, with gradext's ops and beside plain PyTorch;
           data-parallel under torchrun (gradext/demo/distributed.py)

variance   the estimator lab: mean and variance of the pathwise, score-function and
           leave-one-out score-function gradients for z ~ N(mu, 1), f(z) = z^2, and of the
           implicit, score-function and generalized reparameterization gradients for
           z ~ Gamma(alpha, 1), and of every discrete-latent estimator (REINFORCE, RLOO,
           Concrete, straight-through, REBAR, RELAX) on the REBAR papers' Bernoulli toy
           problem, beside the analytic values
bench      every op family's benchmark (gradext/bench/): one table, a CSV and a PNG chart of the
           speed-up over eager PyTorch
"""

from __future__ import annotations

import argparse
import sys

import torch


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _at_least_two(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 2 (leave-one-out needs two samples), got {value}"
        )
    return value


def _variance(args: argparse.Namespace) -> int:
    from gradext import variance_lab

    rows = []
    for mu in args.mu:
        for k in args.samples:
            estimators = [e for e in variance_lab.ESTIMATORS if k >= 2 or e != "score_function_loo"]
            rows += variance_lab.gradient_statistics(
                variance_lab.square, mu, k, args.replicates, estimators, args.seed
            )
    print(
        "d/d mu E[z^2], z ~ N(mu, 1): true gradient 2 mu; single-sample variances 4 (pathwise)"
        " and mu^4 + 14 mu^2 + 15 (score function); K samples divide them by K."
    )
    print(f"{args.replicates} replicates per row; ± one standard error.\n")
    print(variance_lab.format_table(rows))
    rows = []
    for alpha in args.alpha:
        for k in args.samples:
            estimators = [
                e for e in variance_lab.GAMMA_ESTIMATORS if k >= 2 or e != "score_function_loo"
            ]
            rows += variance_lab.gamma_gradient_statistics(
                variance_lab.square, alpha, k, args.replicates, estimators, args.seed
            )
    print(
        "\nd/d alpha E[z^2], z ~ Gamma(alpha, 1), where no location-scale reparameterization "
        "exists: true gradient 2 alpha + 1; implicit reparameterization (gamma_rsample), the "
        "score function with and without the leave-one-out baseline, and the generalized "
        "reparameterization gradient (Ruiz, Titsias and Blei 2016).\n"
    )
    print(variance_lab.format_table(rows, variance_lab.analytic_gamma_square, "alpha"))
    for offset in (0.0, 1.0):
        f = variance_lab.toy_objective(0.45, offset)
        tuned = variance_lab.tune_control_variates(f, 0.4, seed=args.seed)
        rows = variance_lab.bernoulli_gradient_statistics(
            f, 0.4, max(2, min(args.samples)), args.replicates, seed=args.seed, tuned=tuned
        )
        print(
            f"\nd/d theta E[(b - 0.45)^2 + {offset:g}], b ~ Bernoulli(sigmoid(theta)), the REBAR "
            "and RELAX papers' toy problem: every discrete-latent estimator, one sample each (K "
            "for the leave-one-out baseline); concrete and straight-through are biased. "
            + (f"eta, tau tuned: {tuned.rebar[0].item():.3g}, {tuned.rebar[1].item():.3g}.\n")
        )
        print(variance_lab.format_table(rows, variance_lab.analytic_bernoulli(f), "theta"))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gradext.demo.models import DISCRETE_ESTIMATORS
    from gradext.demo.run import DemoConfig, run_demo

    unknown = set(args.estimators) - set(DISCRETE_ESTIMATORS)
    if unknown:
        raise SystemExit(
            f"python -m gradext demo: unknown estimators {sorted(unknown)}; "
            f"choose from {', '.join(DISCRETE_ESTIMATORS)}"
        )
    config = DemoConfig(
        data=args.data,
        epochs=args.epochs,
        num_samples=args.samples,
        seed=args.seed,
        out=args.out,
        estimators=tuple(args.estimators),
        progress=not args.no_progress,
    )
    if args.quick:  # a smoke run: fewer evaluation samples, gradient draws and timed steps
        config.eval_samples, config.variance_draws = 8, 4
        config.timing_steps, config.timing_rounds = 4, 2
    try:
        run_demo(config)
    except (FileNotFoundError, ValueError, ImportError) as error:  # bad --data: say why, no trace
        raise SystemExit(f"python -m gradext demo: {error}") from None
    return 0


def _bench(args: argparse.Namespace) -> int:
    from gradext.bench import suite

    try:
        return suite.run(args.device, args.quick, args.family, args.out)
    except ValueError as error:  # an unknown family, or no CUDA device for --device cuda
        raise SystemExit(f"python -m gradext bench: {error}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gradext", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="VAE training on real data with every estimator")
    demo.add_argument(
        "--data",
        help="a .npy/.npz array (N, D) of values in [0, 1]; default: "
        "scikit-learn's digits, binarized",
    )
    demo.add_argument("--epochs", type=_positive_int, default=60)
    demo.add_argument(
        "--samples",
        "-K",
        type=_at_least_two,
        default=8,
        help="samples per image for RLOO, VIMCO, REINFORCE and the IWAE bound",
    )
    demo.add_argument(
        "--estimators",
        nargs="+",
        default=["st_gumbel", "gumbel_softmax", "rloo", "vimco", "reinforce"],
    )
    demo.add_argument("--out", default="demo_out", help="folder for the CSV files and plots")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-progress", action="store_true")
    demo.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: few evaluation samples, gradient draws and timed steps",
    )
    demo.set_defaults(run=_demo)
    variance = commands.add_parser(
        "variance", help="the estimator lab (1-D Gaussian and Gamma, f = z^2)"
    )
    variance.add_argument("--mu", type=float, nargs="+", default=[0.0, 1.0, 3.0])
    variance.add_argument(
        "--alpha", type=float, nargs="+", default=[0.5, 3.0], help="Gamma concentrations"
    )
    variance.add_argument(
        "--samples",
        "-K",
        type=_positive_int,
        nargs="+",
        default=[1, 8],
        help="samples per estimate (the leave-one-out estimator needs K >= 2)",
    )
    variance.add_argument("--replicates", type=_positive_int, default=100_000)
    variance.add_argument("--seed", type=int, default=0)
    variance.set_defaults(run=_variance)
    bench = commands.add_parser("bench", help="every op's benchmark, one table and chart")
    bench.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    bench.add_argument("--quick", action="store_true", help="the target sizes only")
    bench.add_argument("--family", nargs="+", help="only these op families (default: all)")
    bench.add_argument(
        "--out",
        default="benchmarks/results",
        help="results folder (default: %(default)s under the current directory)",
    )
    bench.set_defaults(run=_bench)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
