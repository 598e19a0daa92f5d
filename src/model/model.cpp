// The JanusDNA forward pass (MODEL.md section 2). Shape comments: B batch, L length, H hidden, E experts,
// Din = expand * H, N d_state, R dt_rank, h heads, d head dim.
#include "janusdna/model.h"
#include "janusdna/error.h"
#include "janusdna/ops.h"
#include "janusdna/parallel.h"

#include <cmath>
#include <fmt/format.h>
#include <torch/nn/init.h>

namespace janusdna {

namespace F = torch::nn::functional;
using torch::Tensor;

static torch::nn::Linear linear(int64_t in, int64_t out, bool bias = false) {
    return torch::nn::Linear(torch::nn::LinearOptions(in, out).bias(bias));
}

// A Linear module's forward through ops::linear (its inference fast path; the same torch op under autograd).
static Tensor run_linear(const torch::nn::Linear& l, const Tensor& x) { return ops::linear(x, l->weight, l->bias); }

// ---------------------------------------------------------------------------------------------------------------
RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
    weight = register_parameter("weight", torch::ones({dim}));
}

Tensor RMSNormImpl::forward(const Tensor& x) { return ops::rms_norm(x, weight, eps); }

// ---------------------------------------------------------------------------------------------------------------
MLPImpl::MLPImpl(int64_t hidden, int64_t inter) {
    gate_proj = register_module("gate_proj", linear(hidden, inter));
    up_proj = register_module("up_proj", linear(hidden, inter));
    down_proj = register_module("down_proj", linear(inter, hidden));
}

Tensor MLPImpl::forward(const Tensor& x, const Tensor& residual) {
    return ops::swiglu_mlp(x, gate_proj->weight, up_proj->weight, down_proj->weight, residual); // [.., H] -> [.., H]
}

MoEImpl::MoEImpl(int64_t hidden, int64_t inter, int64_t n_experts, int64_t k) : top_k(k) {
    router = register_module("router", linear(hidden, n_experts));
    experts = register_module("experts", torch::nn::ModuleList());
    for (int64_t e = 0; e < n_experts; ++e) experts->push_back(MLP(hidden, inter));
}

Tensor top_k_indices(const Tensor& scores, int64_t k) {
    const Tensor sc = scores.detach().to(torch::kCPU).contiguous();         // [T, E] (on the CPU)
    if (sc.dim() != 2 || k < 1 || k > sc.size(1))
        throw Error(fmt::format("top_k_indices: need [T, E] scores and 1 <= k <= E, got {} dims and k = {}", sc.dim(), k));
    const int64_t T = sc.size(0), E = sc.size(1);
    Tensor chosen = torch::empty({T, k}, torch::kLong);                     // [T, k]
    int64_t* ch = chosen.data_ptr<int64_t>();
    AT_DISPATCH_FLOATING_TYPES(sc.scalar_type(), "top_k_indices", [&] {
        const scalar_t* P = sc.data_ptr<scalar_t>();
        if (k == 2) {
            // The routing's k = 2 without branches on the data (on random scores the general loop's insertion
            // test mispredicts): the same result, the first two values placed as the general loop places them,
            // then a value that strictly exceeds the second goes before it, and before the first too if it exceeds that.
            for (int64_t t = 0; t < T; ++t) {
                const scalar_t* row = P + t * E;
                const bool swap = row[1] > row[0];
                scalar_t v0 = swap ? row[1] : row[0], v1 = swap ? row[0] : row[1];
                int64_t i0 = swap, i1 = !swap;
                for (int64_t e = 2; e < E; ++e) {
                    const scalar_t v = row[e];
                    const bool gt1 = v > v1, gt0 = gt1 & (v > v0); // as the general loop: a NaN second blocks
                    v1 = gt0 ? v0 : gt1 ? v : v1, i1 = gt0 ? i0 : gt1 ? e : i1;
                    v0 = gt0 ? v : v0, i0 = gt0 ? e : i0;
                }
                ch[2 * t] = i0, ch[2 * t + 1] = i1;
            }
            return;
        }
        std::vector<scalar_t> val(static_cast<size_t>(k));
        for (int64_t t = 0; t < T; ++t) {
            // One pass keeping the k best so far, largest first: a value goes before the first one it strictly
            // exceeds, so equal values keep the lower index first (and a NaN is only taken to fill a short list).
            const scalar_t* row = P + t * E;
            int64_t* best = ch + t * k;
            int64_t n = 0;
            for (int64_t e = 0; e < E; ++e) {
                const scalar_t v = row[e];
                int64_t pos = n;
                while (pos > 0 && v > val[static_cast<size_t>(pos - 1)]) --pos;
                if (pos >= k) continue;
                for (int64_t i = std::min(n, k - 1); i > pos; --i) {
                    best[i] = best[i - 1];
                    val[static_cast<size_t>(i)] = val[static_cast<size_t>(i - 1)];
                }
                best[pos] = e, val[static_cast<size_t>(pos)] = v;
                n = std::min(n + 1, k);
            }
        }
    });
    return chosen;
}

namespace {

// Top-k routing of T tokens over E experts: each token's k largest probabilities (top_k_indices), and the T*k
// (token, slot) pairs grouped by expert with a counting sort (tokens ascending within an expert).
struct Routing {
    Tensor chosen;              // [T, k] expert of each (token, slot), int64
    Tensor order;               // [T*k] pair indices t * k + slot, by expert
    Tensor tokens;              // [T*k] the token t of each pair in order
    std::vector<int64_t> start; // [E + 1] each expert's first position in order
};

// The pairs grouped by expert from the choices [T, k] (int64, CPU) among E experts.
Routing route(const Tensor& chosen, int64_t E) {
    Routing r;
    r.chosen = chosen;                                                      // [T, k]
    const int64_t T = chosen.size(0), k = chosen.size(1);
    r.order = torch::empty({T * k}, torch::kLong);
    r.start.assign(static_cast<size_t>(E + 1), 0);
    const int64_t* ch = r.chosen.data_ptr<int64_t>();
    for (int64_t i = 0; i < T * k; ++i) ++r.start[static_cast<size_t>(ch[i] + 1)];
    for (int64_t e = 0; e < E; ++e) r.start[static_cast<size_t>(e + 1)] += r.start[static_cast<size_t>(e)];
    std::vector<int64_t> fill(r.start.begin(), r.start.end() - 1);
    r.tokens = torch::empty({T * k}, torch::kLong);
    int64_t *op = r.order.data_ptr<int64_t>(), *tp = r.tokens.data_ptr<int64_t>();
    for (int64_t i = 0; i < T * k; ++i) {
        const int64_t pos = fill[static_cast<size_t>(ch[i])]++;
        op[pos] = i, tp[pos] = i / k;
    }
    return r;
}

} // namespace

RouterOutput router_output(const Tensor& logits, int64_t top_k) {
    const auto ct = logits.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat; // router in fp32+
    RouterOutput r;
    r.probs = torch::softmax(logits.to(ct), -1);                            // [T, E]
    r.chosen = top_k_indices(r.probs, top_k);                               // [T, k]
    return r;
}

Tensor MoEImpl::forward(const Tensor& x, RouterOutput* router_out, const Tensor& residual) {
    const int64_t E = static_cast<int64_t>(experts->size());
    const RouterOutput ro = router_output(run_linear(router, x), top_k);    // probs [T, E], chosen [T, k]
    if (router_out) *router_out = ro;
    const Tensor& probs = ro.probs;
    const Routing r = route(ro.chosen, E);
    std::vector<Tensor> gates, ups, downs;
    for (int64_t e = 0; e < E; ++e) {
        auto* mlp = experts[e]->as<MLPImpl>();
        gates.push_back(mlp->gate_proj->weight), ups.push_back(mlp->up_proj->weight);
        downs.push_back(mlp->down_proj->weight);
    }
    // The pairs' routing weights gathered from probs (under autograd they carry the gradient) and their tokens.
    // (The routing is computed on the CPU; on another device its indices follow the tensors.)
    const Tensor order = r.order.to(x.device());                            // [T*k]
    Tensor weights = probs.gather(1, r.chosen.to(x.device())).to(x.scalar_type()); // [T, k]
    Tensor pair_w = weights.reshape({-1}).index_select(0, order);           // [T*k]
    return ops::moe_experts(x, r.tokens.to(x.device()), pair_w, r.start, gates, ups, downs, residual); // [T, H]
}

FeedForwardImpl::FeedForwardImpl(const ModelConfig& c, bool with_experts) {
    // Registered under the reference's names directly on the parent ("feed_forward_fwd.gate_proj" or
    // "feed_forward_fwd.router"/"experts"), so the wrapper copies the children's names into itself.
    if (with_experts) {
        moe = MoE(c.hidden_size, c.intermediate_size, c.num_experts, c.num_experts_per_tok);
        register_module("router", moe->router);
        register_module("experts", moe->experts);
    } else {
        mlp = MLP(c.hidden_size, c.intermediate_size);
        register_module("gate_proj", mlp->gate_proj);
        register_module("up_proj", mlp->up_proj);
        register_module("down_proj", mlp->down_proj);
    }
}

Tensor FeedForwardImpl::forward(const Tensor& x, std::vector<RouterOutput>* routers, const Tensor& residual) {
    if (mlp) return mlp(x, residual);
    const auto shape = x.sizes().vec();
    RouterOutput ro;
    Tensor y = moe->forward(x.reshape({-1, shape.back()}), routers ? &ro : nullptr,
                            residual.defined() ? residual.reshape({-1, shape.back()}) : residual); // [B*L, H]
    if (routers) routers->push_back(std::move(ro));
    return y.view(shape);
}

// ---------------------------------------------------------------------------------------------------------------
MambaMixerImpl::MambaMixerImpl(const ModelConfig& c, torch::nn::Linear shared_in, torch::nn::Linear shared_out)
    : d_inner(c.d_inner()), d_state(c.mamba_d_state), dt_rank(c.dt_rank()) {
    const int64_t H = c.hidden_size;
    if (shared_in) {
        in_proj = shared_in; // not registered: the forward mixer owns the tied tensors
        out_proj = shared_out;
    } else {
        in_proj = register_module("in_proj", linear(H, 2 * d_inner, c.mamba_proj_bias));
        out_proj = register_module("out_proj", linear(d_inner, H, c.mamba_proj_bias));
    }
    conv1d = register_module("conv1d", torch::nn::Conv1d(torch::nn::Conv1dOptions(d_inner, d_inner, c.mamba_d_conv)
                                                             .groups(d_inner).bias(c.mamba_conv_bias)));
    x_proj = register_module("x_proj", linear(d_inner, dt_rank + 2 * d_state));
    dt_proj = register_module("dt_proj", linear(dt_rank, d_inner, true));
    dt_layernorm = register_module("dt_layernorm", RMSNorm(dt_rank, c.rms_norm_eps));
    b_layernorm = register_module("b_layernorm", RMSNorm(d_state, c.rms_norm_eps));
    c_layernorm = register_module("c_layernorm", RMSNorm(d_state, c.rms_norm_eps));
    A_log = register_parameter("A_log", torch::log(torch::arange(1, d_state + 1, torch::kFloat)).repeat({d_inner, 1}));
    D = register_parameter("D", torch::ones({d_inner}));
}

Tensor MambaMixerImpl::forward(const Tensor& u, const Tensor& residual) {
    // Intermediates are released as soon as they are used (reset()): at a full-context pass over a million bases
    // each [B, L, Din] float tensor is 256 MB per stream, and holding all of them set the peak memory.
    // in_proj as its two halves, so that x and the gate z come out contiguous.
    const Tensor& Wi = in_proj->weight;                                     // [2Din, H]
    const Tensor& bi = in_proj->bias;
    Tensor x = ops::linear(u, Wi.narrow(0, 0, d_inner), bi.defined() ? bi.narrow(0, 0, d_inner) : bi); // [B, L, Din]
    Tensor z = ops::linear(u, Wi.narrow(0, d_inner, d_inner), bi.defined() ? bi.narrow(0, d_inner, d_inner) : bi); // [B, L, Din]
    Tensor conv_w = conv1d->weight.view({d_inner, -1});                     // [Din, K]
    Tensor conv_b = conv1d->bias.defined() ? conv1d->bias : torch::zeros({d_inner}, conv_w.options());
    Tensor c = ops::causal_conv1d_silu(x, conv_w, conv_b);                  // [B, L, Din]
    x.reset();
    Tensor xdbl = run_linear(x_proj, c);                                                // [B, L, R+2N]
    // dt, B and C: the three column segments of xdbl, each through its RMSNorm (one op, one backward node).
    auto dbc = ops::rms_norm_split(xdbl, {dt_layernorm->weight, b_layernorm->weight, c_layernorm->weight},
                                   dt_layernorm->eps);
    Tensor dt = dbc[0], Bm = dbc[1], Cm = dbc[2];                           // [B, L, R], [B, L, N], [B, L, N]
    dbc.clear(), xdbl.reset();
    Tensor A = -torch::exp(A_log);                                          // [Din, N]
    // delta = dt_proj(dt) [B, L, Din], its bias added in the scan; without a graph the kernel computes it in place.
    Tensor y = ops::selective_scan_low_rank(c, dt, dt_proj->weight, A, Bm, Cm, D, z, dt_proj->bias); // [B, L, Din]
    c.reset(), dt.reset(), z.reset();
    return ops::linear(y, out_proj->weight, out_proj->bias, residual);          // [B, L, H]
}

// ---------------------------------------------------------------------------------------------------------------
CausalAttentionImpl::CausalAttentionImpl(int64_t hidden, int64_t heads_) : heads(heads_) {
    q_proj = register_module("q_proj", linear(hidden, hidden));
    k_proj = register_module("k_proj", linear(hidden, hidden));
    v_proj = register_module("v_proj", linear(hidden, hidden));
    o_proj = register_module("o_proj", linear(hidden, hidden));
}

Tensor CausalAttentionImpl::forward(const Tensor& x, const Tensor& residual) {
    const int64_t B = x.size(0), L = x.size(1), H = x.size(2), d = H / heads;
    Tensor q = run_linear(q_proj, x).view({B, L, heads, d});                            // [B, L, h, d]
    Tensor k = run_linear(k_proj, x).view({B, L, heads, d});                            // [B, L, h, d]
    Tensor v = run_linear(v_proj, x).view({B, L, heads, d});                            // [B, L, h, d]
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    // Flash-style kernel: no [B, h, L, L] score matrix (ops::detail::janus_attention_composite is the dense form).
    Tensor attn = ops::janus_attention(q, k, v, scale, ops::AttentionMask::causal); // [B, L, h, d]
    return ops::linear(attn.reshape({B, L, H}), o_proj->weight, o_proj->bias, residual); // [B, L, H]
}

// ---------------------------------------------------------------------------------------------------------------
DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c, int64_t index) : attention(c.is_attention_layer(index)) {
    const bool experts = c.is_expert_layer(index);
    // The reference nests everything under "mamba_module" or "attn"; an inner holder keeps those names.
    auto holder = std::make_shared<torch::nn::Module>();
    register_module(attention ? "attn" : "mamba_module", holder);
    if (attention) {
        self_attn_fwd = holder->register_module("self_attn_fwd", CausalAttention(c.hidden_size, c.num_attention_heads));
        self_attn_bwd = holder->register_module("self_attn_bwd", CausalAttention(c.hidden_size, c.num_attention_heads));
    } else {
        mamba_fwd = holder->register_module("mamba_fwd", MambaMixer(c, nullptr, nullptr));
        mamba_rev = holder->register_module(
            "mamba_rev", c.bidirectional_weight_tie ? MambaMixer(c, mamba_fwd->in_proj, mamba_fwd->out_proj)
                                                    : MambaMixer(c, nullptr, nullptr));
    }
    input_layernorm_fwd = holder->register_module("input_layernorm_fwd", RMSNorm(c.hidden_size, c.rms_norm_eps));
    pre_ff_layernorm_fwd = holder->register_module("pre_ff_layernorm_fwd", RMSNorm(c.hidden_size, c.rms_norm_eps));
    feed_forward_fwd = holder->register_module("feed_forward_fwd", FeedForward(c, experts));
    input_layernorm_bwd = holder->register_module("input_layernorm_bwd", RMSNorm(c.hidden_size, c.rms_norm_eps));
    pre_ff_layernorm_bwd = holder->register_module("pre_ff_layernorm_bwd", RMSNorm(c.hidden_size, c.rms_norm_eps));
    feed_forward_bwd = holder->register_module("feed_forward_bwd", FeedForward(c, experts));
}

Tensor DecoderLayerImpl::forward(const Tensor& x, bool reverse, std::vector<RouterOutput>* router) {
    Tensor h;
    // The skip connections go into the last GEMM of each block (its epilogue adds them).
    if (attention) h = reverse ? self_attn_bwd(input_layernorm_bwd(x), x) : self_attn_fwd(input_layernorm_fwd(x), x);
    else h = reverse ? mamba_rev(input_layernorm_bwd(x), x) : mamba_fwd(input_layernorm_fwd(x), x); // [B, L, H]
    return reverse ? feed_forward_bwd->forward(pre_ff_layernorm_bwd(h), router, h)
                   : feed_forward_fwd->forward(pre_ff_layernorm_fwd(h), router, h);            // [B, L, H]
}

// ---------------------------------------------------------------------------------------------------------------
FinalAttentionImpl::FinalAttentionImpl(const ModelConfig& c)
    : heads(c.num_attention_heads),
      scale(1.0 / std::sqrt(static_cast<double>(c.flex_attn_n_embd) / c.num_attention_heads)) {
    auto self_attn = std::make_shared<torch::nn::Module>();
    register_module("self_attn", self_attn);
    q_proj = self_attn->register_module("q_proj", linear(c.hidden_size, c.hidden_size));
    k_proj = self_attn->register_module("k_proj", linear(c.hidden_size, c.hidden_size));
    v_proj = self_attn->register_module("v_proj", linear(c.hidden_size, c.hidden_size));
    auto o_projs = self_attn->register_module("o_projs", torch::nn::ModuleList());
    o_proj = linear(c.hidden_size, c.hidden_size);
    o_projs->push_back(o_proj);
    feed_forward = register_module("feed_forward", MLP(c.hidden_size, c.intermediate_size));
    input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    pre_ff_layernorm = register_module("pre_ff_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor janus_mask(int64_t L, const torch::Device& device) {
    auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
    Tensor q = torch::arange(2 * L, opts).unsqueeze(1);                    // [2L, 1]
    Tensor k = torch::arange(2 * L, opts).unsqueeze(0);                    // [1, 2L]
    Tensor qf = q < L, kf = k < L;
    Tensor m1 = qf & kf & (k <= q);                                         // forward -> forward, causal
    Tensor m2 = qf & ~kf & (k >= L + q + 2);                                // forward i -> backward j >= i+2
    Tensor m3 = ~qf & kf & (q >= k + L + 2);                                // backward j -> forward i <= j-2
    Tensor m4 = ~qf & ~kf & (k >= q);                                       // backward -> backward, anti-causal
    return m1 | m2 | m3 | m4;                                               // [2L, 2L]
}

Tensor FinalAttentionImpl::forward(const Tensor& s) {
    const int64_t B = s.size(0), T = s.size(1), H = s.size(2), d = H / heads; // T = 2L
    Tensor x = input_layernorm(s);                                          // [B, 2L, H]
    Tensor q = run_linear(q_proj, x).view({B, T, heads, d});                            // [B, 2L, h, d]
    Tensor k = run_linear(k_proj, x).view({B, T, heads, d});                            // [B, 2L, h, d]
    Tensor v = run_linear(v_proj, x).view({B, T, heads, d});                            // [B, 2L, h, d]
    x.reset(); // freed before the attention runs (memory at full-context lengths)
    // The Janus mask (janus_mask(L) in dense form) applied tile-wise: memory O(L * H) instead of O(L^2).
    Tensor attn = ops::janus_attention(q, k, v, scale, ops::AttentionMask::janus).reshape({B, T, H}); // [B, 2L, H]
    q.reset(), k.reset(), v.reset();
    Tensor h = ops::linear(attn, o_proj->weight, o_proj->bias, s);                      // [B, 2L, H]: s + o_proj(attn)
    attn.reset();
    return feed_forward(pre_ff_layernorm(h), h);                            // [B, 2L, H]: h + ffn(norm(h))
}

// ---------------------------------------------------------------------------------------------------------------
JanusModelImpl::JanusModelImpl(const ModelConfig& c) : config(c) {
    c.validate("model config");
    const int64_t H = c.hidden_size;
    embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.padded_vocab(), H));
    layers = register_module("layers", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c, i));
    final_attention = register_module("final_attention", FinalAttention(c));
    final_layernorm = register_module("final_layernorm", RMSNorm(H, c.rms_norm_eps));
    if (c.final_mlp)
        final_mlp = register_module("final_mlp", torch::nn::Sequential(linear(H, 2 * H, true), torch::nn::SiLU(),
                                                                       linear(2 * H, H, true), torch::nn::SiLU()));
    lm_head = register_module("lm_head", linear(H, c.padded_vocab()));
}

ForwardOutput JanusModelImpl::forward(const Tensor& ids, const ForwardOptions& opt) {
    if (ids.dim() != 2) throw Error(fmt::format("model input must be [batch, length], got {} dims", ids.dim()));
    if (ids.size(1) < 2) throw Error("JanusDNA needs sequences of at least 2 bases (each base is predicted from the others)");
    // Threads only without an autograd graph: a graph built on several threads would accumulate parameter
    // gradients in an order that depends on the threads' history, and training would no longer be reproducible.
    // Training splits its batches itself (train/trainer.cpp, one graph per thread).
    const bool threads = !at::GradMode::is_enabled();
    const int64_t Bn = ids.size(0), parts = threads ? std::min<int64_t>(parallel_width(), Bn) : 1;
    ForwardOutput out;
    if (parts <= 1) {
        out = forward_part(ids, opt);
    } else {
        // Windows are independent: each thread runs the whole model on a contiguous share of the batch.
        std::vector<ForwardOutput> part(static_cast<size_t>(parts));
        parallel_tasks(parts, [&](int64_t i) {
            const int64_t b0 = Bn * i / parts, b1 = Bn * (i + 1) / parts;
            part[static_cast<size_t>(i)] = forward_part(ids.narrow(0, b0, b1 - b0), opt); // [b1 - b0, ...]
        });
        auto cat = [&](Tensor ForwardOutput::*field) {
            std::vector<Tensor> xs;
            for (auto& y : part) xs.push_back(y.*field);
            return xs.front().defined() ? torch::cat(xs, 0) : Tensor();
        };
        out.hidden = cat(&ForwardOutput::hidden);                           // [B, L, H]
        out.logits = cat(&ForwardOutput::logits);                           // [B, L, V]
        out.stream_fwd = cat(&ForwardOutput::stream_fwd);
        out.stream_bwd = cat(&ForwardOutput::stream_bwd);
        if (opt.aux_loss) { // per MoE layer, B*L rows in batch order
            for (auto field : {&ForwardOutput::router_fwd, &ForwardOutput::router_bwd}) {
                for (size_t layer = 0; layer < (part.front().*field).size(); ++layer) {
                    std::vector<Tensor> probs, chosen;
                    for (auto& y : part) probs.push_back((y.*field)[layer].probs), chosen.push_back((y.*field)[layer].chosen);
                    (out.*field).push_back({torch::cat(probs, 0), torch::cat(chosen, 0)});
                }
            }
        }
    }
    if (opt.aux_loss) {
        out.aux_loss = out.router_fwd.empty()
                           ? torch::zeros({}, out.hidden.options())
                           : config.router_aux_loss_coef *
                                 (load_balancing_loss(out.router_fwd) + load_balancing_loss(out.router_bwd));
    }
    return out;
}

// Above this many tokens (batch x length) a pass runs the two streams one after the other (memory, see below).
constexpr int64_t kParallelStreamTokens = int64_t(1) << 17;

ForwardOutput JanusModelImpl::forward_part(const Tensor& ids, const ForwardOptions& opt) {
    const int64_t L = ids.size(1);
    ForwardOutput out;
    Tensor e = embed_tokens(ids);                                          // [B, L, H]
    Tensor fwd, bwd;
    // The two streams never meet before the final attention: two independent tasks.
    auto stream = [&](int64_t reverse) {
        Tensor x = reverse ? e.flip(1) : e;                                // backward stream runs reversed
        auto* routers = opt.aux_loss ? (reverse ? &out.router_bwd : &out.router_fwd) : nullptr;
        for (auto& layer : *layers) x = layer->as<DecoderLayerImpl>()->forward(x, reverse != 0, routers);
        (reverse ? bwd : fwd) = reverse ? x.flip(1) : x;                   // both in original order
    };
    // One thread per graph (see forward()); and beyond kParallelStreamTokens tokens one stream at a time, so that
    // a full-context pass holds one stream's intermediates, not two (the final attention dominates there anyway).
    if (at::GradMode::is_enabled() || ids.numel() > kParallelStreamTokens) stream(0), stream(1);
    else parallel_tasks(2, stream);
    if (opt.streams) { out.stream_fwd = fwd; out.stream_bwd = bwd; }
    Tensor both = torch::cat({fwd, bwd}, 1);                               // [B, 2L, H]
    e.reset(), fwd.reset(), bwd.reset();
    Tensor s = final_attention(both);                                      // [B, 2L, H]
    both.reset();
    Tensor fo = s.narrow(1, 0, L), bo = s.narrow(1, L, L);                 // [B, L, H] each
    // Fusion: Z[t] = Fo[t-1] + Bo[t+1]; Z[0] = Bo[1]; Z[L-1] = Fo[L-2] (MODEL.md 2.8).
    Tensor zero = torch::zeros_like(fo.narrow(1, 0, 1));                  // [B, 1, H]
    Tensor z = torch::cat({zero, fo.narrow(1, 0, L - 1)}, 1) + torch::cat({bo.narrow(1, 1, L - 1), zero}, 1);
    Tensor y = final_layernorm(z);                                         // [B, L, H]
    if (final_mlp) {
        // Linear, SiLU, Linear, SiLU with the linears on ops::linear, as every other layer: LibTorch's own linear
        // (BLAS) rounds a row differently with the number of rows beside it, and a window's output must not depend
        // on the windows batched with it.
        const auto& l1 = (*final_mlp)[0]->as<torch::nn::LinearImpl>();
        const auto& l2 = (*final_mlp)[2]->as<torch::nn::LinearImpl>();
        Tensor f = torch::silu(ops::linear(y, l1->weight, l1->bias));        // [B, L, 2H]
        y = y + torch::silu(ops::linear(f, l2->weight, l2->bias));           // [B, L, H]
    }
    out.hidden = y;
    if (opt.logits) {
        out.logits = run_linear(lm_head, y);                                           // [B, L, V]
        if (out.logits.scalar_type() != torch::kDouble) out.logits = out.logits.to(torch::kFloat);
    }
    return out;
}

Tensor load_balancing_loss(const std::vector<Tensor>& router_logits, int64_t top_k) {
    std::vector<RouterOutput> routers;
    for (const Tensor& logits : router_logits) routers.push_back(router_output(logits, top_k));
    return load_balancing_loss(routers);
}

Tensor load_balancing_loss(const std::vector<RouterOutput>& routers) {
    std::vector<Tensor> probs, choices;
    for (const RouterOutput& r : routers) probs.push_back(r.probs), choices.push_back(r.chosen);
    Tensor p = torch::cat(probs, 0);                                        // [T_all, E]
    const Tensor chosen = torch::cat(choices, 0).to(torch::kCPU).contiguous(); // [T_all, k] int64
    if (p.dim() != 2 || chosen.dim() != 2 || chosen.scalar_type() != torch::kLong || chosen.size(0) != p.size(0))
        throw Error("load_balancing_loss: each router's chosen must be [T, k] int64 beside probs [T, E]");
    const int64_t E = p.size(1), top_k = chosen.size(1);
    // f[j, e]: the fraction of tokens whose j-th choice is e (the mean of their one-hot rows, counted directly).
    const int64_t T = chosen.size(0);
    std::vector<int64_t> count(static_cast<size_t>(top_k * E), 0);
    const int64_t* ch = chosen.data_ptr<int64_t>();
    for (int64_t i = 0; i < T * top_k; ++i) {
        if (ch[i] < 0 || ch[i] >= E) throw Error(fmt::format("load_balancing_loss: expert {} out of [0, {})", ch[i], E));
        ++count[static_cast<size_t>((i % top_k) * E + ch[i])];
    }
    Tensor f = torch::empty({top_k, E}, p.options().device(torch::kCPU));  // [k, E]
    AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "load_balancing_f", [&] {
        scalar_t* fp = f.data_ptr<scalar_t>();
        for (size_t i = 0; i < count.size(); ++i) fp[i] = static_cast<scalar_t>(count[i]) / static_cast<scalar_t>(T);
    });
    f = f.to(p.device());
    Tensor P = p.mean(0);                                                  // [E]
    return (f * P.unsqueeze(0)).sum() * static_cast<double>(E);
}

void JanusModelImpl::init_weights() {
    torch::NoGradGuard no_grad;
    for (auto& m : modules(/*include_self=*/false)) {
        if (auto* lin = m->as<torch::nn::LinearImpl>()) {
            lin->weight.normal_(0.0, 0.02);
            if (lin->bias.defined()) lin->bias.zero_();
        } else if (auto* conv = m->as<torch::nn::Conv1dImpl>()) {
            conv->weight.normal_(0.0, 0.02);
            if (conv->bias.defined()) conv->bias.zero_();
        } else if (auto* emb = m->as<torch::nn::EmbeddingImpl>()) {
            emb->weight.normal_(0.0, 0.02);
        }
    }
    // q/k/v projections are re-initialised Xavier-uniform afterwards (the reference's _init_weights).
    for (auto& item_ : named_parameters()) {
        const std::string& name = item_.key();
        torch::Tensor& p = item_.value();
        if (name.find("q_proj.weight") != std::string::npos || name.find("k_proj.weight") != std::string::npos ||
            name.find("v_proj.weight") != std::string::npos)
            torch::nn::init::xavier_uniform_(p);
    }
}

ParameterCounts count_parameters(JanusModelImpl& model) {
    ParameterCounts c;
    std::map<std::string, int64_t> parts;
    const int64_t k = model.config.num_experts_per_tok;
    for (auto& item_ : model.named_parameters()) {
        const std::string& name = item_.key();
        const torch::Tensor& p = item_.value();
        const int64_t n = p.numel();
        c.total += n;
        std::string part;
        if (name.rfind("lm_head.", 0) == 0) { c.lm_head += n; part = "lm_head"; }
        else if (name.rfind("embed_tokens.", 0) == 0) part = "embedding";
        else if (name.rfind("final_attention.", 0) == 0) part = "final attention block";
        else if (name.rfind("final_mlp.", 0) == 0) part = "final mlp";
        else if (name.rfind("final_layernorm.", 0) == 0) part = "final norm";
        else if (name.find(".mamba_fwd.") != std::string::npos || name.find(".mamba_rev.") != std::string::npos) part = "mamba mixers";
        else if (name.find(".self_attn_") != std::string::npos) part = "mid attention";
        else if (name.find(".router.") != std::string::npos || name.find(".experts.") != std::string::npos) part = "moe";
        else if (name.find("feed_forward") != std::string::npos) part = "mlp";
        else part = "norms";
        parts[part] += n;
        // experts.{e}.* with e >= top_k count as inactive (calculate_unactivated_params).
        auto pos = name.find(".experts.");
        if (pos != std::string::npos && std::stoll(name.substr(pos + 9)) >= k) c.activated -= n;
    }
    c.backbone = c.total - c.lm_head;
    c.activated += c.backbone;
    for (auto& kv : parts) c.components.emplace_back(kv.first, kv.second);
    return c;
}

} // namespace janusdna
