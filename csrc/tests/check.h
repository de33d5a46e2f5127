// The assertion of the C++ tests: counts passes and failures, prints each failure, and
// finish() prints the "N passed, N failed" line CTest's log shows and returns the exit code.
#pragma once

#include <cstdio>

namespace gradext::testing {

inline int& passed() {
  static int count = 0;
  return count;
}

inline int& failed() {
  static int count = 0;
  return count;
}

inline void check(bool ok, const char* what) {
  if (ok) {
    ++passed();
  } else {
    ++failed();
    std::printf("FAILED: %s\n", what);
  }
}

inline int finish() {
  std::printf("%d passed, %d failed\n", passed(), failed());
  return failed() == 0 ? 0 : 1;
}

}  // namespace gradext::testing
