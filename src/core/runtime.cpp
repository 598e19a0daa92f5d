#include "janusdna/runtime.h"
#include "janusdna/parallel.h"
#include "kernels/janus_attention.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <fmt/format.h>
#include <htslib/hts.h>
#include <thread>
#include <torch/version.h>

namespace janusdna {

namespace detail {
void set_parallel_threads(int n); // parallel.cpp
}

void set_compute_threads(int n) {
    if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    // janusdna's own tasks get the threads (parallel.h); every op inside a task runs on one thread, so LibTorch's
    // intra-op pool and OpenBLAS's own pool (which LibTorch's setting does not reach; looked up at run time so
    // that any libblas.so.3 alternative works) are set to one thread.
    detail::set_parallel_threads(n);
    at::set_num_threads(1);
    using setter = void (*)(int);
    if (auto f = reinterpret_cast<setter>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) f(1);
}

int compute_threads() { return parallel_threads(); }

void tune_allocator() {
    mallopt(M_MMAP_THRESHOLD, 512 << 20); // serve blocks up to 512 MB from the heap, where they are reused
    mallopt(M_TRIM_THRESHOLD, 1 << 30);   // and do not hand freed memory back after every call
}

std::string cpu_features() {
    std::string s;
    __builtin_cpu_init();
#define FEATURE(x) if (__builtin_cpu_supports(x)) s += (s.empty() ? "" : " ") + std::string(x);
    FEATURE("sse4.2") FEATURE("avx") FEATURE("avx2") FEATURE("fma") FEATURE("avx512f") FEATURE("avx512bw")
    FEATURE("avx512vl") FEATURE("avx512bf16") FEATURE("avx512vnni")
#undef FEATURE
    return s.empty() ? "none detected" : s;
}

std::string build_info() {
    std::string blas = "unknown (libblas.so.3)";
    using getter = char* (*)();
    if (auto f = reinterpret_cast<getter>(dlsym(RTLD_DEFAULT, "openblas_get_config"))) blas = f();
    const bool avx2 = kernels::attention_avx2_supported();
    const std::string k = avx2 ? "AVX2+FMA: selective scan fwd/bwd, causal conv1d+SiLU fwd/bwd, tiled masked attention fwd/bwd, "
                                      "linear, SwiGLU MLP and RMSNorm fwd/bwd"
                               : "scalar reference (no AVX2+FMA on this CPU)";
    return fmt::format("janusdna {}\nLibTorch {}\nhtslib {}\nBLAS: {}\nCUDA: not built\nCPU: {}\nkernels: {}\n"
                       "threads: -@/--threads, default all {} cores (windows, streams and heads run as tasks, one "
                       "thread inside each)\n",
                       JANUSDNA_VERSION, TORCH_VERSION, hts_version(), blas, cpu_features(), k,
                       std::max(1u, std::thread::hardware_concurrency()));
}

} // namespace janusdna
