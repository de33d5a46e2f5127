#!/usr/bin/env bash
# The whole GPU check for a machine with a GPU, in one run (each step has a time limit, under
# 600 s in all, the longest one remote command may take there):
# build the extension there (or take the one scripts/prebuild_gpu_extension.sh built for it,
# when it matches the sources), run the CUDA tests, run compute-sanitizer memcheck and
# racecheck on a small run of every CUDA op, run the benchmarks and a short demo run on the GPU.
# Logs and results go to build/gpu_check/; with $OUT set (the remote runner), they are packed
# into $OUT/gpu_check.tgz beside $OUT/summary.txt (the tool returns at most 8 files). A summary
# is printed last.
#
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=build/gpu_check
rm -rf "$LOGS"
mkdir -p "$LOGS"
PYTHON=${PYTHON:-python3}
export PYTHON
export PYTHONUNBUFFERED=1  # a step stopped by its time limit keeps the log it printed
export MAX_JOBS=${MAX_JOBS:-16}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
source scripts/source_stamp.sh
summary=()
step() {  # step NAME LOGFILE SECONDS COMMAND...: runs with a time limit, records pass/fail/time
  local name=$1 log=$2 limit=$3
  shift 3
  local start=$SECONDS
  if timeout "$limit" "$@" > "$LOGS/$log" 2>&1; then
    summary+=("PASS  $name ($((SECONDS - start)) s, $log)")
  else
    summary+=("FAIL  $name ($((SECONDS - start)) s, $log)")
    tail -30 "$LOGS/$log"
  fi
}

# The prebuilt extension when its stamp matches these sources and this interpreter and it loads
# with CUDA; a build here otherwise.
build_extension() {
  local prebuilt=build/gpu_prebuilt
  if [ -f "$prebuilt/stamp" ] && [ "$(cat "$prebuilt/stamp")" = "$(source_stamp "$PYTHON")" ]; then
    cp "$prebuilt"/_C.*.so gradext/
    if "$PYTHON" -c "import gradext, sys; sys.exit(0 if gradext.has_cuda() else 1)"; then
      echo "[gradext build] prebuilt extension loaded with CUDA: $(cat "$prebuilt/stamp")"
      return 0
    fi
    echo "[gradext build] the prebuilt extension did not load with CUDA; building"
    rm -f gradext/_C.*.so
  else
    echo "[gradext build] no prebuilt extension for these sources; building"
  fi
  FORCE_CUDA=1 "$PYTHON" setup.py build_ext --inplace
}
export -f build_extension source_stamp

{ nvidia-smi; "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"; } > "$LOGS/device.txt" 2>&1
step "build" build.log 140 bash -c build_extension
# Without CUDA kernels every CUDA test would skip and the next step would pass on nothing.
step "CUDA kernels loaded" cuda_loaded.log 30 "$PYTHON" -c "import gradext, torch
assert gradext.has_cuda(), ('no CUDA kernels', torch.cuda.is_available(), gradext.extension_error())
print('CUDA kernels on', torch.cuda.get_device_name(), '- CPU kernels', gradext.cpu_isa())"
# The CUDA-marked tests only (CI runs the CPU tests on every submission), spread over 8 worker
# processes where pytest-xdist is installed: the few under torch.compile spend most of their time
# in Triton compiles on the host's cores, not on the GPU.
xdist=()
"$PYTHON" -c "import xdist" 2> /dev/null && xdist=(-n 8)
step "CUDA tests" pytest.log 180 "$PYTHON" -m pytest -q -rs -m cuda -p no:cacheprovider "${xdist[@]}" tests
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
step "compute-sanitizer memcheck" memcheck.log 60 \
  "$sanitizer" --tool memcheck --error-exitcode 1 "$PYTHON" -m gradext.bench.cuda_smoke
# The block-per-row Gumbel-Softmax and categorical kernels reduce through shared memory.
step "compute-sanitizer racecheck" racecheck.log 50 \
  "$sanitizer" --tool racecheck --error-exitcode 1 "$PYTHON" -m gradext.bench.cuda_smoke
# One step per op family of the registry (gradext.op_registry), each with its own time limit.
for family in $("$PYTHON" -c 'from gradext import op_registry; print(*op_registry.families())'); do
  step "benchmark $family" "bench_$family.log" 30 \
    "$PYTHON" -m gradext.bench."$family" --device cuda --quick
done
# The demo's CUDA path (one short epoch per model; the full demo is `python -m gradext demo`).
# Its default data ship with scikit-learn, which the GPU machine may lack: random 0/1 images
# saved with torch stand in for them.
"$PYTHON" -c "import torch; torch.save((torch.rand(600, 64) > 0.5).float(), '$LOGS/images.pt')"
step "demo smoke run (CUDA)" demo.log 30 "$PYTHON" -m gradext demo --data "$LOGS/images.pt" \
  --epochs 1 --quick --no-progress --out "$LOGS/demo"
rm -f "$LOGS/images.pt"
cp benchmarks/results/*_cuda.* "$LOGS/" 2>/dev/null

echo
tail -1 "$LOGS/device.txt"
printf '%s\n' "${summary[@]}" | tee "$LOGS/summary.txt"
grep -h -E "^(PASS|MISS) " "$LOGS"/bench_*.log | tee "$LOGS/targets.txt"
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  tar -czf "$OUT/gpu_check.tgz" -C build gpu_check
  cp "$LOGS/summary.txt" "$LOGS/targets.txt" "$OUT/"
fi
! grep -q "^FAIL" "$LOGS/summary.txt"
