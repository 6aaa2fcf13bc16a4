#include "kiln/core/parallel.h"

#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "kiln/core/error.h"

extern "C" void openblas_set_num_threads(int);

namespace kiln {
namespace {
int initial_threads() {
  int n = omp_get_num_procs();
  if (const char* env = std::getenv("KILN_NUM_THREADS"); env && *env) {
    int requested = 0;
    try {
      requested = std::stoi(env);
    } catch (...) {
    }
    // Read while the library loads, where an exception would end the process:
    // warn and keep the default instead.
    if (requested > 0) {
      n = requested;
    } else {
      std::fprintf(stderr, "kiln: ignoring KILN_NUM_THREADS='%s' (expected a positive integer); using %d threads\n",
                   env, n);
    }
  }
  return n;
}

int& thread_count() {
  static int count = [] {
    int n = initial_threads();
    omp_set_num_threads(n);
    openblas_set_num_threads(n);
    return n;
  }();
  return count;
}
// OpenMP and OpenBLAS get the same count before the first kernel runs.
[[maybe_unused]] const int g_threads_at_load = thread_count();
}  // namespace

void set_num_threads(int n) {
  KILN_CHECK(n > 0, "set_num_threads: expected a positive count, got ", n);
  thread_count() = n;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int get_num_threads() { return thread_count(); }

}  // namespace kiln
