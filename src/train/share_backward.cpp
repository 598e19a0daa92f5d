// See share_backward.h.
#include "share_backward.h"
#include "janusdna/parallel.h"

#include <torch/torch.h>

#include <algorithm>

namespace janusdna::train_detail {

BatchResult share_backward(JanusModelImpl& model, const std::vector<torch::Tensor>& params, int64_t rows,
                           double loss_scale, double weight,
                           const std::function<ShareOutput(int64_t b0, int64_t b1)>& share) {
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(parallel_width(), rows));
    auto first = [&](int64_t i) { return rows * i / parts; };
    std::vector<ShareOutput> y(static_cast<size_t>(parts));
    parallel_tasks(parts, [&](int64_t i) { y[static_cast<size_t>(i)] = share(first(i), first(i + 1)); });

    // The aux loss over the whole batch, on detached copies of the router probabilities (the choices are constants).
    BatchResult out;
    std::vector<torch::Tensor> leaves;
    for (auto field : {&ShareOutput::router_fwd, &ShareOutput::router_bwd}) {
        auto& dst = field == &ShareOutput::router_fwd ? out.router_fwd : out.router_bwd;
        for (size_t layer = 0; layer < (y[0].*field).size(); ++layer) {
            std::vector<torch::Tensor> probs, chosen;
            for (auto& yi : y) probs.push_back((yi.*field)[layer].probs.detach()), chosen.push_back((yi.*field)[layer].chosen);
            dst.push_back({torch::cat(probs, 0).requires_grad_(true), torch::cat(chosen, 0)}); // [rows * L, E], [rows * L, k]
            leaves.push_back(dst.back().probs);
        }
    }
    std::vector<torch::Tensor> aux_grad; // d aux / d router probabilities, per leaf
    if (!leaves.empty()) {
        // aux = coef (lb(forward routers) + lb(backward routers)): the two terms have disjoint leaves, so each is
        // a graph of its own, on its own thread.
        const std::vector<RouterOutput>* routers[2] = {&out.router_fwd, &out.router_bwd};
        double part[2] = {0, 0};
        std::vector<torch::Tensor> grads[2];
        parallel_tasks(2, [&](int64_t i) {
            if (routers[i]->empty()) return;
            torch::Tensor aux = model.config.router_aux_loss_coef * load_balancing_loss(*routers[i]);
            part[i] = aux.item<double>();
            std::vector<torch::Tensor> probs;
            for (const auto& r : *routers[i]) probs.push_back(r.probs);
            grads[i] = torch::autograd::grad({aux}, probs);
        });
        out.aux = part[0] + part[1];
        for (auto& g : grads) aux_grad.insert(aux_grad.end(), g.begin(), g.end());
    }
    // Backward per share, each on its own thread, into separate gradient lists.
    std::vector<std::vector<torch::Tensor>> grads(static_cast<size_t>(parts));
    parallel_tasks(parts, [&](int64_t i) {
        const ShareOutput& s = y[static_cast<size_t>(i)];
        std::vector<torch::Tensor> outputs{s.loss}, seeds{torch::full({}, weight * loss_scale, s.loss.options())};
        size_t leaf = 0;
        for (auto field : {&ShareOutput::router_fwd, &ShareOutput::router_bwd})
            for (size_t layer = 0; layer < (s.*field).size(); ++layer) {
                // This share's rows of the whole-batch leaf: after the tokens of the shares before it (rows may
                // differ in length, so the tokens are counted, not the rows).
                const torch::Tensor& probs = (s.*field)[layer].probs;       // [share's tokens, E]
                int64_t offset = 0;
                for (int64_t j = 0; j < i; ++j) offset += (y[static_cast<size_t>(j)].*field)[layer].probs.size(0);
                outputs.push_back(probs);
                seeds.push_back(weight * aux_grad[leaf++].narrow(0, offset, probs.size(0)));
            }
        grads[static_cast<size_t>(i)] = torch::autograd::grad(outputs, params, seeds, /*retain_graph=*/false,
                                                              /*create_graph=*/false, /*allow_unused=*/true);
    });
    torch::NoGradGuard no_grad;
    for (size_t p = 0; p < params.size(); ++p) {
        torch::Tensor g;
        int terms = 0;
        for (auto& gi : grads) // in share order, so the sum does not depend on thread timing
            if (gi[p].defined()) g = g.defined() ? g + gi[p] : gi[p], ++terms;
        if (!g.defined()) continue;
        torch::Tensor param = params[p];
        if (param.grad().defined()) param.mutable_grad().add_(g);
        // A sum is a new tensor; a single share's gradient may be shared with other parameters (autograd hands
        // the same tensor to both inputs of an add), so it is copied before it can be accumulated into in place.
        else param.mutable_grad() = terms > 1 ? g : g.clone();
    }
    for (auto& s : y) out.loss_sum += s.loss.item<double>();
    for (auto& r : out.router_fwd) r.probs = r.probs.detach();
    for (auto& r : out.router_bwd) r.probs = r.probs.detach();
    return out;
}

} // namespace janusdna::train_detail
