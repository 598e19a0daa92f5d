// AdamW as torch.optim.AdamW computes it, with the state kept in plain tensors for exact checkpoints.
#include "janusdna/optim.h"
#include "janusdna/error.h"
#include "kernels/adamw.h"
#include "janusdna/parallel.h"

#include <ATen/Dispatch.h>
#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace janusdna {

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> named_params, AdamWOptions o) : o_(o) {
    for (auto& [n, p] : named_params) {
        names_.push_back(n);
        params_.push_back(p);
        exp_avg_.push_back(torch::zeros_like(p));
        exp_avg_sq_.push_back(torch::zeros_like(p));
        const bool bias = n.size() > 5 && n.compare(n.size() - 5, 5, ".bias") == 0;
        decay_.push_back(!bias && n.find("embed_tokens.") == std::string::npos);
    }
}

void AdamW::zero_grad() {
    for (auto& p : params_) p.mutable_grad() = torch::Tensor();
}

torch::Tensor AdamW::flat_grad() const {
    std::vector<torch::Tensor> grads;
    for (const auto& p : params_)
        grads.push_back(p.grad().defined() ? p.grad().reshape(-1) : torch::zeros({p.numel()}, p.options()));
    return torch::cat(grads);                                                                  // [P]
}

namespace {

void adamw_run(float* p, float* m, float* v, const float* g, int64_t n, const kernels::AdamWScalars<float>& s) {
    if (kernels::adamw_avx2_supported()) kernels::adamw_avx2(p, m, v, g, n, s);
    else kernels::adamw_ref<float>(p, m, v, g, n, s);
}

void adamw_run(double* p, double* m, double* v, const double* g, int64_t n, const kernels::AdamWScalars<double>& s) {
    kernels::adamw_ref<double>(p, m, v, g, n, s);
}

} // namespace

double AdamW::step(const torch::Tensor& flat, double lr, int64_t t) {
    torch::NoGradGuard no_grad;
    const double norm = flat.norm().item<double>();
    const double clip_coef = o_.clip > 0 && norm > o_.clip ? o_.clip / (norm + 1e-6) : 1.0;
    const double bc1 = 1 - std::pow(o_.beta1, t), bc2 = 1 - std::pow(o_.beta2, t);
    const torch::Tensor g = flat.contiguous();
    std::vector<int64_t> first{0}; // parameter i holds elements [first[i], first[i + 1]) of flat
    for (size_t i = 0; i < params_.size(); ++i) {
        const torch::Tensor& p = params_[i];
        if (!p.is_contiguous() || p.scalar_type() != g.scalar_type() || !p.device().is_cpu())
            throw Error(fmt::format("AdamW: parameter {} must be a contiguous CPU tensor of the gradient's type",
                                    names_[i]));
        first.push_back(first.back() + p.numel());
    }
    if (g.numel() != first.back())
        throw Error(fmt::format("AdamW: {} gradient values for {} parameters", g.numel(), first.back()));
    // One pass over each tensor (kernels/adamw.h; as ~8 ATen ops on each of the model's ~300 tensors the update
    // was 5-8 % of a training step), the elements split over the threads (it runs at memory speed). The split
    // points fall on multiples of 8 from a tensor's start, so every element takes the same path (vector body or
    // scalar tail) whatever the thread count, and the result does not depend on it.
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(parallel_width(), first.back() >> 16));
    std::vector<int64_t> cut;
    for (int64_t j = 0; j <= parts; ++j) {
        const int64_t e = first.back() * j / parts;
        const size_t i = static_cast<size_t>(std::upper_bound(first.begin(), first.end(), e) - first.begin() - 1);
        cut.push_back(i + 1 < first.size() ? std::min(first[i + 1], first[i] + (e - first[i] + 7) / 8 * 8) : e);
    }
    parallel_tasks(parts, [&](int64_t j) {
        const int64_t e0 = cut[static_cast<size_t>(j)], e1 = cut[static_cast<size_t>(j + 1)];
        size_t i = static_cast<size_t>(std::upper_bound(first.begin(), first.end(), e0) - first.begin() - 1);
        for (; i < params_.size() && first[i] < e1; ++i) {
            const int64_t a = std::max(e0, first[i]), b = std::min(e1, first[i + 1]);
            if (a >= b) continue;
            const double decay = decay_[i] ? 1 - lr * o_.weight_decay : 1.0;
            AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "adamw_update", [&] {
                using T = scalar_t;
                const kernels::AdamWScalars<T> sc{T(clip_coef), T(decay), T(o_.beta1), T(o_.beta2),
                                                 T(std::sqrt(bc2)), T(o_.eps), T(-lr / bc1)};
                const int64_t off = a - first[i];
                adamw_run(params_[i].data_ptr<T>() + off, exp_avg_[i].data_ptr<T>() + off,
                          exp_avg_sq_[i].data_ptr<T>() + off, g.data_ptr<T>() + a, b - a, sc);
            });
        }
    });
    return norm;
}

void AdamW::add_to(SafetensorsWriter& w, const std::string& weight_prefix) const {
    auto add = [&](const std::string& name, const torch::Tensor& t) {
        torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
        w.add(name, DType::F32, c.sizes().vec(), c.data_ptr(), c.numel() * sizeof(float));
    };
    for (size_t i = 0; i < params_.size(); ++i) {
        add(weight_prefix + names_[i], params_[i]);
        add("adam_m/" + names_[i], exp_avg_[i]);
        add("adam_v/" + names_[i], exp_avg_sq_[i]);
    }
}

void AdamW::load_from(const SafetensorsFile& f, const std::string& path, const std::string& weight_prefix) {
    torch::NoGradGuard no_grad;
    auto load = [&](const std::string& name, torch::Tensor& dst) {
        const TensorView* v = f.find(name);
        if (!v || v->dtype != DType::F32 || v->shape != dst.sizes().vec())
            throw Error(fmt::format("{}: checkpoint lacks tensor \"{}\" of shape [{}] (different configuration?)", path,
                                    name, fmt::join(dst.sizes(), ", ")));
        torch::Tensor src = torch::empty(v->shape, torch::kFloat);
        convert_to_f32(*v, src.data_ptr<float>());
        dst.copy_(src);
    };
    for (size_t i = 0; i < params_.size(); ++i) {
        load(weight_prefix + names_[i], params_[i]);
        load("adam_m/" + names_[i], exp_avg_[i]);
        load("adam_v/" + names_[i], exp_avg_sq_[i]);
    }
}

} // namespace janusdna
