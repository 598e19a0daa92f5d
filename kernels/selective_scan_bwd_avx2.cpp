// AVX2 + FMA backward selective scan (float32); semantics in selective_scan.h, ground truth selective_scan_bwd_ref.
//
// Layout of the work, as in the forward (selective_scan_avx2.cpp): 8 channels per vector (one lane per channel d),
// B[t, n] and C[t, n] broadcast to all lanes, time in chunks of kChunk steps. The states are checkpointed:
//   1. the state at every chunk start ([chunks][N][8] per block) comes from the forward pass when it kept them
//      (chunk_states), else from a forward sweep over the whole sequence;
//   2. chunks then run last to first. For one chunk and one block of 8 channels, each group of G states is
//      recomputed from its checkpoint (states s_t and decays a_t = exp(dt_t A) kept in a small L1 buffer
//      [chunk][G][8]), then the reverse-time recurrence gs_t = gy_t C_t + a_{t+1} gs_{t+1} runs over the chunk,
//      its carry a_{t+1} gs_{t+1} kept per block from one chunk to the one before.
// Per (t, 8 channels) softplus(delta + bias), its derivative sigmoid(delta + bias), the D skip and the SiLU(z) gate
// are computed once and fused; the sums over states that grad_u and grad_delta need are accumulated per step over
// the groups, using
//   grad_u[t]  = gy D + dt sum_n gs[n] B[n]
//   grad_dt[t] = sum_n gs[n] (s_{t-1}[n] a_t[n]) A[n] + u sum_n gs[n] B[n].
// grad_B[t, n] and grad_C[t, n] (sums over channels) are reduced across the 8 lanes with hadd per step and G states
// and added into the output rows (zeroed first); grad_A, grad_D and grad_delta_bias (sums over time and batch) are
// summed lane-wise (grad_A in float within a chunk), in double across chunks and batch items, and written once.
// Differences from the reference: exp and softplus are polynomials (~2e-7 relative), sigmoid comes from softplus's exp,
// and the sums over states, over the 8 lanes / channel blocks and (grad_A) within a chunk are in float; gradients
// agree with the double reference to ~1e-5 relative to each gradient's largest magnitude (measured <= 9e-6 over
// N 1..16, D 1..64, L 1..1024, batch 1..3, with and without z / D / delta_bias, as close as the float reference).
// Work space: the checkpoints (D N L / 64 floats), ~33 KB of stack for the chunk buffers.
#include "selective_scan.h"
#include "selective_scan_avx2.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace janusdna::kernels {
namespace {

using namespace avx2;

constexpr int64_t kChunk = kScanChunk; // time steps per chunk: the chunk's B, C, grad_B, grad_C rows (4 * 64 * N floats,
                                // 16 KB at N = 16), the per-step vectors (16 KB) and the group's state and decay
                                // buffers (16 KB) stay in L1 / near L2 (32 and 128 steps measured the same)
constexpr int kG = 4;          // states per group, kept in registers (8 measured the same; more would spill)

// Per-step vectors of one block of 8 channels over one chunk.
struct StepVecs {
    __m256 dt[kChunk];   // softplus(delta + bias)
    __m256 dtu[kChunk];  // dt * u
    __m256 gy[kChunk];   // d loss / d y = grad_out * silu(z)
    __m256 gsB[kChunk];  // sum_n gs[n] B[n]
    __m256 gdtA[kChunk]; // sum_n gs[n] s_{t-1}[n] a_t[n] A[n]
    __m256 sig[kChunk];  // sigmoid(delta + bias) = d dt / d delta
    __m256 sz[kChunk];   // sigmoid(z), only when grad_z is needed
    __m256 y[kChunk];    // y (before the gate), only when grad_z is needed
};

// softplus(x), computed exactly as softplus_ps, and its derivative sigmoid(x) from the same exp(-|x|) = e:
// sigmoid(x) = (x < 0 ? e : 1) / (1 + e), which is exactly 1.0f above the reference's threshold 20 and 0 far below.
JANUSDNA_AVX2 inline __m256 softplus_sigmoid_ps(__m256 x, __m256& sig) {
    const __m256 one = set1(1.0f);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000)));
    const __m256 e = exp_ps(_mm256_or_ps(x, sign)); // exp(-|x|)
    sig = _mm256_div_ps(_mm256_blendv_ps(one, e, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ)), _mm256_add_ps(one, e));
    return softplus_from_exp(x, e);
}

JANUSDNA_AVX2 inline __m256 sigmoid_ps(__m256 x) {
    return _mm256_div_ps(set1(1.0f), _mm256_add_ps(set1(1.0f), exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// Lane sums of v[0 .. 3] as one 128-bit vector.
JANUSDNA_AVX2 inline __m128 reduce4(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// row[j] += sum of the lanes of v[j], j < G.
template <int G>
JANUSDNA_AVX2 inline void reduce_add(float* row, const __m256* v) {
    int j = 0;
    for (; j + 4 <= G; j += 4)
        _mm_storeu_ps(row + j, _mm_add_ps(_mm_loadu_ps(row + j), reduce4(v[j], v[j + 1], v[j + 2], v[j + 3])));
    for (; j < G; ++j) row[j] += hsum(v[j]);
}

// dst[0 .. 7] += v, in double.
JANUSDNA_AVX2 inline void add_to_double(double* dst, __m256 v) {
    _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    _mm256_storeu_pd(dst + 4, _mm256_add_pd(_mm256_loadu_pd(dst + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

// sum[0 .. 1] (8 doubles) += v.
JANUSDNA_AVX2 inline void add_lanes(__m256d* sum, __m256 v) {
    sum[0] = _mm256_add_pd(sum[0], _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    sum[1] = _mm256_add_pd(sum[1], _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

// dst[0 .. 7] += sum[0 .. 1].
JANUSDNA_AVX2 inline void add_to_double(double* dst, const __m256d* sum) {
    _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), sum[0]));
    _mm256_storeu_pd(dst + 4, _mm256_add_pd(_mm256_loadu_pd(dst + 4), sum[1]));
}

// Forward sweep: states n0 .. n0+G-1 of one block from s_in (chunk start) to s_out (next chunk's start), [N][8].
template <int G>
JANUSDNA_AVX2 void advance_states(const float* Bc, int64_t N, int64_t n0, int64_t T, const __m256* dt,
                                  const __m256* dtu, const float* A2_block, bool clamp, const float* s_in,
                                  float* s_out, float* abuf) {
    scan_decays<G>(n0, T, dt, A2_block, clamp, abuf);
    __m256 s[G];
    #pragma GCC unroll 8
    for (int j = 0; j < G; ++j) s[j] = _mm256_loadu_ps(s_in + 8 * (n0 + j));
    for (int64_t t = 0; t < T; ++t) {
        const float* Bt = Bc + t * N + n0;
        #pragma GCC unroll 8
        for (int j = 0; j < G; ++j)
            s[j] = _mm256_fmadd_ps(_mm256_load_ps(abuf + 8 * (t * G + j)), s[j], _mm256_mul_ps(dtu[t], set1(Bt[j])));
    }
    #pragma GCC unroll 8
    for (int j = 0; j < G; ++j) _mm256_storeu_ps(s_out + 8 * (n0 + j), s[j]);
}

// Recompute states n0 .. n0+G-1 over the chunk from the checkpoint s0 ([N][8]): sbuf[t + 1][j] = s_t, sbuf[0][j]
// = the chunk-start state, abuf[t][j] = a_t. Also adds sum_n s_t C_t to y (kY) and the lane sums of gy s_t to the
// grad_C rows gCc (kGC).
template <int G, bool kY, bool kGC>
JANUSDNA_AVX2 void recompute_states(const float* Bc, const float* Cc, int64_t N, int64_t n0, int64_t T,
                                    const __m256* dt, const __m256* dtu, const __m256* gy, __m256* y, float* gCc,
                                    const float* A2_block, bool clamp, const float* s0, float* sbuf, float* abuf) {
    scan_decays<G>(n0, T, dt, A2_block, clamp, abuf);
    __m256 s[G];
    #pragma GCC unroll 8
    for (int j = 0; j < G; ++j) {
        s[j] = _mm256_loadu_ps(s0 + 8 * (n0 + j));
        _mm256_store_ps(sbuf + 8 * j, s[j]);
    }
    for (int64_t t = 0; t < T; ++t) {
        const float* Bt = Bc + t * N + n0;
        const float* Ct = Cc + t * N + n0;
        __m256 acc = _mm256_setzero_ps(), gc[G];
        #pragma GCC unroll 8
        for (int j = 0; j < G; ++j) {
            s[j] = _mm256_fmadd_ps(_mm256_load_ps(abuf + 8 * (t * G + j)), s[j], _mm256_mul_ps(dtu[t], set1(Bt[j])));
            _mm256_store_ps(sbuf + 8 * ((t + 1) * G + j), s[j]);
            if (kY) acc = _mm256_fmadd_ps(s[j], set1(Ct[j]), acc);
            if (kGC) gc[j] = _mm256_mul_ps(gy[t], s[j]);
        }
        if (kY) y[t] = _mm256_add_ps(y[t], acc);
        if (kGC) reduce_add<G>(gCc + t * N + n0, gc);
    }
}

// Reverse-time recurrence of states n0 .. n0+G-1 over the chunk, last step first, from the buffers that
// recompute_states filled. carry ([N][8]) holds a_{t+1} gs_{t+1} at the chunk's end on entry and at its start on
// exit; the chunk's grad_A terms are added to accA ([N][8], double), the lane sums of gs dt u to the grad_B rows
// gBc (kGB), and the per-step sums over states to gsB and gdtA.
template <int G, bool kGB>
JANUSDNA_AVX2 void reverse_states(const float* Bc, const float* Cc, int64_t N, int64_t n0, int64_t T,
                                  const __m256* dt, const __m256* dtu, const __m256* gy, __m256* gsB, __m256* gdtA,
                                  float* gBc, const float* A_block, const float* sbuf, const float* abuf,
                                  float* carry, double* accA) {
    __m256 c[G], acc[G], A[G];
    #pragma GCC unroll 8
    for (int j = 0; j < G; ++j) {
        c[j] = _mm256_loadu_ps(carry + 8 * (n0 + j));
        A[j] = _mm256_loadu_ps(A_block + 8 * (n0 + j));
        acc[j] = _mm256_setzero_ps();
    }
    for (int64_t t = T - 1; t >= 0; --t) {
        const float* Bt = Bc + t * N + n0;
        const float* Ct = Cc + t * N + n0;
        __m256 sB = _mm256_setzero_ps(), sA = _mm256_setzero_ps(), gb[G];
        #pragma GCC unroll 8
        for (int j = 0; j < G; ++j) {
            const __m256 a = _mm256_load_ps(abuf + 8 * (t * G + j));
            const __m256 prev = _mm256_load_ps(sbuf + 8 * (t * G + j)); // s_{t-1}
            const __m256 gs = _mm256_fmadd_ps(gy[t], set1(Ct[j]), c[j]);
            const __m256 gspa = _mm256_mul_ps(gs, _mm256_mul_ps(prev, a));
            acc[j] = _mm256_fmadd_ps(gspa, dt[t], acc[j]);
            sA = _mm256_fmadd_ps(gspa, A[j], sA);
            sB = _mm256_fmadd_ps(gs, set1(Bt[j]), sB);
            c[j] = _mm256_mul_ps(a, gs);
            if (kGB) gb[j] = _mm256_mul_ps(gs, dtu[t]);
        }
        gsB[t] = _mm256_add_ps(gsB[t], sB);
        gdtA[t] = _mm256_add_ps(gdtA[t], sA);
        if (kGB) reduce_add<G>(gBc + t * N + n0, gb);
    }
    #pragma GCC unroll 8
    for (int j = 0; j < G; ++j) {
        _mm256_storeu_ps(carry + 8 * (n0 + j), c[j]);
        add_to_double(accA + 8 * (n0 + j), acc[j]);
    }
}

// Both passes for one group of G states, with the template flags picked once per group.
template <int G>
JANUSDNA_AVX2 void group_bwd(const float* Bc, const float* Cc, int64_t N, int64_t n0, int64_t T, StepVecs& v,
                             bool need_y, float* gBc, float* gCc, const float* A_block, const float* A2_block,
                             bool clamp, const float* s0, float* sbuf, float* abuf, float* carry, double* accA) {
    const __m256 *dt = v.dt, *dtu = v.dtu, *gy = v.gy;
    const float* A2 = A2_block; // (short for the four calls below)
    if (need_y) {
        if (gCc) recompute_states<G, true, true>(Bc, Cc, N, n0, T, dt, dtu, gy, v.y, gCc, A2, clamp, s0, sbuf, abuf);
        else recompute_states<G, true, false>(Bc, Cc, N, n0, T, dt, dtu, gy, v.y, gCc, A2, clamp, s0, sbuf, abuf);
    } else {
        if (gCc) recompute_states<G, false, true>(Bc, Cc, N, n0, T, dt, dtu, gy, v.y, gCc, A2, clamp, s0, sbuf, abuf);
        else recompute_states<G, false, false>(Bc, Cc, N, n0, T, dt, dtu, gy, v.y, gCc, A2, clamp, s0, sbuf, abuf);
    }
    if (gBc)
        reverse_states<G, true>(Bc, Cc, N, n0, T, dt, dtu, gy, v.gsB, v.gdtA, gBc, A_block, sbuf, abuf, carry, accA);
    else
        reverse_states<G, false>(Bc, Cc, N, n0, T, dt, dtu, gy, v.gsB, v.gdtA, gBc, A_block, sbuf, abuf, carry, accA);
}

} // namespace

JANUSDNA_AVX2 void selective_scan_bwd_avx2(const ScanParams<float>& p, const ScanGrads<float>& g,
                                           const float* chunk_states) {
    const int64_t Bn = p.batch, L = p.length, D = p.channels, N = p.states;
    const int64_t blocks = (D + 7) / 8, chunks = scan_chunks(L);
    const bool need_y = p.z && g.grad_z;
    if (g.grad_B) std::fill(g.grad_B, g.grad_B + Bn * L * N, 0.0f);
    if (g.grad_C) std::fill(g.grad_C, g.grad_C + Bn * L * N, 0.0f);

    // Per block: A transposed to [N][8 channels] (lanes past D are 0, so those lanes stay exactly 0 throughout),
    // the chunk-start states [chunks][N][8], the reverse carry [N][8], and the sums over time and batch in double.
    // A2 = log2(e) A for the decays, and per block its most negative entry.
    std::vector<float> A(blocks * N * 8, 0.0f), A2(blocks * N * 8, 0.0f), A2_min(blocks, 0.0f);
    std::vector<float> ckpt(blocks * chunks * N * 8), carry(blocks * N * 8);
    std::vector<double> accA(blocks * N * 8, 0.0), accD(blocks * 8, 0.0), accBias(blocks * 8, 0.0);
    for (int64_t k = 0; k < blocks; ++k)
        for (int64_t n = 0; n < N; ++n)
            for (int64_t j = 0; j < 8 && 8 * k + j < D; ++j) {
                const int64_t i = (k * N + n) * 8 + j;
                A[i] = p.A[(8 * k + j) * N + n];
                A2[i] = A[i] * 1.44269504088896341f;
                A2_min[k] = std::min(A2_min[k], A2[i]);
            }

    StepVecs v;
    alignas(32) float sbuf[(kChunk + 1) * kG * 8], abuf[kChunk * kG * 8];

    for (int64_t b = 0; b < Bn && chunks > 0; ++b) {
        // 1. The state at every chunk start: the forward's, else a forward sweep.
        if (chunk_states) {
            for (int64_t c = 0; c < chunks; ++c)
                for (int64_t d = 0; d < D; ++d)
                    for (int64_t n = 0; n < N; ++n)
                        ckpt[((d / 8 * chunks + c) * N + n) * 8 + d % 8] = chunk_states[((b * chunks + c) * D + d) * N + n];
        } else {
            for (int64_t k = 0; k < blocks; ++k) std::fill_n(&ckpt[k * chunks * N * 8], N * 8, 0.0f);
        }
        for (int64_t c = 0; c + 1 < chunks && !chunk_states; ++c) {
            const int64_t t0 = c * kChunk, T = kChunk; // every chunk but the last is full
            const float* Bc = p.B + (b * L + t0) * N;
            for (int64_t k = 0; k < blocks; ++k) {
                const int64_t d0 = 8 * k;
                const int nd = int(std::min<int64_t>(8, D - d0));
                const __m256i mask = lane_mask(nd);
                const __m256 bias = p.delta_bias ? load_n(p.delta_bias + d0, nd, mask) : _mm256_setzero_ps();
                __m256 dt_max = _mm256_setzero_ps();
                for (int64_t t = 0; t < T; ++t) {
                    const int64_t i = (b * L + t0 + t) * D + d0;
                    __m256 sig_unused; // (the same function as below, so the recomputed states match bit for bit)
                    v.dt[t] = softplus_sigmoid_ps(_mm256_add_ps(load_n(p.delta + i, nd, mask), bias), sig_unused);
                    v.dtu[t] = _mm256_mul_ps(v.dt[t], load_n(p.u + i, nd, mask));
                    dt_max = _mm256_max_ps(dt_max, v.dt[t]);
                }
                const float* A2_block = &A2[k * N * 8];
                const bool clamp = scan_needs_clamp(dt_max, A2_min[k]);
                const float* s_in = &ckpt[(k * chunks + c) * N * 8];
                float* s_out = &ckpt[(k * chunks + c + 1) * N * 8];
                int64_t n = 0;
                for (; n + kG <= N; n += kG) advance_states<kG>(Bc, N, n, T, v.dt, v.dtu, A2_block, clamp, s_in, s_out, abuf);
                for (; n < N; ++n) advance_states<1>(Bc, N, n, T, v.dt, v.dtu, A2_block, clamp, s_in, s_out, abuf);
            }
        }

        // 2. Chunks last to first: recompute, reverse recurrence, per-step gradients.
        std::fill(carry.begin(), carry.end(), 0.0f);
        for (int64_t c = chunks - 1; c >= 0; --c) {
            const int64_t t0 = c * kChunk, T = std::min(L, t0 + kChunk) - t0;
            const float* Bc = p.B + (b * L + t0) * N;
            const float* Cc = p.C + (b * L + t0) * N;
            float* gBc = g.grad_B ? g.grad_B + (b * L + t0) * N : nullptr;
            float* gCc = g.grad_C ? g.grad_C + (b * L + t0) * N : nullptr;
            for (int64_t k = 0; k < blocks; ++k) {
                const int64_t d0 = 8 * k;
                const int nd = int(std::min<int64_t>(8, D - d0));
                const __m256i mask = lane_mask(nd);
                const __m256 bias = p.delta_bias ? load_n(p.delta_bias + d0, nd, mask) : _mm256_setzero_ps();
                const __m256 skip = p.D ? load_n(p.D + d0, nd, mask) : _mm256_setzero_ps();
                __m256 dt_max = _mm256_setzero_ps();
                for (int64_t t = 0; t < T; ++t) {
                    const int64_t i = (b * L + t0 + t) * D + d0;
                    const __m256 u = load_n(p.u + i, nd, mask);
                    v.dt[t] = softplus_sigmoid_ps(_mm256_add_ps(load_n(p.delta + i, nd, mask), bias), v.sig[t]);
                    v.dtu[t] = _mm256_mul_ps(v.dt[t], u);
                    dt_max = _mm256_max_ps(dt_max, v.dt[t]);
                    __m256 gy = load_n(g.grad_out + i, nd, mask);
                    if (p.z) { // out = y silu(z): d/dy = gout z sigmoid(z)
                        const __m256 z = load_n(p.z + i, nd, mask), sz = sigmoid_ps(z);
                        gy = _mm256_mul_ps(gy, _mm256_mul_ps(z, sz));
                        if (need_y) v.sz[t] = sz;
                    }
                    v.gy[t] = gy;
                    v.gsB[t] = _mm256_setzero_ps();
                    v.gdtA[t] = _mm256_setzero_ps();
                    if (need_y) v.y[t] = _mm256_mul_ps(skip, u);
                }
                const float *A_block = &A[k * N * 8], *A2_block = &A2[k * N * 8];
                const bool clamp = scan_needs_clamp(dt_max, A2_min[k]);
                const float* s0 = &ckpt[(k * chunks + c) * N * 8];
                float* carry_k = &carry[k * N * 8];
                double* accA_k = &accA[k * N * 8];
                int64_t n = 0;
                for (; n + kG <= N; n += kG)
                    group_bwd<kG>(Bc, Cc, N, n, T, v, need_y, gBc, gCc, A_block, A2_block, clamp, s0, sbuf, abuf, carry_k, accA_k);
                for (; n < N; ++n)
                    group_bwd<1>(Bc, Cc, N, n, T, v, need_y, gBc, gCc, A_block, A2_block, clamp, s0, sbuf, abuf, carry_k, accA_k);

                // Per-step gradients of u, delta and z; chunk sums of grad_D and grad_delta_bias.
                // (Summed in double per step: these sums over time cancel heavily, and it costs little per 8 channels.)
                __m256d sum_D[2] = {_mm256_setzero_pd(), _mm256_setzero_pd()}, sum_bias[2] = {sum_D[0], sum_D[1]};
                for (int64_t t = 0; t < T; ++t) {
                    const int64_t i = (b * L + t0 + t) * D + d0;
                    const __m256 u = load_n(p.u + i, nd, mask);
                    const __m256 gy = v.gy[t];
                    add_lanes(sum_D, _mm256_mul_ps(gy, u));
                    if (g.grad_u)
                        store_n(g.grad_u + i, _mm256_fmadd_ps(v.dt[t], v.gsB[t], _mm256_mul_ps(gy, skip)), nd, mask);
                    const __m256 gdt = _mm256_fmadd_ps(u, v.gsB[t], v.gdtA[t]);
                    const __m256 gdelta = _mm256_mul_ps(gdt, v.sig[t]);
                    if (g.grad_delta) store_n(g.grad_delta + i, gdelta, nd, mask);
                    add_lanes(sum_bias, gdelta);
                    if (need_y) { // out = y silu(z): d/dz = gout y sz (1 + z (1 - sz))
                        const __m256 z = load_n(p.z + i, nd, mask), sz = v.sz[t], one = set1(1.0f);
                        const __m256 dsilu = _mm256_mul_ps(sz, _mm256_fmadd_ps(z, _mm256_sub_ps(one, sz), one));
                        const __m256 gz = _mm256_mul_ps(_mm256_mul_ps(load_n(g.grad_out + i, nd, mask), v.y[t]), dsilu);
                        store_n(g.grad_z + i, gz, nd, mask);
                    }
                }
                add_to_double(&accD[k * 8], sum_D);
                add_to_double(&accBias[k * 8], sum_bias);
            }
        }
    }

    // Sums over time and batch, written once (lanes past D are dropped).
    for (int64_t d = 0; d < D; ++d) {
        const int64_t k = d / 8, j = d % 8;
        if (g.grad_D) g.grad_D[d] = float(accD[k * 8 + j]);
        if (g.grad_delta_bias) g.grad_delta_bias[d] = float(accBias[k * 8 + j]);
        if (g.grad_A)
            for (int64_t n = 0; n < N; ++n) g.grad_A[d * N + n] = float(accA[(k * N + n) * 8 + j]);
    }
}

} // namespace janusdna::kernels
