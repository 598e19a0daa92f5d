// Process-wide compute settings and build information.
#pragma once
#include <string>

namespace janusdna {

// Sets the threads of janusdna's coarse parallel work (parallel.h: windows, streams, heads) to n and LibTorch's
// intra-op pool and OpenBLAS's pool to one thread each. n <= 0: all cores.
void set_compute_threads(int n);
int compute_threads();

// Keeps freed large blocks in the heap instead of returning them to the kernel: the model allocates the same
// multi-megabyte activations on every call, and fresh pages cost page faults that slowed GEMMs several-fold
// (PERFORMANCE.md, "allocator churn"). Called once at start-up by the tools.
void tune_allocator();

// Multi-line "name: value" description of the build: janusdna, LibTorch, htslib, BLAS, CUDA, CPU features and
// the kernels selected on this CPU.
std::string build_info();

// Short one-line CPU feature summary ("avx2 fma avx512f ...").
std::string cpu_features();

} // namespace janusdna
