// The one test of whether an op must build an autograd graph (private to src/ops).
#pragma once
#include <initializer_list>
#include <ATen/core/grad_mode.h>
#include <torch/types.h>

namespace janusdna::ops {

// True when autograd records a graph through these tensors: grad mode is on and one of them requires grad. The ops
// take their kernels' inference fast paths only when it is false.
inline bool needs_graph(std::initializer_list<const torch::Tensor*> ts) {
    if (!at::GradMode::is_enabled()) return false;
    for (const torch::Tensor* t : ts)
        if (t->defined() && t->requires_grad()) return true;
    return false;
}

} // namespace janusdna::ops
