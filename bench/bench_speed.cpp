// The speed figures of issue #6 in one table: each workload measured with the fast kernels and with the scalar
// reference kernels (ops::set_reference_kernels) in the same run, the FLOP rate of the fast path and its fraction
// of this machine's FMA peak (measured here by an FMA loop, per core and for the threads used).
//   bench_speed [--threads N] [--reps R] [-f REF.fa] [--long L] [--quick]
// -f: a reference FASTA of at least 100 kb for the saturation row (default: ../shared's chr20 when present; the row
// is skipped without one). --long: length of the full-context pass (default 65,536; 0 skips it).
// FLOP counts: the GEMMs per base of each preset (../shared/docs/PERFORMANCE.md: 0.97, 4.62, 18.0 MFLOP for
// H = 32, 72, 144, both streams), 4 FLOP per scan state update, and 4 d per allowed query-key pair of the final
// attention (8 H L per base); training counts three times the forward.
#include "bench_common.h"
#include "kernels/janus_attention.h"
#include "janusdna/fasta.h"
#include "janusdna/model.h"
#include "janusdna/ops.h"
#include "janusdna/parallel.h"
#include "janusdna/runner.h"
#include "janusdna/runtime.h"
#include "janusdna/train.h"
#include "janusdna/variant_scoring.h"
#include "kernels/simd_avx2.h"

#include <torch/torch.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fmt/format.h>
#include <functional>
#include <thread>
#include <vector>

using namespace janusdna;
using torch::Tensor;

namespace {

using clk = std::chrono::steady_clock;
using bench::median_time;
double since(clk::time_point t0) { return bench::seconds_since(t0); }

double linear_mflop(int64_t H) { return H == 32 ? 0.97 : H == 72 ? 4.62 : 18.0; }
double scan_updates(int64_t H) { return H == 32 ? 16.4e3 : H == 72 ? 36.9e3 : 73.7e3; }
double forward_flop_per_base(int64_t H, int64_t L) {
    return linear_mflop(H) * 1e6 + 4.0 * scan_updates(H) + 8.0 * double(H) * double(L);
}

struct Row {
    std::string figure, target, unit;
    double reference = 0, fast = 0; // rates (reference 0: not measured)
    double flop_per_unit = 0;       // FLOP per counted unit (0: not a FLOP figure)
    double peak = 0;                // the peak the fraction is of
    std::string note;
};

void print_row(const Row& r) {
    auto num = [](double x) { return x < 100 ? fmt::format("{:.1f}", x) : fmt::format("{:.0f}", x); };
    const std::string ref = r.reference > 0 ? num(r.reference) : "-";
    const std::string ratio = r.reference > 0 ? fmt::format("{:.1f}x", r.fast / r.reference) : "-";
    std::string gf = "-", pct = "-";
    if (r.flop_per_unit > 0) {
        const double g = r.fast * r.flop_per_unit / 1e9;
        gf = fmt::format("{:.1f}", g);
        pct = fmt::format("{:.1f}%", 100.0 * g / r.peak);
    }
    fmt::print("| {} | {} | {} | {} | {} | {} | {} | {} |\n", r.figure, r.target, ref, num(r.fast), ratio, gf, pct,
               r.unit + (r.note.empty() ? "" : "; " + r.note));
    std::fflush(stdout);
}

// Forward passes of a preset's model at window W, batch B: bases per second.
double forward_rate(JanusModel& m, int64_t W, int64_t B, int reps) {
    torch::Tensor ids = torch::randint(7, 11, {B, W}, torch::kLong); // [B, W] A/C/G/T tokens
    c10::InferenceMode guard;
    const double t = median_time(reps, [&] { m->forward(ids); });
    return double(B * W) / t;
}

double train_rate(const std::string& preset, const Reference& ref, int steps) {
    auto comm = make_communicator(); // one rank
    return bench::train_tokens_per_second(preset, ref, 4, steps, *comm);
}

// Saturation mutagenesis (every SNV's LLR) over [beg, beg + len) of the first contig: SNVs per second.
double saturation_rate(JanusModel& m, const Reference& ref, int64_t beg, int64_t len) {
    Runner runner(*m, 16);
    int64_t n = 0;
    const auto t0 = clk::now();
    scan_region(ref, runner, ref.contigs().front(), beg, beg + len, 1024, false, [&](const BaseResult& b) {
        for (int c = 0; c < 4; ++c)
            if (c != b.ref) {
                volatile float llr = b.lp[c] - b.lp[b.ref];
                (void)llr;
                ++n;
            }
    });
    return double(n) / since(t0);
}

} // namespace

int main(int argc, char** argv) {
    int threads = 2, reps = 3;
    int64_t long_L = 65536;
    bool quick = false;
    std::string fasta = std::string(JANUSDNA_BUILD_DATADIR) + "/../../shared/data/grch37-chr20/20.fa.gz";
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
        else if (!std::strcmp(argv[i], "-f") && i + 1 < argc) fasta = argv[++i];
        else if (!std::strcmp(argv[i], "--long") && i + 1 < argc) long_L = std::atoll(argv[++i]);
        else if (!std::strcmp(argv[i], "--quick")) quick = true;
        else {
            fmt::print(stderr, "usage: bench_speed [--threads N] [--reps R] [-f REF.fa] [--long L] [--quick]\n");
            return 1;
        }
    }
    if (!kernels::avx2::cpu_has_avx2_fma()) {
        fmt::print("# CPU without AVX2/FMA: the fast kernels are not available here\n");
        return 0;
    }
    tune_allocator();
    set_compute_threads(1);
    const double peak1 = bench::fma_peak(1), peakN = bench::fma_peak(threads);
    set_compute_threads(threads);
    fmt::print("# janusdna speed benchmark (issue #6): float32, {} threads, CPU: {}\n", threads, cpu_features());
    fmt::print("# measured AVX2 FMA peak: {:.1f} GFLOP/s on 1 core, {:.1f} on {} threads\n", peak1, peakN, threads);
    fmt::print("# reference = the scalar reference kernels (same threads, same everything else), measured in this run\n\n");
    fmt::print("| figure | target | reference | fast | fast/ref | GFLOP/s | % of FMA peak | unit |\n");
    fmt::print("|---|---|---|---|---|---|---|---|\n");

    // Forward passes at 1,024-base windows (what embed, predict and track run).
    const char* presets[] = {"32-midattn", "72-midattn", "144-nomidattn"};
    const char* targets[] = {">= 60,000", ">= 15,000", ">= 5,000"};
    for (int k = 0; k < 3; ++k) {
        const ModelConfig c = ModelConfig::preset(presets[k]);
        torch::manual_seed(1);
        JanusModel m(c);
        m->init_weights();
        m->eval();
        Row r{fmt::format("forward H{} window 1,024 batch 8", c.hidden_size), targets[k], "bases/s"};
        ops::set_reference_kernels(false);
        r.fast = forward_rate(m, 1024, 8, quick ? reps : std::max(reps, 11)); // passes of 0.1-1.2 s: the median of 11
        ops::set_reference_kernels(true);
        r.reference = forward_rate(m, 1024, 8, quick ? 1 : reps);
        ops::set_reference_kernels(false);
        r.flop_per_unit = forward_flop_per_base(c.hidden_size, 1024);
        r.peak = peakN;
        print_row(r);
    }

    // The attention kernel alone at L = 65,536 (T = 131,072 rows, one head of the H32 model: d = 8), one thread.
    {
        const int64_t L = quick ? 8192 : 65536, T = 2 * L, d = 8;
        auto opt = torch::TensorOptions().dtype(torch::kFloat);
        torch::manual_seed(2);
        Tensor q = torch::randn({1, T, 1, d}, opt), k = torch::randn({1, T, 1, d}, opt), v = torch::randn({1, T, 1, d}, opt);
        Tensor out = torch::empty_like(q), lse = torch::empty({1, 1, T}, opt);
        kernels::AttentionParams<float> p;
        p.batch = 1, p.length = T, p.heads = 1, p.head_dim = d, p.mask = kernels::AttentionMask::janus;
        p.scale = 0.35f, p.q = q.data_ptr<float>(), p.k = k.data_ptr<float>(), p.v = v.data_ptr<float>();
        auto flop_of_rows = [&](int64_t i0, int64_t i1) {
            double pairs = 0;
            for (int64_t i = i0; i < i1; ++i) {
                kernels::KeyRange rr[2];
                kernels::attention_key_ranges(p.mask, T, i, rr);
                for (const auto& x : rr) pairs += double(std::max<int64_t>(0, x.end - x.begin));
            }
            return 4.0 * double(d) * pairs;
        };
        Row r{fmt::format("final attention kernel L={} (T={}), 1 thread, median of 3", L, T), ">= 40% of peak", "GFLOP/s"};
        // The median of three runs (~6 s each): single runs moved by 3-5 % on this VM.
        std::vector<double> secs_fast;
        auto t0 = clk::now();
        for (int rep = 0; rep < 3; ++rep) {
            t0 = clk::now();
            kernels::attention_fwd_avx2(p, out.data_ptr<float>(), lse.data_ptr<float>(), 0, 0, 0, T);
            secs_fast.push_back(since(t0));
        }
        std::sort(secs_fast.begin(), secs_fast.end());
        r.fast = flop_of_rows(0, T) / secs_fast[1] / 1e9;
        // The reference on 16 blocks of 64 rows spread over T (its cost per allowed pair does not depend on where).
        double flop = 0, secs = 0;
        for (int64_t blk = 0; blk < 16; ++blk) {
            const int64_t i0 = (T - 64) * blk / 15;
            t0 = clk::now();
            kernels::attention_fwd_ref<float>(p, out.data_ptr<float>(), lse.data_ptr<float>(), 0, 0, i0, i0 + 64);
            secs += since(t0);
            flop += flop_of_rows(i0, i0 + 64);
        }
        r.reference = flop / secs / 1e9;
        r.flop_per_unit = 1e9;
        r.peak = peak1;
        r.note = "reference on 1,024 sampled rows";
        print_row(r);
    }

    // Training: forward + backward + AdamW, H32, 1,024-base windows, batch 4, one rank.
    {
        const std::string genome = std::string(JANUSDNA_BUILD_DATADIR) + "/../test/data/train/chr20-40k.fa";
        Reference ref = Reference::open(genome);
        Row r{"training H32 window 1,024 batch 4, 1 rank", ">= 15,000", "tokens/s"};
        ops::set_reference_kernels(false);
        r.fast = train_rate("32-midattn", ref, quick ? 2 : 12); // the median step of 12, as bench_train
        ops::set_reference_kernels(true);
        r.reference = train_rate("32-midattn", ref, 2);
        ops::set_reference_kernels(false);
        r.flop_per_unit = 3.0 * forward_flop_per_base(32, 1024);
        r.peak = peakN;
        print_row(r);
    }

    // Saturation mutagenesis over 100 kb (reference: over 10 kb).
    if (std::FILE* f = std::fopen(fasta.c_str(), "r")) {
        std::fclose(f);
        Reference ref = Reference::open(fasta);
        const ModelConfig c = ModelConfig::preset("32-midattn");
        torch::manual_seed(1);
        JanusModel m(c);
        m->init_weights();
        m->eval();
        const int64_t beg = ref.length(ref.contigs().front()) > 40'000'000 ? 30'000'000 : 0;
        Row r{"score-variants saturation, 100 kb, window 1,024", ">= 20,000", "SNVs/s"};
        ops::set_reference_kernels(false);
        r.fast = saturation_rate(m, ref, beg, quick ? 20'000 : 100'000);
        ops::set_reference_kernels(true);
        r.reference = saturation_rate(m, ref, beg, 10'000);
        ops::set_reference_kernels(false);
        r.note = "H32; every base in two half-overlapping windows; reference over 10 kb";
        print_row(r);
    } else {
        fmt::print("| score-variants saturation | >= 20,000 | - | - | - | - | - | skipped: no reference FASTA ({}) |\n",
                   fasta);
    }

    // One full-context pass (what embed --window 0 runs): H32, batch 1.
    if (long_L > 0) {
        const ModelConfig c = ModelConfig::preset("32-midattn");
        torch::manual_seed(1);
        JanusModel m(c);
        m->init_weights();
        m->eval();
        torch::Tensor ids = torch::randint(7, 11, {1, long_L}, torch::kLong); // [1, L]
        c10::InferenceMode guard;
        const auto t0 = clk::now();
        m->forward(ids);
        const double s = since(t0);
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        Row r{fmt::format("full-context pass H32, L = {}", long_L), "1,048,576 in <= 6 GB", "bases/s"};
        r.fast = double(long_L) / s;
        r.flop_per_unit = forward_flop_per_base(32, long_L);
        r.peak = peakN;
        r.note = fmt::format("{:.1f} s, process peak RSS {:.2f} GB", s, double(ru.ru_maxrss) / 1048576.0);
        print_row(r);
    }
    return 0;
}
