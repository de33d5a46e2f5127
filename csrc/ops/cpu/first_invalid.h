// The first (smallest) flat element at which the tasks of an at::parallel_for met an input
// that defines no distribution: how the CPU samplers report one without a pass of their own.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>

namespace gradext::cpu {

class FirstInvalid {
 public:
  void record(int64_t element) {
    int64_t seen = first_.load(std::memory_order_relaxed);
    while (element < seen && !first_.compare_exchange_weak(seen, element)) {
    }
  }
  bool found() const { return first_.load() != kNone; }
  int64_t element() const { return first_.load(); }

 private:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> first_{kNone};
};

}  // namespace gradext::cpu
