#!/usr/bin/env bash
# Builds gradext's extension here for the GPU check machine (Python 3.12, torch 2.11.0+cu130,
# sm_90, nothing installable there), so that time on the GPU goes to the tests and benchmarks
# rather than to a compile. benchmarks/gpu_check.sh uses the result when its stamp
# matches the sources (scripts/source_stamp.sh) and builds there otherwise. Carry the output
# folder to the GPU machine with the check:  run(command="OUT=$OUT bash benchmarks/gpu_check.sh",
# carry=["build/gpu_prebuilt"]).
#
#   bash scripts/prebuild_gpu_extension.sh      (about 8 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/source_stamp.sh
TORCH_SPEC=${GPU_TORCH_SPEC:-torch==2.11.0}
WORK=build/gpu_prebuild_work  # venv and source copy; too big to carry
OUT_DIR=build/gpu_prebuilt     # the extension and its stamp only
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}

find_python312() {
  local candidate
  for candidate in python3.12 "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
    if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo "no Python 3.12 found (set GPU_PYTHON)" >&2
  return 1
}
GPU_PYTHON=${GPU_PYTHON:-$(find_python312)}

rm -rf "$WORK" "$OUT_DIR"
mkdir -p "$WORK/src" "$OUT_DIR"
"$GPU_PYTHON" -m venv "$WORK/venv"
VENV_PYTHON=$PWD/$WORK/venv/bin/python
echo "[prebuild] $TORCH_SPEC for $("$VENV_PYTHON" --version) in $WORK/venv"
"$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check "$TORCH_SPEC" pybind11 ninja \
  numpy setuptools > "$WORK/pip.log" 2>&1 || { tail -20 "$WORK/pip.log"; exit 1; }

git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$WORK/src"
echo "[prebuild] building with CUDA, TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST (log in $WORK/build.log)"
(cd "$WORK/src" && FORCE_CUDA=1 MAX_JOBS=${MAX_JOBS:-2} "$VENV_PYTHON" setup.py build_ext \
   --inplace > ../build.log 2>&1) || { tail -40 "$WORK/build.log"; exit 1; }
so=$(ls "$WORK"/src/gradext/_C.*.so)
strip --strip-debug -o "$OUT_DIR/$(basename "$so")" "$so"
(cd "$WORK/src" && source_stamp "$VENV_PYTHON") > "$OUT_DIR/stamp"
echo "[prebuild] $OUT_DIR: $(ls "$OUT_DIR" | tr '\n' ' ')($(du -sh "$OUT_DIR" | cut -f1)); stamp $(cat "$OUT_DIR/stamp")"
