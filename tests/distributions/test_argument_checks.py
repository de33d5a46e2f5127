"""The classes' argument checks (validate_args) run as one fused pass where torch's constraints
allow it (gradext/parameter_check.py), and are torch's in what they accept, what they raise and
how they keep the flag: the same ValueError message, word for word, as torch's class for each
invalid parameter, on the kernels and on the fallback; the fused pass is what ran for valid
arguments; torch's checks run where it cannot vouch. Also Normal's constructor, which skips
torch.broadcast_tensors where that returns its inputs: the same parameters, shapes and aliasing
as torch's."""

from __future__ import annotations

import pytest
import torch
from torch import distributions as td
from torch.distributions import constraints

from gradext import distributions as D
from helpers.common import requires_extension

NAN, INF = float("nan"), float("inf")


@pytest.fixture(autouse=True)
def validation_on_by_default():
    """torch's default (validate_args=None checks), whatever an earlier test (Pyro's, say) left."""
    previous = td.Distribution._validate_args
    td.Distribution.set_default_validate_args(True)
    yield
    td.Distribution.set_default_validate_args(previous)


def _positive(*shape):
    return torch.rand(*shape, dtype=torch.float64) + 0.5


# name -> (number of checked parameters, then for each, in torch's check order, the elements
# that break it)
CASES = {
    "Normal": (2, [NAN], [NAN, 0.0, -0.0, -1.0, -INF]),
    "Gamma": (2, [NAN, 0.0, -1.0], [NAN, 0.0, -2.0]),
    "Beta": (2, [NAN, 0.0, -1.0], [NAN, -0.0, -3.0]),
    "VonMises": (2, [NAN], [NAN, 0.0, -1.0]),
    "Dirichlet": (1, [NAN, 0.0, -1.0]),
    "Categorical": (1, [NAN]),
}


def _arguments(name, bad_param=None, bad_value=None):
    """Valid arguments of a [4, 3] batch for class `name`, with element [2, 1] of parameter
    number bad_param set to bad_value."""
    if name in ("Normal", "VonMises"):
        args = [torch.randn(4, 3, dtype=torch.float64), _positive(4, 3)]
    elif name in ("Gamma", "Beta"):
        args = [_positive(4, 3), _positive(4, 3)]
    else:  # Dirichlet: concentration; Categorical: logits (given by keyword below)
        args = [_positive(4, 3)]
    if bad_param is not None:
        args[bad_param][2, 1] = bad_value
    return args


def _construct(module, name, args, **kwargs):
    cls = getattr(module, name)
    if name == "Categorical":
        return cls(logits=args[0], **kwargs)
    return cls(*args, **kwargs)


def _invalid_cases():
    for name, (count, *breakers) in CASES.items():
        for param in range(count):
            for value in breakers[param]:
                yield pytest.param(name, param, value, id=f"{name}-{param}-{value}")


@pytest.mark.parametrize("name, param, value", list(_invalid_cases()))
def test_invalid_parameters_raise_torchs_error(implementation, name, param, value):
    args = _arguments(name, param, value)
    with pytest.raises(ValueError) as torchs:
        _construct(td, name, args)
    with pytest.raises(ValueError) as ours:
        _construct(D, name, args)
    assert str(ours.value) == str(torchs.value)
    assert "to satisfy the constraint" in str(ours.value)


@pytest.mark.parametrize("name", list(CASES))
def test_valid_and_unchecked_parameters_are_accepted_as_torch_does(implementation, name):
    _construct(D, name, _arguments(name))
    # validate_args=False: nothing is checked, by either class.
    bad = _arguments(name, 0, NAN)
    _construct(td, name, bad, validate_args=False)
    _construct(D, name, bad, validate_args=False)


def test_infinities_where_torch_accepts_them(implementation):
    loc = torch.tensor([INF, -INF, 0.0])
    scale = torch.tensor([1.0, INF, 2.0])
    D.Normal(loc, scale)
    D.VonMises(loc, scale)
    D.Gamma(scale, scale)


def test_numbers_and_broadcast_parameters(implementation):
    """broadcast_all's expanded numbers and rows (stride 0) are checked as torch checks them."""
    with pytest.raises(ValueError) as torchs:
        td.Normal(torch.zeros(3), -1.0)
    with pytest.raises(ValueError) as ours:
        D.Normal(torch.zeros(3), -1.0)
    assert str(ours.value) == str(torchs.value)
    D.Normal(torch.zeros(5, 3), torch.ones(3))
    D.Normal(0.0, 1.0)
    with pytest.raises(ValueError, match="Expected parameter scale"):
        D.Normal(torch.zeros(5, 3), torch.tensor([1.0, 0.0, 1.0]))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32], ids=str)
def test_every_floating_dtype(implementation, dtype):
    D.Normal(torch.zeros(3, dtype=dtype), torch.ones(3, dtype=dtype))
    with pytest.raises(ValueError, match="Expected parameter scale"):
        D.Normal(torch.zeros(3, dtype=dtype), torch.zeros(3, dtype=dtype))


def test_the_validation_flag_is_kept_as_torch_keeps_it(implementation):
    """validate_args=None leaves no flag on the instance (the class default decides later
    checks, as Distribution.set_default_validate_args changes it); True and False are kept."""
    loc, scale = torch.zeros(3), torch.ones(3)
    for validate_args in (None, True, False):
        ours = D.Normal(loc, scale, validate_args=validate_args)
        torchs = td.Normal(loc, scale, validate_args=validate_args)
        assert ("_validate_args" in ours.__dict__) == ("_validate_args" in torchs.__dict__)
        assert ours._validate_args == torchs._validate_args
    ours = D.Normal(loc, scale)
    td.Distribution.set_default_validate_args(False)
    ours.log_prob(torch.tensor([NAN, 0.0, 0.0]))  # no sample check once the default is off
    td.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError, match="Expected value argument"):
        ours.log_prob(torch.tensor([NAN, 0.0, 0.0]))


class _CountingChecks:
    """Counts the calls of torch's real, positive and simplex constraint checks."""

    def __init__(self, monkeypatch):
        self.calls = 0
        for cls in (type(constraints.real), type(constraints.positive), type(constraints.simplex)):
            check = cls.check

            def counted(constraint, value, check=check):
                self.calls += 1
                return check(constraint, value)

            monkeypatch.setattr(cls, "check", counted)


@requires_extension
@pytest.mark.parametrize("name", list(CASES))
def test_the_fused_pass_replaces_torchs_checks(monkeypatch, name):
    counter = _CountingChecks(monkeypatch)
    _construct(D, name, _arguments(name))
    # Beta's Dirichlet is torch's own class, which checks its concentration itself.
    assert counter.calls == (1 if name == "Beta" else 0)
    _construct(td, name, _arguments(name))
    assert counter.calls > (1 if name == "Beta" else 0)


def test_torchs_checks_run_where_the_pass_cannot_vouch(monkeypatch):
    counter = _CountingChecks(monkeypatch)
    # probs: a simplex, which the fused pass does not check.
    D.Categorical(probs=torch.tensor([0.25, 0.75]))
    assert counter.calls == 1
    # A complex loc is not floating-point: torch checks it, and raises its error for a NaN.
    loc = torch.tensor([complex(NAN, 0.0), 1.0])
    D.Normal(loc.real.nan_to_num().to(torch.complex64), torch.ones(2))
    assert counter.calls == 3
    with pytest.raises(ValueError) as torchs:
        td.Normal(loc, torch.ones(2))
    with pytest.raises(ValueError) as ours:
        D.Normal(loc, torch.ones(2))
    assert str(ours.value) == str(torchs.value)
    calls = counter.calls
    torch.func.grad(lambda loc: D.Normal(loc, 1.0).log_prob(torch.zeros(3)).sum())(torch.ones(3))
    assert counter.calls > calls  # under a torch.func transform: torch's checks


def test_under_torch_func_the_gradient_is_torchs():
    x = torch.tensor([0.3, -1.0, 2.0])

    def loss(module):
        return lambda loc: module.Normal(loc, 2.0).log_prob(x).sum()

    torch.testing.assert_close(
        torch.func.grad(loss(D))(torch.zeros(3)), torch.func.grad(loss(td))(torch.zeros(3))
    )


@pytest.mark.parametrize(
    "loc, scale",
    [
        (torch.zeros(4, 3), torch.ones(4, 3)),
        (torch.zeros(4, 3), torch.ones(3)),
        (torch.zeros(4, 1), 2.0),
        (0.5, 2.0),
        (torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.ones(2))),
    ],
    ids=["same-shape", "broadcast", "number", "numbers", "parameters"],
)
def test_normal_parameters_are_torchs(loc, scale):
    ours, torchs = D.Normal(loc, scale), td.Normal(loc, scale)
    assert ours.batch_shape == torchs.batch_shape
    for a, b in ((ours.loc, torchs.loc), (ours.scale, torchs.scale)):
        assert type(a) is type(b)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert a.stride() == b.stride()
    assert (ours.loc is loc) == (torchs.loc is loc)
    assert (ours.scale is scale) == (torchs.scale is scale)
    expanded = ours.expand(torch.Size([5]) + ours.batch_shape)
    assert type(expanded) is D.Normal
    assert expanded.batch_shape == torchs.expand(torch.Size([5]) + torchs.batch_shape).batch_shape


@pytest.mark.parametrize("name", ["Normal", "Dirichlet"])
def test_on_each_device(device, name):
    """The CUDA kernel's answer, as the CPU's: torch's error for an invalid value, none for
    valid ones."""
    args = [a.to(device) for a in _arguments(name)]
    _construct(D, name, args)
    args[-1][2, 1] = 0.0
    with pytest.raises(ValueError) as torchs:
        _construct(td, name, args)
    with pytest.raises(ValueError) as ours:
        _construct(D, name, args)
    assert str(ours.value) == str(torchs.value)
