#include "kiln/core/parallel.h"

#include <omp.h>

#include <cstdlib>
#include <string>

#include "kiln/core/error.h"

extern "C" void openblas_set_num_threads(int);

namespace kiln {
namespace {
int initial_threads() {
  int n = omp_get_num_procs();
  if (const char* env = std::getenv("KILN_NUM_THREADS"); env && *env) {
    try {
      n = std::stoi(env);
    } catch (...) {
      n = 0;
    }
    KILN_CHECK(n > 0, "KILN_NUM_THREADS must be a positive integer, got '", env, "'");
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
}  // namespace

void set_num_threads(int n) {
  KILN_CHECK(n > 0, "set_num_threads: expected a positive count, got ", n);
  thread_count() = n;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int get_num_threads() { return thread_count(); }

}  // namespace kiln
