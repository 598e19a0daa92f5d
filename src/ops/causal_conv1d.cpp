// Autograd glue for the causal depthwise conv + SiLU: checks, dtype/device dispatch, and the composite fallback.
#include "kernels/causal_conv1d.h"
#include "janusdna/error.h"
#include "janusdna/strings.h"
#include "janusdna/ops.h"
#include "janusdna/parallel.h"

#include <torch/torch.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <type_traits>

namespace janusdna::ops {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kChannelBlock = 64; // channels per parallel work item


void check(bool ok, const std::string& message) {
    if (!ok) throw Error("causal_conv1d_silu: " + message);
}

// `t` must have shape `shape` (described by `dims`) and x's dtype and device.
void check_tensor(const Tensor& t, const char* name, at::IntArrayRef shape, const char* dims, const Tensor& x) {
    check(t.sizes().equals(shape), std::string(name) + " must have shape " + dims + " = " + shape_str(shape) +
                                       ", got " + shape_str(t.sizes()));
    check(t.scalar_type() == x.scalar_type(), std::string(name) + " has dtype " +
                                                  std::string(c10::toString(t.scalar_type())) + ", but x has " +
                                                  std::string(c10::toString(x.scalar_type())));
    check(t.device() == x.device(),
          std::string(name) + " is on " + t.device().str() + ", but x is on " + x.device().str());
}

void check_inputs(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    check(x.defined() && x.dim() == 3,
          "x must have shape [B, L, D], got " + (x.defined() ? shape_str(x.sizes()) : std::string("undefined")));
    check(x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble,
          "only float32 and float64 are supported, x has dtype " + std::string(c10::toString(x.scalar_type())));
    check(weight.defined() && weight.dim() == 2 && weight.size(1) >= 1,
          "weight must have shape [D, K] with K >= 1, got " +
              (weight.defined() ? shape_str(weight.sizes()) : std::string("undefined")));
    check_tensor(weight, "weight", {x.size(2), weight.size(1)}, "[D, K]", x);
    if (bias.defined()) check_tensor(bias, "bias", {x.size(2)}, "[D]", x);
}

template <typename T>
kernels::ConvParams<T> make_params(const Tensor& x, const Tensor& weight, const Tensor& bias) {
    kernels::ConvParams<T> p;
    p.batch = x.size(0), p.length = x.size(1), p.channels = x.size(2), p.width = weight.size(1);
    p.x = x.data_ptr<T>();
    p.weight = weight.data_ptr<T>();
    p.bias = bias.data_ptr<T>();
    return p;
}

// The AVX2 kernels exist for float32 only; the double overloads are never called (dispatch checks the dtype).
void fwd_avx2(const kernels::ConvParams<float>& p, float* out, int64_t b, int64_t d0, int64_t d1) {
    kernels::causal_conv1d_silu_fwd_avx2(p, out, b, d0, d1);
}
void fwd_avx2(const kernels::ConvParams<double>&, double*, int64_t, int64_t, int64_t) {}
void bwd_avx2(const kernels::ConvParams<float>& p, const kernels::ConvGrads<float>& g) {
    kernels::causal_conv1d_silu_bwd_avx2(p, g);
}
void bwd_avx2(const kernels::ConvParams<double>&, const kernels::ConvGrads<double>&) {}

// CPU kernel path; bias is always defined here (zeros substituted by the public function).
struct CausalConv1dSiluFn : torch::autograd::Function<CausalConv1dSiluFn> {
    static Tensor forward(AutogradContext* ctx, const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in) {
        const Tensor x = x_in.contiguous(), weight = weight_in.contiguous(), bias = bias_in.contiguous();
        Tensor out = torch::empty_like(x, at::MemoryFormat::Contiguous); // [B, L, D]
        const int64_t Bn = x.size(0), Dn = x.size(2);
        const int64_t blocks = (Dn + kChannelBlock - 1) / kChannelBlock;
        AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "causal_conv1d_silu_fwd", [&] {
            const auto p = make_params<scalar_t>(x, weight, bias);
            scalar_t* o = out.data_ptr<scalar_t>();
            const bool fast = std::is_same_v<scalar_t, float> && !reference_kernels() && kernels::causal_conv1d_avx2_supported();
            // Work items are (batch item, block of channels): each writes a disjoint part of out.
            janusdna::parallel_for(0, Bn * blocks, 1, [&](int64_t begin, int64_t end) {
                for (int64_t item = begin; item < end; ++item) {
                    const int64_t b = item / blocks, d0 = (item % blocks) * kChannelBlock;
                    if (fast) fwd_avx2(p, o, b, d0, std::min(d0 + kChannelBlock, Dn));
                    else kernels::causal_conv1d_silu_fwd_ref<scalar_t>(p, o, b, d0, std::min(d0 + kChannelBlock, Dn));
                }
            });
        });
        ctx->save_for_backward({x, weight, bias}); // kept only when a backward graph is built
        return out;
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        const variable_list in = ctx->get_saved_variables(); // x, weight, bias
        const Tensor grad_out = grad_outputs[0].contiguous(); // [B, L, D]
        variable_list grads(3);
        for (size_t i = 0; i < 3; ++i) {
            if (ctx->needs_input_grad(i)) grads[i] = torch::empty_like(in[i]);
        }
        AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "causal_conv1d_silu_bwd", [&] {
            kernels::ConvGrads<scalar_t> g;
            g.grad_out = grad_out.data_ptr<scalar_t>();
            g.grad_x = grads[0].defined() ? grads[0].data_ptr<scalar_t>() : nullptr;
            g.grad_weight = grads[1].defined() ? grads[1].data_ptr<scalar_t>() : nullptr;
            g.grad_bias = grads[2].defined() ? grads[2].data_ptr<scalar_t>() : nullptr;
            const auto p = make_params<scalar_t>(in[0], in[1], in[2]);
            if (std::is_same_v<scalar_t, float> && !reference_kernels() && kernels::causal_conv1d_avx2_supported()) bwd_avx2(p, g);
            else kernels::causal_conv1d_silu_bwd_ref<scalar_t>(p, g);
        });
        return grads;
    }
};

} // namespace

torch::Tensor causal_conv1d_silu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
    check_inputs(x, weight, bias);
    if (!x.device().is_cpu()) return detail::causal_conv1d_silu_composite(x, weight, bias);
    // Undefined tensors cannot be autograd Function inputs: a missing bias becomes zeros.
    return CausalConv1dSiluFn::apply(x, weight, bias.defined() ? bias : torch::zeros({x.size(2)}, x.options()));
}

namespace detail {

torch::Tensor causal_conv1d_silu_composite(const torch::Tensor& x, const torch::Tensor& weight,
                                           const torch::Tensor& bias) {
    check_inputs(x, weight, bias);
    const int64_t L = x.size(1), K = weight.size(1);
    // Left-pad time with K-1 zeros so output t sees inputs t-(K-1) .. t.
    const Tensor xp = torch::constant_pad_nd(x, {0, 0, K - 1, 0}); // [B, L+K-1, D]
    Tensor pre = bias.defined() ? bias.expand_as(x) : torch::zeros_like(x); // [B, L, D]
    for (int64_t k = 0; k < K; ++k) {
        pre = pre + xp.narrow(1, k, L) * weight.select(1, k); // [B, L, D] * [D]
    }
    return torch::silu(pre); // [B, L, D]
}

} // namespace detail
} // namespace janusdna::ops
