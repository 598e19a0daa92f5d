// AdamW with decoupled weight decay and global-norm gradient clipping, written out (rather than torch::optim)
// so that its state is ours to checkpoint and restore exactly. Shared by pretrain and finetune.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>
#include <torch/types.h>

#include "janusdna/safetensors.h"

namespace janusdna {

struct AdamWOptions {
    double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, clip = 1.0;
};

class AdamW {
public:
    // Weight decay is off for biases and the token embedding, as in the reference (optim_groups.py).
    AdamW(std::vector<std::pair<std::string, torch::Tensor>> named_params, AdamWOptions o);
    void zero_grad();
    // The parameters' gradients as one flat vector (zeros where a gradient is undefined): [P].
    torch::Tensor flat_grad() const;
    // Clips `flat` (global norm, o.clip; 0 = off) and applies update number t (1-based) at learning rate lr.
    // Returns the gradient norm before clipping.
    double step(const torch::Tensor& flat, double lr, int64_t t);
    // Adds "PREFIX<name>" weights and "adam_m/", "adam_v/" moments (float32) to a checkpoint.
    void add_to(SafetensorsWriter& w, const std::string& weight_prefix = "model/") const;
    // Restores what add_to wrote; throws naming `path` and the tensor when one is missing or differs in shape.
    void load_from(const SafetensorsFile& f, const std::string& path, const std::string& weight_prefix = "model/");
    const std::vector<std::string>& names() const { return names_; }
    const std::vector<torch::Tensor>& params() const { return params_; }

private:
    AdamWOptions o_;
    std::vector<std::string> names_;
    std::vector<torch::Tensor> params_, exp_avg_, exp_avg_sq_;
    std::vector<bool> decay_;
};

} // namespace janusdna
