// Variant-scoring throughput: variants per second and forward passes for
//   (a) saturation mutagenesis of a region (every SNV, JANUS_LLR; track --all-snvs's computation),
//   (b) the real indels of a VCF (JANUS_PLL),
//   (c) sparse SNVs, one per 10 kb (JANUS_LLR only, then JANUS_LLR + JANUS_PLL).
//   bench_variants -m MODEL -f REF.fa [--indels VCF] [--contig 20] [--sat-beg 10000000] [--sat-len 100000]
//                  [--sparse-span 10000000] [--window 1024] [--batch 16] [--threads 2]
#include "janusdna/fasta.h"
#include "janusdna/model_file.h"
#include "janusdna/runner.h"
#include "janusdna/runtime.h"
#include "janusdna/variant_scoring.h"
#include "janusdna/vcf_io.h"

#include <chrono>
#include <cstring>
#include <fmt/format.h>

using namespace janusdna;

int main(int argc, char** argv) {
    std::string model, fasta, indels, contig = "20";
    int64_t sat_beg = 10000000, sat_len = 100000, sparse_span = 10000000, window = 1024, batch = 16;
    int threads = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "-m") model = v; else if (k == "-f") fasta = v; else if (k == "--indels") indels = v;
        else if (k == "--contig") contig = v; else if (k == "--sat-beg") sat_beg = std::stoll(v);
        else if (k == "--sat-len") sat_len = std::stoll(v); else if (k == "--sparse-span") sparse_span = std::stoll(v);
        else if (k == "--window") window = std::stoll(v); else if (k == "--batch") batch = std::stoll(v);
        else if (k == "--threads") threads = std::stoi(v);
        else { fmt::print(stderr, "unknown option {}\n", k); return 1; }
    }
    if (model.empty() || fasta.empty()) { fmt::print(stderr, "usage: bench_variants -m MODEL -f REF.fa [--indels VCF] ...\n"); return 1; }
    try {
        set_compute_threads(threads);
        LoadedModel m = load_model(model);
        Reference ref = Reference::open(fasta);
        fmt::print("# janusdna variant-scoring benchmark: model {} (hidden {}), window {}, batch {}, threads {}, CPU: {}\n",
                   model, m.config.hidden_size, window, batch, threads, cpu_features());
        fmt::print("{:<44} {:>9} {:>8} {:>9} {:>12}\n", "workload", "variants", "passes", "seconds", "variants/s");
        auto report = [](const std::string& what, int64_t n, int64_t passes, double s) {
            fmt::print("{:<44} {:>9} {:>8} {:>9.2f} {:>12.1f}\n", what, n, passes, s, n / s);
            std::fflush(stdout);
        };
        using clk = std::chrono::steady_clock;
        {   // (a)
            Runner runner(*m.model, batch);
            int64_t n = 0;
            auto t0 = clk::now();
            scan_region(ref, runner, contig, sat_beg, sat_beg + sat_len, window, false, [&](const BaseResult& b) {
                for (int c = 0; c < 4; ++c) if (c != b.ref) { volatile float llr = b.lp[c] - b.lp[b.ref]; (void)llr; ++n; }
            });
            report(fmt::format("(a) saturation {}:{}-{} ({} bp)", contig, sat_beg + 1, sat_beg + sat_len, sat_len), n,
                   runner.passes(), std::chrono::duration<double>(clk::now() - t0).count());
        }
        if (!indels.empty()) {  // (b)
            VcfReader in(indels);
            std::vector<VariantInput> v;
            bcf1_t* rec = bcf_init();
            while (in.next(rec)) {
                VariantInput x{bcf_hdr_id2name(in.header(), rec->rid), rec->pos, rec->d.allele[0], {}};
                for (int k = 1; k < rec->n_allele; ++k) x.alts.emplace_back(rec->d.allele[k]);
                v.push_back(std::move(x));
            }
            bcf_destroy(rec);
            Runner runner(*m.model, batch);
            ScoreOptions o; o.window = window;
            VariantScorer scorer(ref, runner, o);
            auto t0 = clk::now();
            std::vector<VariantScore> s = scorer.score(v);
            int64_t scored = 0;
            for (auto& x : s) for (auto& a : x.alleles) scored += a.has_pll();
            report(fmt::format("(b) {} real indels, JANUS_PLL ({} scored)", v.size(), scored), static_cast<int64_t>(v.size()),
                   runner.passes(), std::chrono::duration<double>(clk::now() - t0).count());
        }
        for (int pll = 0; pll < 2; ++pll) {  // (c)
            std::vector<VariantInput> v;
            const int64_t len = ref.length(contig);
            for (int64_t p = 5000; p < std::min(len, sparse_span); p += 10000) {
                const std::string b = ref.fetch(contig, p, p + 1);
                const char* alt = (b == "A" || b == "a") ? "G" : "A";
                if (b == "N" || b == "n") continue;
                v.push_back(VariantInput{contig, p, b, {alt}});
            }
            Runner runner(*m.model, batch);
            ScoreOptions o; o.window = window; o.pll = pll == 1;
            VariantScorer scorer(ref, runner, o);
            auto t0 = clk::now();
            scorer.score(v);
            report(fmt::format("(c) sparse SNVs 1/10 kb over {} Mb, {}", sparse_span / 1000000, pll ? "LLR+PLL" : "LLR only"),
                   static_cast<int64_t>(v.size()), runner.passes(), std::chrono::duration<double>(clk::now() - t0).count());
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "bench_variants: {}\n", e.what());
        return 1;
    }
    return 0;
}
