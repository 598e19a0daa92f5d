// Forward and backward of one batch split over threads, one autograd graph per thread (internal to src/train/).
//
// LibTorch runs a CPU backward on the thread that calls it, so one graph uses one core. Here each of up to
// parallel_width() shares of the batch builds its own graph on its own thread; the shares' parameter gradients
// are summed in share order, so the result does not depend on thread timing, and equals the single-graph
// gradient of   loss_scale * sum_i loss_i + aux(all router logits)   (times `weight`): each share returns the
// *sum* of its rows' losses, and the load-balancing loss, which is not a sum over rows, is computed once over the
// routers' outputs for the whole batch, its gradient with respect to each share's router probabilities fed into
// that share's backward.
#pragma once
#include "janusdna/model.h"

#include <functional>
#include <vector>

namespace janusdna::train_detail {

struct ShareOutput {
    torch::Tensor loss;                                // scalar: the sum of the share's per-row losses
    std::vector<RouterOutput> router_fwd, router_bwd;  // per MoE layer, the share's tokens (its rows may differ in
                                                       // length); probs with graph
};

struct BatchResult {
    double loss_sum = 0; // sum over shares of loss (not scaled)
    double aux = 0;      // the aux loss over the whole batch (0 without MoE layers)
    std::vector<RouterOutput> router_fwd, router_bwd; // whole batch, detached
};

// share(b0, b1) runs the forward of batch rows [b0, b1) with autograd on and returns its loss and routers.
// Gradients of weight * (loss_scale * sum of losses + aux) are added to each parameter's .grad.
BatchResult share_backward(JanusModelImpl& model, const std::vector<torch::Tensor>& params, int64_t rows,
                           double loss_scale, double weight,
                           const std::function<ShareOutput(int64_t b0, int64_t b1)>& share);

} // namespace janusdna::train_detail
