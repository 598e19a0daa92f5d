// Autograd glue for the selective scan: checks, dtype/device dispatch, and the composite fallback.
#include "janusdna/error.h"
#include "janusdna/ops.h"
#include "selective_scan.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <sstream>
#include <string>

namespace janusdna::ops {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Channels per parallel work item: enough work per task to amortise scheduling, small enough to split D.
constexpr int64_t kChannelBlock = 16;

std::string shape_str(at::IntArrayRef sizes) {
    std::ostringstream os;
    os << sizes;
    return os.str();
}

void check(bool ok, const std::string& message) {
    if (!ok) throw Error("selective_scan: " + message);
}

// `t` must have shape `shape` (described by `dims`, e.g. "[B, L, D]") and u's dtype and device.
void check_tensor(const Tensor& t, const char* name, at::IntArrayRef shape, const char* dims, const Tensor& u) {
    check(t.defined(), std::string(name) + " is undefined");
    check(t.sizes().equals(shape), std::string(name) + " must have shape " + dims + " = " + shape_str(shape) +
                                       ", got " + shape_str(t.sizes()));
    check(t.scalar_type() == u.scalar_type(), std::string(name) + " has dtype " +
                                                  std::string(c10::toString(t.scalar_type())) + ", but u has " +
                                                  std::string(c10::toString(u.scalar_type())));
    check(t.device() == u.device(),
          std::string(name) + " is on " + t.device().str() + ", but u is on " + u.device().str());
}

void check_inputs(const Tensor& u, const Tensor& delta, const Tensor& A, const Tensor& B, const Tensor& C,
                  const Tensor& D, const Tensor& z, const Tensor& delta_bias) {
    check(u.defined() && u.dim() == 3,
          "u must have shape [B, L, D], got " + (u.defined() ? shape_str(u.sizes()) : std::string("undefined")));
    check(u.scalar_type() == torch::kFloat || u.scalar_type() == torch::kDouble,
          "only float32 and float64 are supported, u has dtype " + std::string(c10::toString(u.scalar_type())));
    check(A.defined() && A.dim() == 2,
          "A must have shape [D, N], got " + (A.defined() ? shape_str(A.sizes()) : std::string("undefined")));
    const int64_t Bn = u.size(0), L = u.size(1), Dn = u.size(2), N = A.size(1);
    check_tensor(delta, "delta", {Bn, L, Dn}, "[B, L, D]", u);
    check_tensor(A, "A", {Dn, N}, "[D, N]", u);
    check_tensor(B, "B", {Bn, L, N}, "[B, L, N]", u);
    check_tensor(C, "C", {Bn, L, N}, "[B, L, N]", u);
    if (D.defined()) check_tensor(D, "D", {Dn}, "[D]", u);
    if (z.defined()) check_tensor(z, "z", {Bn, L, Dn}, "[B, L, D]", u);
    if (delta_bias.defined()) check_tensor(delta_bias, "delta_bias", {Dn}, "[D]", u);
}

template <typename T>
T* ptr_or_null(const Tensor& t) {
    return t.defined() ? t.data_ptr<T>() : nullptr;
}

// Inputs must be contiguous; z is null when has_z is false.
template <typename T>
kernels::ScanParams<T> make_params(const variable_list& in, bool has_z) {
    const Tensor &u = in[0], &A = in[2];
    kernels::ScanParams<T> p;
    p.batch = u.size(0), p.length = u.size(1), p.channels = u.size(2), p.states = A.size(1);
    p.u = u.data_ptr<T>();
    p.delta = in[1].data_ptr<T>();
    p.A = A.data_ptr<T>();
    p.B = in[3].data_ptr<T>();
    p.C = in[4].data_ptr<T>();
    p.D = in[5].data_ptr<T>();
    p.z = has_z ? in[6].data_ptr<T>() : nullptr;
    p.delta_bias = in[7].data_ptr<T>();
    return p;
}

// CPU kernel path. Takes every input as a defined tensor: the public function substitutes zeros for a
// missing D or delta_bias and an empty placeholder (has_z = false) for a missing z, because undefined
// tensors cannot be autograd Function inputs.
struct SelectiveScanFn : torch::autograd::Function<SelectiveScanFn> {
    static Tensor forward(AutogradContext* ctx, const Tensor& u, const Tensor& delta, const Tensor& A,
                          const Tensor& B, const Tensor& C, const Tensor& D, const Tensor& z,
                          const Tensor& delta_bias, bool has_z) {
        variable_list in = {u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(),
                            C.contiguous(), D.contiguous(),     z.contiguous(), delta_bias.contiguous()};
        Tensor out = torch::empty_like(in[0], at::MemoryFormat::Contiguous); // [B, L, D]
        const int64_t Bn = u.size(0), Dn = u.size(2);
        const int64_t blocks = (Dn + kChannelBlock - 1) / kChannelBlock;
        AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_fwd", [&] {
            const auto p = make_params<scalar_t>(in, has_z);
            scalar_t* o = out.data_ptr<scalar_t>();
            // Work items are (batch item, block of channels): each writes a disjoint part of out.
            at::parallel_for(0, Bn * blocks, 1, [&](int64_t begin, int64_t end) {
                for (int64_t item = begin; item < end; ++item) {
                    const int64_t b = item / blocks, d0 = (item % blocks) * kChannelBlock;
                    kernels::selective_scan_fwd_ref<scalar_t>(p, o, b, d0, std::min(d0 + kChannelBlock, Dn));
                }
            });
        });
        // Only kept when a backward graph is built (not under NoGradGuard / InferenceMode).
        ctx->save_for_backward(in);
        ctx->saved_data["has_z"] = has_z;
        return out;
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        const variable_list in = ctx->get_saved_variables();
        const bool has_z = ctx->saved_data["has_z"].toBool();
        const Tensor grad_out = grad_outputs[0].contiguous(); // [B, L, D]
        // One gradient per forward argument (8 tensors + has_z); undefined where not needed.
        variable_list grads(9);
        for (size_t i = 0; i < 8; ++i) {
            if (ctx->needs_input_grad(i) && (i != 6 || has_z)) grads[i] = torch::empty_like(in[i]);
        }
        AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "selective_scan_bwd", [&] {
            kernels::ScanGrads<scalar_t> g;
            g.grad_out = grad_out.data_ptr<scalar_t>();
            g.grad_u = ptr_or_null<scalar_t>(grads[0]);
            g.grad_delta = ptr_or_null<scalar_t>(grads[1]);
            g.grad_A = ptr_or_null<scalar_t>(grads[2]);
            g.grad_B = ptr_or_null<scalar_t>(grads[3]);
            g.grad_C = ptr_or_null<scalar_t>(grads[4]);
            g.grad_D = ptr_or_null<scalar_t>(grads[5]);
            g.grad_z = ptr_or_null<scalar_t>(grads[6]);
            g.grad_delta_bias = ptr_or_null<scalar_t>(grads[7]);
            kernels::selective_scan_bwd_ref<scalar_t>(make_params<scalar_t>(in, has_z), g);
        });
        return grads;
    }
};

} // namespace

torch::Tensor selective_scan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                             const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& D,
                             const torch::Tensor& z, const torch::Tensor& delta_bias) {
    check_inputs(u, delta, A, B, C, D, z, delta_bias);
    if (!u.device().is_cpu()) return detail::selective_scan_composite(u, delta, A, B, C, D, z, delta_bias);
    const int64_t Dn = u.size(2);
    return SelectiveScanFn::apply(u, delta, A, B, C, D.defined() ? D : torch::zeros({Dn}, u.options()), // [D]
                                  z.defined() ? z : torch::empty({0}, u.options()),
                                  delta_bias.defined() ? delta_bias : torch::zeros({Dn}, u.options()), // [D]
                                  z.defined());
}

namespace detail {

torch::Tensor selective_scan_composite(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                       const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& D,
                                       const torch::Tensor& z, const torch::Tensor& delta_bias) {
    check_inputs(u, delta, A, B, C, D, z, delta_bias);
    const int64_t Bn = u.size(0), L = u.size(1), Dn = u.size(2), N = A.size(1);
    // torch::softplus defaults (beta 1, threshold 20) match the kernel.
    const Tensor dt = torch::softplus(delta_bias.defined() ? delta + delta_bias : delta); // [B, L, D]
    const Tensor dtu = dt * u;                                                             // [B, L, D]
    Tensor s = torch::zeros({Bn, Dn, N}, u.options());                                     // [B, D, N]
    std::vector<Tensor> ys;
    ys.reserve(L);
    // One step per time point keeps memory at O(B*D*N) per step instead of materialising [B, L, D, N].
    for (int64_t t = 0; t < L; ++t) {
        const Tensor a = torch::exp(dt.select(1, t).unsqueeze(-1) * A);                    // [B, D, N]
        s = a * s + dtu.select(1, t).unsqueeze(-1) * B.select(1, t).unsqueeze(1);          // [B, D, N]
        ys.push_back((s * C.select(1, t).unsqueeze(1)).sum(-1));                           // [B, D]
    }
    Tensor y = L > 0 ? torch::stack(ys, 1) : torch::zeros_like(u);                         // [B, L, D]
    if (D.defined()) y = y + u * D;                                                         // [B, L, D]
    if (z.defined()) y = y * torch::silu(z);                                                // [B, L, D]
    return y;
}

} // namespace detail
} // namespace janusdna::ops
