// The runner: takes windows of token ids, batches those of equal length, runs the model under inference mode and
// hands results back in input order. Threads and batch size live here, not in subcommands; memory is bounded by
// batch x window.
#pragma once
#include <cstdint>
#include <functional>
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

// One long sequence of token ids (a FASTA record) in bounded memory: window == 0 or ids.size() <= window is one
// pass; otherwise the windows of the contig grid plan_grid(0, L, L, window, max(1, window / 2)), each base taken
// from the window where it is most central (as track does for a reference), `batch` windows per pass. Calls
// fn(result, win_beg, own_beg, own_end) for each window in sequence order: rows own_beg - win_beg .. own_end -
// win_beg of result are the outputs of bases own_beg .. own_end - 1.
void run_tiled(Runner& runner, const std::vector<int64_t>& ids, int64_t window, const RunOptions& opt,
               const std::function<void(const WindowResult&, int64_t win_beg, int64_t own_beg, int64_t own_end)>& fn);

} // namespace janusdna
