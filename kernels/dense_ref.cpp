// Scalar references of the dense layers (see dense.h): the ground truth the AVX2 versions are tested against.
#include "dense.h"

#include <cmath>
#include <vector>

namespace janusdna::kernels {

template <typename T>
void linear_ref(const LinearParams<T>& p, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
        const T* x = p.x + r * p.ldx;
        T* y = p.y + r * p.ldy;
        for (int64_t n = 0; n < p.out; ++n) {
            T s = p.bias ? p.bias[n] : T(0);
            const T* w = p.weight + n * p.in;
            for (int64_t k = 0; k < p.in; ++k) s += x[k] * w[k];
            y[n] = p.residual ? s + p.residual[r * p.ldr + n] : s;
        }
    }
}

template <typename T>
void swiglu_mlp_ref(const MlpParams<T>& p, int64_t r0, int64_t r1) {
    const int64_t H = p.hidden, I = p.inter;
    std::vector<T> h(static_cast<size_t>(I));
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t row = p.index ? p.index[r] : r;
        const T* x = p.x + row * p.ldx;
        for (int64_t i = 0; i < I; ++i) {
            T g = 0, u = 0;
            for (int64_t k = 0; k < H; ++k) g += x[k] * p.gate[i * H + k], u += x[k] * p.up[i * H + k];
            h[static_cast<size_t>(i)] = g / (T(1) + std::exp(-g)) * u;
        }
        T* y = p.y + row * p.ldy;
        const T scale = p.scale ? p.scale[r] : T(1);
        for (int64_t n = 0; n < H; ++n) {
            T s = 0;
            for (int64_t i = 0; i < I; ++i) s += h[static_cast<size_t>(i)] * p.down[n * I + i];
            y[n] = (p.accumulate ? y[n] : T(0)) + scale * s + (p.residual ? p.residual[row * p.ldr + n] : T(0));
        }
    }
}

template <typename T>
void rmsnorm_ref(const RmsNormParams<T>& p, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
        const T* x = p.x + r * p.ldx;
        T* y = p.y + r * p.ldy;
        T ss = 0;
        for (int64_t k = 0; k < p.dim; ++k) ss += x[k] * x[k];
        const T inv = T(1) / std::sqrt(ss / T(p.dim) + T(p.eps));
        for (int64_t k = 0; k < p.dim; ++k) y[k] = p.weight[k] * (x[k] * inv);
    }
}

template <typename T>
void weight_grad_ref(const WeightGradParams<T>& p) {
    for (int64_t n = 0; n < p.out; ++n)
        for (int64_t k = 0; k < p.in; ++k) {
            T s = 0;
            for (int64_t m = 0; m < p.rows; ++m) s += p.dy[m * p.lddy + n] * p.x[m * p.ldx + k];
            T& w = p.dw[n * p.in + k];
            w = (p.accumulate ? w : T(0)) + s;
        }
}

template <typename T>
void rmsnorm_bwd_ref(const RmsNormParams<T>& p, const RmsNormGrads<T>& g, int64_t r0, int64_t r1) {
    const int64_t D = p.dim;
    for (int64_t r = r0; r < r1; ++r) {
        const T* x = p.x + r * p.ldx;
        const T* dy = g.grad_out + r * D;
        T ss = 0, dot = 0; // sum x^2, sum (dy w) x
        for (int64_t k = 0; k < D; ++k) ss += x[k] * x[k], dot += dy[k] * p.weight[k] * x[k];
        const T inv = T(1) / std::sqrt(ss / T(D) + T(p.eps));
        const T c = inv * inv * inv * dot / T(D);
        T* gx = g.grad_x + r * (g.ldgx ? g.ldgx : D);
        for (int64_t k = 0; k < D; ++k) gx[k] = inv * dy[k] * p.weight[k] - c * x[k];
        if (g.grad_weight)
            for (int64_t k = 0; k < D; ++k) g.grad_weight[k] += dy[k] * x[k] * inv;
    }
}

template <typename T>
void swiglu_act_ref(const T* gu, int64_t inter, T* h, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
        for (int64_t i = 0; i < inter; ++i) {
            const T g = gu[r * 2 * inter + i], u = gu[r * 2 * inter + inter + i];
            h[r * inter + i] = g / (T(1) + std::exp(-g)) * u;
        }
}

template <typename T>
void swiglu_act_bwd_ref(const T* gu, const T* dh, int64_t inter, T* dgu, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r)
        for (int64_t i = 0; i < inter; ++i) {
            const T g = gu[r * 2 * inter + i], u = gu[r * 2 * inter + inter + i], d = dh[r * inter + i];
            const T s = T(1) / (T(1) + std::exp(-g));
            dgu[r * 2 * inter + i] = d * u * s * (T(1) + g * (T(1) - s));
            dgu[r * 2 * inter + inter + i] = d * g * s;
        }
}

#define JANUSDNA_DENSE_REF(T)                                                                                    \
    template void linear_ref<T>(const LinearParams<T>&, int64_t, int64_t);                                       \
    template void swiglu_mlp_ref<T>(const MlpParams<T>&, int64_t, int64_t);                                      \
    template void rmsnorm_ref<T>(const RmsNormParams<T>&, int64_t, int64_t);                                     \
    template void rmsnorm_bwd_ref<T>(const RmsNormParams<T>&, const RmsNormGrads<T>&, int64_t, int64_t);        \
    template void swiglu_act_ref<T>(const T*, int64_t, T*, int64_t, int64_t);                                    \
    template void swiglu_act_bwd_ref<T>(const T*, const T*, int64_t, T*, int64_t, int64_t);                      \
    template void weight_grad_ref<T>(const WeightGradParams<T>&);
JANUSDNA_DENSE_REF(float)
JANUSDNA_DENSE_REF(double)
#undef JANUSDNA_DENSE_REF

} // namespace janusdna::kernels
