// The runner: takes windows of token ids, batches those of equal length, runs the model under inference mode and
// hands results back in input order. Threads and batch size live here, not in subcommands; memory is bounded by
// batch x window.
#pragma once
#include <cstdint>
#include <vector>
#include <torch/types.h>

#include "janusdna/model.h"

namespace janusdna {

struct WindowResult {
    torch::Tensor hidden;    // [L, H] float32 (defined when asked for)
    torch::Tensor log_probs; // [L, 4] float32: log p(A, C, G, T) at each position, renormalised over the four
    torch::Tensor logits;    // [L, V] float32 (defined when asked for)
};

struct RunOptions {
    bool hidden = false;
    bool log_probs = true;
    bool logits = false;
};

class Runner {
public:
    // batch: at most this many windows per forward pass (>= 1).
    Runner(JanusModelImpl& model, int64_t batch);
    // Each window is a vector of token ids of length >= 2. Results are in input order.
    std::vector<WindowResult> run(const std::vector<std::vector<int64_t>>& windows, const RunOptions& opt);
    int64_t passes() const { return passes_; }  // forward passes made so far
    int64_t batch() const { return batch_; }

private:
    JanusModelImpl& model_;
    int64_t batch_;
    int64_t passes_ = 0;
};

} // namespace janusdna
