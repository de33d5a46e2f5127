// The arithmetic floor of the CPU kernels: nanoseconds per value of each piece they are built
// from (Philox, Box-Muller, Gumbel noise, exp, log) on one thread, for each CPU ISA variant this
// machine runs, and the single-thread floors those costs put under the CPU speed targets of the
// issues. Built by CMake; scripts/noise_floor.sh runs it and writes
// benchmarks/results/noise_floor_cpu.md (docs/performance.md discusses the numbers).
//
//   gradext_noise_floor [--values N] [--repeats R]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#define GRADEXT_PER_ISA_BODY "bench/noise_floor_impl.h"
#include "ops/cpu/per_isa.h"

namespace {

using gradext::cpu::isa_default::Piece;
using RunPiece = float (*)(Piece, int64_t);

struct Variant {
  const char* name;
  bool supported;
  RunPiece run;
};

// The per-ISA Piece enums are distinct types with the same values.
template <typename IsaPiece, typename IsaRun>
float run_as(IsaRun run, Piece piece, int64_t values) {
  return run(static_cast<IsaPiece>(piece), values);
}

double checksum = 0;

double median_ns_per_value(RunPiece run, Piece piece, int64_t values, int repeats) {
  std::vector<double> ns;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    checksum += run(piece, values);
    const auto stop = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(stop - start).count() / values);
  }
  std::sort(ns.begin(), ns.end());
  return ns[ns.size() / 2];
}

// Throughput of `piece` on `threads` threads at once, as a multiple of one thread's: how much the
// kernels' parallel loops can gain on this machine (2 vCPUs may share one core's FP pipes).
double thread_scaling(RunPiece run, Piece piece, int64_t values, int threads) {
  const double one = median_ns_per_value(run, piece, values, 3);
  std::vector<double> per_thread(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] { per_thread[t] = median_ns_per_value(run, piece, values, 3); });
  }
  for (std::thread& th : pool) th.join();
  const double slowest = *std::max_element(per_thread.begin(), per_thread.end());
  return threads * one / slowest;
}

void report(const Variant& v, int64_t values, int repeats) {
  auto ns = [&](Piece p) { return median_ns_per_value(v.run, p, values, repeats); };
  const double philox = ns(Piece::kPhilox), normal = ns(Piece::kNormal);
  const double gumbel = ns(Piece::kGumbel), exp = ns(Piece::kExp), log = ns(Piece::kLog);
  constexpr double kMillionMs = (1 << 20) * 1e-6;  // 2^20 values, ns -> ms
  // gaussian_rsample fwd+bwd at [4096, 256], one sample: the forward draws each normal and
  // computes exp(logvar / 2); the backward draws the same normal again and the same exp.
  const double gaussian = 2 * (normal + exp) * kMillionMs;
  // gumbel_softmax hard fwd+bwd at [32768, 32]: Gumbel noise and one exp per element (the
  // backward only reads the saved soft sample).
  const double gumbel_case = (gumbel + exp) * kMillionMs;
  // vimco fwd+bwd at K = 16, N = 65536: one exp per value forward; backward, the weight's exp,
  // the replaced term's exp and the leave-one-out log per value.
  const double vimco = (3 * exp + log) * kMillionMs;
  std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f | %.1f |\n", v.name, philox,
              normal, gumbel, exp, log, gaussian, gumbel_case, vimco);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t values = int64_t{1} << 22;
  int repeats = 9;
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 < argc && std::strcmp(argv[i], "--values") == 0) {
      values = std::max<int64_t>(4096, std::atoll(argv[i + 1]) / 4096 * 4096);
    } else if (i + 1 < argc && std::strcmp(argv[i], "--repeats") == 0) {
      repeats = std::max(1, std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "usage: %s [--values N] [--repeats R]\n", argv[0]);
      return 2;
    }
  }
  std::vector<Variant> variants{{"portable", true, &gradext::cpu::isa_default::run_piece}};
#if GRADEXT_CPU_X86_VARIANTS  // CMake builds every variant
  variants.push_back({"avx2", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"),
                      [](Piece p, int64_t n) {
                        return run_as<gradext::cpu::isa_avx2::Piece>(
                            &gradext::cpu::isa_avx2::run_piece, p, n);
                      }});
  variants.push_back({"avx512",
                      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"),
                      [](Piece p, int64_t n) {
                        return run_as<gradext::cpu::isa_avx512::Piece>(
                            &gradext::cpu::isa_avx512::run_piece, p, n);
                      }});
#endif
  std::printf("Nanoseconds per value on one thread (median of %d runs over %lld values), and the "
              "single-thread arithmetic floor (ms) those costs put under each CPU target case.\n\n",
              repeats, static_cast<long long>(values));
  std::printf("| variant | Philox word | normal | Gumbel | exp | log | gaussian fwd+bwd "
              "[4096, 256] | gumbel hard fwd+bwd [32768, 32] | vimco fwd+bwd K=16, N=65536 |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  const Variant* best = nullptr;
  for (const Variant& v : variants) {
    if (!v.supported) continue;
    report(v, values, repeats);
    best = &v;
  }
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::printf("\nPhilox + Box-Muller (%s) on all %d threads at once: %.2fx one thread's "
              "throughput (divide the floors above by it for the kernels' parallel loops).\n",
              best->name, threads, thread_scaling(best->run, Piece::kNormal, values, threads));
  std::fprintf(stderr, "checksum %g\n", checksum);
  return 0;
}
