#pragma once
// Thread count for CPU kernels, shared by OpenMP and OpenBLAS. Read from
// KILN_NUM_THREADS at start-up (default: all cores).
namespace kiln {
void set_num_threads(int n);
int get_num_threads();
}  // namespace kiln
