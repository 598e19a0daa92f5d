// Tests for the hand-written kernels (kernels/) and their op adapters (src/ops/).
// Torch before doctest: LibTorch pulls in glog, whose CHECK macro would otherwise replace doctest's.
#include <torch/torch.h>

#include <doctest/doctest.h>

#include "kernels/adamw.h"
#include "kernels/causal_conv1d.h"
#include "kernels/janus_attention.h"
#include "janusdna/error.h"
#include "janusdna/model.h"
#include "janusdna/ops.h"
#include "kernels/selective_scan.h"
#include "kernels/simd_avx2.h"

#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using torch::Tensor;
using Inputs = std::vector<Tensor>;
const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

// Random scan inputs {u, delta, A, B, C, D, z, delta_bias} at scales like the model's (A < 0, dt ~ 0.3..1).
Inputs scan_inputs(int64_t Bn, int64_t L, int64_t D, int64_t N, bool with_z, torch::TensorOptions opt = kF64) {
    return {torch::randn({Bn, L, D}, opt),                              // u
            0.5 * torch::randn({Bn, L, D}, opt),                        // delta
            -torch::exp(0.5 * torch::randn({D, N}, opt)),               // A
            torch::randn({Bn, L, N}, opt),                              // B
            torch::randn({Bn, L, N}, opt),                              // C
            torch::randn({D}, opt),                                     // D
            with_z ? torch::randn({Bn, L, D}, opt) : Tensor(),          // z
            0.5 * torch::randn({D}, opt)};                              // delta_bias
}

Tensor scan_op(const Inputs& x) {
    return janusdna::ops::selective_scan(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]);
}
Tensor scan_composite(const Inputs& x) {
    return janusdna::ops::detail::selective_scan_composite(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]);
}

// The definition in selective_scan.h, written out step by step in double precision.
Tensor scan_naive(const Inputs& in) {
    Inputs x;
    for (const auto& t : in) x.push_back(t.defined() ? t.to(torch::kDouble) : t);
    const Tensor &u = x[0], &A = x[2], &Bm = x[3], &Cm = x[4];
    const int64_t Bn = u.size(0), L = u.size(1), D = u.size(2), N = A.size(1);
    Tensor out = torch::zeros({Bn, L, D}, kF64);
    Tensor s = torch::zeros({Bn, D, N}, kF64); // [B, D, N]
    for (int64_t t = 0; t < L; ++t) {
        const Tensor x_t = x[1].select(1, t) + x[7];                                     // [B, D]
        const Tensor dt = torch::where(x_t > 20, x_t, torch::log1p(torch::exp(x_t)));     // [B, D]
        const Tensor u_t = u.select(1, t);                                                // [B, D]
        s = torch::exp(dt.unsqueeze(2) * A.unsqueeze(0)) * s +
            (dt * u_t).unsqueeze(2) * Bm.select(1, t).unsqueeze(1);                        // [B, D, N]
        Tensor y = (s * Cm.select(1, t).unsqueeze(1)).sum(2) + x[5] * u_t;                // [B, D]
        if (x[6].defined()) y = y * x[6].select(1, t) * torch::sigmoid(x[6].select(1, t));
        out.select(1, t).copy_(y);
    }
    return out;
}

// Calls the reference kernel directly (no op adapter), one call per batch item over all channels.
template <typename T>
Tensor scan_kernel(const Inputs& x) {
    janusdna::kernels::ScanParams<T> p;
    p.batch = x[0].size(0), p.length = x[0].size(1), p.channels = x[0].size(2), p.states = x[2].size(1);
    p.u = x[0].data_ptr<T>(), p.delta = x[1].data_ptr<T>(), p.A = x[2].data_ptr<T>();
    p.B = x[3].data_ptr<T>(), p.C = x[4].data_ptr<T>(), p.D = x[5].data_ptr<T>();
    p.z = x[6].defined() ? x[6].data_ptr<T>() : nullptr;
    p.delta_bias = x[7].data_ptr<T>();
    Tensor out = torch::empty_like(x[0]);
    for (int64_t b = 0; b < p.batch; ++b) janusdna::kernels::selective_scan_fwd_ref<T>(p, out.data_ptr<T>(), b, 0, p.channels);
    return out;
}

// Copies with requires_grad set (undefined stays undefined).
Inputs leaves(const Inputs& in) {
    Inputs out;
    for (const auto& t : in) out.push_back(t.defined() ? t.detach().clone().requires_grad_(true) : t);
    return out;
}

// Gradients of sum(f(x) * w) with respect to every defined input (undefined entries stay undefined).
Inputs grads_of(const std::function<Tensor(const Inputs&)>& f, const Inputs& in, const Tensor& w) {
    Inputs x = leaves(in), defined;
    for (const auto& t : x)
        if (t.defined()) defined.push_back(t);
    const Inputs g = torch::autograd::grad({(f(x) * w).sum()}, defined);
    Inputs out;
    size_t j = 0;
    for (const auto& t : x) out.push_back(t.defined() ? g[j++] : Tensor());
    return out;
}

// gradcheck-style: autograd gradients of sum(f(x) * w) against central finite differences at a few random
// elements of every defined input (double precision, eps 1e-6, rel tol 1e-5 plus a tiny absolute floor).
void check_gradients(const std::function<Tensor(const Inputs&)>& f, const Inputs& in, int samples = 6) {
    const double eps = 1e-6, rtol = 1e-5, atol = 1e-8;
    const Tensor w = torch::randn_like(f(in));
    const Inputs analytic = grads_of(f, in, w);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < in.size(); ++i) {
        if (!in[i].defined()) continue;
        REQUIRE(analytic[i].defined());
        for (int s = 0; s < samples; ++s) {
            const int64_t k = torch::randint(in[i].numel(), {1}).item<int64_t>();
            auto loss_at = [&](double h) {
                Inputs x = in;
                x[i] = in[i].clone();
                x[i].view(-1)[k] += h;
                return (f(x) * w).sum().item<double>();
            };
            const double numeric = (loss_at(eps) - loss_at(-eps)) / (2 * eps);
            const double ana = analytic[i].reshape(-1)[k].item<double>();
            INFO("input " << i << " element " << k << ": autograd " << ana << ", finite difference " << numeric);
            CHECK(std::abs(ana - numeric) <= atol + rtol * std::abs(ana));
        }
    }
}

// Random conv inputs {x, weight, bias}.
Inputs conv_inputs(int64_t Bn, int64_t L, int64_t D, int64_t K, bool with_bias, torch::TensorOptions opt = kF64) {
    return {torch::randn({Bn, L, D}, opt), 0.5 * torch::randn({D, K}, opt),
            with_bias ? torch::randn({D}, opt) : Tensor()};
}
Tensor conv_op(const Inputs& x) { return janusdna::ops::causal_conv1d_silu(x[0], x[1], x[2]); }
Tensor conv_composite(const Inputs& x) { return janusdna::ops::detail::causal_conv1d_silu_composite(x[0], x[1], x[2]); }

// The definition in causal_conv1d.h with explicit time indexing.
Tensor conv_naive(const Inputs& x) {
    const int64_t L = x[0].size(1), K = x[1].size(1);
    Tensor pre = x[2].defined() ? x[2].expand_as(x[0]).clone() : torch::zeros_like(x[0]); // [B, L, D]
    for (int64_t t = 0; t < L; ++t)
        for (int64_t k = 0; k < K; ++k)
            if (t - (K - 1) + k >= 0) pre.select(1, t) += x[1].select(1, k) * x[0].select(1, t - (K - 1) + k);
    return pre * torch::sigmoid(pre);
}

Inputs to_float(const Inputs& in) {
    Inputs out;
    for (const auto& t : in) out.push_back(t.defined() ? t.to(torch::kFloat) : t);
    return out;
}

} // namespace

TEST_CASE("selective_scan: reference kernel matches a naive double implementation") {
    torch::manual_seed(1);
    struct Shape { int64_t B, L, D, N; };
    for (const Shape s : {Shape{1, 1, 1, 1}, Shape{2, 1, 5, 3}, Shape{2, 7, 13, 4}, Shape{3, 33, 37, 16}}) {
        for (const bool with_z : {true, false}) {
            INFO("B=" << s.B << " L=" << s.L << " D=" << s.D << " N=" << s.N << " with_z=" << with_z);
            const Inputs x = scan_inputs(s.B, s.L, s.D, s.N, with_z);
            const Tensor expected = scan_naive(x);
            CHECK(torch::allclose(scan_kernel<double>(x), expected, 1e-12, 1e-12));
            CHECK(torch::allclose(scan_op(x), expected, 1e-12, 1e-12)); // threaded over (batch, channel block)
        }
    }
}

TEST_CASE("selective_scan: softplus is stable for large delta") {
    Inputs x = scan_inputs(1, 4, 3, 2, true);
    x[1] = x[1] + 60.0; // exp(60) would lose everything in a naive log(1 + exp(x)) for float
    CHECK(torch::allclose(scan_op(x), scan_naive(x), 1e-12, 1e-12));
    const Tensor f = scan_op(to_float(x));
    CHECK(torch::isfinite(f).all().item<bool>());
}

TEST_CASE("selective_scan: gradients match finite differences") {
    torch::manual_seed(2);
    SUBCASE("with z") { check_gradients(scan_op, scan_inputs(2, 5, 7, 3, true)); }
    SUBCASE("without z") { check_gradients(scan_op, scan_inputs(1, 4, 3, 2, false)); }
    SUBCASE("L = 1") { check_gradients(scan_op, scan_inputs(2, 1, 3, 2, true)); }
    SUBCASE("without D and delta_bias") {
        Inputs x = scan_inputs(2, 4, 3, 2, true);
        x[5] = Tensor(), x[7] = Tensor();
        check_gradients(scan_op, x);
    }
}

TEST_CASE("causal_conv1d_silu: matches the definition and finite differences") {
    torch::manual_seed(3);
    struct Shape { int64_t B, L, D, K; };
    for (const Shape s : {Shape{2, 6, 5, 4}, Shape{1, 3, 3, 4}, Shape{2, 1, 70, 4}, Shape{1, 5, 2, 1}}) {
        for (const bool with_bias : {true, false}) {
            INFO("B=" << s.B << " L=" << s.L << " D=" << s.D << " K=" << s.K << " with_bias=" << with_bias);
            const Inputs x = conv_inputs(s.B, s.L, s.D, s.K, with_bias);
            CHECK(torch::allclose(conv_op(x), conv_naive(x), 1e-12, 1e-12));
            check_gradients(conv_op, x, 4);
        }
    }
}

TEST_CASE("composite fallback agrees with the kernel path") {
    torch::manual_seed(4);
    SUBCASE("selective_scan") {
        for (const bool with_z : {true, false}) {
            Inputs x = scan_inputs(2, 9, 19, 5, with_z);
            if (!with_z) x[5] = Tensor(), x[7] = Tensor(); // also the missing-D / missing-bias path
            CHECK(torch::allclose(scan_composite(x), scan_op(x), 1e-12, 1e-12));
            const Tensor w = torch::randn({2, 9, 19}, kF64);
            const Inputs gk = grads_of(scan_op, x, w), gc = grads_of(scan_composite, x, w);
            for (size_t i = 0; i < x.size(); ++i) {
                CAPTURE(i);
                REQUIRE(gk[i].defined() == gc[i].defined());
                if (gk[i].defined()) CHECK(torch::allclose(gk[i], gc[i], 1e-10, 1e-10));
            }
        }
    }
    SUBCASE("causal_conv1d_silu") {
        const Inputs x = conv_inputs(2, 11, 21, 4, true);
        CHECK(torch::allclose(conv_composite(x), conv_op(x), 1e-12, 1e-12));
        const Tensor w = torch::randn({2, 11, 21}, kF64);
        const Inputs gk = grads_of(conv_op, x, w), gc = grads_of(conv_composite, x, w);
        for (size_t i = 0; i < x.size(); ++i) CHECK(torch::allclose(gk[i], gc[i], 1e-10, 1e-10));
    }
}

TEST_CASE("float32 kernels agree with float64 kernels") {
    torch::manual_seed(5);
    const Inputs x = scan_inputs(2, 64, 24, 16, true);
    const Tensor w = torch::randn({2, 64, 24}, kF64);
    CHECK(torch::allclose(scan_op(to_float(x)).to(torch::kDouble), scan_op(x), 1e-4, 1e-4));
    const Inputs g64 = grads_of(scan_op, x, w), g32 = grads_of(scan_op, to_float(x), w.to(torch::kFloat));
    for (size_t i = 0; i < x.size(); ++i) {
        CAPTURE(i);
        // Relative to the gradient's scale: grad_A and grad_delta_bias sum over B*L terms.
        const double scale = g64[i].abs().max().item<double>();
        CHECK((g32[i].to(torch::kDouble) - g64[i]).abs().max().item<double>() <= 1e-4 * (1 + scale));
    }
    const Inputs c = conv_inputs(2, 64, 24, 4, true);
    CHECK(torch::allclose(conv_op(to_float(c)).to(torch::kDouble), conv_op(c), 1e-5, 1e-5));
    CHECK(torch::allclose(scan_kernel<float>(to_float(x)).to(torch::kDouble), scan_kernel<double>(x), 1e-4, 1e-4));
}

TEST_CASE("ops work under NoGradGuard and InferenceMode") {
    const Inputs x = leaves(scan_inputs(2, 5, 7, 3, true));
    const Inputs c = leaves(conv_inputs(2, 5, 7, 4, true));
    const Tensor expected = scan_op(x).detach(), expected_conv = conv_op(c).detach();
    {
        torch::NoGradGuard no_grad;
        const Tensor y = scan_op(x);
        CHECK_FALSE(y.requires_grad());
        CHECK(torch::equal(y, expected));
        CHECK(torch::equal(conv_op(c), expected_conv));
    }
    {
        c10::InferenceMode guard;
        const Tensor y = scan_op(x);
        CHECK_FALSE(y.requires_grad());
        CHECK(torch::equal(y, expected));
        CHECK(torch::equal(conv_op(c), expected_conv));
        const Inputs fresh = scan_inputs(1, 3, 2, 2, true); // inference tensors
        CHECK(torch::allclose(scan_op(fresh), scan_naive(fresh), 1e-12, 1e-12));
    }
}

TEST_CASE("bad shapes, dtypes and devices throw janusdna::Error") {
    const Inputs ok = scan_inputs(2, 5, 7, 3, true);
    auto with = [&](size_t i, const Tensor& t) {
        Inputs x = ok;
        x[i] = t;
        return x;
    };
    CHECK_NOTHROW(scan_op(ok));
    CHECK_THROWS_AS(scan_op(with(0, torch::randn({2, 5}, kF64))), janusdna::Error);       // u not 3-D
    CHECK_THROWS_AS(scan_op(with(1, torch::randn({2, 5, 6}, kF64))), janusdna::Error);    // delta D
    CHECK_THROWS_AS(scan_op(with(2, torch::randn({6, 3}, kF64))), janusdna::Error);       // A D
    CHECK_THROWS_AS(scan_op(with(2, torch::randn({7}, kF64))), janusdna::Error);          // A not 2-D
    CHECK_THROWS_AS(scan_op(with(3, torch::randn({2, 5, 4}, kF64))), janusdna::Error);    // B N
    CHECK_THROWS_AS(scan_op(with(4, torch::randn({2, 4, 3}, kF64))), janusdna::Error);    // C L
    CHECK_THROWS_AS(scan_op(with(5, torch::randn({8}, kF64))), janusdna::Error);          // D
    CHECK_THROWS_AS(scan_op(with(6, torch::randn({1, 5, 7}, kF64))), janusdna::Error);    // z B
    CHECK_THROWS_AS(scan_op(with(7, torch::randn({7, 1}, kF64))), janusdna::Error);       // delta_bias
    CHECK_THROWS_AS(scan_op(with(3, ok[3].to(torch::kFloat))), janusdna::Error);          // dtype mismatch
    CHECK_THROWS_AS(scan_op(with(1, Tensor())), janusdna::Error);                         // missing delta
    Inputs ints = ok;
    for (auto& t : ints) t = t.to(torch::kInt);
    CHECK_THROWS_AS(scan_op(ints), janusdna::Error);                                      // unsupported dtype
    CHECK_THROWS_AS(scan_composite(with(2, torch::randn({6, 3}, kF64))), janusdna::Error);
    CHECK_THROWS_WITH_AS(scan_op(with(3, torch::randn({2, 5, 4}, kF64))),
                         "selective_scan: B must have shape [B, L, N] = [2, 5, 3], got [2, 5, 4]", janusdna::Error);

    const Inputs c = conv_inputs(2, 5, 7, 4, true);
    CHECK_NOTHROW(conv_op(c));
    CHECK_THROWS_AS(conv_op({c[0], torch::randn({6, 4}, kF64), c[2]}), janusdna::Error);    // weight D
    CHECK_THROWS_AS(conv_op({c[0], torch::randn({7}, kF64), c[2]}), janusdna::Error);       // weight not 2-D
    CHECK_THROWS_AS(conv_op({c[0], torch::randn({7, 0}, kF64), c[2]}), janusdna::Error);    // K = 0
    CHECK_THROWS_AS(conv_op({c[0], c[1], torch::randn({6}, kF64)}), janusdna::Error);       // bias D
    CHECK_THROWS_AS(conv_op({c[0].select(0, 0), c[1], c[2]}), janusdna::Error);             // x not 3-D
    CHECK_THROWS_AS(conv_op({c[0], c[1].to(torch::kFloat), c[2]}), janusdna::Error);        // dtype mismatch
    CHECK_THROWS_AS(conv_composite({c[0], c[1], torch::randn({6}, kF64)}), janusdna::Error);
}

// ---------------------------------------------------------------------------------------------------------------
// Fast (SIMD) variants against the references, and the masked attention.

namespace {

// Largest |a - b| relative to b's largest magnitude: the float kernels use polynomial exp/log and float sums, so
// their error scales with the output's magnitude rather than each element's.
double scaled_error(const Tensor& a, const Tensor& b) {
    const double scale = std::max(1e-30, b.abs().max().item<double>());
    return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>() / scale;
}

template <typename T>
janusdna::kernels::ScanParams<T> scan_params(const Inputs& x) {
    janusdna::kernels::ScanParams<T> p;
    p.batch = x[0].size(0), p.length = x[0].size(1), p.channels = x[0].size(2), p.states = x[2].size(1);
    p.u = x[0].data_ptr<T>(), p.delta = x[1].data_ptr<T>(), p.A = x[2].data_ptr<T>();
    p.B = x[3].data_ptr<T>(), p.C = x[4].data_ptr<T>();
    p.D = x[5].defined() ? x[5].data_ptr<T>() : nullptr;
    p.z = x[6].defined() ? x[6].data_ptr<T>() : nullptr;
    p.delta_bias = x[7].defined() ? x[7].data_ptr<T>() : nullptr;
    return p;
}

// Attention inputs {q, k, v}, [B, T, h, d], at the model's scales.
Inputs attention_inputs(int64_t Bn, int64_t T, int64_t h, int64_t d, torch::TensorOptions opt = kF64) {
    return {torch::randn({Bn, T, h, d}, opt), torch::randn({Bn, T, h, d}, opt), torch::randn({Bn, T, h, d}, opt)};
}

using janusdna::ops::AttentionMask;

// The attention kernel called directly (reference or AVX2), all rows of every (b, h) in one call each.
template <typename T>
std::pair<Tensor, Tensor> attention_kernel(const Inputs& x, double scale, AttentionMask mask, bool avx2) {
    janusdna::kernels::AttentionParams<T> p;
    p.batch = x[0].size(0), p.length = x[0].size(1), p.heads = x[0].size(2), p.head_dim = x[0].size(3);
    p.mask = mask == AttentionMask::janus ? janusdna::kernels::AttentionMask::janus
                                          : janusdna::kernels::AttentionMask::causal;
    p.scale = T(scale);
    p.q = x[0].data_ptr<T>(), p.k = x[1].data_ptr<T>(), p.v = x[2].data_ptr<T>();
    Tensor out = torch::empty_like(x[0]), lse = torch::empty({p.batch, p.heads, p.length}, x[0].options());
    for (int64_t b = 0; b < p.batch; ++b) {
        for (int64_t h = 0; h < p.heads; ++h) {
            if constexpr (std::is_same_v<T, float>) {
                if (avx2) {
                    janusdna::kernels::attention_fwd_avx2(p, out.data_ptr<float>(), lse.data_ptr<float>(), b, h, 0,
                                                          p.length);
                    continue;
                }
            }
            janusdna::kernels::attention_fwd_ref<T>(p, out.data_ptr<T>(), lse.data_ptr<T>(), b, h, 0, p.length);
        }
    }
    return {out, lse};
}

// log-sum-exp of the masked scores, dense: [B, h, T].
Tensor dense_lse(const Inputs& x, double scale, AttentionMask mask) {
    const Tensor scores = torch::matmul(x[0].transpose(1, 2), x[1].transpose(1, 2).transpose(-2, -1)) * scale;
    const Tensor m = janusdna::ops::detail::attention_mask(x[0].size(1), mask, torch::kCPU);
    return scores.masked_fill(m.logical_not(), -std::numeric_limits<double>::infinity()).logsumexp(-1);
}

} // namespace

namespace {

// Largest relative error of the AVX2 vector function `which` (0: softplus_ps, 1: exp2_m126_0_ps, 2: exp2_nonpos_ps,
// 3: exp2_nonpos_lockstep<2> on x and x - 1/3) against double over x in [lo, hi], 8 lanes at a time.
JANUSDNA_AVX2 double simd_rel_error(int which, double lo, double hi, double step) {
    using namespace janusdna::kernels::avx2;
    double worst = 0;
    for (double x = lo; x <= hi; x += 8 * step) {
        alignas(32) float in[8], out[8];
        for (int j = 0; j < 8; ++j) in[j] = static_cast<float>(std::min(hi, x + j * step));
        const __m256 v = _mm256_load_ps(in);
        __m256 pair[2] = {v, _mm256_sub_ps(v, set1(1.0f / 3))};
        if (which == 3) exp2_nonpos_lockstep<2>(pair);
        _mm256_store_ps(out, which == 0 ? softplus_ps(v) : which == 1 ? exp2_m126_0_ps(v) : which == 2 ? exp2_nonpos_ps(v) : pair[0]);
        for (int j = 0; j < 8; ++j) {
            const double t = in[j];
            const double want = which >= 1 ? std::exp2(t) : t > 0 ? t + std::log1p(std::exp(-t)) : std::log1p(std::exp(t));
            worst = std::max(worst, std::fabs(out[j] - want) / want);
        }
        if (which == 3) { // the second vector of the pair, at x - 1/3
            _mm256_store_ps(out, pair[1]);
            for (int j = 0; j < 8; ++j) {
                const double t = double(in[j]) - 1.0 / 3;
                if (t < -126) continue; // clamped
                worst = std::max(worst, std::fabs(out[j] - std::exp2(double(float(in[j] - 1.0f / 3)))) / std::exp2(double(float(in[j] - 1.0f / 3))));
            }
        }
    }
    return worst;
}

// x[0..8) = exp2_nonpos_ps(x[0..8)).
JANUSDNA_AVX2 void simd_exp2_nonpos_inplace(float* x) {
    _mm256_storeu_ps(x, janusdna::kernels::avx2::exp2_nonpos_ps(_mm256_loadu_ps(x)));
}

} // namespace

TEST_CASE("simd_avx2: softplus and the exp2 functions against double") {
    if (!janusdna::kernels::avx2::cpu_has_avx2_fma()) {
        MESSAGE("CPU without AVX2/FMA: not tested");
        return;
    }
    // softplus: measured 2.6e-7 (the atanh series after exp_ps), down to x = -80 where softplus is ~2e-35.
    CHECK(simd_rel_error(0, -80.0, 40.0, 1.37e-4) <= 4e-7);
    // exp2 on [-126, 0]: measured 1.9e-7 over the whole allowed range, both ends included.
    CHECK(simd_rel_error(1, -126.0, 0.0, 7.3e-5) <= 2.5e-7);
    // exp2_nonpos (2^n added to the exponent field as an integer) and its lockstep form, down to the clamp at -126.
    CHECK(simd_rel_error(2, -126.0, 0.0, 7.3e-5) <= 2.5e-7);
    CHECK(simd_rel_error(3, -125.0, 0.0, 7.3e-5) <= 2.5e-7);
    // At and below the clamp, and -inf (the attention's masked scores): 2^-126, finite and tiny, never NaN.
    alignas(32) float out[8] = {-126.0f, -126.4f, -200.0f, -1e30f, -INFINITY, -0.0f, 0.0f, -1.0f};
    simd_exp2_nonpos_inplace(out);
    for (int j = 0; j < 5; ++j) CHECK(out[j] == std::ldexp(1.0f, -126));
    CHECK(out[5] == 1.0f);
    CHECK(out[6] == 1.0f);
    CHECK(out[7] == doctest::Approx(0.5).epsilon(2e-7));
}

TEST_CASE("selective_scan: the AVX2 forward matches the reference kernel") {
    if (!janusdna::kernels::selective_scan_avx2_supported()) {
        MESSAGE("CPU without AVX2/FMA: AVX2 scan not tested");
        return;
    }
    torch::manual_seed(11);
    struct Shape { int64_t B, L, D, N; };
    // Odd D (masked tail lanes), L = 1, N below/above/not a multiple of 4, D wider than one 64-channel call.
    for (const Shape s : {Shape{1, 1, 1, 1}, Shape{2, 1, 5, 3}, Shape{2, 7, 13, 4}, Shape{3, 133, 37, 16},
                          Shape{2, 100, 64, 16}, Shape{1, 70, 9, 17}, Shape{1, 20, 11, 70}, Shape{2, 65, 130, 16}}) {
        for (const bool with_z : {true, false}) {
            INFO("B=" << s.B << " L=" << s.L << " D=" << s.D << " N=" << s.N << " with_z=" << with_z);
            Inputs x = to_float(scan_inputs(s.B, s.L, s.D, s.N, with_z));
            if (s.L == 7) x[1] = x[1] + 30.0f;            // softplus in its linear range
            if (s.L == 133) x[1].select(2, 0).sub_(40.0f); // softplus of very negative arguments: dt ~ 1e-18
            if (!with_z) x[5] = Tensor();                  // no D skip either
            const auto p = scan_params<float>(x);
            Tensor ref = torch::empty_like(x[0]), fast = torch::empty_like(x[0]);
            for (int64_t b = 0; b < s.B; ++b) {
                janusdna::kernels::selective_scan_fwd_ref<float>(p, ref.data_ptr<float>(), b, 0, s.D);
                // Two calls over channel ranges not aligned to 8, as the adapter's split may give.
                const int64_t mid = s.D / 3;
                janusdna::kernels::selective_scan_fwd_avx2(p, fast.data_ptr<float>(), b, 0, mid);
                janusdna::kernels::selective_scan_fwd_avx2(p, fast.data_ptr<float>(), b, mid, s.D);
            }
            // Tolerance: 2e-6 of the output's largest magnitude (measured ~2e-7; float sums of N terms).
            CHECK(scaled_error(fast, ref) <= 2e-6);
            CHECK(torch::isfinite(fast).all().item<bool>());
        }
    }
    // The op (which dispatches to AVX2 for float32) against the double reference.
    const Inputs x = scan_inputs(3, 50, 40, 16, true);
    CHECK(scaled_error(scan_op(to_float(x)), scan_op(x)) <= 2e-6);
}

TEST_CASE("selective_scan: delta from its low-rank factors (kernels and op) equals the scan of the product") {
    torch::manual_seed(12);
    struct Shape { int64_t B, L, D, N, R; };
    // R = 1, the model's 2 / 5 / 9, the largest the kernels take (16) and one beyond it (the op's fallback);
    // D not a multiple of 8 and wider than one 64-channel call; L across chunk boundaries.
    for (const Shape s : {Shape{1, 9, 5, 3, 1}, Shape{2, 70, 64, 16, 2}, Shape{1, 130, 37, 16, 5},
                          Shape{2, 65, 130, 16, 9}, Shape{1, 40, 20, 8, 16}, Shape{1, 30, 12, 4, 17}}) {
        INFO("B=" << s.B << " L=" << s.L << " D=" << s.D << " N=" << s.N << " R=" << s.R);
        Inputs x = scan_inputs(s.B, s.L, s.D, s.N, true);                    // float64
        const Tensor low = torch::randn({s.B, s.L, s.R}, torch::kDouble);     // [B, L, R]
        const Tensor w = torch::randn({s.D, s.R}, torch::kDouble) / std::sqrt(double(s.R)); // [D, R]
        x[1] = torch::matmul(low, w.t()).contiguous();                        // delta [B, L, D]
        const Tensor expected = scan_kernel<double>(x);
        // The double reference kernel with delta null computes the product itself.
        if (s.R <= janusdna::kernels::kScanMaxRank) {
            auto p = scan_params<double>(x);
            p.delta = nullptr, p.delta_low = low.data_ptr<double>(), p.delta_weight = w.data_ptr<double>(), p.rank = s.R;
            Tensor ref = torch::empty_like(x[0]);
            for (int64_t b = 0; b < s.B; ++b) janusdna::kernels::selective_scan_fwd_ref<double>(p, ref.data_ptr<double>(), b, 0, s.D);
            CHECK(scaled_error(ref, expected) <= 1e-12);
        }
        // The op without a graph (float32: the AVX2 kernel where the CPU has it; R = 17 takes the fallback).
        const Inputs xf = to_float(x);
        torch::NoGradGuard no_grad;
        const Tensor op = janusdna::ops::selective_scan_low_rank(xf[0], low.to(torch::kFloat), w.to(torch::kFloat), xf[2],
                                                                 xf[3], xf[4], xf[5], xf[6], xf[7]);
        CHECK(scaled_error(op, expected) <= 3e-6);
        // float64 through the op: the reference kernel's low-rank path.
        const Tensor op64 = janusdna::ops::selective_scan_low_rank(x[0], low, w, x[2], x[3], x[4], x[5], x[6], x[7]);
        CHECK(scaled_error(op64, expected) <= 1e-12);
    }
    // Under autograd it is the scan of linear(dt_low, dt_weight): gradients reach both factors.
    Inputs x = scan_inputs(1, 20, 16, 4, true);
    const Tensor low = torch::randn({1, 20, 2}, torch::kDouble).requires_grad_(true);
    const Tensor w = torch::randn({16, 2}, torch::kDouble).requires_grad_(true);
    janusdna::ops::selective_scan_low_rank(x[0], low, w, x[2], x[3], x[4], x[5], x[6], x[7]).sum().backward();
    x[1] = torch::matmul(low, w.t());
    const auto g = torch::autograd::grad({scan_op(x).sum()}, {low, w});
    CHECK(torch::allclose(low.grad(), g[0], 1e-12, 1e-12));
    CHECK(torch::allclose(w.grad(), g[1], 1e-12, 1e-12));
    // Shapes are checked.
    CHECK_THROWS_WITH_AS(janusdna::ops::selective_scan_low_rank(x[0], low.detach(), w.detach().narrow(0, 0, 15), x[2], x[3],
                                                                x[4], x[5], x[6], x[7]),
                         "selective_scan: dt_weight must have shape [D, R] = [16, 2], got [15, 2]", janusdna::Error);
}

TEST_CASE("attention: masks agree (kernel ranges, dense op mask, the model's janus_mask)") {
    for (const int64_t L : {1, 2, 3, 8}) {
        const Tensor dense = janusdna::ops::detail::attention_mask(2 * L, AttentionMask::janus, torch::kCPU);
        CHECK(torch::equal(dense, janusdna::janus_mask(L, torch::kCPU)));
        const Tensor causal = janusdna::ops::detail::attention_mask(L, AttentionMask::causal, torch::kCPU);
        for (int64_t i = 0; i < 2 * L; ++i)
            for (int64_t j = 0; j < 2 * L; ++j) {
                CHECK(janusdna::kernels::attention_allows(janusdna::kernels::AttentionMask::janus, 2 * L, i, j) ==
                      dense[i][j].item<bool>());
                if (i < L && j < L)
                    CHECK(janusdna::kernels::attention_allows(janusdna::kernels::AttentionMask::causal, L, i, j) ==
                          causal[i][j].item<bool>());
            }
    }
}

TEST_CASE("attention: reference kernel and op match the dense masked softmax; AVX2 matches the reference") {
    torch::manual_seed(12);
    struct Shape { int64_t B, T, h, d; };
    for (const Shape s : {Shape{1, 2, 1, 1}, Shape{2, 6, 2, 3}, Shape{1, 10, 1, 8}, Shape{2, 300, 2, 8},
                          Shape{1, 514, 3, 5}, Shape{1, 270, 2, 16}}) {
        for (const AttentionMask mask : {AttentionMask::causal, AttentionMask::janus}) {
            INFO("B=" << s.B << " T=" << s.T << " h=" << s.h << " d=" << s.d << " janus=" << int(mask));
            const double scale = 1.0 / std::sqrt(double(s.d)) * 1.3;
            const Inputs x = attention_inputs(s.B, s.T, s.h, s.d);
            const Tensor dense = janusdna::ops::detail::janus_attention_composite(x[0], x[1], x[2], scale, mask);
            const auto [out, lse] = attention_kernel<double>(x, scale, mask, false);
            CHECK(torch::allclose(out, dense, 1e-12, 1e-12));
            CHECK(torch::allclose(lse, dense_lse(x, scale, mask), 1e-12, 1e-12));
            CHECK(torch::allclose(janusdna::ops::janus_attention(x[0], x[1], x[2], scale, mask), dense, 1e-12, 1e-12));
            if (janusdna::kernels::attention_avx2_supported()) {
                const Inputs xf = to_float(x);
                const auto [ref_out, ref_lse] = attention_kernel<float>(xf, scale, mask, false);
                const auto [fast_out, fast_lse] = attention_kernel<float>(xf, scale, mask, true);
                // Tolerance: 1e-5 of the output's scale (measured ~1e-6: polynomial exp, float accumulation).
                CHECK(scaled_error(fast_out, ref_out) <= 1e-5);
                CHECK(scaled_error(fast_lse, ref_lse) <= 1e-5);
                CHECK(scaled_error(janusdna::ops::janus_attention(xf[0], xf[1], xf[2], scale, mask), dense) <= 1e-5);
            }
        }
    }
}

TEST_CASE("attention: gradients match finite differences and the dense composite") {
    torch::manual_seed(13);
    for (const AttentionMask mask : {AttentionMask::causal, AttentionMask::janus}) {
        INFO("janus=" << int(mask));
        auto op = [mask](const Inputs& x) { return janusdna::ops::janus_attention(x[0], x[1], x[2], 0.6, mask); };
        auto composite = [mask](const Inputs& x) {
            return janusdna::ops::detail::janus_attention_composite(x[0], x[1], x[2], 0.6, mask);
        };
        check_gradients(op, attention_inputs(2, 10, 2, 3), 8);
        check_gradients(op, attention_inputs(1, 2, 1, 2), 4); // L = 1
        const Inputs x = attention_inputs(2, 34, 3, 8);
        const Tensor w = torch::randn_like(x[0]);
        const Inputs gk = grads_of(op, x, w), gc = grads_of(composite, x, w);
        for (size_t i = 0; i < 3; ++i) CHECK(torch::allclose(gk[i], gc[i], 1e-10, 1e-10));
        // float32 (the AVX2 backward where available) against float64, head dims 8 (unrolled) and 5 (generic),
        // rows across several 64-row blocks and 128-key tiles.
        for (const int64_t d : {8, 5}) {
            const Inputs y = attention_inputs(2, 402, 2, d);
            const Tensor wy = torch::randn_like(y[0]);
            const Inputs g64 = grads_of(op, y, wy), g32 = grads_of(op, to_float(y), wy.to(torch::kFloat));
            for (size_t i = 0; i < 3; ++i) {
                CAPTURE(d);
                CAPTURE(i);
                CHECK(scaled_error(g32[i], g64[i]) <= 1e-5); // measured ~1e-6
            }
        }
    }
}

TEST_CASE("attention: bad shapes and dtypes throw janusdna::Error") {
    const Inputs x = attention_inputs(1, 6, 2, 4);
    auto op = [](const Tensor& q, const Tensor& k, const Tensor& v, AttentionMask m = AttentionMask::janus) {
        return janusdna::ops::janus_attention(q, k, v, 0.5, m);
    };
    CHECK_NOTHROW(op(x[0], x[1], x[2]));
    CHECK_THROWS_AS(op(x[0].select(0, 0), x[1], x[2]), janusdna::Error);                 // q not 4-D
    CHECK_THROWS_AS(op(x[0], x[1].narrow(1, 0, 4), x[2]), janusdna::Error);              // k length
    CHECK_THROWS_AS(op(x[0], x[1], x[2].to(torch::kFloat)), janusdna::Error);            // dtype mismatch
    CHECK_THROWS_AS(op(x[0].to(torch::kInt), x[1].to(torch::kInt), x[2].to(torch::kInt)), janusdna::Error);
    const Inputs odd = attention_inputs(1, 5, 2, 4);
    CHECK_THROWS_AS(op(odd[0], odd[1], odd[2]), janusdna::Error);                         // janus needs even T
    CHECK_NOTHROW(op(odd[0], odd[1], odd[2], AttentionMask::causal));
}

TEST_CASE("selective_scan: the AVX2 backward matches float64 gradients") {
    if (!janusdna::kernels::selective_scan_avx2_supported()) {
        MESSAGE("CPU without AVX2/FMA: AVX2 scan backward not tested");
        return;
    }
    torch::manual_seed(21);
    struct Shape { int64_t B, L, D, N; };
    // Chunk boundaries (64 steps) crossed or not, masked tail lanes, N not a multiple of 4.
    for (const Shape s : {Shape{1, 1, 1, 1}, Shape{2, 7, 13, 4}, Shape{1, 65, 9, 3}, Shape{2, 130, 64, 16},
                          Shape{1, 300, 37, 16}}) {
        // 0: z, D, bias; 1: no z; 2: no z, D or bias; 3: as 0 with channel 0's dt ~ 100, so that decay arguments
        // fall below -126 and the chunks take the clamped exp2
        for (const int variant : {0, 1, 2, 3}) {
            INFO("B=" << s.B << " L=" << s.L << " D=" << s.D << " N=" << s.N << " variant=" << variant);
            Inputs x = scan_inputs(s.B, s.L, s.D, s.N, variant == 0 || variant == 3);
            if (variant == 2) x[5] = Tensor(), x[7] = Tensor();
            if (variant == 3) x[1].select(2, 0).add_(100.0);
            const Tensor w = torch::randn({s.B, s.L, s.D}, kF64);
            const Inputs g64 = grads_of(scan_op, x, w), g32 = grads_of(scan_op, to_float(x), w.to(torch::kFloat));
            for (size_t i = 0; i < x.size(); ++i) {
                CAPTURE(i);
                REQUIRE(g64[i].defined() == g32[i].defined());
                // Tolerance: 2e-5 of each gradient's largest magnitude (measured <= 9e-6 over 840 shapes).
                if (g64[i].defined()) CHECK(scaled_error(g32[i], g64[i]) <= 2e-5);
            }
        }
    }
}

TEST_CASE("selective_scan: the AVX2 backward from the forward's chunk states equals its own sweep, bit for bit") {
    if (!janusdna::kernels::selective_scan_avx2_supported()) {
        MESSAGE("CPU without AVX2/FMA: not tested");
        return;
    }
    namespace k = janusdna::kernels;
    torch::manual_seed(23);
    struct Shape { int64_t B, L, D, N; };
    // One chunk, exactly two chunks, a partial last chunk; D not a multiple of 8; dt ~ 100 in channel 0 of the
    // third shape (clamped decays).
    for (const Shape s : {Shape{1, 5, 3, 2}, Shape{2, 128, 16, 16}, Shape{2, 200, 37, 16}}) {
        INFO("B=" << s.B << " L=" << s.L << " D=" << s.D << " N=" << s.N);
        Inputs x = to_float(scan_inputs(s.B, s.L, s.D, s.N, true));
        if (s.L == 200) x[1].select(2, 0).add_(100.0f);
        const auto p = scan_params<float>(x);
        Tensor out = torch::empty_like(x[0]);
        Tensor states = torch::full({s.B, k::scan_chunks(s.L), s.D, s.N}, std::nanf(""), x[0].options());
        for (int64_t b = 0; b < s.B; ++b) { // two calls over channel ranges not aligned to 8
            k::selective_scan_fwd_avx2(p, out.data_ptr<float>(), b, 0, s.D / 3, states.data_ptr<float>());
            k::selective_scan_fwd_avx2(p, out.data_ptr<float>(), b, s.D / 3, s.D, states.data_ptr<float>());
        }
        REQUIRE(torch::isfinite(states).all().item<bool>()); // every entry written
        CHECK(states.select(1, 0).abs().max().item<float>() == 0.0f);
        const Tensor gout = torch::randn_like(x[0]);
        std::vector<Tensor> g[2];
        for (int with_states = 0; with_states < 2; ++with_states) {
            for (const Tensor& t : {x[0], x[1], x[7], x[2], x[3], x[4], x[5], x[6]}) g[with_states].push_back(torch::empty_like(t));
            k::ScanGrads<float> gr;
            gr.grad_out = gout.data_ptr<float>();
            gr.grad_u = g[with_states][0].data_ptr<float>(), gr.grad_delta = g[with_states][1].data_ptr<float>();
            gr.grad_delta_bias = g[with_states][2].data_ptr<float>(), gr.grad_A = g[with_states][3].data_ptr<float>();
            gr.grad_B = g[with_states][4].data_ptr<float>(), gr.grad_C = g[with_states][5].data_ptr<float>();
            gr.grad_D = g[with_states][6].data_ptr<float>(), gr.grad_z = g[with_states][7].data_ptr<float>();
            k::selective_scan_bwd_avx2(p, gr, with_states ? states.data_ptr<float>() : nullptr);
        }
        for (size_t i = 0; i < g[0].size(); ++i) {
            CAPTURE(i);
            CHECK(torch::equal(g[0][i], g[1][i]));
        }
    }
}

TEST_CASE("causal_conv1d_silu: the AVX2 kernels match float64") {
    if (!janusdna::kernels::causal_conv1d_avx2_supported()) {
        MESSAGE("CPU without AVX2/FMA: AVX2 conv not tested");
        return;
    }
    torch::manual_seed(22);
    struct Shape { int64_t B, L, D, K; };
    // K in registers (2..4) and generic (1, 7), K > L, masked tail lanes, time chunks (64 steps) crossed.
    for (const Shape s : {Shape{1, 1, 1, 4}, Shape{2, 5, 9, 4}, Shape{1, 64, 8, 2}, Shape{2, 300, 70, 4},
                          Shape{1, 100, 16, 7}, Shape{1, 3, 8, 7}, Shape{2, 70, 13, 1}, Shape{1, 129, 24, 3}}) {
        for (const bool with_bias : {true, false}) {
            INFO("B=" << s.B << " L=" << s.L << " D=" << s.D << " K=" << s.K << " with_bias=" << with_bias);
            const Inputs x = conv_inputs(s.B, s.L, s.D, s.K, with_bias);
            const Inputs xf = to_float(x);
            // Forward: 1e-5 of the output's scale (measured ~1e-6).
            CHECK(scaled_error(conv_op(xf), conv_op(x)) <= 1e-5);
            const Tensor w = torch::randn({s.B, s.L, s.D}, kF64);
            const Inputs g64 = grads_of(conv_op, x, w), g32 = grads_of(conv_op, xf, w.to(torch::kFloat));
            for (size_t i = 0; i < x.size(); ++i) {
                CAPTURE(i);
                REQUIRE(g64[i].defined() == g32[i].defined());
                // grad_x: 1e-5 of its scale; grad_weight/grad_bias are sums over (b, t) that can cancel on tiny
                // shapes, so 3e-4 (the float32 reference itself is off by 4e-5 there; measured <= 1.2e-4).
                if (g64[i].defined()) CHECK(scaled_error(g32[i], g64[i]) <= (i == 0 ? 1e-5 : 3e-4));
            }
        }
    }
}

TEST_CASE("AdamW kernel: AVX2 equals the scalar reference, and the reference equals float64") {
    torch::manual_seed(31);
    const int64_t n = 1037; // 129 vectors and a tail of 5
    const Tensor p0 = torch::randn({n}), m0 = torch::randn({n}) * 0.1, v0 = torch::rand({n}) * 0.01, g = torch::randn({n});
    const janusdna::kernels::AdamWScalars<float> s{0.7f, 0.999f, 0.9f, 0.95f, 0.3f, 1e-8f, -0.01f};
    Tensor p_ref = p0.clone(), m_ref = m0.clone(), v_ref = v0.clone();
    janusdna::kernels::adamw_ref<float>(p_ref.data_ptr<float>(), m_ref.data_ptr<float>(), v_ref.data_ptr<float>(), g.data_ptr<float>(), n, s);
    // float64 ground truth
    Tensor pd = p0.to(torch::kDouble), md = m0.to(torch::kDouble), vd = v0.to(torch::kDouble), gd = g.to(torch::kDouble);
    const janusdna::kernels::AdamWScalars<double> sd{0.7f, 0.999f, 0.9f, 0.95f, 0.3f, 1e-8f, -0.01f};
    janusdna::kernels::adamw_ref<double>(pd.data_ptr<double>(), md.data_ptr<double>(), vd.data_ptr<double>(), gd.data_ptr<double>(), n, sd);
    auto rel = [](const Tensor& a, const Tensor& b) { // error relative to the tensor's scale (m's sums cancel)
        return (a.to(torch::kDouble) - b).abs().max().item<double>() / b.abs().max().item<double>();
    };
    CHECK(rel(p_ref, pd) < 1e-6);
    CHECK(rel(m_ref, md) < 1e-6);
    CHECK(rel(v_ref, vd) < 1e-6);
    if (!janusdna::kernels::adamw_avx2_supported()) return;
    Tensor p = p0.clone(), m = m0.clone(), v = v0.clone();
    janusdna::kernels::adamw_avx2(p.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), g.data_ptr<float>(), n, s);
    CHECK(rel(p, pd) < 1e-6);
    CHECK(rel(m, md) < 1e-6);
    CHECK(rel(v, vd) < 1e-6);
    CHECK((p - p0).abs().max().item<double>() > 1e-3); // it moved
}
