// Autograd glue for the masked (Janus / causal) attention: checks, dtype/device dispatch, the composite fallback.
#include "kernels/janus_attention.h"
#include "janusdna/error.h"
#include "janusdna/strings.h"
#include "janusdna/ops.h"
#include "ops/graph.h"
#include "janusdna/parallel.h"

#include <torch/torch.h>

#include <cstring>

#include <algorithm>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

namespace janusdna::ops {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Query rows per parallel work item: small enough that the causal mask's uneven rows still balance over threads,
// large enough to amortise the kernel's per-block key-tile packing.
constexpr int64_t kRowChunk = 256;


void check(bool ok, const std::string& message) {
    if (!ok) throw Error("janus_attention: " + message);
}

void check_inputs(const Tensor& q, const Tensor& k, const Tensor& v, AttentionMask mask) {
    check(q.defined() && q.dim() == 4,
          "q must have shape [B, T, h, d], got " + (q.defined() ? shape_str(q.sizes()) : std::string("undefined")));
    check(q.scalar_type() == torch::kFloat || q.scalar_type() == torch::kDouble,
          "only float32 and float64 are supported, q has dtype " + std::string(c10::toString(q.scalar_type())));
    for (const auto& [t, name] : {std::pair<const Tensor&, const char*>{k, "k"}, {v, "v"}}) {
        check(t.defined() && t.sizes().equals(q.sizes()),
              std::string(name) + " must have q's shape " + shape_str(q.sizes()) + ", got " +
                  (t.defined() ? shape_str(t.sizes()) : std::string("undefined")));
        check(t.scalar_type() == q.scalar_type(), std::string(name) + " has dtype " +
                                                      std::string(c10::toString(t.scalar_type())) + ", but q has " +
                                                      std::string(c10::toString(q.scalar_type())));
        check(t.device() == q.device(),
              std::string(name) + " is on " + t.device().str() + ", but q is on " + q.device().str());
    }
    check(mask != AttentionMask::janus || q.size(1) % 2 == 0,
          "the Janus mask needs an even length T = 2L, got T = " + std::to_string(q.size(1)));
}

kernels::AttentionMask kernel_mask(AttentionMask m) {
    return m == AttentionMask::janus ? kernels::AttentionMask::janus : kernels::AttentionMask::causal;
}

template <typename T>
kernels::AttentionParams<T> make_params(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                                        AttentionMask mask) {
    kernels::AttentionParams<T> p;
    p.batch = q.size(0), p.length = q.size(1), p.heads = q.size(2), p.head_dim = q.size(3);
    p.mask = kernel_mask(mask);
    p.scale = T(scale);
    p.q = q.data_ptr<T>(), p.k = k.data_ptr<T>(), p.v = v.data_ptr<T>();
    return p;
}

// The AVX2 kernels exist for float32 only; the double overloads are never called (dispatch checks the dtype).
void fwd_avx2(const kernels::AttentionParams<float>& p, float* out, float* lse, int64_t b, int64_t h, int64_t i0,
              int64_t i1) {
    kernels::attention_fwd_avx2(p, out, lse, b, h, i0, i1);
}
void fwd_avx2(const kernels::AttentionParams<double>&, double*, double*, int64_t, int64_t, int64_t, int64_t) {}
void bwd_avx2(const kernels::AttentionParams<float>& p, const kernels::AttentionGrads<float>& g, int64_t b, int64_t h) {
    kernels::attention_bwd_avx2(p, g, b, h);
}
void bwd_avx2(const kernels::AttentionParams<double>&, const kernels::AttentionGrads<double>&, int64_t, int64_t) {}

// CPU kernel path: forward keeps out and the per-row log-sum-exp, backward recomputes probabilities from them.
struct AttentionFn : torch::autograd::Function<AttentionFn> {
    static Tensor forward(AutogradContext* ctx, const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                          double scale, int64_t mask_id) {
        const AttentionMask mask = AttentionMask(mask_id);
        const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous(); // [B, T, h, d]
        const int64_t Bn = q.size(0), Tn = q.size(1), h = q.size(2);
        Tensor out = torch::empty_like(q, at::MemoryFormat::Contiguous); // [B, T, h, d]
        Tensor lse = torch::empty({Bn, h, Tn}, q.options());             // [B, h, T]
        const int64_t chunks = (Tn + kRowChunk - 1) / kRowChunk;
        AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "janus_attention_fwd", [&] {
            const auto p = make_params<scalar_t>(q, k, v, scale, mask);
            scalar_t *o = out.data_ptr<scalar_t>(), *l = lse.data_ptr<scalar_t>();
            const bool fast = std::is_same_v<scalar_t, float> && !reference_kernels() && kernels::attention_avx2_supported();
            // Work items are (batch item, head, chunk of query rows): each writes disjoint rows of out and lse.
            // Handed out one at a time (the masks make rows uneven), so the threads stay balanced.
            janusdna::parallel_tasks(Bn * h * chunks, [&](int64_t item) {
                const int64_t bh = item / chunks, i0 = (item % chunks) * kRowChunk;
                const int64_t i1 = std::min(Tn, i0 + kRowChunk);
                if (fast) fwd_avx2(p, o, l, bh / h, bh % h, i0, i1);
                else kernels::attention_fwd_ref<scalar_t>(p, o, l, bh / h, bh % h, i0, i1);
            });
        });
        ctx->save_for_backward({q, k, v, out, lse});
        ctx->saved_data["scale"] = scale;
        ctx->saved_data["mask"] = mask_id;
        return out;
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        const variable_list s = ctx->get_saved_variables();
        const Tensor &q = s[0], &k = s[1], &v = s[2], &out = s[3], &lse = s[4];
        const double scale = ctx->saved_data["scale"].toDouble();
        const AttentionMask mask = AttentionMask(ctx->saved_data["mask"].toInt());
        const Tensor grad_out = grad_outputs[0].contiguous(); // [B, T, h, d]
        Tensor gq = torch::empty_like(q), gk = torch::empty_like(k), gv = torch::empty_like(v);
        const int64_t Bn = q.size(0), h = q.size(2);
        AT_DISPATCH_FLOATING_TYPES(q.scalar_type(), "janus_attention_bwd", [&] {
            const auto p = make_params<scalar_t>(q, k, v, scale, mask);
            kernels::AttentionGrads<scalar_t> g;
            g.grad_out = grad_out.data_ptr<scalar_t>(), g.out = out.data_ptr<scalar_t>();
            g.lse = lse.data_ptr<scalar_t>();
            g.grad_q = gq.data_ptr<scalar_t>(), g.grad_k = gk.data_ptr<scalar_t>(), g.grad_v = gv.data_ptr<scalar_t>();
            const bool fast = std::is_same_v<scalar_t, float> && !reference_kernels() && kernels::attention_avx2_supported();
            // One (batch item, head) per work item: it owns that slice of every gradient, so no races.
            janusdna::parallel_tasks(Bn * h, [&](int64_t bh) {
                if (fast) bwd_avx2(p, g, bh / h, bh % h);
                else kernels::attention_bwd_ref<scalar_t>(p, g, bh / h, bh % h);
            });
        });
        return {gq, gk, gv, Tensor(), Tensor()};
    }
};

// [B, X, Y, d] -> [B, Y, X, d] for a contiguous x (time and heads swapped either way), as row copies of d elements,
// parallel over B * X.
Tensor swap_time_heads(const Tensor& x, int64_t B, int64_t X, int64_t Y, int64_t d) {
    Tensor y = torch::empty({B, Y, X, d}, x.options());                                 // [B, Y, X, d]
    const size_t bytes = static_cast<size_t>(d) * x.element_size();
    const char* src = static_cast<const char*>(x.data_ptr());
    char* dst = static_cast<char*>(y.data_ptr());
    janusdna::parallel_for(0, B * X, 256, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            const int64_t b = i / X, xi = i % X;
            for (int64_t yi = 0; yi < Y; ++yi)
                std::memcpy(dst + (((b * Y + yi) * X) + xi) * bytes, src + ((i * Y) + yi) * bytes, bytes);
        }
    });
    return y;
}

} // namespace

torch::Tensor janus_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                              AttentionMask mask) {
    check_inputs(q, k, v, mask);
    if (!q.device().is_cpu()) return detail::janus_attention_composite(q, k, v, scale, mask);
    const int64_t B = q.size(0), T = q.size(1), h = q.size(2), d = q.size(3);
    if (h == 1) return AttentionFn::apply(q, k, v, scale, int64_t(mask));
    // Heads first, so that each head's keys and values are contiguous rows of d floats: the kernels stream all
    // keys once per block of query rows, and with the heads interleaved ([B, T, h, d]) they would pull h times the
    // bytes they use through the caches (at long T the forward ran at two thirds of its in-cache rate).
    // Without a graph the copies are plain row copies of d elements (LibTorch's generic strided copy of this
    // permutation ran at ~2.4 GB/s, 3 % of an H32 forward).
    const bool graph = needs_graph({&q, &k, &v});
    auto heads_first = [&](const Tensor& x) {
        if (graph) return x.transpose(1, 2).contiguous().view({B * h, T, 1, d});       // [B*h, T, 1, d]
        return swap_time_heads(x.contiguous(), B, T, h, d).view({B * h, T, 1, d});      // [B*h, T, 1, d]
    };
    const Tensor out = AttentionFn::apply(heads_first(q), heads_first(k), heads_first(v), scale, int64_t(mask));
    if (graph) return out.view({B, h, T, d}).transpose(1, 2).contiguous();             // [B, T, h, d]
    return swap_time_heads(out, B, h, T, d).view({B, T, h, d});                         // [B, T, h, d]
}

namespace detail {

torch::Tensor attention_mask(int64_t T, AttentionMask mask, const torch::Device& device) {
    auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
    Tensor q = torch::arange(T, opts).unsqueeze(1); // [T, 1]
    Tensor k = torch::arange(T, opts).unsqueeze(0); // [1, T]
    if (mask == AttentionMask::causal) return k <= q; // [T, T]
    const int64_t L = T / 2;
    Tensor qf = q < L, kf = k < L;
    return (qf & kf & (k <= q)) | (qf & ~kf & (k >= L + q + 2)) | (~qf & kf & (q >= k + L + 2)) |
           (~qf & ~kf & (k >= q)); // [T, T]
}

torch::Tensor janus_attention_composite(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        double scale, AttentionMask mask) {
    check_inputs(q, k, v, mask);
    const Tensor qh = q.transpose(1, 2), kh = k.transpose(1, 2), vh = v.transpose(1, 2); // [B, h, T, d]
    Tensor scores = torch::matmul(qh, kh.transpose(-2, -1)) * scale;                    // [B, h, T, T]
    scores = scores.masked_fill(attention_mask(q.size(1), mask, q.device()).logical_not(),
                                -std::numeric_limits<double>::infinity());
    return torch::matmul(torch::softmax(scores, -1), vh).transpose(1, 2);               // [B, T, h, d]
}

} // namespace detail
} // namespace janusdna::ops
