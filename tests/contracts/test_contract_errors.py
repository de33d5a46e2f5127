"""Errors that name their cause, the same on the kernels and on the fallback: limits (counts past
int64, rows of 2^31 categories, 2^31 samples), dtypes no kernel computes in (float8), nested
tensors, argument forms, and indices out of range in the public backward op. Limits are tested
on expanded tensors, refused before anything of their size is allocated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradext
from gradext import _validation
from helpers.common import requires_extension, tau_tensor

ROW_LIMIT = 2**31  # one more than the longest row the row-wise ops take


def _float8_dtypes():
    return [
        getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name)
    ]


PUBLIC_CALLS = {
    "gaussian_rsample": (lambda x: gradext.gaussian_rsample(x, x), "mu"),
    "normal_rsample": (lambda x: gradext.normal_rsample(x, x), "loc"),
    "gamma_rsample": (lambda x: gradext.gamma_rsample(x), "concentration"),
    "dirichlet_rsample": (lambda x: gradext.dirichlet_rsample(x), "concentration"),
    "beta_rsample": (lambda x: gradext.beta_rsample(x, x), "concentration1"),
    "von_mises_rsample": (lambda x: gradext.von_mises_rsample(x, x), "loc"),
    "gumbel_softmax": (lambda x: gradext.gumbel_softmax(x), "logits"),
    "gumbel_sigmoid": (lambda x: gradext.gumbel_sigmoid(x), "logits"),
    "categorical_sample": (lambda x: gradext.categorical_sample(x), "logits"),
    "score_function_loo": (lambda x: gradext.score_function_loo(x, x), "f"),
    "vimco": (lambda x: gradext.vimco(x, x), "log_weights"),
}


@pytest.mark.parametrize("name", sorted(PUBLIC_CALLS))
@pytest.mark.parametrize("dtype", _float8_dtypes())
def test_float8_is_a_type_error_naming_the_argument(implementation, name, dtype):
    call, argument = PUBLIC_CALLS[name]
    x = torch.zeros(3, 4).to(dtype)
    with pytest.raises(
        TypeError,
        match=rf"{name}: {argument} must be a floating-point tensor, "
        rf"got dtype {dtype} \(supported: float32, float64, float16, bfloat16\)",
    ):
        call(x)


@pytest.mark.parametrize("name", sorted(PUBLIC_CALLS))
def test_nested_tensors_are_a_type_error(implementation, name):
    call, argument = PUBLIC_CALLS[name]
    nested = torch.nested.nested_tensor([torch.zeros(2, 3), torch.zeros(4, 3)])
    with pytest.raises(
        TypeError, match=rf"{name}: {argument} must be a strided tensor, got a nested"
    ):
        call(nested)


@pytest.mark.parametrize("value", [2**63, 2**64 + 5])
def test_counts_past_int64_name_the_limit(implementation, value):
    x = torch.zeros(3)
    with pytest.raises(ValueError, match=r"num_samples must be at most 2\^63 - 1 \(an int64\)"):
        gradext.gaussian_rsample(x, x, value)
    with pytest.raises(ValueError, match=r"num_samples must be at most 2\^63 - 1 \(an int64\)"):
        gradext.categorical_sample(x, value)


def test_count_type_errors_say_what_is_expected(implementation):
    with pytest.raises(
        TypeError, match=r"categorical_sample: num_samples must be an int, got bool"
    ):
        gradext.categorical_sample(torch.zeros(3), True)
    with pytest.raises(
        TypeError, match=r"num_samples must be None, an int or a sample_shape, got bool"
    ):
        gradext.gaussian_rsample(torch.zeros(3), torch.zeros(3), True)


def test_rows_of_2_31_categories_are_refused_without_a_copy(implementation):
    row = torch.zeros(1).expand(ROW_LIMIT)  # 8 GiB if it were materialized
    message = r"rows of at most 2\^31 - 1 categories are supported, got 2147483648"
    with pytest.raises(ValueError, match=rf"gumbel_softmax: {message}"):
        gradext.gumbel_softmax(row)
    with pytest.raises(ValueError, match=rf"gumbel_softmax: {message}"):
        gradext.gumbel_softmax(row.unsqueeze(0), dim=1)
    with pytest.raises(ValueError, match=rf"categorical_sample: {message}"):
        gradext.categorical_sample(row)


@requires_extension
def test_the_registered_ops_refuse_long_rows_too():
    row = torch.zeros(1).expand(ROW_LIMIT)
    with pytest.raises(ValueError, match=r"gumbel_softmax: rows of at most 2\^31 - 1 categories"):
        torch.ops.gradext.gumbel_softmax(row, tau_tensor(1.0), False)
    with pytest.raises(ValueError, match=r"categorical_sample: rows of at most 2\^31 - 1"):
        torch.ops.gradext.categorical_sample(row, 1)


@pytest.mark.parametrize("name", ["score_function_loo", "vimco"])
def test_samples_past_int32_are_refused_on_every_path(implementation, name):
    values = torch.zeros(1).expand(2**31)
    with pytest.raises(
        ValueError, match=rf"{name}: at most 2\^31 - 1 samples along dim, got 2147483648"
    ):
        getattr(gradext, name)(values, values)


@requires_extension
@pytest.mark.parametrize("bad", [4, -1, -5, 10**9, -(10**12)])
def test_backward_op_checks_its_indices(bad):
    """The fused backward is public (torch.ops.gradext): an index out of range is an IndexError,
    never a write out of bounds."""
    logits = torch.randn(3, 4)
    grad = torch.ones(2, 3)
    index = torch.zeros(2, 3, dtype=torch.int64)
    index[1, 2] = bad
    with pytest.raises(IndexError, match=rf"index {bad} is out of range for 4 categories"):
        torch.ops.gradext._categorical_sample_backward(grad, logits, index)


def test_generator_on_another_device_names_both():
    """The check itself, with a device object standing in for a GPU (no GPU needed)."""
    with pytest.raises(
        ValueError,
        match=r"generator is on cpu but the inputs are on cuda; pass a "
        r"generator created with torch.Generator\(device='cuda'\)",
    ):
        _validation.check_generator("op", torch.Generator(), torch.device("cuda"))


HARD_FORMS = [
    True,
    False,
    1,
    0,
    np.bool_(True),
    np.bool_(False),
    torch.tensor(True),
    torch.tensor(0),
    torch.tensor([1]),
]


@pytest.mark.parametrize("name", ["gumbel_softmax", "gumbel_sigmoid"])
@pytest.mark.parametrize("hard", HARD_FORMS, ids=repr)
def test_hard_takes_what_torch_takes(implementation, name, hard):
    """F.gumbel_softmax tests `if hard:`; the same forms give gradext's sample of bool(hard)."""
    logits = torch.randn(5, 4)
    if name == "gumbel_softmax":
        torch.nn.functional.gumbel_softmax(logits, hard=hard)  # torch takes it too
    fn = getattr(gradext, name)
    got = fn(logits, hard=hard, generator=torch.Generator().manual_seed(2))
    want = fn(logits, hard=bool(hard), generator=torch.Generator().manual_seed(2))
    assert torch.equal(got, want)


@pytest.mark.parametrize(
    "hard", [0.5, "yes", 2, torch.tensor([True, False]), torch.tensor(1.0)], ids=repr
)
def test_hard_of_no_clear_truth_value_is_a_type_error(implementation, hard):
    with pytest.raises(
        TypeError,
        match=r"gumbel_softmax: hard must be a bool \(or 0, 1, a numpy "
        r"bool, a one-element bool tensor\), got",
    ):
        gradext.gumbel_softmax(torch.randn(2, 3), hard=hard)


@pytest.mark.parametrize("dim", [np.int64(0), np.int32(-1), torch.tensor(1)], ids=repr)
def test_dim_takes_integers_of_any_kind(implementation, dim):
    logits = torch.randn(3, 4)
    got = gradext.gumbel_softmax(logits, dim=dim, generator=torch.Generator().manual_seed(5))
    want = gradext.gumbel_softmax(logits, dim=int(dim), generator=torch.Generator().manual_seed(5))
    assert torch.equal(got, want)
    torch.nn.functional.gumbel_softmax(logits, dim=dim)  # as torch does


def test_dim_of_the_wrong_kind_names_it(implementation):
    with pytest.raises(TypeError, match=r"gumbel_softmax: dim must be an int, got float"):
        gradext.gumbel_softmax(torch.randn(3, 4), dim=1.0)
    with pytest.raises(TypeError, match=r"vimco: dim must be an int, got bool"):
        gradext.vimco(torch.randn(3, 4), torch.randn(3, 4), dim=True)


@pytest.mark.parametrize("tau", [np.float32(0.5), np.float64(0.5), np.int64(2), 2], ids=repr)
def test_tau_takes_real_numbers_of_any_kind(implementation, tau):
    logits = torch.randn(3, 4)
    got = gradext.gumbel_softmax(logits, tau=tau, generator=torch.Generator().manual_seed(1))
    want = gradext.gumbel_softmax(
        logits, tau=float(tau), generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(got, want)
    torch.nn.functional.gumbel_softmax(logits, tau=tau)  # as torch does


@pytest.mark.parametrize("tau", [True, np.bool_(True), "1.0", 1j], ids=repr)
def test_tau_of_another_kind_is_a_type_error(implementation, tau):
    with pytest.raises(TypeError, match=r"gumbel_softmax: tau must be a number, got"):
        gradext.gumbel_softmax(torch.randn(3, 4), tau=tau)
