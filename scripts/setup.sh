#!/usr/bin/env bash
# Installs gradext's dependencies and builds the extension in place (editable install).
# Safe to re-run: pip skips what is already there and the build is incremental.
#
#   TORCH_SPEC            torch requirement (default torch==2.14.1: a CUDA 13.0 build, so the
#                         CUDA kernels can compile even on a machine without a GPU)
#   FORCE_CUDA            1 compiles the CUDA kernels without a GPU too (CI does); by default
#                         they are built only where a GPU can run them
#   GRADEXT_DISABLE_CUDA  1 builds the CPU kernels only (see setup.py for the other switches)
#   GRADEXT_CPU_VARIANTS  native by default here: this in-place build compiles only the CPU
#                         kernel variant this machine runs best (a third of the kernels' compile
#                         time); "all" builds every variant (CI does, for its cross-variant tests)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.14.1}

# scipy: the tests cross-check their statistics helpers against scipy.stats;
# matplotlib: the PNG charts of `python -m gradext demo` and `bench`; scikit-learn: the demo's
# data (the digits that ship inside it); tqdm: the demo's progress bars; ruff (pinned, so that
# its rules do not move under CI): the lint and format check of `make test`; pyro-ppl: the tests
# of gradext.distributions as Pyro sample sites (gradext itself does not depend on it).
echo "[setup] installing $TORCH_SPEC and the build/test dependencies"
"$PYTHON" -m pip install --quiet --disable-pip-version-check \
  "$TORCH_SPEC" pybind11 ninja numpy pytest scipy matplotlib scikit-learn tqdm pyro-ppl ruff==0.17.6 "setuptools>=64" wheel

echo "[setup] building gradext (compile output in build/setup.log)"
mkdir -p build
export GRADEXT_CPU_VARIANTS=${GRADEXT_CPU_VARIANTS:-native}
if ! "$PYTHON" -m pip install --disable-pip-version-check --no-build-isolation -v -e . \
    > build/setup.log 2>&1; then
  tail -60 build/setup.log
  echo "[setup] build failed; full log in build/setup.log" >&2
  exit 1
fi
grep -h "\[gradext build\]" build/setup.log | sort -u || true
"$PYTHON" -c "import gradext; print('[setup] extension loaded:', gradext.has_extension(), '| CPU kernels:', gradext.cpu_isa(), '| CUDA kernels built:', gradext._extension._C.built_with_cuda() if gradext.has_extension() else False)"
