#pragma once
// KILN_HOST_DEVICE marks the few functions both backends compile from one
// definition (the CPU's C++ and nvcc's device code), so that their results
// cannot drift apart.
#if defined(__CUDACC__)
#define KILN_HOST_DEVICE __host__ __device__
#else
#define KILN_HOST_DEVICE
#endif
