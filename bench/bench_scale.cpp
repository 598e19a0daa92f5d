// What a genome costs: runs the janusdna command on three workloads as the workflow's jobs would (one process per
// job, -@ THREADS), measures wall time and each job's peak RSS, and projects a 3.1 Gb genome on one machine
// (THREADS threads) and on CORES cluster cores (CORES / THREADS such jobs at once, no other overhead assumed):
//   (a) a dense cohort-like VCF: an SNV every ~300 bp and an indel every ~3 kb over SPAN_VCF bases of a contig;
//   (b) tracks (pref) over SPAN_TRACK bases;
//   (c) pooled embeddings of N_REGIONS BED regions of 1 kb.
//   bench_scale JANUSDNA REF.fa [--contig 20] [--beg 10000000] [--vcf-span 5000000] [--track-span 10000000]
//               [--regions 10000] [--threads 2] [--cores 100] [--model M] [--keep DIR]
// The inputs are made from the reference (deterministic: a fixed seed); the VCF's ALT bases and indels are random,
// its REF is the reference's.
#include <sys/resource.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "janusdna/fasta.h"
#include "janusdna/runtime.h"

extern char** environ;

namespace {

struct Job { double seconds, cpu_seconds; long peak_rss_kb; }; // wall, user + system, peak RSS

// Runs argv as a child process (stdout and stderr to log), returns its wall time, CPU time and peak RSS; throws on
// failure.
Job run_job(const std::vector<std::string>& argv, const std::string& log) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    const auto t0 = std::chrono::steady_clock::now();
    if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0)
        throw std::runtime_error("cannot start " + argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    int status = 0;
    struct rusage ru {};
    if (wait4(pid, &status, 0, &ru) != pid) throw std::runtime_error("wait4 failed");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        throw std::runtime_error(fmt::format("{} failed (see {})", argv[1], log));
    const double cpu = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return Job{s, cpu, ru.ru_maxrss};
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: bench_scale JANUSDNA REF.fa [--contig 20] [--beg 10000000] [--vcf-span 5000000] "
                             "[--track-span 10000000] [--regions 10000] [--threads 2] [--cores 100] [--model M] [--keep DIR]\n");
        return 1;
    }
    const std::string janusdna = argv[1], fasta = argv[2];
    std::string contig = "20", model, keep;
    int64_t beg = 10'000'000, vcf_span = 5'000'000, track_span = 10'000'000, n_regions = 10'000;
    int threads = 2, cores = 100;
    for (int i = 3; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--contig") contig = v; else if (k == "--beg") beg = std::stoll(v);
        else if (k == "--vcf-span") vcf_span = std::stoll(v); else if (k == "--track-span") track_span = std::stoll(v);
        else if (k == "--regions") n_regions = std::stoll(v); else if (k == "--threads") threads = std::stoi(v);
        else if (k == "--cores") cores = std::stoi(v); else if (k == "--model") model = v; else if (k == "--keep") keep = v;
        else { std::fprintf(stderr, "bench_scale: unknown option %s\n", k.c_str()); return 1; }
    }
    try {
        namespace fs = std::filesystem;
        const fs::path dir = keep.empty() ? fs::temp_directory_path() / fmt::format("janusdna-bench-scale-{}", getpid()) : fs::path(keep);
        fs::create_directories(dir);
        janusdna::Reference ref = janusdna::Reference::open(fasta);
        const int64_t len = ref.length(contig);
        if (len < 0) throw std::runtime_error("contig " + contig + " is not in " + fasta);
        const int64_t need = std::max(vcf_span, std::max(track_span, n_regions * 1500));
        if (beg + need > len) throw std::runtime_error(fmt::format("{}:{} + {} runs past the contig end ({})", contig, beg, need, len));

        // (a) the VCF: SNVs ~300 bp apart and indels ~3 kb apart (uniform gaps around those means), REF from the reference.
        std::mt19937_64 rng(20);
        int64_t n_snv = 0, n_indel = 0;
        {
            std::ofstream vcf(dir / "dense.vcf");
            vcf << "##fileformat=VCFv4.2\n##contig=<ID=" << contig << ",length=" << len << ">\n"
                << "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n";
            const std::string seq = ref.fetch(contig, beg, beg + vcf_span);
            int64_t next_snv = std::uniform_int_distribution<int64_t>(1, 600)(rng);
            int64_t next_indel = std::uniform_int_distribution<int64_t>(1, 6000)(rng);
            const char* acgt = "ACGT";
            for (int64_t x = 0; x + 12 < vcf_span; ++x) {
                const char b = static_cast<char>(std::toupper(static_cast<unsigned char>(seq[x])));
                const bool base = b == 'A' || b == 'C' || b == 'G' || b == 'T';
                if (x == next_indel) {
                    next_indel += std::uniform_int_distribution<int64_t>(1, 5999)(rng);
                    if (base) {
                        const int n = std::uniform_int_distribution<int>(1, 8)(rng);
                        std::string r(1, b), a(1, b);
                        if (rng() & 1) {   // deletion of n bases
                            r = std::string(seq.substr(x, n + 1));
                            for (char& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                            if (r.find_first_not_of("ACGT") != std::string::npos) continue;
                        } else {
                            for (int i = 0; i < n; ++i) a += acgt[rng() & 3];
                        }
                        vcf << contig << '\t' << beg + x + 1 << "\t.\t" << r << '\t' << a << "\t.\t.\t.\n";
                        ++n_indel;
                        continue;
                    }
                }
                if (x == next_snv) {
                    next_snv += std::uniform_int_distribution<int64_t>(1, 599)(rng);
                    if (base) {
                        char a;
                        do a = acgt[rng() & 3]; while (a == b);
                        vcf << contig << '\t' << beg + x + 1 << "\t.\t" << b << '\t' << a << "\t.\t.\t.\n";
                        ++n_snv;
                    }
                }
            }
        }
        // (c) the BED: n_regions regions of 1 kb, 1.5 kb apart.
        {
            std::ofstream bed(dir / "regions.bed");
            for (int64_t i = 0; i < n_regions; ++i) bed << contig << '\t' << beg + 1500 * i << '\t' << beg + 1500 * i + 1000 << "\tr" << i << '\n';
        }

        std::vector<std::string> common = {"-@", std::to_string(threads)};
        if (!model.empty()) common.insert(common.end(), {"-m", model});
        const auto cmd = [&](std::vector<std::string> a) { a.insert(a.begin(), janusdna); a.insert(a.end(), common.begin(), common.end()); return a; };
        const std::string d = dir.string();
        std::printf("# janusdna at genome scale: %s, threads %d per job; CPU: %s\n", janusdna.c_str(), threads,
                    janusdna::cpu_features().c_str());
        std::printf("# reference %s, contig %s from %lld; one job per workload (model loading included)\n", fasta.c_str(),
                    contig.c_str(), static_cast<long long>(beg));
        std::fflush(stdout);
        const Job a = run_job(cmd({"score-variants", "-f", fasta, "-Oz", "-o", d + "/dense.scored.vcf.gz", d + "/dense.vcf"}), d + "/a.log");
        const Job b = run_job(cmd({"track", "-r", fmt::format("{}:{}-{}", contig, beg + 1, beg + track_span), "-O", "bigwig", "-o",
                                   d + "/pref.bw", fasta}), d + "/b.log");
        const Job c = run_job(cmd({"embed", "-R", d + "/regions.bed", "-O", "npy", "-o", d + "/emb", fasta}), d + "/c.log");

        const double genome = 3.1e9, jobs = std::max(1.0, static_cast<double>(cores) / threads);
        const double n_var = static_cast<double>(n_snv + n_indel);
        struct Row { std::string what, units; double n, bases, s, cpu; long rss; };
        const Row rows[] = {
            {fmt::format("(a) VCF: {} SNVs + {} indels over {:.1f} Mb (JANUS_LLR + JANUS_PLL)", n_snv, n_indel, vcf_span / 1e6), "variants", n_var, double(vcf_span), a.seconds, a.cpu_seconds, a.peak_rss_kb},
            {fmt::format("(b) track pref over {:.1f} Mb (bigWig)", track_span / 1e6), "bases", double(track_span), double(track_span), b.seconds, b.cpu_seconds, b.peak_rss_kb},
            {fmt::format("(c) embed: {} BED regions of 1 kb, pooled (NPY)", n_regions), "regions", double(n_regions), 1000.0 * n_regions, c.seconds, c.cpu_seconds, c.peak_rss_kb},
        };
        // Wall-time projections assume the machine as measured; the CPU-time ones (CPU s / threads per job) what the
        // job would take with its threads to itself, so they hold on a shared, busy machine too.
        std::printf("\n| workload | wall s | CPU s | units/s | bases/s | peak RSS per job | 3.1 Gb, 1 machine (%d threads) | "
                    "3.1 Gb, %d cores (%g jobs) | the same from CPU time |\n", threads, cores, jobs);
        std::printf("|---|---|---|---|---|---|---|---|---|\n");
        for (const Row& r : rows) {
            // At the same density over the genome: the genome has genome / bases times the work of this job.
            const double hours = r.s * (genome / r.bases) / 3600.0;
            const double cpu_hours = r.cpu / threads * (genome / r.bases) / 3600.0;
            std::printf("| %s | %.1f | %.1f | %.0f %s/s | %.0f | %.2f GB | %.1f h | %.2f h | %.1f h, %.2f h |\n",
                        r.what.c_str(), r.s, r.cpu, r.n / r.s, r.units.c_str(), r.bases / r.s, r.rss / 1e6, hours,
                        hours / jobs, cpu_hours, cpu_hours / jobs);
        }
        std::fflush(stdout);
        if (keep.empty()) fs::remove_all(dir);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_scale: %s\n", e.what());
        return 1;
    }
    return 0;
}
