#!/usr/bin/env bash
# The whole GPU check for a lent GPU machine, in one run (each step has a time limit, 595 s in
# all at worst, under the device tool's 600 s per command):
# build the extension there, run the CUDA tests, run
# compute-sanitizer memcheck on a small run of every CUDA op, run the benchmarks and a short
# demo run on the GPU.
# Logs and results go to $OUT (default: build/gpu_check); a summary is printed last.
#
#   bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/gpu_check}
mkdir -p "$OUT"
PYTHON=${PYTHON:-python3}
export MAX_JOBS=${MAX_JOBS:-16}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
summary=()
step() {  # step NAME LOGFILE SECONDS COMMAND...: runs with a time limit, records pass/fail/time
  local name=$1 log=$2 limit=$3
  shift 3
  local start=$SECONDS
  if timeout "$limit" "$@" > "$OUT/$log" 2>&1; then
    summary+=("PASS  $name ($((SECONDS - start)) s, $log)")
  else
    summary+=("FAIL  $name ($((SECONDS - start)) s, $log)")
    tail -30 "$OUT/$log"
  fi
}

{ nvidia-smi; "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"; } > "$OUT/device.txt" 2>&1
step "build" build.log 140 "$PYTHON" setup.py build_ext --inplace
# The CUDA-marked tests only (360 of them, 18 under torch.compile, whose Triton compiles take
# most of the time): CI runs the CPU tests on every submission.
step "CUDA tests" pytest.log 150 "$PYTHON" -m pytest -q -rs -m cuda -p no:cacheprovider tests
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
step "compute-sanitizer memcheck" memcheck.log 60 \
  "$sanitizer" --tool memcheck --error-exitcode 1 "$PYTHON" benchmarks/cuda_smoke.py
# The block-per-row Gumbel-Softmax and categorical kernels reduce through shared memory.
step "compute-sanitizer racecheck" racecheck.log 50 \
  "$sanitizer" --tool racecheck --error-exitcode 1 "$PYTHON" benchmarks/cuda_smoke.py
step "benchmark gaussian" bench_gaussian.log 55 "$PYTHON" benchmarks/bench_gaussian.py --device cuda --quick
step "benchmark gumbel" bench_gumbel.log 55 "$PYTHON" benchmarks/bench_gumbel.py --device cuda --quick
step "benchmark score_function" bench_score_function.log 55 \
  "$PYTHON" benchmarks/bench_score_function.py --device cuda --quick
# The demo's CUDA path (one short epoch per model; the full demo is `python -m gradext demo`).
# Its default data ship with scikit-learn, which the lent machine may lack: random 0/1 images
# saved with torch stand in for them.
"$PYTHON" -c "import torch; torch.save((torch.rand(600, 64) > 0.5).float(), '$OUT/images.pt')"
step "demo smoke run (CUDA)" demo.log 30 "$PYTHON" -m gradext demo --data "$OUT/images.pt" \
  --epochs 1 --quick --no-progress --out "$OUT/demo"
cp benchmarks/results/*_cuda.* "$OUT/" 2>/dev/null

echo
cat "$OUT/device.txt" | tail -1
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
grep -h -E "^(PASS|MISS) " "$OUT"/bench_*.log
! grep -q "^FAIL" "$OUT/summary.txt"
