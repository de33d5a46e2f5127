"""Fake (meta) kernels and autograd formulas for the C++ ops in torch.ops.gradext, one module
per op family.

The C++ library names this package (``set_python_module``), so torch imports it whenever it
needs a fake kernel; ``gradext`` imports it too. Fake kernels make the ops traceable by
torch.compile (fullgraph=True) and usable on meta tensors; autograd is attached with
torch.library.register_autograd so that it composes with AOTAutograd. The public API calls each
op through ``eager.eager_call``, which applies the same formulas without the registration's
Python hops in plain eager mode. Nothing is registered when the extension is not loaded (the
ops do not exist then).

Double backward. Each op's backward is itself a dispatcher op, ``_<op>_backward``, running a
fused kernel, and each of those has an autograd formula of its own (written in torch ops and
the gradext ops, which are differentiable in turn), so gradients of gradients
(``create_graph=True``: Hessian-vector products, gradient penalties, meta-learning) are right
to any order. Their target is what autograd gives on the pure-PyTorch reference
(gradext.reference) on the same noise; tests/test_double_backward.py compares the two and checks
the pathwise ops by finite differences. Without these formulas torch would treat a backward
op's output as a constant of its inputs: second derivatives silently dropped, with only a
warning. The estimators' convention (score_function_loo, vimco): the learning signal is a
constant, as in the reference's surrogate ``signal * (log_prob - log_prob.detach())``, so the
log_prob gradient has no derivative in f or in the log weights; the incoming gradient and
VIMCO's softmax weights are differentiated exactly.
"""

from gradext._extension import _C

if _C is not None:
    from gradext._ops import gaussian, random, relaxed, score_function  # noqa: F401
