// Scalar reference implementation of the causal depthwise conv + SiLU (see causal_conv1d.h for the semantics).
#include "causal_conv1d.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace janusdna::kernels {
namespace {

template <typename T>
T sigmoid(T x) {
    return T(1) / (T(1) + std::exp(-x));
}

// pre[b,t,d], accumulated in double (K is small, so this is cheap).
template <typename T>
T pre_activation(const ConvParams<T>& p, int64_t b, int64_t t, int64_t d) {
    const int64_t L = p.length, D = p.channels, K = p.width;
    double pre = p.bias ? double(p.bias[d]) : 0.0;
    for (int64_t k = 0; k < K; ++k) {
        const int64_t src = t - (K - 1) + k;
        if (src >= 0) pre += double(p.weight[d * K + k]) * p.x[(b * L + src) * D + d];
    }
    return T(pre);
}

} // namespace

template <typename T>
void causal_conv1d_silu_fwd_ref(const ConvParams<T>& p, T* out, int64_t b, int64_t d_begin, int64_t d_end) {
    const int64_t L = p.length, D = p.channels;
    for (int64_t d = d_begin; d < d_end; ++d) {
        for (int64_t t = 0; t < L; ++t) {
            const T pre = pre_activation(p, b, t, d);
            out[(b * L + t) * D + d] = pre * sigmoid(pre);
        }
    }
}

template <typename T>
void causal_conv1d_silu_bwd_ref(const ConvParams<T>& p, const ConvGrads<T>& g) {
    const int64_t Bn = p.batch, L = p.length, D = p.channels, K = p.width;
    std::vector<double> acc_w(D * K, 0.0), acc_bias(D, 0.0); // summed over batch and time
    std::vector<double> gpre(L);                             // d loss / d pre for one (b, d): [L]
    for (int64_t b = 0; b < Bn; ++b) {
        for (int64_t d = 0; d < D; ++d) {
            for (int64_t t = 0; t < L; ++t) {
                const T pre = pre_activation(p, b, t, d);
                const T s = sigmoid(pre);
                gpre[t] = double(g.grad_out[(b * L + t) * D + d]) * s * (T(1) + pre * (T(1) - s)); // silu'
                acc_bias[d] += gpre[t];
                for (int64_t k = 0; k < K; ++k) {
                    const int64_t src = t - (K - 1) + k;
                    if (src >= 0) acc_w[d * K + k] += gpre[t] * p.x[(b * L + src) * D + d];
                }
            }
            // x[src] feeds outputs t = src + (K-1) - k; gathering them writes each grad_x element once.
            if (g.grad_x) {
                for (int64_t src = 0; src < L; ++src) {
                    double gx = 0.0;
                    for (int64_t k = 0; k < K; ++k) {
                        const int64_t t = src + (K - 1) - k;
                        if (t < L) gx += gpre[t] * p.weight[d * K + k];
                    }
                    g.grad_x[(b * L + src) * D + d] = T(gx);
                }
            }
        }
    }
    if (g.grad_weight) std::transform(acc_w.begin(), acc_w.end(), g.grad_weight, [](double v) { return T(v); });
    if (g.grad_bias) std::transform(acc_bias.begin(), acc_bias.end(), g.grad_bias, [](double v) { return T(v); });
}

template void causal_conv1d_silu_fwd_ref<float>(const ConvParams<float>&, float*, int64_t, int64_t, int64_t);
template void causal_conv1d_silu_fwd_ref<double>(const ConvParams<double>&, double*, int64_t, int64_t, int64_t);
template void causal_conv1d_silu_bwd_ref<float>(const ConvParams<float>&, const ConvGrads<float>&);
template void causal_conv1d_silu_bwd_ref<double>(const ConvParams<double>&, const ConvGrads<double>&);

} // namespace janusdna::kernels
