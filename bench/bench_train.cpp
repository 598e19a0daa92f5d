// Training throughput (forward + backward + AdamW step) of pretrain's Trainer: tokens/s for the 32- and 72-dim
// presets at 1,024-base windows on one rank, and for two ranks on this machine (c10d Gloo over loopback; the
// program starts its second rank itself). Prints a table. --only PRESET measures that preset on one rank and
// nothing else (for profiles and side-by-side runs).
//   bench_train [--steps N] [--batch B] [--threads T] [--genome FA] [--only PRESET]
#include "bench_common.h"
#include "janusdna/fasta.h"
#include "janusdna/runtime.h"
#include "janusdna/train.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;
using namespace janusdna;

namespace {

double measure(const std::string& preset, const Reference& ref, int64_t batch, int steps, Communicator& comm) {
    return bench::train_tokens_per_second(preset, ref, batch, steps, comm);
}

} // namespace

int main(int argc, char** argv) {
    int steps = 3, threads = 2;
    int64_t batch = 4;
    std::string genome = std::string(JANUSDNA_BUILD_DATADIR) + "/../test/data/train/chr20-40k.fa";
    std::string only;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--steps") && i + 1 < argc) steps = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) batch = std::atoll(argv[++i]);
        else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
        else if (!std::strcmp(argv[i], "--genome") && i + 1 < argc) genome = argv[++i];
        else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else {
            fmt::print(stderr, "usage: bench_train [--steps N] [--batch B] [--threads T] [--genome FA] [--only PRESET]\n");
            return 1;
        }
    }
    tune_allocator();
    Reference ref = Reference::open(genome);
    const char* rank_env = std::getenv("RANK");
    if (rank_env && std::string(rank_env) == "1") { // the second rank of the two-rank row
        set_compute_threads(threads);
        auto comm = make_communicator();
        measure("32-midattn", ref, batch, steps, *comm);
        return 0;
    }
    fmt::print("# janusdna training benchmark: forward + backward + AdamW, float32, window 1024, batch {} per rank\n", batch);
    fmt::print("# CPU: {}; {}\n", cpu_features(), genome);
    fmt::print("{:>12} {:>6} {:>8} {:>14}\n", "preset", "ranks", "threads", "tokens_per_s");
    auto single = make_communicator();
    set_compute_threads(threads);
    for (const char* preset : {"32-midattn", "72-midattn"}) {
        if (!only.empty() && only != preset) continue;
        const double r = measure(preset, ref, batch, steps, *single);
        fmt::print("{:>12} {:>6} {:>8} {:>14.0f}\n", preset, 1, threads, r);
        std::fflush(stdout);
    }
    if (!only.empty()) return 0;
    // Two ranks, one thread each, so both share the machine's cores as the one-rank row does.
    const std::string port = std::to_string(29500 + getpid() % 1000);
    setenv("WORLD_SIZE", "2", 1);
    setenv("MASTER_ADDR", "127.0.0.1", 1);
    setenv("MASTER_PORT", port.c_str(), 1);
    setenv("RANK", "1", 1);
    const std::string threads_each = std::to_string(std::max(1, threads / 2));
    std::vector<std::string> args = {argv[0], "--steps", std::to_string(steps), "--batch", std::to_string(batch),
                                     "--threads", threads_each, "--genome", genome};
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    pid_t child;
    if (posix_spawn(&child, "/proc/self/exe", nullptr, nullptr, cargs.data(), environ) != 0) {
        fmt::print(stderr, "bench_train: cannot start the second rank\n");
        return 1;
    }
    setenv("RANK", "0", 1);
    set_compute_threads(std::max(1, threads / 2));
    auto comm = make_communicator();
    const double r = measure("32-midattn", ref, batch, steps, *comm);
    int status = 0;
    waitpid(child, &status, 0);
    // tokens_per_second counts the whole step's tokens (both ranks).
    fmt::print("{:>12} {:>6} {:>8} {:>14.0f}\n", "32-midattn", 2, std::max(1, threads / 2), r);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
