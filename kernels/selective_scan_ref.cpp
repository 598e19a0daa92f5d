// Scalar reference implementation of the selective scan (see selective_scan.h for the semantics).
// Written for clarity, not speed: it is the ground truth that faster kernels are tested against.
#include "selective_scan.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace janusdna::kernels {
namespace {

// Same threshold as PyTorch's softplus (beta 1, threshold 20): above it log1p(exp(x)) == x in double anyway,
// and exp(x) would overflow for large x.
constexpr double kSoftplusThreshold = 20.0;

template <typename T>
T softplus(T x) {
    return x > T(kSoftplusThreshold) ? x : std::log1p(std::exp(x));
}

// d softplus(x) / dx, consistent with the threshold above.
template <typename T>
T softplus_grad(T x) {
    return x > T(kSoftplusThreshold) ? T(1) : T(1) / (T(1) + std::exp(-x));
}

template <typename T>
T sigmoid(T x) {
    return T(1) / (T(1) + std::exp(-x)); // exp(-x) -> inf for very negative x gives 0, as it should
}

} // namespace

template <typename T>
void selective_scan_fwd_ref(const ScanParams<T>& p, T* out, int64_t b, int64_t d_begin, int64_t d_end) {
    const int64_t L = p.length, D = p.channels, N = p.states;
    std::vector<T> s(N); // state of one channel, [N]
    for (int64_t d = d_begin; d < d_end; ++d) {
        std::fill(s.begin(), s.end(), T(0));
        const T bias = p.delta_bias ? p.delta_bias[d] : T(0);
        const T skip = p.D ? p.D[d] : T(0);
        const T* A = p.A + d * N;
        for (int64_t t = 0; t < L; ++t) {
            const int64_t i = (b * L + t) * D + d; // element (b, t, d) of a [B, L, D] array
            const T* Bt = p.B + (b * L + t) * N;
            const T* Ct = p.C + (b * L + t) * N;
            const T u = p.u[i];
            T delta = 0;
            if (p.delta) delta = p.delta[i];
            else
                for (int64_t r = 0; r < p.rank; ++r) delta += p.delta_low[(b * L + t) * p.rank + r] * p.delta_weight[d * p.rank + r];
            const T dt = softplus(delta + bias);
            double y = double(skip) * u; // the sum over states is accumulated in double: cheap and stabler
            for (int64_t n = 0; n < N; ++n) {
                s[n] = std::exp(dt * A[n]) * s[n] + dt * Bt[n] * u;
                y += double(s[n]) * Ct[n];
            }
            const T yt = T(y);
            out[i] = p.z ? yt * p.z[i] * sigmoid(p.z[i]) : yt;
        }
    }
}

template <typename T>
void selective_scan_bwd_ref(const ScanParams<T>& p, const ScanGrads<T>& g) {
    const int64_t Bn = p.batch, L = p.length, D = p.channels, N = p.states;
    // Gradients summed over batch, time or channels accumulate in double, then are written out once
    // (this also implements "overwrite, don't accumulate into" for the caller's buffers).
    std::vector<double> acc_bias(D, 0.0), acc_D(D, 0.0), acc_A(D * N, 0.0);
    std::vector<double> acc_B(Bn * L * N, 0.0), acc_C(Bn * L * N, 0.0);
    std::vector<T> states(L * N); // s_t[n] of one (b, d), recomputed: [L, N]
    std::vector<T> carry(N);      // a_{t+1}[n] * gs_{t+1}[n], the reverse recurrence's state: [N]

    for (int64_t b = 0; b < Bn; ++b) {
        for (int64_t d = 0; d < D; ++d) {
            const T bias = p.delta_bias ? p.delta_bias[d] : T(0);
            const T skip = p.D ? p.D[d] : T(0);
            const T* A = p.A + d * N;

            // Forward again, keeping every state (same arithmetic as selective_scan_fwd_ref).
            for (int64_t t = 0; t < L; ++t) {
                const int64_t i = (b * L + t) * D + d;
                const T* Bt = p.B + (b * L + t) * N;
                const T u = p.u[i];
                const T dt = softplus(p.delta[i] + bias);
                for (int64_t n = 0; n < N; ++n) {
                    const T prev = t > 0 ? states[(t - 1) * N + n] : T(0);
                    states[t * N + n] = std::exp(dt * A[n]) * prev + dt * Bt[n] * u;
                }
            }

            // Reverse recurrence: gs_t = gy_t * C_t + a_{t+1} * gs_{t+1}.
            std::fill(carry.begin(), carry.end(), T(0));
            for (int64_t t = L - 1; t >= 0; --t) {
                const int64_t i = (b * L + t) * D + d;
                const int64_t j = (b * L + t) * N; // row (b, t) of a [B, L, N] array
                const T* Bt = p.B + j;
                const T* Ct = p.C + j;
                const T* st = states.data() + t * N;
                const T u = p.u[i];
                const T x = p.delta[i] + bias;
                const T dt = softplus(x);
                const T gout = g.grad_out[i];

                // Gate: out = y * silu(z), so dy = gout * silu(z) and dz = gout * y * silu'(z).
                T gy = gout;
                if (p.z) {
                    const T z = p.z[i], sz = sigmoid(z);
                    gy = gout * z * sz;
                    if (g.grad_z) {
                        double y = double(skip) * u;
                        for (int64_t n = 0; n < N; ++n) y += double(st[n]) * Ct[n];
                        g.grad_z[i] = gout * T(y) * sz * (T(1) + z * (T(1) - sz));
                    }
                }

                acc_D[d] += double(gy) * u;
                double gu = double(gy) * skip, gdt = 0.0;
                for (int64_t n = 0; n < N; ++n) {
                    const T a = std::exp(dt * A[n]);
                    const T gs = gy * Ct[n] + carry[n];
                    const T prev = t > 0 ? states[(t - 1) * N + n] : T(0);
                    acc_C[j + n] += double(gy) * st[n];
                    acc_B[j + n] += double(gs) * dt * u;
                    acc_A[d * N + n] += double(gs) * prev * a * dt;
                    gu += double(gs) * dt * Bt[n];
                    gdt += double(gs) * (prev * a * A[n] + Bt[n] * u);
                    carry[n] = a * gs;
                }
                if (g.grad_u) g.grad_u[i] = T(gu);
                const double gdelta = gdt * softplus_grad(x); // dt = softplus(delta + bias)
                if (g.grad_delta) g.grad_delta[i] = T(gdelta);
                acc_bias[d] += gdelta;
            }
        }
    }

    auto write = [](T* dst, const std::vector<double>& src) {
        if (dst) std::transform(src.begin(), src.end(), dst, [](double v) { return T(v); });
    };
    write(g.grad_delta_bias, acc_bias);
    write(g.grad_D, acc_D);
    write(g.grad_A, acc_A);
    write(g.grad_B, acc_B);
    write(g.grad_C, acc_C);
}

template void selective_scan_fwd_ref<float>(const ScanParams<float>&, float*, int64_t, int64_t, int64_t);
template void selective_scan_fwd_ref<double>(const ScanParams<double>&, double*, int64_t, int64_t, int64_t);
template void selective_scan_bwd_ref<float>(const ScanParams<float>&, const ScanGrads<float>&);
template void selective_scan_bwd_ref<double>(const ScanParams<double>&, const ScanGrads<double>&);

} // namespace janusdna::kernels
