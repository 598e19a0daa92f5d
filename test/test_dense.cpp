// Tests for the dense-layer kernels (kernels/dense.h) and their ops: the scalar references against plain torch in
// float64, the AVX2 kernels against the references on random shapes (odd sizes, row strides, gathered rows), the
// ops' fast paths against their torch fallbacks, and the model's inference MoE dispatch against the autograd one.
// Torch before doctest: LibTorch pulls in glog, whose CHECK macro would otherwise replace doctest's.
#include <torch/torch.h>

#include <doctest/doctest.h>

#include "kernels/dense.h"
#include "janusdna/error.h"
#include "janusdna/model.h"
#include "janusdna/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

using torch::Tensor;
using namespace janusdna;
const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

double max_abs(const Tensor& t) { return t.abs().max().item<double>(); }
double max_diff(const Tensor& a, const Tensor& b) { return max_abs(a.to(torch::kDouble) - b.to(torch::kDouble)); }

// silu(x g^T) * (x u^T) d^T in float64 torch ops.
Tensor mlp_torch(const Tensor& x, const Tensor& g, const Tensor& u, const Tensor& d) {
    return torch::linear(torch::silu(torch::linear(x, g)) * torch::linear(x, u), d);
}

} // namespace

TEST_CASE("dense: reference kernels match torch in float64") {
    torch::manual_seed(11);
    const int64_t M = 9, K = 13, N = 7, I = 10;
    Tensor x = torch::randn({M, K + 3}, kF64).narrow(1, 1, K); // a column slice: row stride K + 3
    Tensor w = torch::randn({N, K}, kF64), b = torch::randn({N}, kF64);
    Tensor y = torch::full({M, N}, 99.0, kF64);
    kernels::LinearParams<double> lp;
    lp.rows = M, lp.in = K, lp.out = N, lp.x = x.data_ptr<double>(), lp.ldx = K + 3;
    lp.weight = w.data_ptr<double>(), lp.bias = b.data_ptr<double>(), lp.y = y.data_ptr<double>(), lp.ldy = N;
    kernels::linear_ref(lp, 0, M);
    CHECK(max_diff(y, torch::linear(x, w, b)) < 1e-12);

    // MLP with gathered rows, scales and accumulation: y[idx[r]] += s[r] * mlp(x[idx[r]]).
    Tensor xm = torch::randn({M, K}, kF64), g = torch::randn({I, K}, kF64), u = torch::randn({I, K}, kF64),
           d = torch::randn({K, I}, kF64);
    Tensor idx = torch::tensor(std::vector<int64_t>{7, 2, 0, 5}), s = torch::randn({4}, kF64);
    Tensor ym = torch::randn({M, K}, kF64), expect = ym.clone();
    expect.index_add_(0, idx, mlp_torch(xm.index_select(0, idx), g, u, d) * s.unsqueeze(1));
    kernels::MlpParams<double> mp;
    mp.rows = 4, mp.hidden = K, mp.inter = I, mp.x = xm.data_ptr<double>(), mp.ldx = K, mp.index = idx.data_ptr<int64_t>();
    mp.scale = s.data_ptr<double>(), mp.gate = g.data_ptr<double>(), mp.up = u.data_ptr<double>();
    mp.down = d.data_ptr<double>(), mp.y = ym.data_ptr<double>(), mp.ldy = K, mp.accumulate = true;
    kernels::swiglu_mlp_ref(mp, 0, 4);
    CHECK(max_diff(ym, expect) < 1e-10);

    Tensor wn = torch::randn({K}, kF64), yn = torch::empty({M, K}, kF64);
    kernels::RmsNormParams<double> np;
    np.rows = M, np.dim = K, np.x = x.data_ptr<double>(), np.ldx = K + 3, np.weight = wn.data_ptr<double>();
    np.eps = 1e-6, np.y = yn.data_ptr<double>(), np.ldy = K;
    kernels::rmsnorm_ref(np, 0, M);
    CHECK(max_diff(yn, wn * x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6)) < 1e-12);
}

TEST_CASE("dense: the AVX2 kernels match the references on random shapes") {
    if (!kernels::dense_avx2_supported()) return; // nothing to compare on this CPU
    torch::manual_seed(12);
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
    struct Shape { int64_t M, K, N, I; };
    // Row counts around the 6-row block, K and N around the 16-column panels and 8-lane vectors, the presets.
    const std::vector<Shape> shapes = {{1, 1, 1, 1},   {5, 3, 8, 8},     {6, 8, 15, 12},   {7, 16, 16, 30},
                                       {13, 32, 17, 128}, {25, 37, 40, 9}, {250, 72, 288, 288}, {61, 144, 24, 576}};
    double worst_lin = 0, worst_mlp = 0, worst_norm = 0; // error / scale, reported
    for (const auto& sh : shapes) {
        CAPTURE(sh.M);
        CAPTURE(sh.K);
        CAPTURE(sh.N);
        CAPTURE(sh.I);
        const int64_t ld = sh.K + 5;
        Tensor xw = torch::randn({sh.M, ld}, f32), x = xw.narrow(1, 2, sh.K);
        const float* xp = xw.data_ptr<float>() + 2;
        Tensor w = torch::randn({sh.N, sh.K}, f32), b = torch::randn({sh.N}, f32);
        // linear
        Tensor y_ref = torch::empty({sh.M, sh.N}, f32), y = torch::empty({sh.M, sh.N}, f32);
        kernels::LinearParams<float> lp;
        lp.rows = sh.M, lp.in = sh.K, lp.out = sh.N, lp.x = xp, lp.ldx = ld;
        lp.weight = w.data_ptr<float>(), lp.bias = b.data_ptr<float>(), lp.y = y_ref.data_ptr<float>(), lp.ldy = sh.N;
        kernels::linear_ref(lp, 0, sh.M);
        lp.y = y.data_ptr<float>();
        const auto packed = kernels::pack_linear_avx2(w.data_ptr<float>(), sh.N, sh.K);
        kernels::linear_avx2(lp, packed, 0, sh.M / 2), kernels::linear_avx2(lp, packed, sh.M / 2, sh.M);
        const double lin_scale = max_abs(torch::linear(x.abs(), w.abs(), b.abs())) + 1e-30;
        CHECK(max_diff(y, y_ref) <= 1e-5 * lin_scale);
        worst_lin = std::max(worst_lin, max_diff(y, y_ref) / lin_scale);
        {   // with a residual added (a column slice, row stride N + 3)
            Tensor resw = torch::randn({sh.M, sh.N + 3}, f32), res = resw.narrow(1, 1, sh.N);
            lp.residual = resw.data_ptr<float>() + 1, lp.ldr = sh.N + 3;
            Tensor yr_ref = torch::empty({sh.M, sh.N}, f32), yr = torch::empty({sh.M, sh.N}, f32);
            lp.y = yr_ref.data_ptr<float>();
            kernels::linear_ref(lp, 0, sh.M);
            lp.y = yr.data_ptr<float>();
            kernels::linear_avx2(lp, packed, 0, sh.M);
            CHECK(max_diff(yr_ref, y_ref + res) <= 1e-6 * (lin_scale + max_abs(res)));
            CHECK(max_diff(yr, yr_ref) <= 1e-5 * (lin_scale + max_abs(res)));
            lp.residual = nullptr, lp.ldr = 0;
        }
        {   // without a bias, into a column slice of a wider output (row stride N + 5): whole panels are stored
            // straight into y, so the columns around the slice must stay as they were
            lp.bias = nullptr;
            Tensor yn_ref = torch::empty({sh.M, sh.N}, f32), ywide = torch::full({sh.M, sh.N + 5}, 7.0f, f32);
            lp.y = yn_ref.data_ptr<float>(), lp.ldy = sh.N;
            kernels::linear_ref(lp, 0, sh.M);
            lp.y = ywide.data_ptr<float>() + 2, lp.ldy = sh.N + 5;
            kernels::linear_avx2(lp, packed, 0, sh.M / 3), kernels::linear_avx2(lp, packed, sh.M / 3, sh.M);
            CHECK(max_diff(ywide.narrow(1, 2, sh.N), yn_ref) <= 1e-5 * lin_scale);
            CHECK(torch::equal(ywide.narrow(1, 0, 2), torch::full({sh.M, 2}, 7.0f, f32)));
            CHECK(torch::equal(ywide.narrow(1, sh.N + 2, 3), torch::full({sh.M, 3}, 7.0f, f32)));
            lp.bias = b.data_ptr<float>(), lp.ldy = sh.N;
        }

        // MLP: plain, and gathered rows with scales accumulated into y (every other row, in reverse).
        const int64_t H = sh.K, I = sh.I;
        Tensor g = torch::randn({I, H}, f32) / std::sqrt(double(H)), u = torch::randn({I, H}, f32) / std::sqrt(double(H));
        Tensor d = torch::randn({H, I}, f32) / std::sqrt(double(I));
        const auto pm = kernels::pack_mlp_avx2(g.data_ptr<float>(), u.data_ptr<float>(), d.data_ptr<float>(), H, I);
        std::vector<int64_t> idx;
        for (int64_t r = sh.M - 1; r >= 0; r -= 2) idx.push_back(r);
        Tensor s = torch::randn({int64_t(idx.size())}, f32);
        for (bool gather : {false, true}) {
            CAPTURE(gather);
            Tensor y0 = torch::randn({sh.M, H + 1}, f32);
            Tensor ym_ref = y0.clone(), ym = y0.clone();
            kernels::MlpParams<float> mp;
            mp.rows = gather ? int64_t(idx.size()) : sh.M, mp.hidden = H, mp.inter = I, mp.x = xp, mp.ldx = ld;
            mp.index = gather ? idx.data() : nullptr, mp.scale = gather ? s.data_ptr<float>() : nullptr;
            mp.gate = g.data_ptr<float>(), mp.up = u.data_ptr<float>(), mp.down = d.data_ptr<float>();
            mp.ldy = H + 1, mp.accumulate = gather;
            mp.y = ym_ref.data_ptr<float>();
            kernels::swiglu_mlp_ref(mp, 0, mp.rows);
            mp.y = ym.data_ptr<float>();
            kernels::swiglu_mlp_avx2(mp, pm, 0, mp.rows / 3), kernels::swiglu_mlp_avx2(mp, pm, mp.rows / 3, mp.rows);
            const Tensor xd = x.to(torch::kDouble);
            const double mlp_scale = max_abs(torch::linear(
                (torch::silu(torch::linear(xd, g.to(torch::kDouble))) * torch::linear(xd, u.to(torch::kDouble))).abs(),
                d.to(torch::kDouble).abs())) * (gather ? max_abs(s) : 1.0) + max_abs(y0);
            CHECK(max_diff(ym, ym_ref) <= 1e-5 * mlp_scale);
            worst_mlp = std::max(worst_mlp, max_diff(ym, ym_ref) / mlp_scale);
            if (!gather) CHECK(max_diff(ym.narrow(1, H, 1), y0.narrow(1, H, 1)) == 0.0); // the column past H untouched
            // A residual added to the rows written (at row stride H + 2).
            Tensor resw = torch::randn({sh.M, H + 2}, f32);
            mp.residual = resw.data_ptr<float>(), mp.ldr = H + 2;
            Tensor yr_ref = y0.clone(), yr = y0.clone();
            mp.y = yr_ref.data_ptr<float>();
            kernels::swiglu_mlp_ref(mp, 0, mp.rows);
            mp.y = yr.data_ptr<float>();
            kernels::swiglu_mlp_avx2(mp, pm, 0, mp.rows);
            const Tensor res = resw.narrow(1, 0, H);
            Tensor expect_rows = ym_ref.narrow(1, 0, H).clone();
            if (gather) {
                const Tensor ix = torch::tensor(idx);
                expect_rows.index_add_(0, ix, res.index_select(0, ix));
            } else {
                expect_rows += res;
            }
            CHECK(max_diff(yr_ref.narrow(1, 0, H), expect_rows) <= 1e-6 * (mlp_scale + max_abs(res)));
            CHECK(max_diff(yr, yr_ref) <= 1e-5 * (mlp_scale + max_abs(res)));
        }

        // RMSNorm
        Tensor wn = torch::randn({sh.K}, f32), yn_ref = torch::empty({sh.M, sh.K}, f32), yn = torch::empty({sh.M, sh.K}, f32);
        kernels::RmsNormParams<float> np;
        np.rows = sh.M, np.dim = sh.K, np.x = xp, np.ldx = ld, np.weight = wn.data_ptr<float>(), np.eps = 1e-6;
        np.ldy = sh.K, np.y = yn_ref.data_ptr<float>();
        kernels::rmsnorm_ref(np, 0, sh.M);
        np.y = yn.data_ptr<float>();
        kernels::rmsnorm_avx2(np, 0, sh.M / 3), kernels::rmsnorm_avx2(np, sh.M / 3, sh.M); // groups of 8 from an offset
        CHECK(max_diff(yn, yn_ref) <= 1e-5 * (max_abs(yn_ref) + 1e-30));
        worst_norm = std::max(worst_norm, max_diff(yn, yn_ref) / (max_abs(yn_ref) + 1e-30));
    }
    MESSAGE("AVX2 vs reference, error / scale: linear " << worst_lin << ", mlp " << worst_mlp << ", rmsnorm " << worst_norm);
}

TEST_CASE("dense: the weight-gradient kernel matches its reference and torch") {
    torch::manual_seed(13);
    // The reference in float64 against torch: dw = dy^T x, and accumulation.
    {
        Tensor dyw = torch::randn({11, 9}, kF64), dy = dyw.narrow(1, 1, 7), x = torch::randn({11, 5}, kF64);
        Tensor dw = torch::randn({7, 5}, kF64), dw0 = dw.clone();
        kernels::WeightGradParams<double> p;
        p.rows = 11, p.in = 5, p.out = 7, p.dy = dyw.data_ptr<double>() + 1, p.lddy = 9, p.x = x.data_ptr<double>(), p.ldx = 5;
        p.dw = dw.data_ptr<double>(), p.accumulate = true;
        kernels::weight_grad_ref(p);
        CHECK(max_diff(dw, dw0 + dy.t().mm(x)) < 1e-12);
    }
    if (!kernels::dense_avx2_supported()) return;
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat);
    struct Shape { int64_t M, N, K; };
    // Rows around the 512-row chunks, N and K around the 6-row blocks and 16-lane panels, either side wider, and
    // the model's shapes (dt_proj's K = 2, x_proj's N = 34, the MLP's 2I = 256).
    const std::vector<Shape> shapes = {{1, 1, 1},     {7, 3, 17},     {13, 17, 3},    {511, 16, 6},  {513, 6, 16},
                                       {1030, 34, 64}, {700, 64, 2},  {300, 256, 32}, {2048, 32, 128}, {40, 40, 40}};
    double worst = 0;
    for (const auto& sh : shapes) {
        CAPTURE(sh.M);
        CAPTURE(sh.N);
        CAPTURE(sh.K);
        const int64_t lddy = sh.N + 3, ldx = sh.K + 1;
        Tensor dyw = torch::randn({sh.M, lddy}, f32), xw = torch::randn({sh.M, ldx}, f32);
        for (bool accumulate : {false, true}) {
            CAPTURE(accumulate);
            Tensor dw0 = torch::randn({sh.N, sh.K}, f32), dw_ref = dw0.clone(), dw = dw0.clone();
            kernels::WeightGradParams<float> p;
            p.rows = sh.M, p.in = sh.K, p.out = sh.N, p.dy = dyw.data_ptr<float>() + 2, p.lddy = lddy;
            p.x = xw.data_ptr<float>() + 1, p.ldx = ldx, p.accumulate = accumulate;
            p.dw = dw_ref.data_ptr<float>();
            kernels::weight_grad_ref(p);
            p.dw = dw.data_ptr<float>();
            kernels::weight_grad_avx2(p);
            const Tensor dy = dyw.narrow(1, 2, sh.N).to(torch::kDouble), x = xw.narrow(1, 1, sh.K).to(torch::kDouble);
            const double scale = max_abs(dy.abs().t().mm(x.abs())) + (accumulate ? max_abs(dw0) : 0.0);
            CHECK(max_diff(dw, dw_ref) <= 1e-5 * scale);
            const Tensor exact = dy.t().mm(x) + (accumulate ? dw0.to(torch::kDouble) : torch::zeros_like(dy.t().mm(x)));
            CHECK(max_diff(dw, exact) <= 1e-5 * scale);
            worst = std::max(worst, max_diff(dw, exact) / scale);
        }
    }
    MESSAGE("weight gradient, AVX2 vs float64, error / scale: " << worst);
}

TEST_CASE("dense ops: fast paths match torch; gradients flow and match torch's") {
    torch::manual_seed(13);
    Tensor x = torch::randn({3, 50, 40}).narrow(2, 4, 32);                // [3, 50, 32], a column slice
    Tensor w = torch::randn({20, 32}), b = torch::randn({20});
    Tensor g = torch::randn({128, 32}) * 0.2, u = torch::randn({128, 32}) * 0.2, d = torch::randn({32, 128}) * 0.1;
    Tensor wn = torch::rand({32}) + 0.5;
    Tensor fast_lin, fast_mlp, fast_norm;
    {
        torch::NoGradGuard no_grad;
        fast_lin = ops::linear(x, w, b), fast_mlp = ops::swiglu_mlp(x, g, u, d), fast_norm = ops::rms_norm(x, wn, 1e-6);
    }
    CHECK(fast_lin.sizes() == torch::IntArrayRef({3, 50, 20}));
    CHECK(fast_mlp.sizes() == torch::IntArrayRef({3, 50, 32}));
    CHECK(fast_norm.sizes() == torch::IntArrayRef({3, 50, 32}));
    const Tensor xd = x.to(torch::kDouble);
    CHECK(max_diff(fast_lin, torch::linear(xd, w.to(torch::kDouble), b.to(torch::kDouble))) < 1e-4);
    CHECK(max_diff(fast_mlp, mlp_torch(xd, g.to(torch::kDouble), u.to(torch::kDouble), d.to(torch::kDouble))) < 1e-4);
    CHECK(max_diff(fast_norm, wn.to(torch::kDouble) * xd * torch::rsqrt(xd.pow(2).mean(-1, true) + 1e-6)) < 1e-5);

    // With a graph wanted the ops are the torch ops, and gradients flow to every input.
    Tensor wg = w.clone().requires_grad_(true), gg = g.clone().requires_grad_(true), wng = wn.clone().requires_grad_(true);
    Tensor loss = ops::linear(x, wg, b).sum() + ops::swiglu_mlp(x, gg, u, d).sum() + ops::rms_norm(x, wng, 1e-6).sum();
    loss.backward();
    REQUIRE(wg.grad().defined());
    REQUIRE(gg.grad().defined());
    REQUIRE(wng.grad().defined());
    CHECK(max_diff(wg.grad(), x.sum(torch::IntArrayRef{0, 1}).unsqueeze(0).expand({20, 32})) < 1e-3);
    CHECK(max_diff(wng.grad(), (x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6)).sum(torch::IntArrayRef{0, 1})) < 1e-3);

    // The linear layer under autograd (kernel forward and input gradient, BLAS weight gradient) against torch's.
    {
        Tensor xa = torch::randn({2, 30, 24}).narrow(2, 3, 20).requires_grad_(true);   // a column slice
        Tensor wa = torch::randn({36, 20}).requires_grad_(true), ba = torch::randn({36}).requires_grad_(true);
        Tensor dy = torch::randn({2, 30, 36});
        auto grads = torch::autograd::grad({(ops::linear(xa, wa, ba) * dy).sum()}, {xa, wa, ba});
        Tensor xd = xa.detach().to(torch::kDouble).requires_grad_(true), wd = wa.detach().to(torch::kDouble).requires_grad_(true),
               bd = ba.detach().to(torch::kDouble).requires_grad_(true);
        auto expect = torch::autograd::grad({(torch::linear(xd, wd, bd) * dy.to(torch::kDouble)).sum()}, {xd, wd, bd});
        for (size_t i = 0; i < 3; ++i) {
            CAPTURE(i);
            CHECK(max_diff(grads[i], expect[i]) <= 1e-5 * (max_abs(expect[i]) + 1.0));
        }
        // Without a bias, and with only the input needing a gradient.
        Tensor gx = torch::autograd::grad({(ops::linear(xa, wa.detach()) * dy).sum()}, {xa})[0];
        CHECK(max_diff(gx, expect[0]) <= 1e-5 * (max_abs(expect[0]) + 1.0));
    }

    // Expert dispatch: in place into y's rows, the same as index_add_ of the gathered MLP.
    Tensor xt = torch::randn({40, 32}), y = torch::randn({40, 32}), expect = y.clone();
    Tensor idx = torch::tensor(std::vector<int64_t>{3, 39, 0, 17, 18}), s = torch::rand({5});
    expect.index_add_(0, idx, mlp_torch(xt.index_select(0, idx), g, u, d) * s.unsqueeze(1));
    {
        torch::NoGradGuard no_grad;
        ops::swiglu_mlp_index_add_(y, xt, idx, s, g, u, d);
    }
    CHECK(max_diff(y, expect) < 1e-5);

    // Wrong shapes are errors, not reads out of bounds.
    torch::NoGradGuard no_grad;
    CHECK_THROWS_AS(ops::linear(x, torch::randn({20, 31})), Error);
    CHECK_THROWS_AS(ops::swiglu_mlp(x, g, u, torch::randn({32, 127})), Error);
    CHECK_THROWS_AS(ops::rms_norm(x, torch::randn({31}), 1e-6), Error);
    Tensor bad_idx = torch::tensor(std::vector<int64_t>{40});
    CHECK_THROWS_AS(ops::swiglu_mlp_index_add_(y, xt, bad_idx, torch::ones({1}), g, u, d), Error);
}

TEST_CASE("MoE: the inference dispatch equals the autograd path") {
    torch::manual_seed(14);
    MoE moe(32, 128, 16, 2);
    for (auto& p : moe->parameters()) p.data().normal_(0.0, 0.2);
    Tensor x = torch::randn({300, 32});
    Tensor with_graph = moe->forward(x, nullptr);                                   // grad mode: sort, gather, index_add
    Tensor inference;
    {
        torch::NoGradGuard no_grad;
        inference = moe->forward(x, nullptr);                                       // counting sort, fused expert kernels
    }
    CHECK(with_graph.requires_grad());
    CHECK(max_diff(inference, with_graph) <= 1e-5 * (max_abs(with_graph) + 1.0));
    CHECK(max_abs(inference) > 0.0);
    // The experts' pair ranges are checked before any pointer is taken: decreasing starts, a token out of range.
    torch::NoGradGuard no_grad;
    std::vector<Tensor> g, u, d;
    for (int e = 0; e < 2; ++e) g.push_back(torch::randn({8, 32})), u.push_back(torch::randn({8, 32})), d.push_back(torch::randn({32, 8}));
    const Tensor tok = torch::tensor({0, 1, 2}, torch::kLong), w = torch::ones({3});
    CHECK_THROWS_WITH_AS(ops::moe_experts(x, tok, w, {0, 3, 2, 3}, {g[0], g[1], g[0]}, {u[0], u[1], u[0]}, {d[0], d[1], d[0]}),
                         "moe_experts: start must not decrease", Error);
    CHECK_THROWS_WITH_AS(ops::moe_experts(x, torch::tensor({0, 300, 2}, torch::kLong), w, {0, 1, 3}, g, u, d),
                         "moe_experts: index 300 out of [0, 300)", Error);
}

TEST_CASE("moe_experts under autograd: the one-node kernel path equals torch ops in float64, values and gradients") {
    torch::manual_seed(15);
    const int64_t T = 70, H = 24, I = 40, E = 5, k = 2;
    // Routing: each token to two distinct experts, pairs grouped by expert; expert 3 gets no token.
    std::vector<std::vector<int64_t>> by_expert(E);
    for (int64_t t = 0; t < T; ++t) {
        const int64_t a = t % 3, b = 4; // one of experts 0-2, and 4; never 3
        by_expert[a].push_back(t), by_expert[b].push_back(t);
    }
    std::vector<int64_t> tokens, start{0};
    for (auto& v : by_expert) tokens.insert(tokens.end(), v.begin(), v.end()), start.push_back(int64_t(tokens.size()));
    REQUIRE(int64_t(tokens.size()) == T * k);
    const Tensor token = torch::tensor(tokens);
    const Tensor x0 = torch::randn({T, H}), w0 = torch::rand({T * k});
    std::vector<Tensor> g0, u0, d0;
    for (int64_t e = 0; e < E; ++e)
        g0.push_back(torch::randn({I, H}) * 0.3), u0.push_back(torch::randn({I, H}) * 0.3), d0.push_back(torch::randn({H, I}) * 0.3);
    const Tensor dy = torch::randn({T, H});
    // Runs moe_experts on leaves of dtype dt; returns y and the gradients of (y * dy).sum().
    auto run = [&](torch::ScalarType dt) {
        auto leaf = [&](const Tensor& t) { return t.to(dt).detach().requires_grad_(true); };
        Tensor x = leaf(x0), w = leaf(w0);
        std::vector<Tensor> g, u, d;
        for (int64_t e = 0; e < E; ++e) g.push_back(leaf(g0[e])), u.push_back(leaf(u0[e])), d.push_back(leaf(d0[e]));
        Tensor y = ops::moe_experts(x, token, w, start, g, u, d);
        (y * dy.to(dt)).sum().backward();
        std::vector<Tensor> out{y.detach(), x.grad(), w.grad()};
        for (int64_t e = 0; e < E; ++e) out.push_back(g[e].grad()), out.push_back(u[e].grad()), out.push_back(d[e].grad());
        return out;
    };
    const auto fast = run(torch::kFloat), exact = run(torch::kDouble);
    const char* what[] = {"y", "dx", "dweight"};
    for (size_t i = 0; i < fast.size(); ++i) {
        CAPTURE(i < 3 ? what[i] : "expert weight");
        CAPTURE(i);
        const bool unused = i >= 3 && (i - 3) / 3 == 3; // expert 3 saw no token
        if (unused) {
            CHECK((!fast[i].defined() || max_abs(fast[i]) == 0.0));
            continue;
        }
        REQUIRE(fast[i].defined());
        CHECK(max_diff(fast[i], exact[i]) <= 1e-5 * (max_abs(exact[i]) + 1e-12));
        CHECK(max_abs(exact[i]) > 0.0);
    }
    // Without a graph: the same sums through the in-place expert kernels.
    torch::NoGradGuard no_grad;
    const Tensor y_inf = ops::moe_experts(x0, token, w0, start, g0, u0, d0);
    CHECK(max_diff(y_inf, exact[0]) <= 1e-5 * max_abs(exact[0]));
}

TEST_CASE("RMSNorm backward: reference vs autograd in float64, AVX2 vs reference, and the op's gradients") {
    torch::manual_seed(15);
    auto torch_norm = [](const Tensor& x, const Tensor& w) { return w * x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6); };
    for (int64_t D : {1, 5, 8, 13, 32, 72}) {
        CAPTURE(D);
        const int64_t M = 75; // the AVX2 kernel's second call: a chunk of 64 rows (8 groups of 8), then 7 single rows
        Tensor x = torch::randn({M, D}, kF64).requires_grad_(true), w = (torch::rand({D}, kF64) + 0.5).requires_grad_(true);
        Tensor dy = torch::randn({M, D}, kF64);
        auto expect = torch::autograd::grad({(torch_norm(x, w) * dy).sum()}, {x, w});
        // float64 reference kernel
        Tensor xd = x.detach(), wd = w.detach(), gx = torch::empty({M, D}, kF64), gw = torch::zeros({D}, kF64);
        kernels::RmsNormParams<double> p;
        p.rows = M, p.dim = D, p.x = xd.data_ptr<double>(), p.ldx = D, p.weight = wd.data_ptr<double>(), p.eps = 1e-6;
        kernels::RmsNormGrads<double> g;
        g.grad_out = dy.data_ptr<double>(), g.grad_x = gx.data_ptr<double>(), g.grad_weight = gw.data_ptr<double>();
        kernels::rmsnorm_bwd_ref(p, g, 0, M);
        CHECK(max_diff(gx, expect[0]) < 1e-10);
        CHECK(max_diff(gw, expect[1]) < 1e-10);
        // AVX2 against the float reference
        if (kernels::dense_avx2_supported()) {
            Tensor xf = xd.to(torch::kFloat), wf = wd.to(torch::kFloat), dyf = dy.to(torch::kFloat);
            Tensor gx_ref = torch::empty({M, D}), gw_ref = torch::zeros({D}), gx_v = torch::empty({M, D}), gw_v = torch::zeros({D});
            kernels::RmsNormParams<float> pf;
            pf.rows = M, pf.dim = D, pf.x = xf.data_ptr<float>(), pf.ldx = D, pf.weight = wf.data_ptr<float>(), pf.eps = 1e-6;
            kernels::RmsNormGrads<float> gr{dyf.data_ptr<float>(), gx_ref.data_ptr<float>(), gw_ref.data_ptr<float>()};
            kernels::RmsNormGrads<float> gv{dyf.data_ptr<float>(), gx_v.data_ptr<float>(), gw_v.data_ptr<float>()};
            kernels::rmsnorm_bwd_ref(pf, gr, 0, M);
            kernels::rmsnorm_bwd_avx2(pf, gv, 0, 4), kernels::rmsnorm_bwd_avx2(pf, gv, 4, M);
            // Scale: the terms' size, |dy w| / rms (at D = 1 the gradient itself cancels to ~0).
            const double gx_scale = max_abs(dyf * wf * torch::rsqrt(xf.pow(2).mean(-1, true) + 1e-6));
            CHECK(max_diff(gx_v, gx_ref) <= 1e-5 * gx_scale);
            CHECK(max_diff(gw_v, gw_ref) <= 1e-5 * (max_abs((dyf * xf).abs().sum(0)) + 1e-30));
        }
    }
    // The op under autograd (float32, a column slice, more rows than one weight-gradient block) against float64.
    Tensor xs = torch::randn({3, 700, 40}).narrow(2, 4, 32).requires_grad_(true);
    Tensor w = (torch::rand({32}) + 0.5).requires_grad_(true), dy = torch::randn({3, 700, 32});
    auto got = torch::autograd::grad({(ops::rms_norm(xs, w, 1e-6) * dy).sum()}, {xs, w});
    Tensor xd = xs.detach().to(torch::kDouble).requires_grad_(true), wd = w.detach().to(torch::kDouble).requires_grad_(true);
    auto expect = torch::autograd::grad({(torch_norm(xd, wd) * dy.to(torch::kDouble)).sum()}, {xd, wd});
    CHECK(max_diff(got[0], expect[0]) <= 1e-5 * max_abs(expect[0]));
    CHECK(max_diff(got[1], expect[1]) <= 1e-5 * max_abs(expect[1]));
}

TEST_CASE("rms_norm_split: the segments' RMSNorms, values and gradients in one node") {
    torch::manual_seed(16);
    auto torch_norm = [](const Tensor& x, const Tensor& w) { return w * x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6); };
    const std::vector<int64_t> seg = {2, 16, 16}; // the mixer's dt, B, C at H = 32
    // x as a column slice of a wider tensor (row stride 37), rows across two weight-gradient blocks.
    Tensor xw = torch::randn({2, 600, 37}), x = xw.narrow(2, 1, 34).requires_grad_(false);
    std::vector<Tensor> w;
    for (int64_t d : seg) w.push_back(torch::rand({d}) + 0.5);
    std::vector<Tensor> dy;
    for (int64_t d : seg) dy.push_back(torch::randn({2, 600, d}));
    // Expected: float64 torch ops on the slices.
    Tensor xd = x.to(torch::kDouble).requires_grad_(true);
    std::vector<Tensor> wd, ys_d;
    Tensor loss_d = torch::zeros({}, kF64);
    int64_t off = 0;
    for (size_t i = 0; i < seg.size(); ++i) {
        wd.push_back(w[i].to(torch::kDouble).requires_grad_(true));
        ys_d.push_back(torch_norm(xd.narrow(-1, off, seg[i]), wd[i]));
        if (i != 1) loss_d = loss_d + (ys_d[i] * dy[i].to(torch::kDouble)).sum(); // segment 1 unused
        off += seg[i];
    }
    std::vector<Tensor> inputs_d{xd};
    inputs_d.insert(inputs_d.end(), wd.begin(), wd.end());
    const auto expect = torch::autograd::grad({loss_d}, inputs_d, {}, false, false, true);
    // Without a graph (the kernels).
    {
        torch::NoGradGuard no_grad;
        const auto ys = ops::rms_norm_split(x, w, 1e-6);
        for (size_t i = 0; i < seg.size(); ++i) {
            CHECK(ys[i].is_contiguous());
            CHECK(max_diff(ys[i], ys_d[i].detach()) <= 1e-6 * max_abs(ys_d[i]));
        }
    }
    // Under autograd: one node; segment 1's output unused (its gradient is undefined there).
    Tensor xg = x.detach().clone().requires_grad_(true);
    std::vector<Tensor> wg;
    for (const Tensor& t : w) wg.push_back(t.clone().requires_grad_(true));
    const auto ys = ops::rms_norm_split(xg, wg, 1e-6);
    CHECK(ys[0].grad_fn() == ys[2].grad_fn());
    const Tensor loss = (ys[0] * dy[0]).sum() + (ys[2] * dy[2]).sum();
    std::vector<Tensor> inputs{xg};
    inputs.insert(inputs.end(), wg.begin(), wg.end());
    const auto got = torch::autograd::grad({loss}, inputs, {}, false, false, true);
    CHECK(max_diff(got[0], expect[0]) <= 1e-5 * max_abs(expect[0]));
    CHECK(max_diff(got[0].narrow(-1, 2, 16), torch::zeros({2, 600, 16})) == 0.0); // nothing through segment 1
    CHECK(max_diff(got[1], expect[1]) <= 1e-5 * max_abs(expect[1]));
    CHECK((!got[2].defined() || max_abs(got[2]) == 0.0));
    CHECK(max_diff(got[3], expect[3]) <= 1e-5 * max_abs(expect[3]));
    // float64 takes the torch ops; the values agree with the kernels' path.
    const auto ys64 = ops::rms_norm_split(x.to(torch::kDouble), wd, 1e-6);
    CHECK(max_diff(ys64[1], ys_d[1].detach()) < 1e-12);
    CHECK_THROWS_AS(ops::rms_norm_split(x, {w[0], w[1]}, 1e-6), Error);
}

TEST_CASE("SwiGLU MLP under autograd: activation kernels and the op's gradients") {
    torch::manual_seed(16);
    // I = 45: four vectors in lockstep, one alone and a masked tail of 5.
    for (const int64_t I : {13, 45}) {
        CAPTURE(I);
        const int64_t M = 9;
        Tensor gu = torch::randn({M, 2 * I}, kF64) * 3, dh = torch::randn({M, I}, kF64);
        Tensor g = gu.narrow(1, 0, I).clone().requires_grad_(true), u = gu.narrow(1, I, I).clone().requires_grad_(true);
        Tensor h_expect = torch::silu(g) * u;
        auto expect = torch::autograd::grad({(h_expect * dh).sum()}, {g, u});
        Tensor h = torch::empty({M, I}, kF64), dgu = torch::empty({M, 2 * I}, kF64);
        kernels::swiglu_act_ref(gu.data_ptr<double>(), I, h.data_ptr<double>(), 0, M);
        kernels::swiglu_act_bwd_ref(gu.data_ptr<double>(), dh.data_ptr<double>(), I, dgu.data_ptr<double>(), 0, M);
        CHECK(max_diff(h, h_expect) < 1e-12);
        CHECK(max_diff(dgu.narrow(1, 0, I), expect[0]) < 1e-12);
        CHECK(max_diff(dgu.narrow(1, I, I), expect[1]) < 1e-12);
        if (kernels::dense_avx2_supported()) {
            Tensor guf = gu.to(torch::kFloat), dhf = dh.to(torch::kFloat);
            Tensor hv = torch::empty({M, I}), dv = torch::empty({M, 2 * I});
            kernels::swiglu_act_avx2(guf.data_ptr<float>(), I, hv.data_ptr<float>(), 0, M);
            kernels::swiglu_act_bwd_avx2(guf.data_ptr<float>(), dhf.data_ptr<float>(), I, dv.data_ptr<float>(), 0, M);
            CHECK(max_diff(hv, h_expect) <= 1e-6 * max_abs(h_expect));
            CHECK(max_diff(dv.narrow(1, 0, I), expect[0]) <= 1e-6 * max_abs(expect[0]));
            CHECK(max_diff(dv.narrow(1, I, I), expect[1]) <= 1e-6 * max_abs(expect[1]));
            // Through W_down in one pass (swiglu_bwd_avx2): dh = dy W_down never written; dy rows at a stride.
            const int64_t H = 20;
            Tensor dyw = torch::randn({M, H + 3}), wd = torch::randn({H, I}) / std::sqrt(double(H));
            Tensor dh64 = torch::matmul(dyw.narrow(1, 1, H).to(kF64), wd.to(kF64));                  // [M, I]
            Tensor dgu64 = torch::empty({M, 2 * I}, kF64);
            kernels::swiglu_act_bwd_ref(gu.data_ptr<double>(), dh64.data_ptr<double>(), I, dgu64.data_ptr<double>(), 0, M);
            const Tensor wdt = wd.t();                                                              // [I, H] view
            kernels::PackedLinear pk;
            kernels::pack_linear_avx2(pk, wdt.data_ptr<float>(), I, H, wdt.stride(0), wdt.stride(1));
            Tensor dfused = torch::empty({M, 2 * I});
            kernels::swiglu_bwd_avx2(dyw.data_ptr<float>() + 1, H + 3, pk, guf.data_ptr<float>(), dfused.data_ptr<float>(), 0, 4);
            kernels::swiglu_bwd_avx2(dyw.data_ptr<float>() + 1, H + 3, pk, guf.data_ptr<float>(), dfused.data_ptr<float>(), 4, M);
            CHECK(max_diff(dfused, dgu64) <= 2e-6 * max_abs(dgu64));
        }
    }
    // The op: float32 with a graph against float64 torch ops, every input's gradient.
    Tensor x = torch::randn({2, 40, 24}).requires_grad_(true);
    Tensor wg = (torch::randn({96, 24}) * 0.2).requires_grad_(true), wu = (torch::randn({96, 24}) * 0.2).requires_grad_(true);
    Tensor wd = (torch::randn({24, 96}) * 0.1).requires_grad_(true), dy = torch::randn({2, 40, 24});
    Tensor y = ops::swiglu_mlp(x, wg, wu, wd);
    auto got = torch::autograd::grad({(y * dy).sum()}, {x, wg, wu, wd});
    std::vector<Tensor> in64;
    for (const Tensor& t : {x, wg, wu, wd}) in64.push_back(t.detach().to(torch::kDouble).requires_grad_(true));
    Tensor y64 = mlp_torch(in64[0], in64[1], in64[2], in64[3]);
    auto want = torch::autograd::grad({(y64 * dy.to(torch::kDouble)).sum()}, in64);
    CHECK(max_diff(y, y64) <= 1e-5 * max_abs(y64));
    for (size_t i = 0; i < 4; ++i) {
        CAPTURE(i);
        CHECK(max_diff(got[i], want[i]) <= 1e-5 * max_abs(want[i]));
    }
}
