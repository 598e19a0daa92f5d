// Data-parallel communication through c10d, LibTorch's distributed engine (Gloo on CPU). The variables are
// torchrun's, so torchrun-style launchers, mpirun wrappers and cluster schedulers can start ranks.
#include "janusdna/error.h"
#include "janusdna/train.h"

#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1 // the Gloo process group is declared only under this macro
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>
#include <fmt/format.h>

namespace janusdna {

namespace {

class SingleProcess : public Communicator {
public:
    int rank() const override { return 0; }
    int world() const override { return 1; }
    void allreduce_sum(torch::Tensor&) override {}
    void barrier() override {}
};

class GlooCommunicator : public Communicator {
public:
    GlooCommunicator(int rank, int world, const std::string& addr, int port) : rank_(rank), world_(world) {
        c10d::TCPStoreOptions so;
        so.port = static_cast<uint16_t>(port);
        so.isServer = rank == 0;
        so.numWorkers = world;
        so.timeout = std::chrono::milliseconds(300000);
        store_ = c10::make_intrusive<c10d::TCPStore>(addr, so);
        auto opts = c10d::ProcessGroupGloo::Options::create();
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        opts->timeout = std::chrono::milliseconds(1800000);
        group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank, world, opts);
    }
    int rank() const override { return rank_; }
    int world() const override { return world_; }
    void allreduce_sum(torch::Tensor& t) override {
        std::vector<at::Tensor> v{t};
        group_->allreduce(v)->wait();
    }
    void barrier() override { group_->barrier()->wait(); }

private:
    int rank_, world_;
    c10::intrusive_ptr<c10d::Store> store_;
    c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    long x = std::strtol(v, &end, 10);
    if (*end) throw Error(fmt::format("environment variable {}={} is not an integer", name, v));
    return static_cast<int>(x);
}

} // namespace

std::unique_ptr<Communicator> make_communicator() {
    const int world = env_int("WORLD_SIZE", 1);
    if (world <= 1) return std::make_unique<SingleProcess>();
    const int rank = env_int("RANK", -1);
    if (rank < 0 || rank >= world) throw Error(fmt::format("RANK must be in 0..{} when WORLD_SIZE={}", world - 1, world));
    const char* addr = std::getenv("MASTER_ADDR");
    const int port = env_int("MASTER_PORT", 29500);
    try {
        return std::make_unique<GlooCommunicator>(rank, world, addr && *addr ? addr : "127.0.0.1", port);
    } catch (const c10::Error& e) {
        throw Error(fmt::format("cannot join the process group (rank {} of {}, {}:{}): {}", rank, world,
                                addr ? addr : "127.0.0.1", port, e.what_without_backtrace()));
    }
}

} // namespace janusdna
