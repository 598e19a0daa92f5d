// Forward-pass throughput of the JanusDNA model on this machine: bases per second for hidden sizes 32, 72, 144
// at windows of 1,024 and 8,192 (random weights; speed does not depend on them). Prints a table.
//   bench_forward [--threads N] [--batch B] [--reps R] [--quick]
#include "janusdna/model.h"
#include "janusdna/runtime.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fmt/format.h>

using namespace janusdna;

int main(int argc, char** argv) {
    int threads = 2, reps = 3;
    int64_t batch = 0; // 0: as many windows as make ~8k bases
    bool quick = false;
    int64_t only_hidden = 0;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::atoll(argv[++i]);
        else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--quick")) quick = true;
        else if (!std::strcmp(argv[i], "--hidden") && i + 1 < argc) only_hidden = std::atoll(argv[++i]);
        else { fmt::print(stderr, "usage: bench_forward [--threads N] [--batch B] [--reps R] [--quick]\n"); return 1; }
    }
    set_compute_threads(threads);
    const bool tuned = !std::getenv("JANUSDNA_NO_MALLOPT");
    if (tuned) tune_allocator();
    fmt::print("# janusdna forward-pass benchmark (inference mode, float32)\n");
    fmt::print("# threads {}, CPU features: {}\n", threads, cpu_features());
    fmt::print("# kernels: AVX2 scan, conv, tiled attention and dense layers when available; allocator tuning {}\n",
               tuned ? "on" : "off (JANUSDNA_NO_MALLOPT)");
    fmt::print("{:>6} {:>8} {:>6} {:>12} {:>14} {:>10}\n", "hidden", "window", "batch", "median_s", "bases_per_s", "reps");
    const int64_t sizes[] = {32, 72, 144};
    const int64_t windows[] = {1024, 8192};
    for (int64_t H : sizes) {
        if (only_hidden && H != only_hidden) continue;
        ModelConfig c = ModelConfig::preset(H == 144 ? "144-nomidattn" : std::to_string(H) + "-midattn");
        torch::manual_seed(1);
        JanusModel m(c);
        m->init_weights();
        m->eval();
        for (int64_t W : windows) {
            if (quick && W > 1024) continue;
            const int64_t B = batch > 0 ? batch : std::max<int64_t>(1, 8192 / W);
            torch::Tensor ids = torch::randint(7, 11, {B, W}, torch::kLong);
            c10::InferenceMode guard;
            m->forward(ids); // warm-up
            std::vector<double> t;
            for (int r = 0; r < reps; ++r) {
                auto t0 = std::chrono::steady_clock::now();
                m->forward(ids);
                t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
            std::sort(t.begin(), t.end());
            const double med = t[t.size() / 2];
            fmt::print("{:>6} {:>8} {:>6} {:>12.4f} {:>14.0f} {:>10}\n", H, W, B, med, B * W / med, reps);
            std::fflush(stdout);
        }
    }
    return 0;
}
