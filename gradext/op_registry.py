"""The registry of gradext's ops: one entry per public op, which every cross-cutting check
iterates, so that adding an op here is what puts it under them.

Who reads it:
- tests/contracts/: opcheck of every dispatcher op, every dtype against float64 (first and second
  derivatives), torch.func (grad, jacrev), the eager entry against the registered path, the
  fallback against the kernels, activation checkpointing, and that every op of
  torch.ops.gradext belongs to an entry;
- ``python -m gradext bench`` (gradext/bench/): one benchmark module per family, in registry
  order;
- the CUDA smoke run under compute-sanitizer (``python -m gradext.bench.cuda_smoke``) and
  benchmarks/gpu_check.sh, which runs it, the CUDA tests and the benchmarks.

An entry names its family (the module gradext/<family>.py, csrc/ops/<family>.cpp, tests/<family>/,
gradext/bench/<family>.py), every dispatcher op the public function runs on (a random op's
sampling op first), and three ways to
call it: ``example`` (x -> the public function's differentiable output, the noise fixed by a
seeded generator), ``registered`` (the same through the dispatcher op directly, which bypasses
the eager entry), ``opcheck_samples`` (arguments for torch.library.opcheck of each dispatcher
op) and ``smoke`` (a run of every kernel path: shape classes, dtypes, forward and backward).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator

import torch

import gradext

# The input of ``example``: a [3, 4] tensor (3 rows of 4 categories; 3 samples of 4 datapoints).
EXAMPLE_SHAPE = (3, 4)
DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


@dataclasses.dataclass(frozen=True)
class OpCase:
    name: str
    family: str
    dispatcher_ops: tuple[str, ...]
    random: bool
    example: Callable[[torch.Tensor], torch.Tensor]
    registered: Callable[[torch.Tensor], torch.Tensor]
    opcheck_samples: Callable[[torch.device], Iterator[tuple[str, tuple]]]
    smoke: Callable[[torch.device, torch.dtype], None]
    # Whether the example's second derivative exists (double backward through every input).
    second_order: bool = True

    @property
    def function(self) -> Callable:
        return getattr(gradext, self.name)


def _seeded(seed: int = 7, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _leaf(*shape, device, dtype=torch.float32, scale=1.0):
    return (scale * torch.randn(*shape, device=device, dtype=dtype)).requires_grad_()


def _positive_leaf(*shape, device, dtype=torch.float32):
    return (torch.rand(*shape, device=device, dtype=dtype) * 3 + 0.2).requires_grad_()


def _backward_with_random_grad(output):
    output.backward(torch.randn_like(output))


# --- gaussian_rsample -----------------------------------------------------------------------


# The family's two parametrizations share their checks: the op's name and how its spread is made
# (a log-variance of any sign, or a positive scale).


def _gaussian_spread(op, *shape, device, dtype=torch.float32):
    if op == "normal_rsample":
        return _positive_leaf(*shape, device=device, dtype=dtype)
    return _leaf(*shape, device=device, dtype=dtype, scale=0.5)


def _gaussian_family_opcheck(op, device):
    ops = torch.ops.gradext
    mean = _leaf(4, 5, device=device)
    spread = _gaussian_spread(op, 5, device=device)
    yield op, (mean, spread, None)
    yield op, (mean, spread, 3)
    yield f"_{op}_seeded", (mean, spread, 3, 17, 4)
    z, state = getattr(ops, f"_{op}_seeded")(mean, spread, 3, 17, 4)
    yield f"_{op}_replay", (mean, spread, 3, state)
    # Inputs that require grad: opcheck then checks the backward op's own autograd (its
    # derivative, for double backward) under AOTAutograd too.
    grad = torch.randn_like(z).requires_grad_()
    yield f"_{op}_backward", (grad, spread, state, list(mean.shape), True, True)


def _gaussian_family_smoke(op, device, dtype):
    for mean_shape, spread_shape, k in [
        ((64, 32), (64, 32), 3),  # dense kernels
        ((7, 5), (5,), None),  # strided kernels, numel not a multiple of 4
        ((33,), (33,), 2),  # dense shape, ragged total
        ((0, 4), (0, 4), 2),  # empty
    ]:
        mean = _leaf(*mean_shape, device=device, dtype=dtype)
        spread = _gaussian_spread(op, *spread_shape, device=device, dtype=dtype)
        _backward_with_random_grad(getattr(gradext, op)(mean, spread, k))
        seeded = getattr(torch.ops.gradext, f"_{op}_seeded")
        seeded(mean.detach(), spread.detach(), k, 1, 4)


GAUSSIAN_RSAMPLE = OpCase(
    name="gaussian_rsample",
    family="gaussian",
    dispatcher_ops=(
        "gaussian_rsample",
        "_gaussian_rsample_seeded",
        "_gaussian_rsample_replay",
        "_gaussian_rsample_backward",
    ),
    random=True,
    example=lambda x: gradext.gaussian_rsample(x, 0.5 * x, 2, generator=_seeded(device=x.device)),
    registered=lambda x: torch.ops.gradext.gaussian_rsample(
        x, 0.5 * x, 2, generator=_seeded(device=x.device)
    )[0],
    opcheck_samples=functools.partial(_gaussian_family_opcheck, "gaussian_rsample"),
    smoke=functools.partial(_gaussian_family_smoke, "gaussian_rsample"),
)


# --- normal_rsample (the Gaussian family's scale parametrization) ---------------------------


NORMAL_RSAMPLE = OpCase(
    name="normal_rsample",
    family="gaussian",
    dispatcher_ops=(
        "normal_rsample",
        "_normal_rsample_seeded",
        "_normal_rsample_replay",
        "_normal_rsample_backward",
    ),
    random=True,
    example=lambda x: gradext.normal_rsample(
        x, torch.exp(0.5 * x), 2, generator=_seeded(device=x.device)
    ),
    registered=lambda x: torch.ops.gradext.normal_rsample(
        x, torch.exp(0.5 * x), 2, generator=_seeded(device=x.device)
    )[0],
    opcheck_samples=functools.partial(_gaussian_family_opcheck, "normal_rsample"),
    smoke=functools.partial(_gaussian_family_smoke, "normal_rsample"),
)


# --- gamma_rsample --------------------------------------------------------------------------


def _gamma_opcheck(device):
    concentration = _positive_leaf(4, 5, device=device)
    rate = _positive_leaf(5, device=device)
    yield "gamma_rsample", (concentration, rate, None)
    yield "gamma_rsample", (concentration, rate, 3)
    yield "_gamma_rsample_seeded", (concentration, rate, 3, 17, 4)
    z = torch.ops.gradext._gamma_rsample_seeded(concentration.detach(), rate.detach(), 3, 17, 4)
    # grad, z and rate require grad: opcheck then checks the backward op's own autograd too
    # (its derivative in the concentration is not implemented, so that input does not).
    grad = torch.randn_like(z).requires_grad_()
    backward_args = (grad, z.requires_grad_(), concentration.detach(), rate, [True, True])
    yield "_gamma_rsample_backward", backward_args


def _gamma_smoke(device, dtype):
    for concentration_shape, rate_shape, k in [
        ((64, 32), (64, 32), 3),  # dense
        ((7, 5), (5,), None),  # broadcast rate
        ((33,), (), 2),  # scalar rate, ragged size
        ((0, 4), (0, 4), 2),  # empty
    ]:
        concentration = _positive_leaf(*concentration_shape, device=device, dtype=dtype)
        rate = _positive_leaf(*rate_shape, device=device, dtype=dtype)
        _backward_with_random_grad(gradext.gamma_rsample(concentration, rate, k))
        torch.ops.gradext._gamma_rsample_seeded(concentration.detach(), rate.detach(), k, 1, 4)


GAMMA_RSAMPLE = OpCase(
    name="gamma_rsample",
    family="gamma",
    dispatcher_ops=("gamma_rsample", "_gamma_rsample_seeded", "_gamma_rsample_backward"),
    random=True,
    example=lambda x: gradext.gamma_rsample(
        torch.exp(x), 2.0, 2, generator=_seeded(device=x.device)
    ),
    registered=lambda x: torch.ops.gradext.gamma_rsample(
        torch.exp(x), x.new_full((), 2.0), 2, generator=_seeded(device=x.device)
    ),
    opcheck_samples=_gamma_opcheck,
    smoke=_gamma_smoke,
    second_order=False,
)


# --- dirichlet_rsample, beta_rsample -------------------------------------------------------


def _dirichlet_opcheck(device):
    concentration = _positive_leaf(4, 5, device=device)
    yield "dirichlet_rsample", (concentration, None)
    yield "dirichlet_rsample", (concentration, 3)
    yield "_dirichlet_rsample_seeded", (concentration, 3, 17, 4)
    x, log_gamma = torch.ops.gradext._dirichlet_rsample_seeded(concentration.detach(), 3, 17, 4)
    # No input requires grad: the backward op has no derivative (a second backward raises).
    yield "_dirichlet_rsample_backward", (torch.randn_like(x), x, log_gamma, concentration.detach())


def _dirichlet_smoke(device, dtype):
    for shape, k in [((64, 32), 3), ((7, 5), None), ((33, 2), 2), ((3, 300), None), ((0, 4), 2)]:
        concentration = _positive_leaf(*shape, device=device, dtype=dtype)
        _backward_with_random_grad(gradext.dirichlet_rsample(concentration, k))
        torch.ops.gradext._dirichlet_rsample_seeded(concentration.detach(), k, 1, 4)
    strided = _positive_leaf(5, 7, device=device, dtype=dtype)
    _backward_with_random_grad(gradext.dirichlet_rsample(strided.t()))


def _beta_smoke(device, dtype):
    for shape1, shape0, k in [((64, 32), (32,), 3), ((7,), (7,), None), ((0, 4), (4,), 2)]:
        c1 = _positive_leaf(*shape1, device=device, dtype=dtype)
        c0 = _positive_leaf(*shape0, device=device, dtype=dtype)
        _backward_with_random_grad(gradext.beta_rsample(c1, c0, k))


DIRICHLET_RSAMPLE = OpCase(
    name="dirichlet_rsample",
    family="dirichlet",
    dispatcher_ops=(
        "dirichlet_rsample",
        "_dirichlet_rsample_seeded",
        "_dirichlet_rsample_backward",
    ),
    random=True,
    example=lambda x: gradext.dirichlet_rsample(
        torch.exp(x), 2, generator=_seeded(device=x.device)
    ),
    registered=lambda x: torch.ops.gradext.dirichlet_rsample(
        torch.exp(x), 2, generator=_seeded(device=x.device)
    )[0],
    opcheck_samples=_dirichlet_opcheck,
    smoke=_dirichlet_smoke,
    second_order=False,
)


def _beta_registered(x):
    concentration = torch.stack(torch.broadcast_tensors(torch.exp(x), x.new_full((), 2.0)), -1)
    x, _ = torch.ops.gradext.dirichlet_rsample(concentration, 2, generator=_seeded(device=x.device))
    return x[..., 0]


BETA_RSAMPLE = OpCase(
    name="beta_rsample",
    family="dirichlet",
    dispatcher_ops=("dirichlet_rsample",),
    random=True,
    example=lambda x: gradext.beta_rsample(
        torch.exp(x), 2.0, 2, generator=_seeded(device=x.device)
    ),
    registered=_beta_registered,
    opcheck_samples=lambda device: iter(
        [("dirichlet_rsample", (_positive_leaf(6, 2, device=device), 2))]
    ),
    smoke=_beta_smoke,
    second_order=False,
)


# --- von_mises_rsample ----------------------------------------------------------------------


def _von_mises_opcheck(device):
    loc = _leaf(4, 5, device=device)
    concentration = _positive_leaf(5, device=device)
    yield "von_mises_rsample", (loc, concentration, None)
    yield "von_mises_rsample", (loc, concentration, 3)
    yield "_von_mises_rsample_seeded", (loc, concentration, 3, 17, 4)
    x = torch.ops.gradext._von_mises_rsample_seeded(loc.detach(), concentration.detach(), 3, 17, 4)
    # grad, x and loc require grad: opcheck then checks the backward op's own autograd too (its
    # derivative in the concentration is not implemented, so that input does not).
    grad = torch.randn_like(x).requires_grad_()
    yield "_von_mises_rsample_backward", (grad, x.requires_grad_(), loc, concentration.detach())


def _von_mises_smoke(device, dtype):
    for loc_shape, concentration_shape, k in [
        ((64, 32), (64, 32), 3),  # dense
        ((7, 5), (5,), None),  # broadcast concentration
        ((33,), (), 2),  # scalar concentration, ragged size
        ((0, 4), (0, 4), 2),  # empty
    ]:
        loc = _leaf(*loc_shape, device=device, dtype=dtype, scale=3.0)
        concentration = _positive_leaf(*concentration_shape, device=device, dtype=dtype)
        _backward_with_random_grad(gradext.von_mises_rsample(loc, concentration, k))
        torch.ops.gradext._von_mises_rsample_seeded(loc.detach(), concentration.detach(), k, 1, 4)


VON_MISES_RSAMPLE = OpCase(
    name="von_mises_rsample",
    family="von_mises",
    dispatcher_ops=(
        "von_mises_rsample",
        "_von_mises_rsample_seeded",
        "_von_mises_rsample_backward",
    ),
    random=True,
    example=lambda x: gradext.von_mises_rsample(
        x, torch.exp(x), 2, generator=_seeded(device=x.device)
    ),
    registered=lambda x: torch.ops.gradext.von_mises_rsample(
        x, torch.exp(x), 2, generator=_seeded(device=x.device)
    ),
    opcheck_samples=_von_mises_opcheck,
    smoke=_von_mises_smoke,
    second_order=False,
)


# --- gumbel_softmax, gumbel_sigmoid ---------------------------------------------------------


def _tau(value):
    """tau as the relaxed ops take it: a float64 0-dim tensor on the CPU."""
    return torch.tensor(value, dtype=torch.float64)


def _relaxed_opcheck(name):
    def samples(device):
        logits = _leaf(5, 7, device=device)
        for hard in (False, True):
            yield name, (logits, _tau(0.5), hard)
            yield f"_{name}_seeded", (logits, _tau(0.5), hard, 3, 4)
        seeded = getattr(torch.ops.gradext, f"_{name}_seeded")
        y, soft = seeded(logits.detach(), _tau(0.5), True, 3, 4)
        # Inputs that require grad: opcheck checks the backward op's own autograd too.
        yield (
            f"_{name}_backward",
            (torch.randn_like(y).requires_grad_(), soft.requires_grad_(), _tau(0.5)),
        )

    return samples


def _gumbel_softmax_smoke(device, dtype):
    # Rows for each CUDA row kernel: 4 threads (up to 64 categories), a warp (up to 1024), a
    # block; row counts that leave groups without a row; empty.
    for rows, categories in [(33, 2), (9, 10), (70, 64), (5, 1024), (3, 1500), (2, 40_000), (0, 7)]:
        logits = _leaf(rows, categories, device=device, dtype=dtype)
        for hard in (False, True):
            _backward_with_random_grad(gradext.gumbel_softmax(logits, tau=0.5, hard=hard))


def _gumbel_sigmoid_smoke(device, dtype):
    for shape in [(33, 2), (9, 10), (5, 1024), (0, 7)]:
        logits = _leaf(*shape, device=device, dtype=dtype)
        for hard in (False, True):
            _backward_with_random_grad(gradext.gumbel_sigmoid(logits, tau=0.5, hard=hard))


GUMBEL_SOFTMAX = OpCase(
    name="gumbel_softmax",
    family="relaxed",
    dispatcher_ops=("gumbel_softmax", "_gumbel_softmax_seeded", "_gumbel_softmax_backward"),
    random=True,
    example=lambda x: gradext.gumbel_softmax(x, hard=True, generator=_seeded(device=x.device)),
    registered=lambda x: torch.ops.gradext.gumbel_softmax(
        x, _tau(1.0), True, generator=_seeded(device=x.device)
    )[0],
    opcheck_samples=_relaxed_opcheck("gumbel_softmax"),
    smoke=_gumbel_softmax_smoke,
)

GUMBEL_SIGMOID = OpCase(
    name="gumbel_sigmoid",
    family="relaxed",
    dispatcher_ops=("gumbel_sigmoid", "_gumbel_sigmoid_seeded", "_gumbel_sigmoid_backward"),
    random=True,
    example=lambda x: gradext.gumbel_sigmoid(x, generator=_seeded(device=x.device)),
    registered=lambda x: torch.ops.gradext.gumbel_sigmoid(
        x, _tau(1.0), False, generator=_seeded(device=x.device)
    )[0],
    opcheck_samples=_relaxed_opcheck("gumbel_sigmoid"),
    smoke=_gumbel_sigmoid_smoke,
)


# --- conditional_relaxation -----------------------------------------------------------------


def _conditional_relaxation_opcheck(device):
    logits = _leaf(5, 7, device=device)
    for categorical in (False, True):
        yield "conditional_relaxation", (logits, _tau(0.5), categorical)
        yield "_conditional_relaxation_seeded", (logits, _tau(0.5), categorical, 3, 4)
        *_, state = torch.ops.gradext._conditional_relaxation_seeded(
            logits.detach(), _tau(0.5), categorical, 3, 4
        )
        yield "_conditional_relaxation_noise", (logits.detach(), state, categorical)
        # Inputs that require grad: opcheck checks the backward op's own autograd too.
        grad_soft = torch.randn_like(logits).requires_grad_()
        grad_cond = torch.randn_like(logits).requires_grad_()
        yield (
            "_conditional_relaxation_backward",
            (grad_soft, grad_cond, logits, _tau(0.5), state, categorical),
        )
        yield (
            "_conditional_relaxation_backward",
            (None, grad_cond, logits, _tau(0.5), state, categorical),
        )
        yield (
            "_conditional_relaxation_jvp",
            (torch.randn_like(logits).requires_grad_(), logits, _tau(0.5), state, categorical),
        )


def _conditional_relaxation_smoke(device, dtype):
    # Bernoulli tiles (ragged last group, several tiles); categorical rows of 2, 10, a tile's
    # worth and longer than a tile; empty.
    for shape in [(33, 2), (9, 10), (3, 512), (2, 1500), (0, 7)]:
        logits = _leaf(*shape, device=device, dtype=dtype)
        for categorical in (False, True):
            _, soft, soft_cond = gradext.conditional_relaxation(
                logits, 0.5, categorical=categorical
            )
            (soft + 2 * soft_cond).backward(torch.randn_like(soft))


def _conditional_relaxations(x, registered=False):
    """soft and soft_cond of a seeded categorical call and of a Bernoulli one, stacked: the
    example's differentiable output."""
    outputs = []
    for categorical in (True, False):
        generator = _seeded(device=x.device)
        if registered:
            _, soft, soft_cond, _ = torch.ops.gradext.conditional_relaxation(
                x, _tau(0.7), categorical, generator=generator
            )
        else:
            _, soft, soft_cond = gradext.conditional_relaxation(
                x, 0.7, categorical=categorical, generator=generator
            )
        outputs += [soft, soft_cond]
    return torch.stack(outputs)


CONDITIONAL_RELAXATION = OpCase(
    name="conditional_relaxation",
    family="conditional_relaxation",
    dispatcher_ops=(
        "conditional_relaxation",
        "_conditional_relaxation_seeded",
        "_conditional_relaxation_noise",
        "_conditional_relaxation_backward",
        "_conditional_relaxation_jvp",
    ),
    random=True,
    example=lambda x: _conditional_relaxations(x),
    registered=lambda x: _conditional_relaxations(x, registered=True),
    opcheck_samples=_conditional_relaxation_opcheck,
    smoke=_conditional_relaxation_smoke,
)

# --- score_function_loo, vimco --------------------------------------------------------------


def _estimator_opcheck(name):
    def samples(device):
        for dim in (0, -1):
            values = _leaf(4, 6, device=device)
            log_prob = _leaf(4, 6, device=device)
            yield name, (values, log_prob, dim)
            # The backward op gets inputs that require grad, so that opcheck checks its own
            # autograd (its derivative, for double backward) too.
            grad = _leaf(6 if dim == 0 else 4, device=device)
            if name == "score_function_loo":
                yield "_score_function_loo_backward", (grad, values, dim)
            else:
                _, stats = torch.ops.gradext.vimco(values.detach(), log_prob.detach(), dim)
                for mask in ([True, True], [True, False], [False, True]):
                    yield "_vimco_backward", (grad, values, stats, dim, mask)

    return samples


def _estimator_smoke(name):
    def smoke(device, dtype):
        # Samples leading, in the middle, last; empty.
        for shape, dim in [((4, 33), 0), ((3, 5, 7), 1), ((9, 2), -1), ((2, 0), 0)]:
            values = _leaf(*shape, device=device, dtype=dtype)
            log_prob = _leaf(*shape, device=device, dtype=dtype)
            _backward_with_random_grad(getattr(gradext, name)(values, log_prob, dim))

    return smoke


SCORE_FUNCTION_LOO = OpCase(
    name="score_function_loo",
    family="score_function",
    dispatcher_ops=("score_function_loo", "_score_function_loo_backward"),
    random=False,
    example=lambda x: gradext.score_function_loo(x * x, x),
    registered=lambda x: torch.ops.gradext.score_function_loo(x * x, x, 0),
    opcheck_samples=_estimator_opcheck("score_function_loo"),
    smoke=_estimator_smoke("score_function_loo"),
)

VIMCO = OpCase(
    name="vimco",
    family="score_function",
    dispatcher_ops=("vimco", "_vimco_backward"),
    random=False,
    example=lambda x: gradext.vimco(2 * x, x),
    registered=lambda x: torch.ops.gradext.vimco(2 * x, x, 0)[0],
    opcheck_samples=_estimator_opcheck("vimco"),
    smoke=_estimator_smoke("vimco"),
)


# --- categorical_sample ---------------------------------------------------------------------


def _categorical_opcheck(device):
    logits = _leaf(3, 4, 7, device=device)
    yield "categorical_sample", (logits, 5)
    yield "_categorical_sample_seeded", (logits, 5, 1, 2)
    _, index = torch.ops.gradext._categorical_sample_seeded(logits.detach(), 5, 1, 2)
    yield "_categorical_sample_backward", (_leaf(5, 3, 4, device=device), logits, index)


def _categorical_smoke(device, dtype):
    # The row kernels of gumbel_softmax: 4 threads, a warp, a block per draw.
    for rows, categories in [(33, 2), (9, 10), (70, 64), (5, 1024), (3, 1500), (2, 40_000), (0, 7)]:
        logits = _leaf(rows, categories, device=device, dtype=dtype)
        _, log_prob = gradext.categorical_sample(logits, 3)
        _backward_with_random_grad(log_prob)


CATEGORICAL_SAMPLE = OpCase(
    name="categorical_sample",
    family="categorical",
    dispatcher_ops=(
        "categorical_sample",
        "_categorical_sample_seeded",
        "_categorical_sample_backward",
    ),
    random=True,
    example=lambda x: gradext.categorical_sample(x, 2, generator=_seeded(device=x.device))[1],
    registered=lambda x: torch.ops.gradext.categorical_sample(
        x, 2, generator=_seeded(device=x.device)
    )[0],
    opcheck_samples=_categorical_opcheck,
    smoke=_categorical_smoke,
)


OPS: tuple[OpCase, ...] = (
    GAUSSIAN_RSAMPLE,
    NORMAL_RSAMPLE,
    GAMMA_RSAMPLE,
    DIRICHLET_RSAMPLE,
    BETA_RSAMPLE,
    VON_MISES_RSAMPLE,
    GUMBEL_SOFTMAX,
    GUMBEL_SIGMOID,
    CONDITIONAL_RELAXATION,
    SCORE_FUNCTION_LOO,
    VIMCO,
    CATEGORICAL_SAMPLE,
)
BY_NAME = {case.name: case for case in OPS}

# Dispatcher ops that no public function runs on: the random-number contract's test view.
TEST_VIEW_OPS = ("_philox_uniform",)
# The fused argument checks of gradext.distributions' classes (gradext/parameter_check.py): no
# randomness and no gradient, tested in tests/parameter_check/ and opchecked on their own.
CHECK_OPS = ("_first_invalid_parameter",)


def families() -> list[str]:
    """The op families in registry order, each once."""
    return list(dict.fromkeys(case.family for case in OPS))
