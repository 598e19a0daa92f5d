// AVX2 + FMA depthwise causal conv1d + bias + SiLU, forward and backward (float32); semantics in causal_conv1d.h,
// ground truth in causal_conv1d_ref.cpp.
//
// Layout of the work: 8 channels per vector (one lane per channel d, the last block masked when D is not a multiple
// of 8), the K taps of those channels as K weight vectors, so each output is K shifted FMAs over rows of x. Time
// runs in chunks of kChunk steps with every channel block inside a chunk, so the chunk's rows of x, grad_out and
// grad_x stay in L1/L2 while all blocks use them. K = 2, 3, 4 are compiled with the weights (and, in the backward,
// the grad_weight accumulators) in registers; any other K >= 1 (including K > L) takes a generic path that keeps
// them in memory.
//
// Backward: the pre-activation is recomputed, g = grad_out * silu'(pre) with silu'(p) = s (1 + p (1 - s)),
// s = sigmoid(p); grad_bias and grad_weight are lane-wise sums of g and g * x[src], kept in float within a chunk and
// added to double accumulators at the end of each chunk (so long sequences do not lose digits); grad_x[src] is the
// anti-causal K-tap correlation sum_k w[k] g[src + K-1 - k], written once per element as soon as its last g is
// known, from a small per-block buffer of g that carries the previous K-1 steps across chunks.
// Differences from the reference: the sigmoid is sigmoid_fast_ps (exp2 polynomial, rcp + one Newton step, ~3e-7
// relative) and the K-tap sums are in float, so results agree with the reference to ~1e-6 relative to each output's
// scale.
#include "causal_conv1d.h"
#include "simd_avx2.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace janusdna::kernels {
namespace {

using namespace avx2;

constexpr int64_t kChunk = 64; // time steps per chunk: 64 rows of x, grad_out and grad_x (16 KB each at D = 64)
constexpr int kStepsFwd = 4;    // time steps computed side by side (the exp + divide chain of one step is long)
constexpr int kStepsBwd = 4;

// Row loads and stores of one block: whole vectors when Full (nd == 8), masked otherwise (the branch is hoisted out
// of the time loops by instantiating both).
template <bool Full>
JANUSDNA_AVX2 inline __m256 ld(const float* p, __m256i mask) {
    if constexpr (Full) return _mm256_loadu_ps(p);
    else return _mm256_maskload_ps(p, mask);
}
template <bool Full>
JANUSDNA_AVX2 inline void st(float* p, __m256 v, __m256i mask) {
    if constexpr (Full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask, v);
}

// Weight k of the block: from registers when K is a compile-time constant, from the transposed [K][8] copy else.
template <int KC>
JANUSDNA_AVX2 inline __m256 tap(const __m256* wl, const float* wt, int64_t k) {
    if constexpr (KC > 0) return wl[k];
    else return _mm256_loadu_ps(wt + 8 * k);
}

// pre = bias + sum_{k >= k0} w[k] * x[t - (K-1) + k]; xs points at the row of tap k0 (time t - (K-1) + k0,
// columns d0..). k0 > 0 only in the first K-1 steps of a sequence, where the earlier taps read zero.
template <int KC, bool Full>
JANUSDNA_AVX2 inline __m256 pre_act(__m256 bias, const __m256* wl, const float* wt, int64_t K, int64_t k0,
                                    const float* xs, int64_t D, __m256i mask) {
    __m256 acc = bias;
#pragma GCC unroll 8
    for (int64_t k = 0; k < K; ++k) // from 0 rather than k0, so that unrolled indices into wl stay constants
        if (k >= k0) acc = _mm256_fmadd_ps(tap<KC>(wl, wt, k), ld<Full>(xs + (k - k0) * D, mask), acc);
    return acc;
}

// Output rows [t0, t1) of one block of nd (1..8) channels starting at d0, batch item b.
template <int KC, bool Full>
JANUSDNA_AVX2 void fwd_block(const ConvParams<float>& p, float* out, int64_t b, int64_t d0, int nd, int64_t t0,
                             int64_t t1, const float* wt, __m256 bias) {
    const int64_t L = p.length, D = p.channels, K = KC > 0 ? KC : p.width;
    const __m256i mask = lane_mask(nd);
    __m256 wl[KC > 0 ? KC : 1];
    if constexpr (KC > 0) {
#pragma GCC unroll 8
        for (int k = 0; k < KC; ++k) wl[k] = _mm256_loadu_ps(wt + 8 * k);
    }
    const float* xb = p.x + b * L * D + d0; // row t at xb + t * D
    float* ob = out + b * L * D + d0;
    int64_t t = t0;
    for (; t < t1 && t < K - 1; ++t) { // head of the sequence: taps before time 0 are zero
        const int64_t k0 = K - 1 - t; // tap k0 reads time 0
        const __m256 pre = pre_act<KC, Full>(bias, wl, wt, K, k0, xb, D, mask);
        st<Full>(ob + t * D, silu_fast_ps(pre), mask);
    }
    for (; t + kStepsFwd <= t1; t += kStepsFwd) { // independent steps side by side, their sigmoids in lockstep
        __m256 pre[kStepsFwd], sig[kStepsFwd];
#pragma GCC unroll 8
        for (int u = 0; u < kStepsFwd; ++u)
            pre[u] = pre_act<KC, Full>(bias, wl, wt, K, 0, xb + (t + u - (K - 1)) * D, D, mask);
        sigmoid_lockstep<kStepsFwd>(pre, sig); // silu_fast_ps's operations: the same results
#pragma GCC unroll 8
        for (int u = 0; u < kStepsFwd; ++u) st<Full>(ob + (t + u) * D, _mm256_mul_ps(pre[u], sig[u]), mask);
    }
    for (; t < t1; ++t) {
        const __m256 pre = pre_act<KC, Full>(bias, wl, wt, K, 0, xb + (t - (K - 1)) * D, D, mask);
        st<Full>(ob + t * D, silu_fast_ps(pre), mask);
    }
}

// g = grad_out * silu'(pre), silu'(p) = s (1 + p (1 - s)) with s = sigmoid(p) given.
JANUSDNA_AVX2 inline __m256 grad_pre(__m256 pre, __m256 s, __m256 go) {
    const __m256 one = set1(1.0f);
    return _mm256_mul_ps(go, _mm256_mul_ps(s, _mm256_fmadd_ps(pre, _mm256_sub_ps(one, s), one)));
}

// grad_weight accumulator of tap k += g * x (registers when K is a compile-time constant, aw_mem [K][8] else).
template <int KC, bool Full>
JANUSDNA_AVX2 __attribute__((always_inline)) inline void acc_tap(__m256* al, float* aw_mem, int64_t k, __m256 gp,
                                                                 const float* xrow, __m256i mask) {
    if constexpr (KC > 0) al[k] = _mm256_fmadd_ps(gp, ld<Full>(xrow, mask), al[k]);
    else _mm256_storeu_ps(aw_mem + 8 * k, _mm256_fmadd_ps(gp, ld<Full>(xrow, mask), _mm256_loadu_ps(aw_mem + 8 * k)));
}

// U consecutive backward steps t .. t+U-1 past the head (every tap at time >= 0), side by side with their
// sigmoids' exps in lockstep: g into gbuf (at gh_t), the grad_bias and grad_weight accumulators updated.
template <int KC, bool Full, int U>
JANUSDNA_AVX2 __attribute__((always_inline)) inline void
bwd_steps(const float* xb, const float* gob, float* gh_t, int64_t t, int64_t D, int64_t K, __m256 bias,
          const __m256* wl, const float* wt, __m256* al, float* aw_mem, __m256& ab, bool need_w, __m256i mask) {
    __m256 pre[U], sig[U], gp[U];
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) pre[u] = pre_act<KC, Full>(bias, wl, wt, K, 0, xb + (t + u - (K - 1)) * D, D, mask);
    sigmoid_lockstep<U>(pre, sig);
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) gp[u] = grad_pre(pre[u], sig[u], ld<Full>(gob + (t + u) * D, mask));
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) _mm256_storeu_ps(gh_t + 8 * u, gp[u]), ab = _mm256_add_ps(ab, gp[u]);
    if (need_w) {
#pragma GCC unroll 8
        for (int64_t k = 0; k < K; ++k) {
            if constexpr (KC > 0) {
#pragma GCC unroll 8
                for (int u = 0; u < U; ++u)
                    acc_tap<KC, Full>(al, aw_mem, k, gp[u], xb + (t + u - (K - 1) + k) * D, mask);
            } else { // accumulators in memory: sum the U products first, then one read-modify-write
                __m256 sum = _mm256_mul_ps(gp[0], ld<Full>(xb + (t - (K - 1) + k) * D, mask));
#pragma GCC unroll 8
                for (int u = 1; u < U; ++u)
                    sum = _mm256_fmadd_ps(gp[u], ld<Full>(xb + (t + u - (K - 1) + k) * D, mask), sum);
                _mm256_storeu_ps(aw_mem + 8 * k, _mm256_add_ps(_mm256_loadu_ps(aw_mem + 8 * k), sum));
            }
        }
    }
}

// Per-block state of the backward that lives across chunks (and, for the sums, across batch items).
struct BwdBlockState {
    float* gbuf;    // [K-1 + max(kChunk, K-1)][8]: g of the previous K-1 steps, then of the current chunk
    double* acc_w;  // [K][8], grad_weight sums
    double* acc_b;  // [8], grad_bias sums
};

// Backward over rows [t0, t1) of one block of nd channels starting at d0, batch item b. aw_mem is [K][8] scratch
// for the generic-K path's grad_weight accumulators.
template <int KC, bool Full>
JANUSDNA_AVX2 void bwd_block(const ConvParams<float>& p, const ConvGrads<float>& g, int64_t b, int64_t d0, int nd,
                             int64_t t0, int64_t t1, const float* wt, __m256 bias, const BwdBlockState& bs,
                             float* aw_mem) {
    const int64_t L = p.length, D = p.channels, K = KC > 0 ? KC : p.width, T = t1 - t0;
    const __m256i mask = lane_mask(nd);
    const bool need_w = g.grad_weight != nullptr;
    __m256 wl[KC > 0 ? KC : 1], al[KC > 0 ? KC : 1];
    if constexpr (KC > 0) {
#pragma GCC unroll 8
        for (int k = 0; k < KC; ++k) wl[k] = _mm256_loadu_ps(wt + 8 * k), al[k] = _mm256_setzero_ps();
    } else {
        std::fill(aw_mem, aw_mem + 8 * K, 0.0f);
    }
    __m256 ab = _mm256_setzero_ps();
    const float* xb = p.x + b * L * D + d0;
    const float* gob = g.grad_out + b * L * D + d0;
    float* gh = bs.gbuf + 8 * (K - 1); // g of step t0 + j at gh + 8 j; gh - 8 (K-1) .. gh - 8 hold the K-1 before

    int64_t t = t0;
    for (; t < t1 && t < K - 1; ++t) { // head of the sequence: taps k < k0 read times before 0 (zero)
        const int64_t k0 = K - 1 - t;  // tap k0 reads time 0
        const __m256 pre = pre_act<KC, Full>(bias, wl, wt, K, k0, xb, D, mask);
        const __m256 gp = grad_pre(pre, sigmoid_fast_ps(pre), ld<Full>(gob + t * D, mask));
        _mm256_storeu_ps(gh + 8 * (t - t0), gp);
        ab = _mm256_add_ps(ab, gp);
        if (need_w) {
#pragma GCC unroll 8
            for (int64_t k = 0; k < K; ++k) // from 0: constant indices into al once unrolled
                if (k >= k0) acc_tap<KC, Full>(al, aw_mem, k, gp, xb + (k - k0) * D, mask);
        }
    }
    for (; t + kStepsBwd <= t1; t += kStepsBwd)
        bwd_steps<KC, Full, kStepsBwd>(xb, gob, gh + 8 * (t - t0), t, D, K, bias, wl, wt, al, aw_mem, ab, need_w, mask);
    for (; t < t1; ++t)
        bwd_steps<KC, Full, 1>(xb, gob, gh + 8 * (t - t0), t, D, K, bias, wl, wt, al, aw_mem, ab, need_w, mask);

    // Chunk sums into the double accumulators.
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, ab);
    for (int j = 0; j < nd; ++j) bs.acc_b[j] += lanes[j];
    if (need_w) {
        for (int64_t k = 0; k < K; ++k) {
            if constexpr (KC > 0) _mm256_store_ps(lanes, al[k]);
            else std::memcpy(lanes, aw_mem + 8 * k, sizeof lanes);
            for (int j = 0; j < nd; ++j) bs.acc_w[8 * k + j] += lanes[j];
        }
    }

    if (g.grad_x) {
        float* gxb = g.grad_x + b * L * D + d0;
        // grad_x[src] = sum_k w[k] g[src + K-1 - k]; with t = src + K-1 its last g is g[t], known now.
        for (int64_t t = std::max(t0, K - 1); t < t1; ++t) {
            const float* gt = gh + 8 * (t - t0); // g[t - k] at gt - 8 k
            __m256 gx = _mm256_mul_ps(tap<KC>(wl, wt, 0), _mm256_loadu_ps(gt));
#pragma GCC unroll 8
            for (int64_t k = 1; k < K; ++k) gx = _mm256_fmadd_ps(tap<KC>(wl, wt, k), _mm256_loadu_ps(gt - 8 * k), gx);
            st<Full>(gxb + (t - (K - 1)) * D, gx, mask);
        }
    }
    // Keep the last K-1 g as the next chunk's history (the buffer holds K-1 + T of them; may overlap when T < K-1).
    if (K > 1) std::memmove(bs.gbuf, bs.gbuf + 8 * T, sizeof(float) * 8 * (K - 1));

    if (g.grad_x && t1 == L && K > 1) {
        // Rows src in [L-(K-1), L): their later g (times >= L) are zero.
        float* gxb = g.grad_x + b * L * D + d0;
        std::fill(gh, gh + 8 * (K - 1), 0.0f);
        for (int64_t m = 0; m < K - 1; ++m) {
            const int64_t src = L - (K - 1) + m;
            if (src < 0) continue;
            const float* gt = gh + 8 * m; // g[L + m - k] at gt - 8 k
            __m256 gx = _mm256_mul_ps(tap<KC>(wl, wt, 0), _mm256_loadu_ps(gt));
#pragma GCC unroll 8
            for (int64_t k = 1; k < K; ++k) gx = _mm256_fmadd_ps(tap<KC>(wl, wt, k), _mm256_loadu_ps(gt - 8 * k), gx);
            st<Full>(gxb + src * D, gx, mask);
        }
    }
}

// Weights of channels [d_begin, d_end) transposed to [block][K][8] (lanes past d_end are 0), and the biases [block][8].
void transpose_weights(const ConvParams<float>& p, int64_t d_begin, int64_t d_end, std::vector<float>& wt,
                       std::vector<float>& bias) {
    const int64_t K = p.width, blocks = (d_end - d_begin + 7) / 8;
    wt.assign(blocks * K * 8, 0.0f);
    bias.assign(blocks * 8, 0.0f);
    for (int64_t d = d_begin; d < d_end; ++d) {
        const int64_t blk = (d - d_begin) / 8, j = (d - d_begin) % 8;
        for (int64_t k = 0; k < K; ++k) wt[(blk * K + k) * 8 + j] = p.weight[d * K + k];
        if (p.bias) bias[blk * 8 + j] = p.bias[d];
    }
}

template <int KC>
JANUSDNA_AVX2 void fwd_impl(const ConvParams<float>& p, float* out, int64_t b, int64_t d_begin, int64_t d_end) {
    const int64_t L = p.length, K = p.width, blocks = (d_end - d_begin + 7) / 8;
    std::vector<float> wt, bias;
    transpose_weights(p, d_begin, d_end, wt, bias);
    for (int64_t t0 = 0; t0 < L; t0 += kChunk) {
        const int64_t t1 = std::min(L, t0 + kChunk);
        for (int64_t blk = 0; blk < blocks; ++blk) {
            const int64_t d0 = d_begin + 8 * blk;
            const int nd = int(std::min<int64_t>(8, d_end - d0));
            const __m256 bv = _mm256_loadu_ps(&bias[blk * 8]);
            if (nd == 8) fwd_block<KC, true>(p, out, b, d0, nd, t0, t1, &wt[blk * K * 8], bv);
            else fwd_block<KC, false>(p, out, b, d0, nd, t0, t1, &wt[blk * K * 8], bv);
        }
    }
}

template <int KC>
JANUSDNA_AVX2 void bwd_impl(const ConvParams<float>& p, const ConvGrads<float>& g) {
    const int64_t Bn = p.batch, L = p.length, D = p.channels, K = p.width, blocks = (D + 7) / 8;
    std::vector<float> wt, bias;
    transpose_weights(p, 0, D, wt, bias);
    const int64_t gstride = 8 * (K - 1 + std::max<int64_t>(kChunk, K - 1));
    std::vector<float> gbuf(blocks * gstride, 0.0f), aw_mem(8 * K);
    std::vector<double> acc_w(blocks * K * 8, 0.0), acc_b(blocks * 8, 0.0);
    if (g.grad_x || g.grad_weight || g.grad_bias) {
        for (int64_t b = 0; b < Bn; ++b) {
            std::fill(gbuf.begin(), gbuf.end(), 0.0f); // no g before time 0
            for (int64_t t0 = 0; t0 < L; t0 += kChunk) {
                const int64_t t1 = std::min(L, t0 + kChunk);
                for (int64_t blk = 0; blk < blocks; ++blk) {
                    const int64_t d0 = 8 * blk;
                    const int nd = int(std::min<int64_t>(8, D - d0));
                    const BwdBlockState state{&gbuf[blk * gstride], &acc_w[blk * K * 8], &acc_b[blk * 8]};
                    const __m256 bv = _mm256_loadu_ps(&bias[blk * 8]);
                    const float* w = &wt[blk * K * 8];
                    if (nd == 8) bwd_block<KC, true>(p, g, b, d0, nd, t0, t1, w, bv, state, aw_mem.data());
                    else bwd_block<KC, false>(p, g, b, d0, nd, t0, t1, w, bv, state, aw_mem.data());
                }
            }
        }
    }
    for (int64_t d = 0; d < D; ++d) {
        const int64_t blk = d / 8, j = d % 8;
        if (g.grad_bias) g.grad_bias[d] = float(acc_b[blk * 8 + j]);
        if (g.grad_weight)
            for (int64_t k = 0; k < K; ++k) g.grad_weight[d * K + k] = float(acc_w[(blk * K + k) * 8 + j]);
    }
}

} // namespace

JANUSDNA_AVX2 void causal_conv1d_silu_fwd_avx2(const ConvParams<float>& p, float* out, int64_t b, int64_t d_begin,
                                               int64_t d_end) {
    if (d_end <= d_begin || p.length <= 0) return;
    switch (p.width) {
    case 2: fwd_impl<2>(p, out, b, d_begin, d_end); break;
    case 3: fwd_impl<3>(p, out, b, d_begin, d_end); break;
    case 4: fwd_impl<4>(p, out, b, d_begin, d_end); break;
    default: fwd_impl<0>(p, out, b, d_begin, d_end); break;
    }
}

JANUSDNA_AVX2 void causal_conv1d_silu_bwd_avx2(const ConvParams<float>& p, const ConvGrads<float>& g) {
    switch (p.width) {
    case 2: bwd_impl<2>(p, g); break;
    case 3: bwd_impl<3>(p, g); break;
    case 4: bwd_impl<4>(p, g); break;
    default: bwd_impl<0>(p, g); break;
    }
}

bool causal_conv1d_avx2_supported() { return avx2::cpu_has_avx2_fma(); }

} // namespace janusdna::kernels
