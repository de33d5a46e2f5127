#!/usr/bin/env bash
# Builds gradext against the oldest torch it supports (2.11: the version on the GPU
# check machine, docs/design.md) and runs the Python tests with it: a copy of the tracked tree, built in a
# virtual environment that sees this interpreter's packages but has its own torch. With nvcc and
# a CUDA build of torch the CUDA kernels are compiled too (sm_90), which is the build the GPU
# machine does. Torch 2.11 compiles extensions as C++17 (2.14 as C++20), so this also keeps the
# sources within C++17.
#
#   bash scripts/check_oldest_torch.sh        (about 8 minutes on 2 cores; logs in build/oldest_torch/)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${OLDEST_TORCH_SPEC:-torch==2.11.0}
WORK=build/oldest_torch
rm -rf "$WORK"
mkdir -p "$WORK/src"

echo "[oldest torch] $TORCH_SPEC in $WORK/venv"
"$PYTHON" -m venv --system-site-packages "$WORK/venv"
VENV_PYTHON=$PWD/$WORK/venv/bin/python
if ! "$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check "$TORCH_SPEC" \
    > "$WORK/pip.log" 2>&1; then
  tail -20 "$WORK/pip.log"
  echo "[oldest torch] could not install $TORCH_SPEC (no package index?): check NOT run" >&2
  exit 1
fi
"$VENV_PYTHON" -c "import torch; print('[oldest torch] torch', torch.__version__)"

git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
cd "$WORK/src"
echo "[oldest torch] building (log in $WORK/build.log)"
# FORCE_CUDA: the GPU machine's build, CUDA kernels included, although this machine has no GPU.
if ! FORCE_CUDA=${FORCE_CUDA:-1} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0} MAX_JOBS=${MAX_JOBS:-2} \
    "$VENV_PYTHON" setup.py build_ext --inplace > ../build.log 2>&1; then
  tail -40 ../build.log
  echo "[oldest torch] build failed" >&2
  exit 1
fi
grep -h "\[gradext build\]" ../build.log | sort -u
# The copy's gradext with its own extension, not an installed one (or the fallback).
"$VENV_PYTHON" - <<'PY'
import os, torch, gradext
assert os.path.samefile(os.path.dirname(gradext.__file__), "gradext"), gradext.__file__
assert gradext.has_extension(), gradext.extension_error()
print(f"[oldest torch] torch {torch.__version__}: gradext extension loaded, CPU kernels "
      f"{gradext.cpu_isa()}, CUDA kernels built: {gradext._extension._C.built_with_cuda()}")
PY
"$VENV_PYTHON" -m pytest -q -p no:cacheprovider tests
