// Autograd glue for the selective scan: checks, dtype/device dispatch, and the composite fallback.
#include "janusdna/error.h"
#include "janusdna/strings.h"
#include "janusdna/ops.h"
#include "ops/graph.h"
#include "janusdna/parallel.h"
#include "kernels/selective_scan.h"

#include <torch/torch.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace janusdna::ops {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Channels per parallel work item: enough work per task to amortise scheduling, small enough to split D.
constexpr int64_t kChannelBlock = 16;
// The AVX2 kernel shares each time chunk's B/C rows across all channel blocks of a call, so it gets wider items.
constexpr int64_t kChannelBlockAvx2 = 64;


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
    p.delta = ptr_or_null<T>(in[1]);
    p.A = A.data_ptr<T>();
    p.B = in[3].data_ptr<T>();
    p.C = in[4].data_ptr<T>();
    p.D = in[5].data_ptr<T>();
    p.z = has_z ? in[6].data_ptr<T>() : nullptr;
    p.delta_bias = in[7].data_ptr<T>();
    return p;
}

// The AVX2 kernel exists for float32 only; the double overload is never called (dispatch checks the dtype).
void fwd_avx2(const kernels::ScanParams<float>& p, float* out, int64_t b, int64_t d0, int64_t d1, float* states) {
    kernels::selective_scan_fwd_avx2(p, out, b, d0, d1, states);
}
void fwd_avx2(const kernels::ScanParams<double>&, double*, int64_t, int64_t, int64_t, double*) {}
void bwd_avx2(const kernels::ScanParams<float>& p, const kernels::ScanGrads<float>& g, const float* states) {
    kernels::selective_scan_bwd_avx2(p, g, states);
}
void bwd_avx2(const kernels::ScanParams<double>&, const kernels::ScanGrads<double>&, const double*) {}

// AVX2 for float32 where the CPU has it; the scalar reference otherwise (and for float64).
template <typename T>
bool fast_kernel() {
    return std::is_same_v<T, float> && !reference_kernels() && kernels::selective_scan_avx2_supported();
}

// The forward over every batch item and channel into out ([B, L, D]); states: the chunk states for a backward, or
// null. Work items are (batch item, block of channels): each writes a disjoint part of out (and of states).
template <typename T>
void run_forward(const kernels::ScanParams<T>& p, T* out, T* states) {
    const bool fast = fast_kernel<T>();
    const int64_t Dn = p.channels, block = fast ? kChannelBlockAvx2 : kChannelBlock;
    const int64_t blocks = (Dn + block - 1) / block;
    janusdna::parallel_for(0, p.batch * blocks, 1, [&](int64_t begin, int64_t end) {
        for (int64_t item = begin; item < end; ++item) {
            const int64_t b = item / blocks, d0 = (item % blocks) * block, d1 = std::min(d0 + block, Dn);
            if (fast) fwd_avx2(p, out, b, d0, d1, states);
            else kernels::selective_scan_fwd_ref<T>(p, out, b, d0, d1);
        }
    });
}

// CPU kernel path. Takes every input as a defined tensor: the public function substitutes zeros for a
// missing D or delta_bias and an empty placeholder (has_z = false) for a missing z, because undefined
// tensors cannot be autograd Function inputs. for_backward: a backward will follow, so the AVX2 forward keeps its
// chunk states for it (the backward then skips its own sweep over the sequence).
struct SelectiveScanFn : torch::autograd::Function<SelectiveScanFn> {
    static Tensor forward(AutogradContext* ctx, const Tensor& u, const Tensor& delta, const Tensor& A,
                          const Tensor& B, const Tensor& C, const Tensor& D, const Tensor& z,
                          const Tensor& delta_bias, bool has_z, bool for_backward) {
        variable_list in = {u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(),
                            C.contiguous(), D.contiguous(),     z.contiguous(), delta_bias.contiguous()};
        Tensor out = torch::empty_like(in[0], at::MemoryFormat::Contiguous); // [B, L, D]
        const int64_t Bn = u.size(0), L = u.size(1), Dn = u.size(2), N = A.size(1);
        Tensor states; // [B, chunks, D, N]
        AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_fwd", [&] {
            if (fast_kernel<scalar_t>() && for_backward) states = torch::empty({Bn, kernels::scan_chunks(L), Dn, N}, u.options());
            run_forward(make_params<scalar_t>(in, has_z), out.data_ptr<scalar_t>(),
                        states.defined() ? states.data_ptr<scalar_t>() : nullptr);
        });
        // Only kept when a backward graph is built (not under NoGradGuard / InferenceMode).
        ctx->save_for_backward(in);
        ctx->saved_data["has_z"] = has_z;
        if (states.defined()) ctx->saved_data["chunk_states"] = states;
        return out;
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        const variable_list in = ctx->get_saved_variables();
        const bool has_z = ctx->saved_data["has_z"].toBool();
        const auto it = ctx->saved_data.find("chunk_states");
        const Tensor states = it != ctx->saved_data.end() ? it->second.toTensor() : Tensor(); // [B, chunks, D, N]
        const Tensor grad_out = grad_outputs[0].contiguous(); // [B, L, D]
        // One gradient per forward argument (8 tensors + has_z + for_backward); undefined where not needed.
        variable_list grads(10);
        for (size_t i = 0; i < 8; ++i) {
            if (ctx->needs_input_grad(i) && (i != 6 || has_z)) grads[i] = torch::empty_like(in[i]);
        }
        const Tensor& u = in[0];
        const int64_t Bn = u.size(0), L = u.size(1), Dn = u.size(2), N = in[2].size(1);
        // grad_A, grad_D and grad_delta_bias sum over batch items: each item writes its own row of these
        // [B, ...] buffers and the rows are summed afterwards, so the parallel loop over items is race free
        // (every other gradient is per item anyway).
        auto per_item = [&](size_t i, at::IntArrayRef shape) {
            if (!grads[i].defined()) return Tensor();
            std::vector<int64_t> sizes{Bn};
            sizes.insert(sizes.end(), shape.begin(), shape.end());
            return torch::empty(sizes, u.options()); // [B, shape...]
        };
        const Tensor part_A = per_item(2, {Dn, N}), part_D = per_item(5, {Dn}), part_bias = per_item(7, {Dn});
        const int64_t per_item_states = states.defined() ? states.numel() / Bn : 0; // chunks * D * N
        AT_DISPATCH_FLOATING_TYPES(grad_out.scalar_type(), "selective_scan_bwd", [&] {
            const auto p = make_params<scalar_t>(in, has_z);
            const bool fast = std::is_same_v<scalar_t, float> && !reference_kernels() && kernels::selective_scan_avx2_supported();
            janusdna::parallel_for(0, Bn, 1, [&](int64_t begin, int64_t end) {
                for (int64_t b = begin; b < end; ++b) {
                    const int64_t xd = b * L * Dn, xn = b * L * N; // offsets of item b in [B, L, D] / [B, L, N]
                    auto at = [](const Tensor& t, int64_t offset) {
                        return t.defined() ? t.data_ptr<scalar_t>() + offset : nullptr;
                    };
                    kernels::ScanParams<scalar_t> pb = p; // the problem restricted to batch item b
                    pb.batch = 1;
                    pb.u += xd, pb.delta += xd, pb.B += xn, pb.C += xn;
                    if (pb.z) pb.z += xd;
                    kernels::ScanGrads<scalar_t> g;
                    g.grad_out = grad_out.data_ptr<scalar_t>() + xd;
                    g.grad_u = at(grads[0], xd);
                    g.grad_delta = at(grads[1], xd);
                    g.grad_A = at(part_A, b * Dn * N);
                    g.grad_B = at(grads[3], xn);
                    g.grad_C = at(grads[4], xn);
                    g.grad_D = at(part_D, b * Dn);
                    g.grad_z = at(grads[6], xd);
                    g.grad_delta_bias = at(part_bias, b * Dn);
                    if (fast) bwd_avx2(pb, g, states.defined() ? states.data_ptr<scalar_t>() + b * per_item_states : nullptr);
                    else kernels::selective_scan_bwd_ref<scalar_t>(pb, g);
                }
            });
        });
        if (part_A.defined()) grads[2] = part_A.sum(0);       // [D, N]
        if (part_D.defined()) grads[5] = part_D.sum(0);       // [D]
        if (part_bias.defined()) grads[7] = part_bias.sum(0); // [D]
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
    const bool for_backward = needs_graph({&u, &delta, &A, &B, &C, &D, &z, &delta_bias});
    return SelectiveScanFn::apply(u, delta, A, B, C, D.defined() ? D : torch::zeros({Dn}, u.options()), // [D]
                                  z.defined() ? z : torch::empty({0}, u.options()),
                                  delta_bias.defined() ? delta_bias : torch::zeros({Dn}, u.options()), // [D]
                                  z.defined(), for_backward);
}

torch::Tensor selective_scan_low_rank(const torch::Tensor& u, const torch::Tensor& dt_low, const torch::Tensor& dt_weight,
                                      const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                                      const torch::Tensor& D, const torch::Tensor& z, const torch::Tensor& delta_bias) {
    check(u.defined() && u.dim() == 3,
          "u must have shape [B, L, D], got " + (u.defined() ? shape_str(u.sizes()) : std::string("undefined")));
    check(dt_low.defined() && dt_low.dim() == 3 && dt_weight.defined() && dt_weight.dim() == 2,
          "the low-rank delta needs dt_low [B, L, R] and dt_weight [D, R]");
    const int64_t Bn = u.size(0), L = u.size(1), Dn = u.size(2), R = dt_low.size(2);
    check_tensor(dt_low, "dt_low", {Bn, L, R}, "[B, L, R]", u);
    check_tensor(dt_weight, "dt_weight", {Dn, R}, "[D, R]", u);
    if (needs_graph({&u, &dt_low, &dt_weight, &A, &B, &C, &D, &z, &delta_bias}) || !u.device().is_cpu() || R > kernels::kScanMaxRank)
        return selective_scan(u, ops::linear(dt_low, dt_weight), A, B, C, D, z, delta_bias);
    // The delta argument's checks, on a stand-in of its shape (expand: no memory).
    check_inputs(u, dt_low.new_zeros({1, 1, 1}).expand({Bn, L, Dn}), A, B, C, D, z, delta_bias);
    variable_list in = {u.contiguous(), Tensor(), A.contiguous(), B.contiguous(), C.contiguous(),
                        D.defined() ? D.contiguous() : torch::zeros({Dn}, u.options()), z.defined() ? z.contiguous() : Tensor(),
                        delta_bias.defined() ? delta_bias.contiguous() : torch::zeros({Dn}, u.options())};
    const Tensor low = dt_low.contiguous(), w = dt_weight.contiguous();
    Tensor out = torch::empty_like(in[0], at::MemoryFormat::Contiguous); // [B, L, D]
    AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "selective_scan_low_rank", [&] {
        auto p = make_params<scalar_t>(in, z.defined());
        p.delta_low = low.data_ptr<scalar_t>(), p.delta_weight = w.data_ptr<scalar_t>(), p.rank = R;
        run_forward(p, out.data_ptr<scalar_t>(), static_cast<scalar_t*>(nullptr));
    });
    return out;
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
