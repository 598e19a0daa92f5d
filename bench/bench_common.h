// Helpers shared by the benchmark programs: timing, the machine's FMA peak, a training-throughput run.
#pragma once
#include "janusdna/fasta.h"
#include "janusdna/train.h"
#include "kernels/simd_avx2.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

namespace bench {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Median wall time of `reps` calls of f (after one warm-up call when reps > 1).
inline double median_time(int reps, const std::function<void()>& f) {
    if (reps > 1) f();
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        f();
        t.push_back(seconds_since(t0));
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// FMA peak of one core in GFLOP/s: 12 independent 8-lane chains (16 FLOP per FMA), unrolled so the accumulators
// stay in registers (at -O2 a plain loop over the array kept them on the stack and measured a third of the peak).
JANUSDNA_AVX2 inline double fma_peak_core() {
    const int64_t iters = 20'000'000;
    __m256 acc[12];
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(float(i));
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t n = 0; n < iters; ++n)
#pragma GCC unroll 12
        for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    const double s = seconds_since(t0);
    float sink = 0;
    for (int i = 0; i < 12; ++i) sink += janusdna::kernels::avx2::hsum(acc[i]);
    if (sink == 12345.0f) std::fputs(" ", stdout);
    return 12.0 * 16.0 * iters / s / 1e9;
}

// The same on n threads at once: their sum.
inline double fma_peak(int n) {
    std::vector<double> r(static_cast<size_t>(n));
    std::vector<std::thread> t;
    for (int i = 0; i < n; ++i) t.emplace_back([&r, i] { r[static_cast<size_t>(i)] = fma_peak_core(); });
    for (auto& x : t) x.join();
    double s = 0;
    for (double x : r) s += x;
    return s;
}

// Median training tokens/s (forward + backward + AdamW) of a preset at 1,024-base windows over `steps` optimiser
// steps after one warm-up step, on the given communicator's ranks.
inline double train_tokens_per_second(const std::string& preset, const janusdna::Reference& ref, int64_t batch,
                                      int steps, janusdna::Communicator& comm) {
    using namespace janusdna;
    TrainOptions o;
    o.seq_len = 1024;
    o.batch = batch;
    o.steps = steps + 1;
    o.tokens_per_step = batch * o.seq_len * comm.world();
    torch::manual_seed(1);
    JanusModel model(ModelConfig::preset(preset));
    model->init_weights();
    Trainer trainer(model, o, comm);
    std::vector<Interval> all;
    for (const auto& c : ref.contigs()) all.push_back({c, 0, ref.length(c), "train"});
    WindowSampler sampler(ref, all, o.seq_len, o.seed, o.max_n_fraction, false);
    trainer.train_step(sampler); // warm-up
    std::vector<double> rates;
    for (int s = 0; s < steps; ++s) rates.push_back(trainer.train_step(sampler).tokens_per_second);
    std::sort(rates.begin(), rates.end());
    return rates[rates.size() / 2];
}

} // namespace bench
