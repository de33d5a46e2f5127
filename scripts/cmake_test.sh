#!/usr/bin/env bash
# Builds the op library and the C++ tests with CMake against the installed torch's libtorch,
# then runs them with CTest. With a CUDA build of torch, torch's CMake config needs the CUDA
# toolkit even for a CPU-only target; the toolkit prefix and the NVRTC library are found the way
# setup.py finds them (a wrapper nvcc on PATH, NVRTC shipped in the nvidia-* wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BUILD=${BUILD:-build/cmake}

args=(-S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release
      -DCMAKE_PREFIX_PATH="$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)')")
command -v ninja > /dev/null && args+=(-G Ninja)
if [ "$("$PYTHON" -c 'import torch; print(torch.version.cuda is not None)')" = True ]; then
  cuda_home=$("$PYTHON" -c 'import setup; print(setup.find_cuda_home() or "")')
  nvrtc=$("$PYTHON" - <<'PY'
import glob, os, sysconfig
hits = sorted(glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "nvidia", "cu*", "lib", "libnvrtc.so*")))
print(hits[0] if hits else "")
PY
)
  [ -n "$cuda_home" ] && args+=(-DCUDA_TOOLKIT_ROOT_DIR="$cuda_home" -DCMAKE_CUDA_COMPILER="$cuda_home/bin/nvcc")
  [ -n "$nvrtc" ] && args+=(-DCUDA_nvrtc_LIBRARY="$nvrtc")
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}  # no GPU probing at configure time
fi
cmake "${args[@]}" > /dev/null
cmake --build "$BUILD" -j "${MAX_JOBS:-2}"
ctest --test-dir "$BUILD" --output-on-failure
