// Scalar reference for the masked attention (see janus_attention.h for the semantics and layout).
// Written for clarity, not speed: it is the ground truth that faster kernels are tested against.
#include "janus_attention.h"

#include <cmath>
#include <limits>
#include <vector>

namespace janusdna::kernels {
namespace {

// Element (b, i, h, c) of a [B, T, h, d] array.
template <typename T>
int64_t at(const AttentionParams<T>& p, int64_t b, int64_t i, int64_t h) {
    return ((b * p.length + i) * p.heads + h) * p.head_dim;
}

template <typename T>
double dot(const T* x, const T* y, int64_t n) {
    double s = 0;
    for (int64_t c = 0; c < n; ++c) s += double(x[c]) * y[c];
    return s;
}

} // namespace

template <typename T>
void attention_fwd_ref(const AttentionParams<T>& p, T* out, T* lse, int64_t b, int64_t h, int64_t i_begin,
                       int64_t i_end) {
    const int64_t Tn = p.length, d = p.head_dim;
    std::vector<double> s(Tn), acc(d); // scores of one row over the allowed keys; its output row
    for (int64_t i = i_begin; i < i_end; ++i) {
        KeyRange ranges[2];
        attention_key_ranges(p.mask, Tn, i, ranges);
        const T* qi = p.q + at(p, b, i, h);
        double m = -std::numeric_limits<double>::infinity();
        for (const KeyRange& r : ranges)
            for (int64_t j = r.begin; j < r.end; ++j) m = std::max(m, s[j] = double(p.scale) * dot(qi, p.k + at(p, b, j, h), d));
        double sum = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (const KeyRange& r : ranges) {
            for (int64_t j = r.begin; j < r.end; ++j) {
                const double w = std::exp(s[j] - m);
                const T* vj = p.v + at(p, b, j, h);
                sum += w;
                for (int64_t c = 0; c < d; ++c) acc[c] += w * vj[c];
            }
        }
        T* oi = out + at(p, b, i, h);
        for (int64_t c = 0; c < d; ++c) oi[c] = T(acc[c] / sum);
        lse[(b * p.heads + h) * Tn + i] = T(m + std::log(sum)); // sum >= 1: the max term contributes exp(0)
    }
}

template <typename T>
void attention_bwd_ref(const AttentionParams<T>& p, const AttentionGrads<T>& g, int64_t b, int64_t h) {
    const int64_t Tn = p.length, d = p.head_dim;
    const double scale = double(p.scale);
    std::vector<double> gk(Tn * d, 0.0), gv(Tn * d, 0.0), gq(d); // this (b, h): [T, d], [T, d], [d]
    for (int64_t i = 0; i < Tn; ++i) {
        KeyRange ranges[2];
        attention_key_ranges(p.mask, Tn, i, ranges);
        const int64_t row = at(p, b, i, h);
        const T *qi = p.q + row, *go = g.grad_out + row;
        const double lse = double(g.lse[(b * p.heads + h) * Tn + i]);
        const double Di = dot(go, g.out + row, d); // sum_j P_ij dP_ij = dO_i . O_i
        std::fill(gq.begin(), gq.end(), 0.0);
        for (const KeyRange& r : ranges) {
            for (int64_t j = r.begin; j < r.end; ++j) {
                const T *kj = p.k + at(p, b, j, h), *vj = p.v + at(p, b, j, h);
                const double P = std::exp(scale * dot(qi, kj, d) - lse); // recomputed probability
                const double dS = P * (dot(go, vj, d) - Di);             // d loss / d score (before scale)
                for (int64_t c = 0; c < d; ++c) {
                    gq[c] += dS * scale * kj[c];
                    gk[j * d + c] += dS * scale * qi[c];
                    gv[j * d + c] += P * go[c];
                }
            }
        }
        for (int64_t c = 0; c < d; ++c) g.grad_q[row + c] = T(gq[c]);
    }
    for (int64_t j = 0; j < Tn; ++j) {
        const int64_t row = at(p, b, j, h);
        for (int64_t c = 0; c < d; ++c) g.grad_k[row + c] = T(gk[j * d + c]), g.grad_v[row + c] = T(gv[j * d + c]);
    }
}

template void attention_fwd_ref<float>(const AttentionParams<float>&, float*, float*, int64_t, int64_t, int64_t,
                                       int64_t);
template void attention_fwd_ref<double>(const AttentionParams<double>&, double*, double*, int64_t, int64_t, int64_t,
                                        int64_t);
template void attention_bwd_ref<float>(const AttentionParams<float>&, const AttentionGrads<float>&, int64_t, int64_t);
template void attention_bwd_ref<double>(const AttentionParams<double>&, const AttentionGrads<double>&, int64_t,
                                        int64_t);

} // namespace janusdna::kernels
