#!/usr/bin/env bash
# Measures the arithmetic floor of the CPU kernels (csrc/bench/noise_floor.cpp: ns per value of
# Philox, Box-Muller, Gumbel noise, exp and log on one thread, per CPU ISA variant) and writes
# benchmarks/results/noise_floor_cpu.md. The program is header-only (no libtorch), so it is
# compiled here directly, with the numerics flags of the kernels (CMakeLists.txt, setup.py).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build benchmarks/results
"${CXX:-g++}" -std=c++20 -O3 -ffp-contract=off -fno-math-errno -fno-trapping-math -Icsrc \
  csrc/bench/noise_floor.cpp -o build/gradext_noise_floor
out=benchmarks/results/noise_floor_cpu.md
{
  echo "# CPU noise floor"
  echo
  echo "- device: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') ($(nproc) logical CPUs)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  build/gradext_noise_floor "$@"
} | tee "$out"
