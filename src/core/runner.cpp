#include "janusdna/runner.h"
#include "janusdna/error.h"
#include "janusdna/heads.h"

#include <fmt/format.h>
#include <map>

namespace janusdna {

Runner::Runner(JanusModelImpl& model, int64_t batch) : model_(model), batch_(batch) {
    if (batch < 1) throw Error(fmt::format("batch size must be at least 1, got {}", batch));
}

std::vector<WindowResult> Runner::run(const std::vector<std::vector<int64_t>>& windows, const RunOptions& opt) {
    std::vector<WindowResult> out(windows.size());
    // Group windows by length: only equal lengths share a pass (padding would change what the model sees).
    std::map<size_t, std::vector<size_t>> by_length;
    for (size_t i = 0; i < windows.size(); ++i) {
        if (windows[i].size() < 2) throw Error(fmt::format("window {} has {} bases; at least 2 are needed", i, windows[i].size()));
        by_length[windows[i].size()].push_back(i);
    }
    c10::InferenceMode guard;
    ForwardOptions fo;
    fo.logits = opt.log_probs || opt.logits;
    for (const auto& [L, members] : by_length) {
        for (size_t first = 0; first < members.size(); first += static_cast<size_t>(batch_)) {
            const size_t n = std::min(members.size() - first, static_cast<size_t>(batch_));
            torch::Tensor ids = torch::empty({static_cast<int64_t>(n), static_cast<int64_t>(L)}, torch::kLong); // [n, L]
            for (size_t j = 0; j < n; ++j)
                std::copy(windows[members[first + j]].begin(), windows[members[first + j]].end(), ids[j].data_ptr<int64_t>());
            ForwardOutput y = model_.forward(ids, fo);
            ++passes_;
            torch::Tensor lp = opt.log_probs ? base_log_probs(y.logits) : torch::Tensor(); // [n, L, 4]
            for (size_t j = 0; j < n; ++j) {
                WindowResult& r = out[members[first + j]];
                if (opt.hidden) r.hidden = y.hidden[j].to(torch::kFloat).contiguous();      // [L, H]
                if (opt.log_probs) r.log_probs = lp[j].contiguous();                        // [L, 4]
                if (opt.logits) r.logits = y.logits[j].contiguous();                        // [L, V]
            }
        }
    }
    return out;
}

} // namespace janusdna
