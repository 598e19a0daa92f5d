// Throughput and peak memory of the embedding pipeline (janusdna embed's library part) on a real region:
// bases/s and peak RSS (getrusage ru_maxrss) for per-base embeddings in tiled mode, written as float16 NPY
// (or only checksummed with --no-write).
//   bench_embed MODEL REF.fa[.gz] REGION [--window W] [--stride S] [--flank F] [--batch B] [--threads N]
//               [--pool mean] [--no-write] [--out PREFIX]
// Example (the figures in the issue 3 report):
//   bench_embed test/data/tiny-midattn.model.safetensors /work/shared/data/grch37-chr20/20.fa.gz
//               20:30,000,001-31,000,000 --window 1024 --batch 8 --threads 2   (one command line)
#include "janusdna/embed.h"
#include "janusdna/embed_writers.h"
#include "janusdna/model_file.h"
#include "janusdna/runtime.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

using namespace janusdna;

namespace {
struct ChecksumSink : EmbedSink {
    double sum = 0;
    int64_t rows_seen = 0;
    int64_t H;
    explicit ChecksumSink(int64_t h) : H(h) {}
    void rows(const Region&, int64_t, const float* r, const int64_t*, int64_t n) override {
        for (int64_t i = 0; i < n * H; ++i) sum += r[i];
        rows_seen += n;
    }
    void pooled(const Region&, const float* m, int64_t, int64_t) override { sum += m[0]; ++rows_seen; }
};
long peak_rss_kib() {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss; // KiB on Linux
}
} // namespace

int main(int argc, char** argv) {
    if (argc < 4) {
        fmt::print(stderr, "usage: bench_embed MODEL REF.fa REGION [--window W] [--stride S] [--flank F] [--batch B] "
                           "[--threads N] [--pool mean] [--no-write] [--out PREFIX]\n");
        return 1;
    }
    EmbedOptions opt;
    int64_t window = -1, flank = -1;
    int threads = 2;
    bool write = true;
    std::string out = "/tmp/bench_embed." + std::to_string(getpid());
    for (int i = 4; i < argc; ++i) {
        auto next = [&] { if (i + 1 >= argc) throw std::runtime_error("missing value"); return std::atoll(argv[++i]); };
        if (!std::strcmp(argv[i], "--window")) window = next();
        else if (!std::strcmp(argv[i], "--stride")) opt.stride = next();
        else if (!std::strcmp(argv[i], "--flank")) flank = next();
        else if (!std::strcmp(argv[i], "--batch")) opt.batch = next();
        else if (!std::strcmp(argv[i], "--threads")) threads = static_cast<int>(next());
        else if (!std::strcmp(argv[i], "--pool") && i + 1 < argc) opt.pool = !std::strcmp(argv[++i], "mean") ? Pooling::Mean : Pooling::None;
        else if (!std::strcmp(argv[i], "--no-write")) write = false;
        else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else { fmt::print(stderr, "bench_embed: unknown option {}\n", argv[i]); return 1; }
    }
    try {
        set_compute_threads(threads);
        tune_allocator(); // as the janusdna command does (subcommands/main.cpp)
        LoadedModel m = load_model(argv[1]);
        const int64_t train = default_window(m.metadata);
        opt.window = window < 0 ? train : window;
        opt.flank = flank < 0 ? default_flank(opt.window, train) : flank;
        Reference ref = Reference::open(argv[2]);
        Region r = parse_region(argv[3], ref);
        const int64_t H = m.config.hidden_size;
        std::unique_ptr<EmbedSink> sink;
        ChecksumSink* check = nullptr;
        if (write && opt.pool == Pooling::None) sink = std::make_unique<PerBaseNpySink>(out, NpyType::F16, H, nlohmann::json::object());
        else if (write) sink = std::make_unique<PooledNpySink>(out, NpyType::F32, H, nlohmann::json::object());
        else { auto c = std::make_unique<ChecksumSink>(H); check = c.get(); sink = std::move(c); }
        const long rss_before = peak_rss_kib();
        Embedder e(*m.model, opt, *sink);
        const auto t0 = std::chrono::steady_clock::now();
        e.add(ref, r);
        e.finish();
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const int64_t bases = r.end - r.beg;
        fmt::print("# janusdna embed benchmark: model {} (H={}), {} {}:{}-{} ({} bases)\n", m.path, H, argv[2], r.contig,
                   r.beg + 1, r.end, bases);
        fmt::print("# window {}, stride {}, flank {}, batch {}, threads {}, pool {}, output {}, CPU: {}\n", opt.window,
                   opt.stride > 0 ? opt.stride : opt.window / 2, opt.flank, opt.batch, threads,
                   opt.pool == Pooling::Mean ? "mean" : "none",
                   write ? (out + (opt.pool == Pooling::None ? ".npy (float16)" : ".npy (float32)")) : "checksum only", cpu_features());
        fmt::print("forward_passes\t{}\nseconds\t{:.2f}\nbases_per_s\t{:.0f}\npeak_rss_mib\t{:.1f}\npeak_rss_before_run_mib\t{:.1f}\n",
                   e.passes(), secs, bases / secs, peak_rss_kib() / 1024.0, rss_before / 1024.0);
        if (check) fmt::print("checksum\t{:.6g}\n", check->sum);
        if (write) for (const char* s : {".npy", ".bed", ".json", ".scored.npy"}) std::remove((out + s).c_str());
    } catch (const std::exception& ex) {
        fmt::print(stderr, "bench_embed: {}\n", ex.what());
        return 1;
    }
    return 0;
}
