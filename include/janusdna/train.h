// Pretraining: the Janus objective on windows of a reference genome (MODEL.md section 4), with exact resume and
// data-parallel scale-out. Shared by `pretrain` (and later `finetune`).
//
// Determinism: every random choice (which window, reverse complement or not) is a pure function of
// (seed, step, global window index), so the "data position" of a run is its step counter and a resumed or
// distributed run sees exactly the windows an uninterrupted single-process run would.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/regions.h"
#include "janusdna/model.h"
#include "janusdna/optim.h"
#include "janusdna/safetensors.h"

namespace janusdna {

struct TrainOptions {
    int64_t seq_len = 1024;
    int64_t batch = 8;                 // windows per micro-batch (one forward/backward)
    int64_t tokens_per_step = 0;       // per optimiser step, all ranks together; 0 = batch * seq_len * world
    int64_t steps = 1000;
    double lr = 8e-3, min_lr = 1e-4, warmup_fraction = 0.1;
    double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, clip = 1.0;
    bool rc_aug = false;
    uint64_t seed = 2222;
    double max_n_fraction = 0.5;       // windows with more N than this are skipped
    int64_t valid_every = 100, valid_windows = 32;
    int64_t checkpoint_every = 100;
    nlohmann::json to_json() const;
    static TrainOptions from_json(const nlohmann::json& j);
};

// A genomic interval, 0-based half-open, with its split ("train", "valid", "test").
struct Interval {
    std::string contig;
    int64_t beg = 0, end = 0;
    std::string split = "train";
};

// Subtracts `holes` from `intervals` (both any order); the result is sorted.
std::vector<Interval> subtract_intervals(const std::vector<Interval>& intervals, const std::vector<Interval>& holes);

// The intervals of `spec`: a BED file when `spec` names a readable file ("-" = stdin), else one region string such
// as 20:58,000,001-60,000,000 (parse_region), each checked against ref; an end past its contig's end is clipped
// after warn(...). Every interval gets `split`; with split "" a BED row's 4th column says train, valid or test
// (any other name, and a region string, is "train"). Contig names are matched to the reference's by `contigs`
// (--chr-prefix, --rename-chrs). Throws Error naming the file and line, or the region text.
std::vector<Interval> read_intervals(const std::string& spec, const Reference& ref, const std::string& split,
                                     WarnFn warn = {}, const ContigMatcher& contigs = ContigMatcher());

// Draws training windows deterministically from intervals of a reference.
class WindowSampler {
public:
    // Throws if no interval holds a whole window.
    WindowSampler(const Reference& ref, std::vector<Interval> intervals, int64_t seq_len, uint64_t seed,
                  double max_n_fraction, bool rc_aug);
    // Token ids of window `index` of optimiser step `step` ([PAD] for N), length seq_len.
    std::vector<int64_t> sample(int64_t step, int64_t index) const;
    int64_t total_bases() const { return cumulative_.empty() ? 0 : cumulative_.back(); }

private:
    const Reference& ref_;
    std::vector<Interval> intervals_;
    std::vector<int64_t> cumulative_;  // cumulative count of window starts per interval
    int64_t seq_len_;
    uint64_t seed_;
    double max_n_fraction_;
    bool rc_aug_;
};

// Non-overlapping windows tiled from the start of each interval, skipping mostly-N ones; at most `max_windows`.
std::vector<std::vector<int64_t>> fixed_windows(const Reference& ref, const std::vector<Interval>& intervals,
                                                int64_t seq_len, int64_t max_windows, double max_n_fraction);

// Data-parallel communication (c10d; Gloo on CPU). Configured from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
class Communicator {
public:
    virtual ~Communicator() = default;
    virtual int rank() const = 0;
    virtual int world() const = 0;
    virtual void allreduce_sum(torch::Tensor& t) = 0; // in place, float32/64 CPU tensor
    virtual void barrier() = 0;
};
// A single-process communicator when WORLD_SIZE is unset or 1, else a c10d Gloo process group.
std::unique_ptr<Communicator> make_communicator();

struct StepStats {
    int64_t step = 0, tokens = 0;
    double lr = 0, loss = 0, aux_loss = 0, grad_norm = 0, tokens_per_second = 0;
    std::vector<double> expert_load_max; // per MoE layer and direction: largest share of routed tokens
};

// Owns the optimiser state (AdamW, decoupled weight decay, no decay for biases and the embedding as in the
// reference) and the schedule (linear warm-up from 1e-6, then cosine down to min_lr).
class Trainer {
public:
    Trainer(JanusModel model, TrainOptions opt, Communicator& comm);
    double lr_at(int64_t step) const;
    // One optimiser step: this rank's share of the step's micro-batches, gradient averaging, clipping, update.
    StepStats train_step(const WindowSampler& sampler);
    // Mean cross-entropy in bits per scored base over the windows (no gradients).
    double evaluate_bits(const std::vector<std::vector<int64_t>>& windows);
    // Atomic: written to a temporary name and renamed. Holds weights, optimiser moments, step, tokens, options.
    void save_checkpoint(const std::string& path, const nlohmann::json& extra) const;
    // The checkpoint's contents, for callers that write it themselves.
    SafetensorsWriter checkpoint_writer(const nlohmann::json& extra) const;
    // Throws if the checkpoint's model config or tensor set differs from this trainer's.
    nlohmann::json load_checkpoint(const std::string& path);
    int64_t step() const { return step_; }
    int64_t tokens() const { return tokens_; }
    int64_t micro_batches_per_step() const;
    JanusModel& model() { return model_; }
    const TrainOptions& options() const { return opt_; }

private:
    JanusModel model_;
    TrainOptions opt_;
    Communicator& comm_;
    AdamW adam_;
    int64_t step_ = 0, tokens_ = 0;
};

} // namespace janusdna
