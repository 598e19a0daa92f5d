// The dense layers' inference fast paths (kernels/dense.h) and their torch fallbacks.
#include "kernels/dense.h"
#include "janusdna/error.h"
#include "janusdna/strings.h"
#include "janusdna/ops.h"
#include "ops/graph.h"
#include "janusdna/parallel.h"

#include <torch/torch.h>

#include <algorithm>
#include <fmt/format.h>
#include <sstream>

namespace janusdna::ops {
namespace {

using torch::Tensor;

constexpr int64_t kGrainRows = 240; // rows per parallel range (a multiple of the kernels' 6-row block)

// True when the AVX2 kernels can run on these tensors: float32 on the CPU (with or without a graph).
bool kernel_ok(std::initializer_list<const Tensor*> ts) {
    if (reference_kernels() || !kernels::dense_avx2_supported()) return false;
    for (const Tensor* t : ts)
        if (t->defined() && (t->scalar_type() != torch::kFloat || !t->device().is_cpu())) return false;
    return true;
}

// The kernels without autograd: float32 on the CPU and no graph wanted.
bool fast_path(std::initializer_list<const Tensor*> ts) { return kernel_ok(ts) && !needs_graph(ts); }

// x as rows of its last dimension at one row stride: the tensor itself when its leading dimensions collapse to
// one stride (a column slice of a wider tensor does), else a contiguous copy.
Tensor rows_of(const Tensor& x, int64_t& rows, int64_t& ld) {
    Tensor t = x;
    bool ok = t.dim() >= 1 && t.stride(-1) == 1;
    for (int64_t i = 0; ok && i + 2 < t.dim(); ++i) ok = t.stride(i) == t.size(i + 1) * t.stride(i + 1);
    if (!ok) t = t.contiguous();
    rows = t.dim() >= 2 ? t.numel() / std::max<int64_t>(1, t.size(-1)) : 1;
    ld = t.dim() >= 2 ? t.stride(-2) : t.size(-1);
    return t;
}

std::vector<int64_t> with_last(const Tensor& x, int64_t n) {
    auto shape = x.sizes().vec();
    shape.back() = n;
    return shape;
}


void check_weight(const Tensor& w, int64_t rows, int64_t cols, const char* what) {
    if (w.dim() != 2 || w.size(0) != rows || w.size(1) != cols)
        throw Error(fmt::format("{}: weight must be [{}, {}], got {}", what, rows, cols, shape_str(w.sizes())));
}

} // namespace

namespace {

// A residual for a kernel's epilogue: its rows (in place when their layout allows) and row stride, checked against
// the output y; null when undefined. The returned tensor keeps the rows alive.
Tensor residual_rows(const Tensor& residual, const Tensor& y, const char* what, const float*& rows, int64_t& ld) {
    rows = nullptr, ld = 0;
    if (!residual.defined()) return residual;
    if (!residual.sizes().equals(y.sizes()))
        throw Error(fmt::format("{}: residual must be {}, got {}", what, shape_str(y.sizes()), shape_str(residual.sizes())));
    int64_t M = 0;
    Tensor r = rows_of(residual, M, ld);
    rows = r.data_ptr<float>();
    return r;
}

// The weights packed into this thread's buffer, reused call after call (the calls' parallel_for only reads it
// while the caller waits). Callers keep the returned reference and use it inside their lambdas: the thread_local
// named there would be each worker's own, empty, buffer.
kernels::PackedLinear& thread_pack(const Tensor& weight) {
    thread_local kernels::PackedLinear buffer;
    kernels::pack_linear_avx2(buffer, weight.data_ptr<float>(), weight.size(0), weight.size(1), weight.stride(0), weight.stride(1));
    return buffer;
}
kernels::PackedMlp& thread_pack(const Tensor& gate, const Tensor& up, const Tensor& down) { // contiguous
    thread_local kernels::PackedMlp buffer;
    kernels::pack_mlp_avx2(buffer, gate.data_ptr<float>(), up.data_ptr<float>(), down.data_ptr<float>(), gate.size(1), gate.size(0));
    return buffer;
}

// Rows of y (row stride ldy) = x W^T + b (+ residual rows) on the AVX2 kernel, parallel over rows; x's rows read
// in place when their layout allows. bias may be undefined.
void linear_into(const Tensor& x, const Tensor& weight, const Tensor& bias, float* y, int64_t ldy,
                 const float* residual = nullptr, int64_t ldr = 0) {
    int64_t M = 0, ldx = 0;
    const Tensor xs = rows_of(x, M, ldx);
    if (M == 0) return;
    const Tensor b = bias.defined() ? bias.contiguous() : Tensor();
    const int64_t K = xs.size(-1), N = weight.size(0);
    const kernels::PackedLinear& packed = thread_pack(weight); // from the weight's strides: a transposed view is not copied
    kernels::LinearParams<float> p;
    p.rows = M, p.in = K, p.out = N, p.x = xs.data_ptr<float>(), p.ldx = ldx, p.weight = nullptr; // (packed only)
    p.bias = b.defined() ? b.data_ptr<float>() : nullptr;
    p.y = y, p.ldy = ldy, p.residual = residual, p.ldr = ldr;
    parallel_for(0, M, kGrainRows, [&](int64_t r0, int64_t r1) { kernels::linear_avx2(p, packed, r0, r1); });
}

// The SwiGLU MLP's backward through W_down [H, I] and the activation: dgu [M, 2I] from dy's M rows (row stride
// read from the tensor) and the forward's gu [M, 2I], contiguous float32, without dh in memory (swiglu_bwd_avx2).
void swiglu_bwd_into(const Tensor& dy, const Tensor& down, const float* gu, float* dgu) {
    int64_t M = 0, lddy = 0;
    const Tensor ys = rows_of(dy, M, lddy);
    if (M == 0) return;
    const kernels::PackedLinear& packed = thread_pack(down.t()); // W_down^T [I, H]: out = I, in = H
    const float* dyp = ys.data_ptr<float>();
    parallel_for(0, M, kGrainRows, [&](int64_t r0, int64_t r1) { kernels::swiglu_bwd_avx2(dyp, lddy, packed, gu, dgu, r0, r1); });
}

// y = x W^T + b (+ residual) on the AVX2 kernel (no autograd).
Tensor linear_kernel(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& residual = {}) {
    const int64_t K = x.size(-1), N = weight.size(0);
    check_weight(weight, N, K, "linear");
    if (bias.defined() && (bias.dim() != 1 || bias.size(0) != N))
        throw Error(fmt::format("linear: bias must be [{}], got {}", N, shape_str(bias.sizes())));
    Tensor y = torch::empty(with_last(x, N), x.options());                 // [..., N]
    const float* res = nullptr;
    int64_t ldr = 0;
    const Tensor rs = residual_rows(residual, y, "linear", res, ldr);
    linear_into(x, weight, bias, y.data_ptr<float>(), N, res, ldr);
    return y;
}

// The weight gradient dy^T x ([N, K]) of rows dy [M, N] and x [M, K] on the kernel, on this thread (training runs
// one graph per thread). OpenBLAS ran these skinny reductions at 45-85 GFLOP/s.
Tensor weight_grad_kernel(const Tensor& dy, const Tensor& x) {
    int64_t M = 0, lddy = 0, Mx = 0, ldx = 0;
    const Tensor d = rows_of(dy, M, lddy), xs = rows_of(x, Mx, ldx);
    if (M != Mx) throw Error(fmt::format("weight gradient: {} rows of dy against {} of x", M, Mx));
    Tensor dw = torch::empty({dy.size(-1), x.size(-1)}, x.options());      // [N, K]
    kernels::WeightGradParams<float> p;
    p.rows = M, p.in = x.size(-1), p.out = dy.size(-1);
    p.dy = d.data_ptr<float>(), p.lddy = lddy, p.x = xs.data_ptr<float>(), p.ldx = ldx;
    p.dw = dw.data_ptr<float>();
    kernels::weight_grad_avx2(p);
    return dw;
}

// The linear layer under autograd: the forward, the input gradient dy W and the weight gradient dy^T x on the
// kernels.
struct LinearFn : torch::autograd::Function<LinearFn> {
    static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& weight,
                          const Tensor& bias) {
        ctx->save_for_backward({x, weight});
        return linear_kernel(x, weight, bias);
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_outputs) {
        const auto saved = ctx->get_saved_variables();
        const Tensor &x = saved[0], &w = saved[1];
        const Tensor& dy = grad_outputs[0];                                 // [..., N]
        const int64_t K = x.size(-1), N = w.size(0);
        torch::autograd::variable_list grads(3);
        if (ctx->needs_input_grad(0)) grads[0] = linear_kernel(dy, w.t(), Tensor()); // [..., K] (packed from the transposed view)
        if (ctx->needs_input_grad(1) || ctx->needs_input_grad(2)) {
            const Tensor dy2 = dy.reshape({-1, N});                         // [M, N]
            if (ctx->needs_input_grad(1)) grads[1] = weight_grad_kernel(dy2, x.reshape({-1, K})); // [N, K]
            if (ctx->needs_input_grad(2)) grads[2] = dy2.sum(0);           // [N]
        }
        return grads;
    }
};

} // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& residual) {
    auto plus = [&](Tensor y) { return residual.defined() ? y + residual : y; };
    if (!kernel_ok({&x, &weight, &bias, &residual})) return plus(torch::linear(x, weight, bias));
    if (!needs_graph({&x, &weight, &bias, &residual})) return linear_kernel(x, weight, bias, residual);
    // Undefined tensors cannot be Function inputs: a missing bias becomes zeros (which need no gradient).
    return plus(LinearFn::apply(x, weight, bias.defined() ? bias : torch::zeros({weight.size(0)}, weight.options())));
}

// Rows per chunk of the torch fallback without autograd: its [rows, I] intermediates (I = 4H) would otherwise be
// the largest tensors of a full-context pass (2 KB per base and stream at H = 32).
constexpr int64_t kMlpChunkRows = int64_t(1) << 14;

Tensor swiglu_mlp_torch(const Tensor& x, const Tensor& gate, const Tensor& up, const Tensor& down) {
    if (needs_graph({&x, &gate, &up, &down}))
        return ops::linear(torch::silu(ops::linear(x, gate)) * ops::linear(x, up), down);
    auto run = [&](const Tensor& xc) {                                      // [n, H]
        Tensor g = torch::linear(xc, gate);                                 // [n, I]
        torch::silu_(g).mul_(torch::linear(xc, up));
        return torch::linear(g, down);                                      // [n, H]
    };
    const int64_t H = x.size(-1), rows = x.numel() / std::max<int64_t>(1, H);
    if (rows <= kMlpChunkRows) return run(x);
    const Tensor xf = x.reshape({rows, H});                                 // [rows, H]
    Tensor out = torch::empty({rows, down.size(0)}, x.options());           // [rows, H]
    for (int64_t r0 = 0; r0 < rows; r0 += kMlpChunkRows) {
        const int64_t n = std::min(kMlpChunkRows, rows - r0);
        out.narrow(0, r0, n).copy_(run(xf.narrow(0, r0, n)));
    }
    return out.view(with_last(x, out.size(1)));
}

namespace {

// The SwiGLU MLP under autograd, as three skinny GEMMs on the kernel and two fused element-wise passes:
//   forward   gu = x [W_gate; W_up]^T (one GEMM for both), h = silu(g) u, y = h W_down^T
//   backward  dh = dy W_down, dgu = swiglu_act_bwd(gu, dh), dx = dgu [W_gate; W_up] (one GEMM),
//             dW_down = dy^T h and d[W_gate; W_up] = dgu^T x (reductions over all rows, weight_grad_kernel).
// Saves x, gu and h (what the torch ops save, in fewer tensors).
struct SwigluMlpFn : torch::autograd::Function<SwigluMlpFn> {
    static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& gate, const Tensor& up,
                          const Tensor& down) {
        const int64_t H = x.size(-1), I = gate.size(0);
        check_weight(gate, I, H, "swiglu_mlp gate");
        check_weight(up, I, H, "swiglu_mlp up");
        check_weight(down, H, I, "swiglu_mlp down");
        const Tensor wgu = torch::cat({gate, up}, 0);                       // [2I, H]
        const Tensor gu = linear_kernel(x, wgu, Tensor()).reshape({-1, 2 * I}); // [M, 2I]
        const int64_t M = gu.size(0);
        Tensor h = torch::empty({M, I}, x.options());                       // [M, I]
        parallel_for(0, M, kGrainRows, [&](int64_t r0, int64_t r1) {
            kernels::swiglu_act_avx2(gu.data_ptr<float>(), I, h.data_ptr<float>(), r0, r1);
        });
        ctx->save_for_backward({x, wgu, down, gu, h});
        return linear_kernel(h, down, Tensor()).view(with_last(x, H));      // [..., H]
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_outputs) {
        const auto saved = ctx->get_saved_variables();
        const Tensor &x = saved[0], &wgu = saved[1], &down = saved[2], &gu = saved[3], &h = saved[4];
        const int64_t H = x.size(-1), I = down.size(1), M = gu.size(0);
        const Tensor dy = grad_outputs[0].reshape({M, H});                  // [M, H]
        Tensor dgu = torch::empty({M, 2 * I}, gu.options());                // [M, 2I]
        swiglu_bwd_into(dy, down, gu.data_ptr<float>(), dgu.data_ptr<float>()); // through dh = dy W_down
        torch::autograd::variable_list grads(4);
        if (ctx->needs_input_grad(0)) grads[0] = linear_kernel(dgu, wgu.t(), Tensor()).view(x.sizes()); // [..., H]
        if (ctx->needs_input_grad(1) || ctx->needs_input_grad(2)) {
            const Tensor dwgu = weight_grad_kernel(dgu, x.reshape({M, H})); // [2I, H]
            if (ctx->needs_input_grad(1)) grads[1] = dwgu.narrow(0, 0, I);
            if (ctx->needs_input_grad(2)) grads[2] = dwgu.narrow(0, I, I);
        }
        if (ctx->needs_input_grad(3)) grads[3] = weight_grad_kernel(dy, h); // [H, I]
        return grads;
    }
};

} // namespace

Tensor swiglu_mlp(const Tensor& x, const Tensor& gate, const Tensor& up, const Tensor& down, const Tensor& residual) {
    auto plus = [&](Tensor y) { return residual.defined() ? y + residual : y; };
    if (!kernel_ok({&x, &gate, &up, &down, &residual})) return plus(swiglu_mlp_torch(x, gate, up, down));
    if (needs_graph({&x, &gate, &up, &down, &residual})) return plus(SwigluMlpFn::apply(x, gate, up, down));
    const int64_t H = x.size(-1), I = gate.size(0);
    check_weight(gate, I, H, "swiglu_mlp gate");
    check_weight(up, I, H, "swiglu_mlp up");
    check_weight(down, H, I, "swiglu_mlp down");
    int64_t M = 0, ldx = 0;
    const Tensor xs = rows_of(x, M, ldx);
    Tensor y = torch::empty(with_last(x, H), x.options());                 // [..., H]
    if (M == 0) return y;
    const Tensor g = gate.contiguous(), u = up.contiguous(), d = down.contiguous();
    const kernels::PackedMlp& packed = thread_pack(g, u, d);
    kernels::MlpParams<float> p;
    p.rows = M, p.hidden = H, p.inter = I;
    p.x = xs.data_ptr<float>(), p.ldx = ldx;
    p.gate = g.data_ptr<float>(), p.up = u.data_ptr<float>(), p.down = d.data_ptr<float>();
    p.y = y.data_ptr<float>(), p.ldy = H;
    const Tensor rs = residual_rows(residual, y, "swiglu_mlp", p.residual, p.ldr);
    parallel_for(0, M, kGrainRows, [&](int64_t r0, int64_t r1) { kernels::swiglu_mlp_avx2(p, packed, r0, r1); });
    return y;
}

namespace {

// y[index[r]] += scale[r] * swiglu_mlp(x[index[r]]) for r < M on the kernels: x and y contiguous [T, H] float32,
// index and scale raw (checked by the callers), the weights checked here.
void swiglu_rows_add(float* y, const float* x, int64_t H, const int64_t* index, const float* scale, int64_t M,
                     const Tensor& gate, const Tensor& up, const Tensor& down) {
    const int64_t I = gate.size(0);
    check_weight(gate, I, H, "swiglu_mlp gate");
    check_weight(up, I, H, "swiglu_mlp up");
    check_weight(down, H, I, "swiglu_mlp down");
    if (M == 0) return;
    const Tensor g = gate.contiguous(), u = up.contiguous(), d = down.contiguous();
    const kernels::PackedMlp& packed = thread_pack(g, u, d);
    kernels::MlpParams<float> p;
    p.rows = M, p.hidden = H, p.inter = I;
    p.x = x, p.ldx = H;
    p.index = index, p.scale = scale;
    p.gate = g.data_ptr<float>(), p.up = u.data_ptr<float>(), p.down = d.data_ptr<float>();
    p.y = y, p.ldy = H, p.accumulate = true;
    // Rows are distinct within a call (a token goes to an expert at most once), so ranges never write one row twice.
    parallel_for(0, M, kGrainRows, [&](int64_t r0, int64_t r1) { kernels::swiglu_mlp_avx2(p, packed, r0, r1); });
}

// Every index in [0, T), or an error naming the first that is not.
void check_rows(const int64_t* ip, int64_t M, int64_t T, const char* what) {
    for (int64_t r = 0; r < M; ++r)
        if (ip[r] < 0 || ip[r] >= T) throw Error(fmt::format("{}: index {} out of [0, {})", what, ip[r], T));
}

} // namespace

void swiglu_mlp_index_add_(Tensor& y, const Tensor& x, const Tensor& index, const Tensor& scale, const Tensor& gate,
                           const Tensor& up, const Tensor& down) {
    if (x.dim() != 2 || !y.sizes().equals(x.sizes()) || index.dim() != 1 || index.scalar_type() != torch::kLong ||
        !scale.sizes().equals(index.sizes()))
        throw Error("swiglu_mlp_index_add_: need x and y [T, H], index [M] (int64) and scale [M]");
    if (!fast_path({&x, &y, &scale, &gate, &up, &down})) {
        y.index_add_(0, index, swiglu_mlp(x.index_select(0, index), gate, up, down) * scale.unsqueeze(1));
        return;
    }
    if (!y.is_contiguous()) throw Error("swiglu_mlp_index_add_: y must be contiguous");
    const Tensor xs = x.contiguous(), idx = index.contiguous(), sc = scale.contiguous();
    check_rows(idx.data_ptr<int64_t>(), idx.size(0), x.size(0), "swiglu_mlp_index_add_");
    swiglu_rows_add(y.data_ptr<float>(), xs.data_ptr<float>(), x.size(1), idx.data_ptr<int64_t>(), sc.data_ptr<float>(),
                    idx.size(0), gate, up, down);
}

namespace {

// All experts of a MoE layer under autograd as one node (see ops::moe_experts): the pairs' rows gathered once
// ([P, H], by expert), per expert the SwiGLU MLP's GEMMs and activation on the kernels into [P, .] buffers that the
// backward reuses, the weighted outputs added into y. Instead of ~6 torch ops per expert forward and ~10 backward
// (gathers, scatters into zeros, products), which cost 3-5 % of a training step at 16 experts.
struct MoeExpertsFn : torch::autograd::Function<MoeExpertsFn> {
    static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& weight,
                          const Tensor& token, at::TensorList gates, at::TensorList ups, at::TensorList downs,
                          const std::vector<int64_t>& start) {
        const int64_t T = x.size(0), H = x.size(1), P = token.size(0), E = static_cast<int64_t>(gates.size());
        const int64_t I = E ? gates[0].size(0) : 0;
        const Tensor xg = x.index_select(0, token);                        // [P, H]
        Tensor gu = torch::empty({P, 2 * I}, x.options());                  // [P, 2I]
        Tensor h = torch::empty({P, I}, x.options());                       // [P, I]
        Tensor o = torch::empty({P, H}, x.options());                       // [P, H]
        for (int64_t e = 0; e < E; ++e) {
            const int64_t b = start[e], m = start[e + 1] - b;
            if (m == 0) continue;
            check_weight(gates[e], I, H, "moe gate"), check_weight(ups[e], I, H, "moe up");
            check_weight(downs[e], H, I, "moe down");
            // gate | up side by side in gu's rows (two GEMMs into the two halves: no [2I, H] copy of the weights)
            linear_into(xg.narrow(0, b, m), gates[e], {}, gu.data_ptr<float>() + b * 2 * I, 2 * I);
            linear_into(xg.narrow(0, b, m), ups[e], {}, gu.data_ptr<float>() + b * 2 * I + I, 2 * I);
            float* hp = h.data_ptr<float>() + b * I;
            const float* gp = gu.data_ptr<float>() + b * 2 * I;
            parallel_for(0, m, kGrainRows, [&](int64_t r0, int64_t r1) { kernels::swiglu_act_avx2(gp, I, hp, r0, r1); });
            linear_into(h.narrow(0, b, m), downs[e], {}, o.data_ptr<float>() + b * H, H);
        }
        Tensor y = torch::zeros({T, H}, x.options());                       // [T, H]
        const Tensor w = weight.contiguous();
        const int64_t* tp = token.data_ptr<int64_t>();
        const float *wp = w.data_ptr<float>(), *op = o.data_ptr<float>();
        float* yp = y.data_ptr<float>();
        for (int64_t q = 0; q < P; ++q) // pairs in expert order: each token's slots add up in the experts' order
            for (int64_t c = 0; c < H; ++c) yp[tp[q] * H + c] += wp[q] * op[q * H + c];
        std::vector<Tensor> saved = {xg, gu, h, o, w, token};
        for (auto list : {gates, ups, downs})
            for (const Tensor& t : list) saved.push_back(t);
        ctx->save_for_backward(saved);
        ctx->saved_data["start"] = start;
        ctx->saved_data["T"] = T;
        return y;
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_outputs) {
        const auto s = ctx->get_saved_variables();
        const Tensor &xg = s[0], &gu = s[1], &h = s[2], &o = s[3], &w = s[4], &token = s[5];
        const std::vector<int64_t> start = ctx->saved_data["start"].toIntVector();
        const int64_t T = ctx->saved_data["T"].toInt(), E = static_cast<int64_t>(start.size()) - 1;
        const int64_t P = xg.size(0), H = xg.size(1), I = h.size(1);
        const Tensor dyg = grad_outputs[0].contiguous().index_select(0, token); // [P, H]
        const Tensor dw = (dyg * o).sum(1);                                 // [P]
        const Tensor dyo = dyg * w.unsqueeze(1);                            // [P, H]
        Tensor dgu = torch::empty({P, 2 * I}, xg.options());                // [P, 2I]
        Tensor dxg = torch::empty({P, H}, xg.options());                    // [P, H]
        torch::autograd::variable_list grads(static_cast<size_t>(3 + 3 * E + 1));
        grads[0] = torch::zeros({T, H}, xg.options());
        grads[1] = dw;
        for (int64_t e = 0; e < E; ++e) {
            const int64_t b = start[e], m = start[e + 1] - b;
            if (m == 0) continue;
            const Tensor &gate = s[6 + e], &up = s[6 + E + e], &down = s[6 + 2 * E + e];
            const Tensor dyo_e = dyo.narrow(0, b, m);                       // [m, H]
            swiglu_bwd_into(dyo_e, down, gu.data_ptr<float>() + b * 2 * I, dgu.data_ptr<float>() + b * 2 * I); // via dh
            const Tensor dgu_e = dgu.narrow(0, b, m);                       // [m, 2I]
            // dx = dg W_gate + du W_up: the second GEMM adds the first's rows as its residual (in place).
            float* dxp = dxg.data_ptr<float>() + b * H;
            linear_into(dgu_e.narrow(1, 0, I), gate.t(), {}, dxp, H);
            linear_into(dgu_e.narrow(1, I, I), up.t(), {}, dxp, H, dxp, H);
            const Tensor dwgu = weight_grad_kernel(dgu_e, xg.narrow(0, b, m)); // [2I, H]
            grads[static_cast<size_t>(3 + e)] = dwgu.narrow(0, 0, I);
            grads[static_cast<size_t>(3 + E + e)] = dwgu.narrow(0, I, I);
            grads[static_cast<size_t>(3 + 2 * E + e)] = weight_grad_kernel(dyo_e, h.narrow(0, b, m)); // [H, I]
        }
        // dx[token[q]] += dxg[q], pairs in order (what index_add_ computes, without its per-call overhead).
        const int64_t* tp = token.data_ptr<int64_t>();
        const float* dxp = dxg.data_ptr<float>();
        float* gx = grads[0].data_ptr<float>();
        for (int64_t q = 0; q < P; ++q)
            for (int64_t c = 0; c < H; ++c) gx[tp[q] * H + c] += dxp[q * H + c];
        return grads;
    }
};

} // namespace

Tensor moe_experts(const Tensor& x, const Tensor& token, const Tensor& weight, const std::vector<int64_t>& start,
                   const std::vector<Tensor>& gates, const std::vector<Tensor>& ups, const std::vector<Tensor>& downs,
                   const Tensor& residual) {
    if (residual.defined() && !residual.sizes().equals(x.sizes()))
        throw Error(fmt::format("moe_experts: residual must be {}, got {}", shape_str(x.sizes()), shape_str(residual.sizes())));
    const int64_t E = static_cast<int64_t>(gates.size());
    if (x.dim() != 2 || token.dim() != 1 || token.scalar_type() != torch::kLong || !weight.sizes().equals(token.sizes()) ||
        static_cast<int64_t>(ups.size()) != E || static_cast<int64_t>(downs.size()) != E ||
        static_cast<int64_t>(start.size()) != E + 1 || (E > 0 && (start[0] != 0 || start[E] != token.size(0))))
        throw Error("moe_experts: need x [T, H], token and weight [P] (token int64), E experts and start [E + 1] "
                    "from 0 to P");
    for (int64_t e = 0; e < E; ++e)
        if (start[e + 1] < start[e]) throw Error("moe_experts: start must not decrease");
    bool graph = needs_graph({&x, &weight}), kernels = kernel_ok({&x, &weight});
    for (const auto* list : {&gates, &ups, &downs})
        for (const Tensor& t : *list) graph = graph || needs_graph({&t}), kernels = kernels && kernel_ok({&t});
    if (!graph) {
        Tensor yy = residual.defined() ? residual.clone(at::MemoryFormat::Contiguous) : torch::zeros_like(x); // [T, H]
        if (!kernels || !kernel_ok({&yy})) {
            for (int64_t e = 0; e < E; ++e) // (an expert without tokens adds nothing)
                swiglu_mlp_index_add_(yy, x, token.narrow(0, start[e], start[e + 1] - start[e]),
                                      weight.narrow(0, start[e], start[e + 1] - start[e]), gates[e], ups[e], downs[e]);
            return yy;
        }
        // On the kernels each expert's pairs by pointer (a narrow per expert and argument was ~1 % of the forward).
        const Tensor xs = x.contiguous(), tok = token.contiguous(), w = weight.contiguous();
        const int64_t* tp = tok.data_ptr<int64_t>();
        check_rows(tp, tok.size(0), x.size(0), "moe_experts");
        for (int64_t e = 0; e < E; ++e)
            swiglu_rows_add(yy.data_ptr<float>(), xs.data_ptr<float>(), x.size(1), tp + start[e], w.data_ptr<float>() + start[e],
                            start[e + 1] - start[e], gates[e], ups[e], downs[e]);
        return yy;
    }
    if (kernels && x.is_contiguous()) {
        Tensor y = MoeExpertsFn::apply(x, weight, token.contiguous(), at::TensorList(gates), at::TensorList(ups),
                                       at::TensorList(downs), start);
        return residual.defined() ? y + residual : y;
    }
    Tensor y = residual.defined() ? residual.clone() : torch::zeros_like(x); // [T, H]
    for (int64_t e = 0; e < E; ++e) {
        const int64_t b = start[e], m = start[e + 1] - b;
        if (m == 0) continue;
        const Tensor tok = token.narrow(0, b, m);                           // [m]
        y.index_add_(0, tok, swiglu_mlp(x.index_select(0, tok), gates[e], ups[e], downs[e]) *
                                 weight.narrow(0, b, m).unsqueeze(1));
    }
    return y;
}

namespace {

Tensor rms_norm_kernel(const Tensor& x, const Tensor& weight, double eps) {
    const int64_t D = x.size(-1);
    if (weight.dim() != 1 || weight.size(0) != D)
        throw Error(fmt::format("rms_norm: weight must be [{}], got {}", D, shape_str(weight.sizes())));
    int64_t M = 0, ldx = 0;
    const Tensor xs = rows_of(x, M, ldx);
    const Tensor w = weight.contiguous();
    Tensor y = torch::empty(x.sizes(), x.options());                        // [..., D]
    if (M == 0) return y;
    kernels::RmsNormParams<float> p;
    p.rows = M, p.dim = D, p.x = xs.data_ptr<float>(), p.ldx = ldx, p.weight = w.data_ptr<float>(), p.eps = eps;
    p.y = y.data_ptr<float>(), p.ldy = D;
    parallel_for(0, M, 4 * kGrainRows, [&](int64_t r0, int64_t r1) { kernels::rmsnorm_avx2(p, r0, r1); });
    return y;
}

// Rows per partial sum of the weight gradient: fixed blocks, summed in block order, so that the gradient does not
// depend on how the rows were split over threads.
constexpr int64_t kNormBlockRows = 1024;

// dx rows (row stride ldgx) of RMSNorm over x's rows [M, D] (row stride ldx) for dy [M, D] contiguous; returns
// the weight's gradient [D] when need_w (in fixed kNormBlockRows blocks summed in block order, so that it does not
// depend on the thread split), else an undefined tensor.
Tensor rms_norm_backward_rows(const float* x, int64_t ldx, int64_t M, const Tensor& w, double eps, const Tensor& dy,
                              float* dx, int64_t ldgx, bool need_w) {
    const int64_t D = w.size(0), blocks = (M + kNormBlockRows - 1) / kNormBlockRows;
    Tensor partial = need_w ? torch::zeros({std::max<int64_t>(1, blocks), D}, dy.options()) : Tensor(); // [blocks, D]
    kernels::RmsNormParams<float> p;
    p.rows = M, p.dim = D, p.x = x, p.ldx = ldx, p.weight = w.data_ptr<float>(), p.eps = eps;
    parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t blk = b0; blk < b1; ++blk) {
            kernels::RmsNormGrads<float> g;
            g.grad_out = dy.data_ptr<float>(), g.grad_x = dx, g.ldgx = ldgx;
            g.grad_weight = need_w ? partial.data_ptr<float>() + blk * D : nullptr;
            kernels::rmsnorm_bwd_avx2(p, g, blk * kNormBlockRows, std::min(M, (blk + 1) * kNormBlockRows));
        }
    });
    return need_w ? partial.sum(0) : Tensor();
}

// RMSNorm under autograd: forward and backward each one pass over the rows on the AVX2 kernels (instead of a
// chain of ~7 forward and ~12 backward torch ops).
struct RmsNormFn : torch::autograd::Function<RmsNormFn> {
    static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& weight, double eps) {
        ctx->save_for_backward({x, weight});
        ctx->saved_data["eps"] = eps;
        return rms_norm_kernel(x, weight, eps);
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_outputs) {
        const auto saved = ctx->get_saved_variables();
        const Tensor &x = saved[0], &weight = saved[1];
        const Tensor dy = grad_outputs[0].contiguous();                     // [..., D]
        int64_t M = 0, ldx = 0;
        const Tensor xs = rows_of(x, M, ldx), w = weight.contiguous();
        Tensor dx = torch::empty(x.sizes(), x.options());                   // [..., D]
        const Tensor dw = rms_norm_backward_rows(xs.data_ptr<float>(), ldx, M, w, ctx->saved_data["eps"].toDouble(), dy,
                                                 dx.data_ptr<float>(), 0, ctx->needs_input_grad(1));
        return {dx, dw, Tensor()};
    }
};

// The forward of rms_norm_split on the kernels: x's rows (xs, at their row stride), the weights made contiguous
// (w) and segment i's rows normalised into a new contiguous [..., d_i].
std::vector<Tensor> rms_norm_split_kernel(const Tensor& x, at::TensorList weights, double eps, Tensor& xs,
                                          std::vector<Tensor>& w) {
    int64_t M = 0, ldx = 0;
    xs = rows_of(x, M, ldx);
    std::vector<Tensor> ys;
    for (const Tensor& t : weights) {
        w.push_back(t.contiguous());
        ys.push_back(torch::empty(with_last(x, t.size(0)), x.options()));   // [..., d_i]
    }
    if (M == 0) return ys;
    parallel_for(0, M, 4 * kGrainRows, [&](int64_t r0, int64_t r1) {
        int64_t off = 0;
        for (size_t i = 0; i < w.size(); ++i) {
            kernels::RmsNormParams<float> p;
            p.rows = M, p.dim = w[i].size(0), p.x = xs.data_ptr<float>() + off, p.ldx = ldx;
            p.weight = w[i].data_ptr<float>(), p.eps = eps, p.y = ys[i].data_ptr<float>(), p.ldy = p.dim;
            kernels::rmsnorm_avx2(p, r0, r1);
            off += p.dim;
        }
    });
    return ys;
}

struct RmsNormSplitFn : torch::autograd::Function<RmsNormSplitFn> {
    static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const Tensor& x,
                                                  at::TensorList weights, double eps) {
        Tensor xs;
        std::vector<Tensor> w;
        std::vector<Tensor> ys = rms_norm_split_kernel(x, weights, eps, xs, w);
        std::vector<Tensor> saved{xs};
        saved.insert(saved.end(), w.begin(), w.end());
        ctx->save_for_backward(saved);
        ctx->saved_data["eps"] = eps;
        ctx->saved_data["shape"] = x.sizes().vec();
        return ys;
    }
    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grad_outputs) {
        const auto saved = ctx->get_saved_variables();
        const Tensor& xs = saved[0];
        const auto shape = ctx->saved_data["shape"].toIntVector();
        const int64_t S = shape.back(), M = S > 0 ? xs.numel() / S : 0, ldx = xs.dim() >= 2 ? xs.stride(-2) : S;
        const size_t n = saved.size() - 1;
        Tensor dx = torch::empty(shape, xs.options());                      // [..., S]
        torch::autograd::variable_list grads(n + 2);
        int64_t off = 0;
        for (size_t i = 0; i < n; ++i) {
            const Tensor& w = saved[i + 1];
            const int64_t D = w.size(0);
            if (!grad_outputs[i].defined()) { // an unused segment: no gradient through it
                dx.narrow(-1, off, D).zero_();
                off += D;
                continue;
            }
            const Tensor dy = grad_outputs[i].contiguous();                 // [..., D]
            grads[1 + i] = rms_norm_backward_rows(xs.data_ptr<float>() + off, ldx, M, w, ctx->saved_data["eps"].toDouble(),
                                                  dy, dx.data_ptr<float>() + off, S, ctx->needs_input_grad(1 + i)); // [D]
            off += D;
        }
        grads[0] = dx;
        return grads;
    }
};

} // namespace

std::vector<Tensor> rms_norm_split(const Tensor& x, const std::vector<Tensor>& weights, double eps) {
    int64_t S = 0;
    for (const Tensor& w : weights) {
        if (!w.defined() || w.dim() != 1) throw Error("rms_norm_split: every weight must be one-dimensional");
        S += w.size(0);
    }
    if (!x.defined() || x.dim() < 1 || x.size(-1) != S)
        throw Error(fmt::format("rms_norm_split: x's last dimension must be the segments' total {}, got {}", S,
                                x.defined() ? shape_str(x.sizes()) : std::string("undefined")));
    bool ok = kernel_ok({&x}), graph = needs_graph({&x});
    for (const Tensor& w : weights) ok = ok && kernel_ok({&w}), graph = graph || needs_graph({&w});
    std::vector<Tensor> ys;
    if (!ok) { // torch ops (other dtypes and devices): the segments as slices
        int64_t off = 0;
        for (const Tensor& w : weights) {
            ys.push_back(rms_norm(x.narrow(-1, off, w.size(0)), w, eps).contiguous());
            off += w.size(0);
        }
        return ys;
    }
    if (graph) return RmsNormSplitFn::apply(x, at::TensorList(weights), eps);
    Tensor xs;
    std::vector<Tensor> w;
    return rms_norm_split_kernel(x, weights, eps, xs, w);
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
    if (!kernel_ok({&x, &weight})) {
        // Normalise in float32 (or wider), cast back to the input dtype, then scale (JanusDNARMSNorm).
        const auto compute = x.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
        Tensor xf = x.to(compute);
        Tensor y = xf * torch::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
        return weight * y.to(x.scalar_type());
    }
    if (!needs_graph({&x, &weight})) return rms_norm_kernel(x, weight, eps);
    return RmsNormFn::apply(x, weight, eps);
}

} // namespace janusdna::ops
