// The optimiser step, schedule, validation and checkpoints of pretraining.
#include "janusdna/error.h"
#include "janusdna/parallel.h"
#include "janusdna/safetensors.h"
#include "janusdna/train.h"
#include "share_backward.h"

#include <chrono>
#include <cmath>
#include <fmt/format.h>

namespace janusdna {

nlohmann::json TrainOptions::to_json() const {
    return {{"seq_len", seq_len}, {"batch", batch}, {"tokens_per_step", tokens_per_step}, {"steps", steps},
            {"lr", lr}, {"min_lr", min_lr}, {"warmup_fraction", warmup_fraction}, {"weight_decay", weight_decay},
            {"beta1", beta1}, {"beta2", beta2}, {"eps", eps}, {"clip", clip}, {"rc_aug", rc_aug}, {"seed", seed},
            {"max_n_fraction", max_n_fraction}, {"valid_every", valid_every}, {"valid_windows", valid_windows},
            {"checkpoint_every", checkpoint_every}};
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j) {
    TrainOptions o;
    o.seq_len = j.at("seq_len"); o.batch = j.at("batch"); o.tokens_per_step = j.at("tokens_per_step");
    o.steps = j.at("steps"); o.lr = j.at("lr"); o.min_lr = j.at("min_lr"); o.warmup_fraction = j.at("warmup_fraction");
    o.weight_decay = j.at("weight_decay"); o.beta1 = j.at("beta1"); o.beta2 = j.at("beta2"); o.eps = j.at("eps");
    o.clip = j.at("clip"); o.rc_aug = j.at("rc_aug"); o.seed = j.at("seed"); o.max_n_fraction = j.at("max_n_fraction");
    o.valid_every = j.at("valid_every"); o.valid_windows = j.at("valid_windows"); o.checkpoint_every = j.at("checkpoint_every");
    return o;
}

namespace {

struct MicroBatch {
    double ce = 0, aux = 0;                           // mean cross-entropy (nats) and the aux loss
    std::vector<RouterOutput> router_fwd, router_bwd; // per MoE layer, B*L rows, detached
};

// Forward and backward of one micro-batch: adds the gradient of weight * (mean CE + aux loss) to every
// parameter's .grad, the windows split over threads with one graph each (share_backward.h): CE is summed per share
// and divided by the micro-batch's token count.
MicroBatch micro_batch(JanusModelImpl& model, const torch::Tensor& ids, double weight) {
    namespace F = torch::nn::functional;
    const int64_t V = model.config.padded_vocab();
    const double count = std::max<int64_t>(1, (ids != 4).sum().item<int64_t>()); // [PAD] (4) is not scored
    const auto r = train_detail::share_backward(model, model.parameters(), ids.size(0), 1.0 / count, weight,
                                                [&](int64_t b0, int64_t b1) {
        const torch::Tensor part = ids.narrow(0, b0, b1 - b0);             // [b, L]
        ForwardOptions fo;
        fo.aux_loss = true; // collects the routers' outputs
        ForwardOutput y = model.forward(part, fo);
        train_detail::ShareOutput s;
        // Targets are the inputs themselves: the logits at t never saw base t (MODEL.md 2.10).
        s.loss = F::cross_entropy(y.logits.view({-1, V}), part.reshape(-1),
                                  F::CrossEntropyFuncOptions().ignore_index(4).reduction(torch::kSum));
        s.router_fwd = std::move(y.router_fwd), s.router_bwd = std::move(y.router_bwd);
        return s;
    });
    MicroBatch out;
    out.ce = r.loss_sum / count;
    out.aux = r.aux;
    out.router_fwd = r.router_fwd, out.router_bwd = r.router_bwd;
    return out;
}

std::vector<std::pair<std::string, torch::Tensor>> named(JanusModelImpl& m) {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (auto& item : m.named_parameters()) out.emplace_back(item.key(), item.value());
    return out;
}
} // namespace

Trainer::Trainer(JanusModel model, TrainOptions opt, Communicator& comm)
    : model_(model), opt_(opt), comm_(comm),
      adam_(named(*model), AdamWOptions{opt.weight_decay, opt.beta1, opt.beta2, opt.eps, opt.clip}) {}

int64_t Trainer::micro_batches_per_step() const {
    const int64_t per_micro = opt_.batch * opt_.seq_len;
    if (opt_.tokens_per_step <= 0) return comm_.world();
    return std::max<int64_t>(1, (opt_.tokens_per_step + per_micro - 1) / per_micro);
}

double Trainer::lr_at(int64_t step) const {
    const int64_t warmup = static_cast<int64_t>(opt_.warmup_fraction * opt_.steps);
    const double start = 1e-6; // timm's warmup_lr_init in the reference
    if (step < warmup) return start + (opt_.lr - start) * static_cast<double>(step) / warmup;
    const double span = std::max<int64_t>(1, opt_.steps - warmup);
    const double progress = std::min(1.0, static_cast<double>(step - warmup) / span);
    return opt_.min_lr + 0.5 * (opt_.lr - opt_.min_lr) * (1.0 + std::cos(M_PI * progress));
}

StepStats Trainer::train_step(const WindowSampler& sampler) {
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t M = micro_batches_per_step();
    model_->train();
    adam_.zero_grad();
    StepStats st;
    // [loss sum, aux sum, scored tokens] over this rank's micro-batches; summed across ranks below.
    torch::Tensor sums = torch::zeros({3}, torch::kDouble);
    for (int64_t m = comm_.rank(); m < M; m += comm_.world()) {
        torch::Tensor ids = torch::empty({opt_.batch, opt_.seq_len}, torch::kLong);         // [b, L]
        for (int64_t j = 0; j < opt_.batch; ++j) {
            std::vector<int64_t> w = sampler.sample(step_, m * opt_.batch + j);
            std::copy(w.begin(), w.end(), ids[j].data_ptr<int64_t>());
        }
        const MicroBatch y = micro_batch(*model_, ids, 1.0 / static_cast<double>(M));
        sums[0] += y.ce;
        sums[1] += y.aux;
        sums[2] += (ids != 4).sum().item<int64_t>();
        st.expert_load_max.clear();
        for (auto* routers : {&y.router_fwd, &y.router_bwd})
            for (const auto& router : *routers) {
                torch::Tensor load = torch::bincount(router.chosen.reshape(-1), {}, model_->config.num_experts).to(torch::kDouble);
                st.expert_load_max.push_back((load.max() / load.sum()).item<double>());
            }
    }
    // Average gradients across ranks: one flat buffer, one allreduce.
    torch::NoGradGuard no_grad;
    torch::Tensor flat = adam_.flat_grad();                                                  // [P]
    if (comm_.world() > 1) {
        comm_.allreduce_sum(flat);
        comm_.allreduce_sum(sums);
    }
    const double lr = lr_at(step_);
    const double norm = adam_.step(flat, lr, step_ + 1);
    ++step_;
    tokens_ += static_cast<int64_t>(M * opt_.batch * opt_.seq_len);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st.step = step_;
    st.tokens = tokens_;
    st.lr = lr;
    st.loss = sums[0].item<double>() / M;
    st.aux_loss = sums[1].item<double>() / M;
    st.grad_norm = norm;
    st.tokens_per_second = M * opt_.batch * opt_.seq_len / secs;
    return st;
}

double Trainer::evaluate_bits(const std::vector<std::vector<int64_t>>& windows) {
    if (windows.empty()) return std::nan("");
    model_->eval();
    c10::InferenceMode guard;
    double nats = 0;
    int64_t count = 0;
    const int64_t V = model_->config.padded_vocab();
    for (size_t first = 0; first < windows.size(); first += static_cast<size_t>(opt_.batch)) {
        const int64_t n = std::min<int64_t>(opt_.batch, static_cast<int64_t>(windows.size() - first));
        const int64_t L = static_cast<int64_t>(windows[first].size());
        torch::Tensor ids = torch::empty({n, L}, torch::kLong);                               // [n, L]
        for (int64_t j = 0; j < n; ++j) std::copy(windows[first + j].begin(), windows[first + j].end(), ids[j].data_ptr<int64_t>());
        ForwardOutput y = model_->forward(ids);
        nats += torch::nn::functional::cross_entropy(
                    y.logits.view({-1, V}), ids.view(-1),
                    torch::nn::functional::CrossEntropyFuncOptions().ignore_index(4).reduction(torch::kSum))
                    .item<double>();
        count += (ids != 4).sum().item<int64_t>();
    }
    return count ? nats / count / std::log(2.0) : std::nan("");
}

void Trainer::save_checkpoint(const std::string& path, const nlohmann::json& extra) const {
    checkpoint_writer(extra).write(path);
}

SafetensorsWriter Trainer::checkpoint_writer(const nlohmann::json& extra) const {
    SafetensorsWriter w;
    adam_.add_to(w);
    nlohmann::json state = {{"step", step_}, {"tokens", tokens_}, {"options", opt_.to_json()}, {"extra", extra}};
    w.set_metadata("janusdna_checkpoint", state.dump());
    w.set_metadata("janusdna_config", model_->config.to_json().dump());
    return w;
}

nlohmann::json Trainer::load_checkpoint(const std::string& path) {
    SafetensorsFile f = SafetensorsFile::open(path);
    auto meta = f.metadata();
    if (!meta.count("janusdna_checkpoint") || !meta.count("janusdna_config"))
        throw Error(fmt::format("{}: not a janusdna training checkpoint", path));
    const nlohmann::json cfg = nlohmann::json::parse(meta.at("janusdna_config"));
    if (cfg != model_->config.to_json())
        throw Error(fmt::format("{}: checkpoint was made for a different model configuration", path));
    const nlohmann::json state = nlohmann::json::parse(meta.at("janusdna_checkpoint"));
    adam_.load_from(f, path);
    step_ = state.at("step");
    tokens_ = state.at("tokens");
    return state;
}

} // namespace janusdna
