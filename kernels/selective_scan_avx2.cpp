// AVX2 + FMA forward selective scan (float32); semantics in selective_scan.h, ground truth in selective_scan_ref.cpp.
//
// Layout of the work: 8 channels per vector (one lane per channel d), the N states of those 8 channels as N
// vectors, B[t, n] and C[t, n] broadcast to all lanes. softplus(delta + bias), the D skip and the SiLU gate are
// computed once per (t, 8 channels) and fused into the same pass, so each input is read once and out written once.
// Time runs in chunks of kChunk steps with every channel block inside a chunk, so the chunk's B and C rows stay in
// L1 while all channel blocks reuse them; the states of each block wait in a small buffer between chunks.
// Differences from the reference: exp and softplus are polynomials (~2e-7 relative) and the sum over states is in float,
// so outputs agree with the reference to ~1e-6 relative to the output's scale.
#include "selective_scan.h"
#include "selective_scan_avx2.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace janusdna::kernels {
namespace {

using namespace avx2;

constexpr int64_t kChunk = kScanChunk; // time steps per chunk: B and C rows (2 * 64 * N floats, 8 KB at N = 16)
                                       // and the per-step vectors (6 KB) stay in L1 while every channel block uses them

// G states (n0 .. n0+G-1) of one block of 8 channels over the chunk's T time steps: first every decay of the
// chunk into an L1 buffer (scan_decays), then the recurrence s_t = a_t s_{t-1} + dt_t u_t B_t with each step's
// partial sum over these states added to y[t]. The unroll pragmas keep s in registers at -O2.
template <int G>
JANUSDNA_AVX2 void scan_states(const float* Bc, const float* Cc, int64_t N, int64_t n0, int64_t T, const __m256* dt,
                               const __m256* dtu, __m256* y, const float* A_block, bool clamp, float* state) {
    alignas(32) float a[kChunk * G * 8]; // [T][G][8] decays, 8 KB at G = 4
    scan_decays<G>(n0, T, dt, A_block, clamp, a);
    __m256 s[G];
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j) s[j] = _mm256_loadu_ps(state + 8 * (n0 + j));
    for (int64_t t = 0; t < T; ++t) {
        const float* Bt = Bc + t * N + n0; // B[b, t0 + t, n0 ..]
        const float* Ct = Cc + t * N + n0;
        __m256 acc = _mm256_setzero_ps();
#pragma GCC unroll 8
        for (int j = 0; j < G; ++j) {
            s[j] = _mm256_fmadd_ps(_mm256_load_ps(a + 8 * (t * G + j)), s[j], _mm256_mul_ps(dtu[t], set1(Bt[j])));
            acc = _mm256_fmadd_ps(s[j], set1(Ct[j]), acc);
        }
        y[t] = _mm256_add_ps(y[t], acc);
    }
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j) _mm256_storeu_ps(state + 8 * (n0 + j), s[j]);
}

// One block of up to 8 channels [d0, d0 + nd) over time steps [t0, t1), t1 - t0 <= kChunk. A_min: the block's
// most negative log2(e) A.
JANUSDNA_AVX2 void scan_block(const ScanParams<float>& p, float* out, int64_t b, int64_t d0, int nd, int64_t t0,
                              int64_t t1, const float* A_block, float A_min, float* state) {
    const int64_t L = p.length, D = p.channels, N = p.states, T = t1 - t0;
    const __m256i mask = lane_mask(nd);
    const __m256 bias = p.delta_bias ? load_n(p.delta_bias + d0, nd, mask) : _mm256_setzero_ps();
    const __m256 skip = p.D ? load_n(p.D + d0, nd, mask) : _mm256_setzero_ps();
    __m256 dt[kChunk], dtu[kChunk], y[kChunk]; // per step of the chunk, [8 channels] each

    // delta: read, or computed from the low-rank dt (sum_r low[t, r] W[d, r], the block's W columns as R vectors).
    if (p.delta) {
        for (int64_t t = 0; t < T; ++t) dt[t] = load_n(p.delta + (b * L + t0 + t) * D + d0, nd, mask);
    } else {
        const int64_t R = p.rank;
        __m256 W[kScanMaxRank];
        alignas(32) float col[8];
        for (int64_t r = 0; r < R; ++r) {
            for (int j = 0; j < 8; ++j) col[j] = j < nd ? p.delta_weight[(d0 + j) * R + r] : 0.0f;
            W[r] = _mm256_load_ps(col);
        }
        for (int64_t t = 0; t < T; ++t) {
            const float* low = p.delta_low + (b * L + t0 + t) * R;
            __m256 d = _mm256_setzero_ps();
            for (int64_t r = 0; r < R; ++r) d = _mm256_fmadd_ps(set1(low[r]), W[r], d);
            dt[t] = d;
        }
    }
    // softplus(delta + bias) once per (t, channel), and the skip term that starts y.
    __m256 dt_max = _mm256_setzero_ps();
    for (int64_t t = 0; t < T; ++t) {
        const int64_t i = (b * L + t0 + t) * D + d0; // element (b, t0 + t, d0) of a [B, L, D] array
        const __m256 u = load_n(p.u + i, nd, mask);
        dt[t] = softplus_ps(_mm256_add_ps(dt[t], bias));
        dt_max = _mm256_max_ps(dt_max, dt[t]);
        dtu[t] = _mm256_mul_ps(dt[t], u);
        y[t] = _mm256_mul_ps(skip, u);
    }
    const float* Bc = p.B + (b * L + t0) * N; // [T, N] rows of this chunk
    const float* Cc = p.C + (b * L + t0) * N;
    const bool clamp = scan_needs_clamp(dt_max, A_min);
    int64_t n = 0;
    for (; n + 4 <= N; n += 4) scan_states<4>(Bc, Cc, N, n, T, dt, dtu, y, A_block, clamp, state);
    for (; n < N; ++n) scan_states<1>(Bc, Cc, N, n, T, dt, dtu, y, A_block, clamp, state);
    // Gate and store.
    for (int64_t t = 0; t < T; ++t) {
        const int64_t i = (b * L + t0 + t) * D + d0;
        __m256 yt = y[t];
        if (p.z) yt = _mm256_mul_ps(yt, silu_fast_ps(load_n(p.z + i, nd, mask)));
        store_n(out + i, yt, nd, mask);
    }
}

} // namespace

JANUSDNA_AVX2 void selective_scan_fwd_avx2(const ScanParams<float>& p, float* out, int64_t b, int64_t d_begin,
                                           int64_t d_end, float* chunk_states) {
    const int64_t L = p.length, N = p.states;
    const int64_t blocks = (d_end - d_begin + 7) / 8;
    // Per block: log2(e) A (the decay exp(dt A) is computed as exp2(dt log2(e) A)) transposed to [N][8 channels]
    // (lanes past the block's end are 0) and the running states [N][8].
    // Plain float storage: std::vector<__m256> would drop the 32-byte alignment (GCC ignores the vector attribute
    // in template arguments), so both are read and written with unaligned loads.
    std::vector<float> A(blocks * N * 8, 0.0f), state(blocks * N * 8, 0.0f);
    for (int64_t k = 0; k < blocks; ++k)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t j = 0; j < 8 && d_begin + 8 * k + j < d_end; ++j)
                A[(k * N + n) * 8 + j] = p.A[(d_begin + 8 * k + j) * N + n] * 1.44269504088896341f; // log2(e) A
    std::vector<float> A_min(blocks, 0.0f);
    for (int64_t k = 0; k < blocks; ++k)
        for (int64_t i = 0; i < N * 8; ++i) A_min[k] = std::min(A_min[k], A[k * N * 8 + i]);
    const int64_t D = p.channels, chunks = scan_chunks(L);
    for (int64_t t0 = 0; t0 < L; t0 += kChunk) {
        const int64_t t1 = std::min(L, t0 + kChunk);
        for (int64_t k = 0; k < blocks; ++k) {
            const int64_t d0 = d_begin + 8 * k;
            const int nd = int(std::min<int64_t>(8, d_end - d0));
            if (chunk_states) { // the state entering this chunk, [N][8] -> rows d0 .. of [B, chunks, D, N]
                float* cs = chunk_states + ((b * chunks + t0 / kChunk) * D + d0) * N;
                for (int j = 0; j < nd; ++j)
                    for (int64_t n = 0; n < N; ++n) cs[j * N + n] = state[(k * N + n) * 8 + j];
            }
            scan_block(p, out, b, d0, nd, t0, t1, &A[k * N * 8], A_min[k], &state[k * N * 8]);
        }
    }
}

bool selective_scan_avx2_supported() { return avx2::cpu_has_avx2_fma(); }

} // namespace janusdna::kernels
