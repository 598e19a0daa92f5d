// AdamW as torch.optim.AdamW computes it, with the state kept in plain tensors for exact checkpoints.
#include "janusdna/optim.h"
#include "janusdna/error.h"
#include "adamw.h"

#include <ATen/Dispatch.h>
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
    int64_t offset = 0;
    for (size_t i = 0; i < params_.size(); ++i) {
        torch::Tensor& p = params_[i];
        const int64_t n = p.numel();
        if (!p.is_contiguous() || p.scalar_type() != g.scalar_type() || !p.device().is_cpu())
            throw Error(fmt::format("AdamW: parameter {} must be a contiguous CPU tensor of the gradient's type",
                                    names_[i]));
        const double decay = decay_[i] ? 1 - lr * o_.weight_decay : 1.0;
        // One pass per tensor (kernels/adamw.h); as ~8 ATen ops on each of the model's ~300 tensors the update
        // was 5-8 % of a training step, and 5 ms of a step in scalar code.
        AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "adamw_update", [&] {
            using T = scalar_t;
            const kernels::AdamWScalars<T> sc{T(clip_coef), T(decay), T(o_.beta1), T(o_.beta2), T(std::sqrt(bc2)),
                                             T(o_.eps), T(-lr / bc1)};
            T *pp = p.data_ptr<T>(), *mp = exp_avg_[i].data_ptr<T>(), *vp = exp_avg_sq_[i].data_ptr<T>();
            const T* gp = g.data_ptr<T>() + offset;
            adamw_run(pp, mp, vp, gp, n, sc);
        });
        offset += n;
    }
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
