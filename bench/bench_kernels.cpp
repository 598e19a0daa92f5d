// Kernel benchmark: the fast kernels beside their references, measured side by side in one run, with the FLOP
// rate as a fraction of this machine's FMA peak (measured here by an FMA loop). Single thread throughout, so the
// figures are per core. Prints a table.
//   bench_kernels [--reps R] [--quick]     (--quick: skips L = 65,536)
#include "bench_common.h"
#include "kernels/janus_attention.h"
#include "janusdna/ops.h"
#include "kernels/selective_scan.h"
#include "kernels/simd_avx2.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fmt/format.h>
#include <functional>
#include <vector>

using namespace janusdna;
using torch::Tensor;

namespace {

// Useful FLOP of masked attention: 4 d per allowed (row, key) pair (q.k and p.v), per head.
double attention_flop(kernels::AttentionMask mask, int64_t T, int64_t heads, int64_t d) {
    double pairs = 0;
    for (int64_t i = 0; i < T; ++i) {
        kernels::KeyRange r[2];
        kernels::attention_key_ranges(mask, T, i, r);
        for (const auto& x : r) pairs += double(std::max<int64_t>(0, x.end - x.begin));
    }
    return 4.0 * double(d) * heads * pairs;
}

} // namespace

int main(int argc, char** argv) {
    int reps = 5;
    bool quick = false;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
        else if (!std::strcmp(argv[i], "--quick")) quick = true;
        else { fmt::print(stderr, "usage: bench_kernels [--reps R] [--quick]\n"); return 1; }
    }
    at::set_num_threads(1);
    const bool avx2 = kernels::avx2::cpu_has_avx2_fma();
    if (!avx2) { fmt::print("# CPU without AVX2/FMA: nothing to compare\n"); return 0; }
    const double peak = bench::fma_peak_core();
    fmt::print("# janusdna kernel benchmark, 1 thread, float32, AVX2+FMA; median of {} reps\n", reps);
    fmt::print("# measured AVX2 FMA peak: {:.1f} GFLOP/s per core\n", peak);
    fmt::print("{:<34} {:>10} {:>12} {:>10} {:>8} {:>8}\n", "kernel", "time_s", "rate", "unit", "vs_ref", "%peak");
    torch::manual_seed(1);

    // --- selective scan forward: H = 32 model (D = 64 channels, N = 16 states), 8 windows of 1,024 ---
    {
        const int64_t Bn = 8, L = 1024, D = 64, N = 16;
        auto opt = torch::TensorOptions().dtype(torch::kFloat);
        Tensor u = torch::randn({Bn, L, D}, opt), delta = 0.5 * torch::randn({Bn, L, D}, opt);  // [B, L, D]
        Tensor A = -torch::exp(0.5 * torch::randn({D, N}, opt));                                 // [D, N]
        Tensor B = torch::randn({Bn, L, N}, opt), C = torch::randn({Bn, L, N}, opt);            // [B, L, N]
        Tensor Dv = torch::randn({D}, opt), z = torch::randn({Bn, L, D}, opt), bias = torch::randn({D}, opt);
        Tensor out = torch::empty_like(u);
        kernels::ScanParams<float> p;
        p.batch = Bn, p.length = L, p.channels = D, p.states = N;
        p.u = u.data_ptr<float>(), p.delta = delta.data_ptr<float>(), p.A = A.data_ptr<float>();
        p.B = B.data_ptr<float>(), p.C = C.data_ptr<float>(), p.D = Dv.data_ptr<float>();
        p.z = z.data_ptr<float>(), p.delta_bias = bias.data_ptr<float>();
        const double updates = double(Bn * L * D * N);
        const double t_ref = bench::median_time(reps, [&] {
            for (int64_t b = 0; b < Bn; ++b) kernels::selective_scan_fwd_ref<float>(p, out.data_ptr<float>(), b, 0, D);
        });
        const double t_fast = bench::median_time(reps, [&] {
            for (int64_t b = 0; b < Bn; ++b) kernels::selective_scan_fwd_avx2(p, out.data_ptr<float>(), b, 0, D);
        });
        fmt::print("{:<34} {:>10.4f} {:>12.3f} {:>10} {:>8} {:>8}\n", "scan fwd reference (8x1024, D64 N16)", t_ref,
                   updates / t_ref / 1e9, "G upd/s", "1.00", "-");
        fmt::print("{:<34} {:>10.4f} {:>12.3f} {:>10} {:>8.2f} {:>8}\n", "scan fwd AVX2", t_fast,
                   updates / t_fast / 1e9, "G upd/s", t_ref / t_fast, "-");
        std::fflush(stdout);
    }

    // --- final Janus attention, H = 32 model: head dim 8; T = 2L rows ---
    const int64_t d = 8;
    for (const int64_t L : {1024, 2048, 8192, 65536}) {
        if (quick && L > 8192) continue;
        const int64_t T = 2 * L, heads = L <= 8192 ? 4 : 1; // one head at 65,536 (per-head work is identical)
        const int r = L <= 2048 ? reps : std::min(reps, L <= 8192 ? 3 : 1);
        auto opt = torch::TensorOptions().dtype(torch::kFloat);
        Tensor q = torch::randn({1, T, heads, d}, opt), k = torch::randn({1, T, heads, d}, opt); // [1, T, h, d]
        Tensor v = torch::randn({1, T, heads, d}, opt);
        Tensor out = torch::empty_like(q), lse = torch::empty({1, heads, T}, opt);                // [1, h, T]
        kernels::AttentionParams<float> p;
        p.batch = 1, p.length = T, p.heads = heads, p.head_dim = d, p.mask = kernels::AttentionMask::janus;
        p.scale = 0.25f, p.q = q.data_ptr<float>(), p.k = k.data_ptr<float>(), p.v = v.data_ptr<float>();
        const double flop = attention_flop(p.mask, T, heads, d);
        const std::string tag = fmt::format("L={} h={} d={}", L, heads, d);
        auto row = [&](const std::string& name, double t, double t_base) {
            const double gf = flop / t / 1e9;
            fmt::print("{:<34} {:>10.4f} {:>12.2f} {:>10} {:>8} {:>7.1f}%\n", name, t, gf, "GFLOP/s",
                       t_base > 0 ? fmt::format("{:.2f}", t_base / t) : std::string("-"), 100.0 * gf / peak);
            std::fflush(stdout);
        };
        double t_dense = 0;
        if (L <= 2048) { // dense: a [h, 2L, 2L] score matrix (1 GiB at L = 8,192 per head: not run beyond 2,048)
            c10::InferenceMode guard;
            t_dense = bench::median_time(r, [&] {
                ops::detail::janus_attention_composite(q, k, v, 0.25, ops::AttentionMask::janus);
            });
            row("attn dense " + tag, t_dense, 0);
            const double t_ref = bench::median_time(std::min(r, 3), [&] {
                for (int64_t h = 0; h < heads; ++h)
                    kernels::attention_fwd_ref<float>(p, out.data_ptr<float>(), lse.data_ptr<float>(), 0, h, 0, T);
            });
            row("attn reference rows " + tag, t_ref, t_dense);
        }
        const double t_tiled = bench::median_time(r, [&] {
            for (int64_t h = 0; h < heads; ++h)
                kernels::attention_fwd_avx2(p, out.data_ptr<float>(), lse.data_ptr<float>(), 0, h, 0, T);
        });
        row("attn tiled AVX2 " + tag, t_tiled, t_dense);
    }
    fmt::print("# rate: useful FLOP (4 d per allowed query-key pair) per second; vs_ref: reference time / this time\n");
    return 0;
}
