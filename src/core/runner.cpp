#include "janusdna/runner.h"
#include "janusdna/error.h"
#include "janusdna/heads.h"
#include "janusdna/window_plan.h"

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

void run_tiled(Runner& runner, const std::vector<int64_t>& ids, int64_t window, const RunOptions& opt,
               const std::function<void(const WindowResult&, int64_t, int64_t, int64_t)>& fn) {
    const int64_t L = static_cast<int64_t>(ids.size());
    if (window == 0 || L <= window) {
        std::vector<WindowResult> res = runner.run({ids}, opt);
        fn(res[0], 0, 0, L);
        return;
    }
    const std::vector<Window> plan = plan_grid(0, L, L, window, std::max<int64_t>(1, window / 2));
    const size_t group = static_cast<size_t>(runner.batch());
    for (size_t first = 0; first < plan.size(); first += group) {
        const size_t n = std::min(group, plan.size() - first);
        std::vector<std::vector<int64_t>> batch(n);
        for (size_t j = 0; j < n; ++j) batch[j].assign(ids.begin() + plan[first + j].beg, ids.begin() + plan[first + j].end);
        std::vector<WindowResult> res = runner.run(batch, opt);
        for (size_t j = 0; j < n; ++j) fn(res[j], plan[first + j].beg, plan[first + j].own_beg, plan[first + j].own_end);
    }
}

} // namespace janusdna
