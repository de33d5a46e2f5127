"""torch.distributions' argument checks in one fused pass, for gradext.distributions' classes.

With validation on (torch's default), ``Distribution.__init__`` checks each parameter against its
constraint with one elementwise kernel, one ``all()`` and one host sync: about 6 us a parameter on
the CPU, more than the fused sampler the class then runs. For the constraints the classes use
(``real``: not NaN; ``positive``: greater than 0; either one ``independent`` over event
dimensions), ``arguments_hold`` asks one op, ``_first_invalid_parameter``, to check them all in
one pass. When it finds a parameter outside its constraint, or when a parameter is not one it can
check (another constraint, a dtype that is not floating, a tensor subclass, torch.compile or a
torch.func transform tracing the call), the caller runs torch's own checks, which raise torch's
own error; so what is accepted and what is raised is torch's in every case. C++:
csrc/ops/parameter_check.cpp, csrc/ops/cpu/parameter_check_kernel.cpp,
csrc/ops/cuda/parameter_check_kernel.cu. The op's result is data-dependent, so it has no fake
kernel: it is never called where torch.compile traces (torch's checks run there).
"""

from __future__ import annotations

import inspect

import torch
from torch.distributions import constraints
from torch.distributions.utils import lazy_property

from gradext import _extension

# The tensor types whose values the pass reads (a subclass may override what reading means).
PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)


def fused_constraint(constraint) -> tuple[bool | None, int]:
    """How the fused pass checks `constraint`: whether the elements must be greater than 0 (True)
    or not NaN (False), None where it cannot check it (it is left to torch); and the dimensions
    an ``independent`` wrapper reinterprets as event dimensions, which a value must have (torch's
    check raises its own error on a value with fewer)."""
    event_dims = 0
    while isinstance(constraint, constraints._IndependentConstraint):
        event_dims += constraint.reinterpreted_batch_ndims
        constraint = constraint.base_constraint  # elementwise, then all() over event dims
    if type(constraint) is constraints._Real:
        return False, event_dims
    if type(constraint) is constraints._GreaterThan:
        bound = constraint.lower_bound
        if type(bound) in (int, float) and bound == 0:
            return True, event_dims
    return None, event_dims


def _kernels_check(value: torch.Tensor) -> bool:
    """Whether the op has a kernel for `value`'s device (kernels_on_cpu: the extension is loaded
    and force_fallback is not in effect). Not _extension.uses_kernels, which builds the device's
    type string and warns where a build lacks CUDA: a check that falls back to torch's checks
    needs neither."""
    if value.is_cpu:  # the common case first, without building a device's type string
        return _extension.kernels_on_cpu
    return value.is_cuda and _extension.kernels_on_cpu and _extension._C.built_with_cuda()


def _checks_of(distribution) -> list[tuple[str, bool | None, int, bool]] | None:
    """The checks torch's Distribution.__init__ makes of `distribution`'s class, each as
    (parameter, positive, event dimensions, lazily built), positive None where the fused pass
    cannot check the constraint; None where the class has no arg_constraints. Constraints torch
    skips (dependent ones) are left out here; parameters it skips when the user did not give them
    (lazily built ones, such as Categorical's probs when given logits) are marked, for
    arguments_hold to skip."""
    try:
        arg_constraints = distribution.arg_constraints
    except NotImplementedError:  # torch's checks warn about it
        return None
    checks = []
    for param, constraint in arg_constraints.items():
        if constraints.is_dependent(constraint):
            continue
        positive, event_dims = fused_constraint(constraint)
        lazily_built = isinstance(getattr(type(distribution), param, None), lazy_property)
        checks.append((param, positive, event_dims, lazily_built))
    return checks


# A class's checks, for the classes whose arg_constraints is a class attribute (the same for
# every instance); the others are read from the instance at each construction.
_CLASS_CHECKS: dict[type, list[tuple[str, bool | None, int, bool]] | None] = {}


def _class_checks(distribution) -> list[tuple[str, bool | None, int, bool]] | None:
    cls = type(distribution)
    try:
        return _CLASS_CHECKS[cls]
    except KeyError:
        checks = _checks_of(distribution)
        if isinstance(inspect.getattr_static(cls, "arg_constraints", None), dict):
            _CLASS_CHECKS[cls] = checks
        return checks


def arguments_hold(distribution: torch.distributions.Distribution) -> bool:
    """True when one fused pass shows that every parameter torch's Distribution.__init__ would
    check satisfies its constraint (the same parameters: dependent constraints and lazily built
    parameters are skipped, as torch skips them). False when a parameter fails, or when the pass
    cannot vouch for one: the caller then runs torch's checks."""
    if (
        torch._C._get_tracing_state() is not None
        or torch._C._are_functorch_transforms_active()
        or torch.compiler.is_compiling()
    ):
        return False
    checks = _class_checks(distribution)
    if checks is None:
        return False
    given = distribution.__dict__
    values, positive = [], []
    for param, must_be_positive, event_dims, lazily_built in checks:
        if lazily_built and param not in given:
            continue
        if must_be_positive is None:
            return False
        value = getattr(distribution, param)
        if (
            type(value) not in PLAIN_TENSORS
            or not value.is_floating_point()
            or value.dim() < event_dims
        ):
            return False
        values.append(value)
        positive.append(must_be_positive)
    if not values:
        return True
    first = values[0]
    if not _kernels_check(first):
        return False
    device = first.device
    for value in values:
        if value.device != device:  # torch checks each on its own device
            return False
    return torch.ops.gradext._first_invalid_parameter.default(values, positive) == len(values)
