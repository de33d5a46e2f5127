"""Fake (meta) kernels and autograd formulas for the C++ ops in torch.ops.gradext, one module
per op family.

The C++ library names this package (``set_python_module``), so torch imports it whenever it
needs a fake kernel; ``gradext`` imports it too. Fake kernels make the ops traceable by
torch.compile (fullgraph=True) and usable on meta tensors; autograd is attached with
torch.library.register_autograd so that it composes with AOTAutograd. The public API calls each
op through ``eager.eager_call``, which applies the same formulas without the registration's
Python hops in plain eager mode. Nothing is registered when the extension is not loaded (the
ops do not exist then).
"""

from gradext._extension import _C

if _C is not None:
    from gradext._ops import gaussian, random, relaxed, score_function  # noqa: F401
