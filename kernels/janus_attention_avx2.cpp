// AVX2 + FMA masked attention, forward and backward (float32); semantics in janus_attention.h, ground truth in
// janus_attention_ref.cpp.
//
// Flash-attention form, written as small GEMMs. Query rows go in blocks of kRows, keys in tiles of kKeys. For a
// (row block, key tile) pair the kernel computes the score tile S = (scale Q) K^T with a register-blocked GEMM
// micro-kernel (keys along the vector lanes) that also takes each row's max from its registers, masks it (only
// tiles that straddle a mask boundary pay for that, and for a second max pass), turns it into probabilities with an
// online softmax (running max per row; the accumulators are rescaled only when the max grows; four exps in
// lockstep, exp2_nonpos_lockstep), and adds P V into the row block's output with the same micro-kernel (head
// dims along the lanes). Head dims are padded to a multiple of 8 with zeros in the packed copies. Tiles that the Janus mask
// excludes for the whole row block are never visited (about half of all (row, key) pairs), so the work is that of
// the allowed pairs plus the boundary tiles. The score tile, the packed K^T/V tiles and the row block's state stay
// in L1/L2; memory is O(rows + keys) per call, never T x T.
//
// The backward (per batch item and head) goes key tile by key tile and, inside, over the row blocks that see the
// tile: it recomputes P from the stored per-row log-sum-exp, then dP = dO V^T, dS = P (dP - Di) with
// Di = dO . O, and accumulates dV^T += dO^T P and dK^T += (scale Q)^T dS in the tile's buffers and dQ += dS K in
// a [T, d] buffer: five GEMMs per pair on the same micro-kernel. Memory O(T d) per call.
#include "janus_attention.h"
#include "simd_avx2.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace janusdna::kernels {
namespace {

using namespace avx2;

constexpr int64_t kRows = 64; // query rows per block
constexpr int64_t kKeys = 64; // keys per tile (a multiple of 16)
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// A zero-filled float buffer aligned to 32 bytes (std::vector<__m256> would not be: GCC drops the alignment
// attribute in template arguments).
struct AlignedFloats {
    std::vector<float> storage;
    float* data = nullptr;
    explicit AlignedFloats(size_t n) : storage(n + 8, 0.0f) {
        data = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(storage.data()) + 31) & ~uintptr_t(31));
    }
};

// C[MR x 8 NV] (+)= A(m, k) B[k, :] over k < K, with A(m, k) = A[m * ars + k * acs] broadcast and B rows of
// 8 NV floats at stride ldb: the register block of the GEMM micro-kernel (MR * NV accumulators).
template <int MR, int NV>
__attribute__((always_inline)) JANUSDNA_AVX2 inline void micro_tile(int64_t K, const float* A, int64_t ars, int64_t acs, const float* B, int64_t ldb,
                                     float* C, int64_t ldc, bool accumulate) {
    // The unroll pragmas let GCC keep acc in registers at -O2 (without them the arrays live on the stack).
    __m256 acc[MR][NV];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            acc[r][v] = accumulate ? _mm256_loadu_ps(C + r * ldc + 8 * v) : _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int64_t k = 0; k < K; ++k) {
        __m256 b[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) b[v] = _mm256_loadu_ps(B + k * ldb + 8 * v);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
            const __m256 a = _mm256_broadcast_ss(A + r * ars + k * acs);
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) _mm256_storeu_ps(C + r * ldc + 8 * v, acc[r][v]);
}

// C[M x N] (+)= A B with A(m, k) = A[m * ars + k * acs], B [K x N] at row stride ldb, C at row stride ldc;
// N a multiple of 8. accumulate = false overwrites C. Columns go 24 at a time where they fit (4 x 3 blocks, see
// pv_gemm): the backward kernel 47.2 -> 50.1 GFLOP/s at L = 1,024, h = 8, d = 8.
JANUSDNA_AVX2 void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t acs, const float* B,
                        int64_t ldb, float* C, int64_t ldc, bool accumulate) {
    int64_t n = 0;
    for (; n + 24 <= N; n += 24) {
        int64_t m = 0;
        for (; m + 4 <= M; m += 4) micro_tile<4, 3>(K, A + m * ars, ars, acs, B + n, ldb, C + m * ldc + n, ldc, accumulate);
        for (; m < M; ++m) micro_tile<1, 3>(K, A + m * ars, ars, acs, B + n, ldb, C + m * ldc + n, ldc, accumulate);
    }
    for (; n + 16 <= N; n += 16) {
        int64_t m = 0;
        for (; m + 4 <= M; m += 4) micro_tile<4, 2>(K, A + m * ars, ars, acs, B + n, ldb, C + m * ldc + n, ldc, accumulate);
        for (; m < M; ++m) micro_tile<1, 2>(K, A + m * ars, ars, acs, B + n, ldb, C + m * ldc + n, ldc, accumulate);
    }
    for (; n < N; n += 8) {
        int64_t m = 0;
        for (; m + 8 <= M; m += 8) micro_tile<8, 1>(K, A + m * ars, ars, acs, B + n, ldb, C + m * ldc + n, ldc, accumulate);
        for (; m < M; ++m) micro_tile<1, 1>(K, A + m * ars, ars, acs, B + n, ldb, C + m * ldc + n, ldc, accumulate);
    }
}

// O^T [d x kRows] += V^T P^T over the tile's nk keys, in 4 x 3 blocks where they fit (12 accumulators: a 4 x 2
// block keeps eight FMA chains, one short of the ten that two pipes with a 5-cycle latency need; 4 x 3 uses all
// sixteen registers, 12 + 3 + 1), measured 3 % faster over the whole kernel than 4 x 2 (L = 1,024, h = 8, d = 8:
// 38.1 -> 39.4 GFLOP/s; bit-identical, the same sums in the same order). gemm() has the same blocks, but walks the
// columns in the outer loop; here each 4 rows of V^T serve all three column blocks in turn: 2 % faster again.
JANUSDNA_AVX2 void pv_gemm(int64_t d, int64_t nk, const float* V, int64_t hd, const float* Pt, float* Ot) {
    static_assert(kRows == 64);
    int64_t m = 0;
    for (; m + 4 <= d; m += 4) {
        micro_tile<4, 3>(nk, V + m, 1, hd, Pt, kRows, Ot + m * kRows, kRows, true);
        micro_tile<4, 3>(nk, V + m, 1, hd, Pt + 24, kRows, Ot + m * kRows + 24, kRows, true);
        micro_tile<4, 2>(nk, V + m, 1, hd, Pt + 48, kRows, Ot + m * kRows + 48, kRows, true);
    }
    for (; m < d; ++m)
        for (int64_t n = 0; n < kRows; n += 16) micro_tile<1, 2>(nk, V + m, 1, hd, Pt + n, kRows, Ot + m * kRows + n, kRows, true);
}

// Columns [0, 8 NV) of the forward's score tile (see score_gemm_max): four keys at a time, 4 x NV accumulators.
template <int NV>
__attribute__((always_inline)) JANUSDNA_AVX2 inline void score_cols_max(int64_t nk, int64_t d, const float* K, int64_t hd,
                                                                 const float* Qt, float* St, float* colmax) {
    __m256 mx[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) mx[v] = _mm256_set1_ps(kNegInf);
    int64_t m = 0;
    for (; m + 4 <= nk; m += 4) {
        __m256 acc[4][NV];
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int64_t k = 0; k < d; ++k) {
            __m256 b[NV];
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) b[v] = _mm256_loadu_ps(Qt + k * kRows + 8 * v);
#pragma GCC unroll 4
            for (int r = 0; r < 4; ++r) {
                const __m256 a = _mm256_broadcast_ss(K + (m + r) * hd + k);
#pragma GCC unroll 4
                for (int v = 0; v < NV; ++v) acc[r][v] = _mm256_fmadd_ps(a, b[v], acc[r][v]);
            }
        }
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r)
#pragma GCC unroll 4
            for (int v = 0; v < NV; ++v) _mm256_storeu_ps(St + (m + r) * kRows + 8 * v, acc[r][v]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
            mx[v] = _mm256_max_ps(mx[v], _mm256_max_ps(_mm256_max_ps(acc[0][v], acc[1][v]), _mm256_max_ps(acc[2][v], acc[3][v])));
    }
    for (; m < nk; ++m) {
        micro_tile<1, NV>(d, K + m * hd, hd, 1, Qt, kRows, St + m * kRows, kRows, false);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) mx[v] = _mm256_max_ps(mx[v], _mm256_loadu_ps(St + m * kRows + 8 * v));
    }
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(colmax + 8 * v, mx[v]);
}

// The forward's score tile: S^T [nk x kRows] = K (scale Q)^T as gemm(nk, kRows, d, K, hd, 1, Qt, kRows, St, kRows,
// false) computes it, and colmax[c] = the max over the nk keys of column c (row c of the block), taken from the
// accumulators before they are stored: the softmax then needs no separate pass over the tile for its max. The
// 64 columns go as 24 + 24 + 16: twelve accumulators where they fit (4 keys x 3 vectors), because with head dim 8
// the eight of a 4 x 2 block are eight FMA chains of only d links each and the two FMA pipes wait on their 5-cycle
// latency (4 x 3 measured 1-2 % faster over the whole kernel; the 4 x 2 loop with a column-max epilogue, in turn,
// had measured 1-2 % faster than micro_tile followed by a max pass).
JANUSDNA_AVX2 void score_gemm_max(int64_t nk, int64_t d, const float* K, int64_t hd, const float* Qt, float* St,
                                  float* colmax) {
    static_assert(kRows == 64);
    score_cols_max<3>(nk, d, K, hd, Qt, St, colmax);
    score_cols_max<3>(nk, d, K, hd, Qt + 24, St + 24, colmax + 24);
    score_cols_max<2>(nk, d, K, hd, Qt + 48, St + 48, colmax + 48);
}

// The key ranges of the rows of one block, and per range index the hull over the block's rows.
struct RowBlock {
    int64_t i0 = 0, rows = 0;
    KeyRange ranges[kRows][2];
    KeyRange hull[2];
    void set(AttentionMask mask, int64_t T, int64_t first, int64_t n) {
        i0 = first, rows = n;
        hull[0] = hull[1] = {T, 0};
        for (int64_t r = 0; r < rows; ++r) {
            attention_key_ranges(mask, T, i0 + r, ranges[r]);
            for (int x = 0; x < 2; ++x)
                if (ranges[r][x].begin < ranges[r][x].end)
                    hull[x] = {std::min(hull[x].begin, ranges[r][x].begin), std::max(hull[x].end, ranges[r][x].end)};
        }
    }
    // Key tiles [k0, k0 + kKeys) any row of the block may see, as two index ranges [lo[x], hi[x]) without repeats.
    void tiles(int64_t lo[2], int64_t hi[2]) const {
        for (int x = 0; x < 2; ++x) {
            lo[x] = hull[x].begin < hull[x].end ? hull[x].begin / kKeys : 0;
            hi[x] = hull[x].begin < hull[x].end ? (hull[x].end - 1) / kKeys + 1 : 0;
        }
        if (lo[1] < hi[0]) lo[1] = std::min(hi[1], hi[0]); // overlapping hulls: skip repeated tiles
    }
    bool sees(int64_t k0, int64_t k1) const {
        return (hull[0].begin < k1 && k0 < hull[0].end) || (hull[1].begin < k1 && k0 < hull[1].end);
    }
};

// Masks the score tile S [rows x kKeys] of keys [k0, k0 + kKeys) (keys >= k1 are past the end): every entry the
// mask disallows becomes -inf. active[r] says whether row r has any allowed key in the tile.
JANUSDNA_AVX2 void mask_tile(const RowBlock& blk, int64_t k0, int64_t k1, float* S, bool* active) {
    for (int64_t r = 0; r < blk.rows; ++r) {
        KeyRange clip[2];
        int64_t covered = 0;
        for (int y = 0; y < 2; ++y) {
            clip[y] = {std::max(k0, blk.ranges[r][y].begin) - k0, std::min(k1, blk.ranges[r][y].end) - k0};
            if (clip[y].end < clip[y].begin) clip[y].end = clip[y].begin;
            covered += clip[y].end - clip[y].begin;
        }
        active[r] = covered > 0;
        if (covered == kKeys) continue; // the whole tile is allowed (the ranges are disjoint)
        float* s = S + r * kKeys;
        // Allowed: the non-empty clipped ranges, in increasing order; everything else gets -inf.
        KeyRange keep[2];
        int n = 0;
        for (int y = 0; y < 2; ++y)
            if (clip[y].begin < clip[y].end) keep[n++] = clip[y];
        if (n == 2 && keep[1].begin < keep[0].begin) std::swap(keep[0], keep[1]);
        int64_t j = 0;
        for (int y = 0; y < n; ++y) {
            for (; j < keep[y].begin; ++j) s[j] = kNegInf;
            j = std::max(j, keep[y].end);
        }
        for (; j < kKeys; ++j) s[j] = kNegInf;
    }
}

// Packs rows [r0, r0 + n) of a [T, h, d] head slice (row stride hd) as [n, dp] (times `mul`, zero padded).
void pack_rows(const float* x, int64_t hd, int64_t d, int64_t dp, int64_t r0, int64_t n, int64_t valid_end,
               float mul, float* out) {
    for (int64_t r = 0; r < n; ++r) {
        float* o = out + r * dp;
        const int64_t i = r0 + r;
        for (int64_t c = 0; c < dp; ++c) o[c] = (i < valid_end && c < d) ? mul * x[i * hd + c] : 0.0f;
    }
}

// Packs rows [k0, k0 + kKeys) transposed as [dp, kKeys] (zero padded past k1 and d).
void pack_transposed(const float* x, int64_t hd, int64_t d, int64_t dp, int64_t k0, int64_t k1, float* out) {
    for (int64_t c = 0; c < dp; ++c)
        for (int64_t j = 0; j < kKeys; ++j)
            out[c * kKeys + j] = (c < d && k0 + j < k1) ? x[(k0 + j) * hd + c] : 0.0f;
}

// Forward, transposed: the row block's rows run along the vector lanes (8 rows per vector), so the score tile is
// S^T [keys, rows] = K (scale Q)^T, the running max, sum and rescaling are lane-wise (no horizontal reductions)
// and O^T [d, rows] += V^T P^T. K and V are read in place through broadcasts (no packing per tile); only the row
// block's Q^T is packed, once.
JANUSDNA_AVX2 void fwd_rows(const AttentionParams<float>& p, float* out, float* lse, int64_t b, int64_t h,
                            int64_t i_begin, int64_t i_end) {
    const int64_t Tn = p.length, d = p.head_dim, hd = p.heads * d; // hd: stride between rows of [B, T, h, d]
    const int64_t base = (b * Tn * p.heads + h) * d;
    const float *q = p.q + base, *k = p.k + base, *v = p.v + base;
    constexpr int64_t G = kRows / 8; // vectors of rows
    // Scores in log2 units (scale log2(e) q.k), so that the softmax's exponentials are exp2 (simd_avx2.h).
    const float scale2 = p.scale * 1.44269504088896341f;
    constexpr float kLn2 = 0.693147180559945309f;
    AlignedFloats Qt(d * kRows), St(kKeys * kRows), Ot(d * kRows), m(kRows), l(kRows), smax(kRows);
    alignas(32) int32_t lo0[kRows], hi0[kRows], lo1[kRows], hi1[kRows]; // each row's allowed key ranges
    RowBlock blk;

    for (int64_t i0 = i_begin; i0 < i_end; i0 += kRows) {
        const int64_t rows = std::min(kRows, i_end - i0);
        blk.set(p.mask, Tn, i0, rows);
        for (int64_t r = 0; r < kRows; ++r) { // rows past the end: no keys, zero query
            const bool real = r < rows;
            for (int64_t c = 0; c < d; ++c) Qt.data[c * kRows + r] = real ? scale2 * q[(i0 + r) * hd + c] : 0.0f;
            lo0[r] = real ? int32_t(blk.ranges[r][0].begin) : 0, hi0[r] = real ? int32_t(blk.ranges[r][0].end) : 0;
            lo1[r] = real ? int32_t(blk.ranges[r][1].begin) : 0, hi1[r] = real ? int32_t(blk.ranges[r][1].end) : 0;
        }
        // The keys every row allows through its first range, [cover[0], cover[1]), and through its second, [cover[2],
        // cover[3]) (the largest begin and the smallest end over the rows).
        int64_t cover[4] = {0, Tn, 0, Tn};
        for (int64_t r = 0; r < rows; ++r) {
            cover[0] = std::max<int64_t>(cover[0], lo0[r]), cover[1] = std::min<int64_t>(cover[1], hi0[r]);
            cover[2] = std::max<int64_t>(cover[2], lo1[r]), cover[3] = std::min<int64_t>(cover[3], hi1[r]);
        }
        std::fill(Ot.data, Ot.data + d * kRows, 0.0f);
        std::fill(m.data, m.data + kRows, kNegInf);
        std::fill(l.data, l.data + kRows, 0.0f);
        int64_t tile_lo[2], tile_hi[2];
        blk.tiles(tile_lo, tile_hi);
        for (int x = 0; x < 2; ++x) {
            for (int64_t tile = tile_lo[x]; tile < tile_hi[x]; ++tile) {
                const int64_t k0 = tile * kKeys, k1 = std::min(Tn, k0 + kKeys), nk = k1 - k0;
                score_gemm_max(nk, d, k + k0 * hd, hd, Qt.data, St.data, smax.data); // S^T = K (scale Q)^T, its max
                // Mask unless every row allows every key of the tile through the same one of its two ranges (a
                // tile that rows allow through different ranges is masked too: same result, more work).
                const bool full = rows == kRows && ((cover[0] <= k0 && k1 <= cover[1]) || (cover[2] <= k0 && k1 <= cover[3]));
                if (!full) {
                    for (int64_t g = 0; g < G; ++g) {
                        const __m256i a0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo0 + 8 * g));
                        const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi0 + 8 * g));
                        const __m256i a1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo1 + 8 * g));
                        const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi1 + 8 * g));
                        for (int64_t j = 0; j < nk; ++j) {
                            const __m256i key = _mm256_set1_epi32(int32_t(k0 + j));
                            // allowed: a0 <= key < b0 or a1 <= key < b1
                            const __m256i in0 = _mm256_andnot_si256(_mm256_cmpgt_epi32(a0, key), _mm256_cmpgt_epi32(b0, key));
                            const __m256i in1 = _mm256_andnot_si256(_mm256_cmpgt_epi32(a1, key), _mm256_cmpgt_epi32(b1, key));
                            float* sv = St.data + j * kRows + 8 * g;
                            _mm256_store_ps(sv, _mm256_blendv_ps(set1(kNegInf), _mm256_load_ps(sv),
                                                                 _mm256_castsi256_ps(_mm256_or_si256(in0, in1))));
                        }
                    }
                }
                // Online softmax, 8 rows at a time: P^T = exp(S^T - m) in place.
                for (int64_t g = 0; g < G; ++g) {
                    // The tile's max per row: from the score GEMM when nothing is masked, else over the allowed keys.
                    __m256 mx = _mm256_load_ps(smax.data + 8 * g);
                    if (!full) {
                        mx = set1(kNegInf);
#pragma GCC unroll 4
                        for (int64_t j = 0; j < nk; ++j) mx = _mm256_max_ps(mx, _mm256_load_ps(St.data + j * kRows + 8 * g));
                    }
                    const __m256 m_old = _mm256_load_ps(m.data + 8 * g), m_new = _mm256_max_ps(m_old, mx);
                    // Rows with no key so far keep m = -inf; subtracting 0 instead keeps exp(-inf - m) at 0, not NaN.
                    const __m256 m_use = _mm256_blendv_ps(m_new, _mm256_setzero_ps(),
                                                          _mm256_cmp_ps(m_new, set1(kNegInf), _CMP_EQ_OQ));
                    const __m256 alpha = exp2_nonpos_ps(_mm256_sub_ps(m_old, m_use)); // 1 unless the max grew; ~0 at first
                    for (int64_t c = 0; c < d; ++c) {
                        float* o = Ot.data + c * kRows + 8 * g;
                        _mm256_store_ps(o, _mm256_mul_ps(alpha, _mm256_load_ps(o)));
                    }
                    __m256 sum = _mm256_mul_ps(alpha, _mm256_load_ps(l.data + 8 * g));
                    // Two running sums, so that the adds' latency does not bound the loop; four exps in lockstep.
                    __m256 sum1 = _mm256_setzero_ps();
                    int64_t j = 0;
                    for (; j + 4 <= nk; j += 4) {
                        float* sv = St.data + j * kRows + 8 * g;
                        __m256 p[4];
#pragma GCC unroll 4
                        for (int i = 0; i < 4; ++i) p[i] = _mm256_sub_ps(_mm256_load_ps(sv + i * kRows), m_use); // masked: ~0
                        exp2_nonpos_lockstep<4>(p);
#pragma GCC unroll 4
                        for (int i = 0; i < 4; ++i) _mm256_store_ps(sv + i * kRows, p[i]);
                        sum = _mm256_add_ps(sum, p[0]), sum1 = _mm256_add_ps(sum1, p[1]);
                        sum = _mm256_add_ps(sum, p[2]), sum1 = _mm256_add_ps(sum1, p[3]);
                    }
                    for (; j + 2 <= nk; j += 2) {
                        float* sv = St.data + j * kRows + 8 * g;
                        const __m256 p0 = exp2_nonpos_ps(_mm256_sub_ps(_mm256_load_ps(sv), m_use)); // masked: ~0
                        const __m256 p1 = exp2_nonpos_ps(_mm256_sub_ps(_mm256_load_ps(sv + kRows), m_use));
                        _mm256_store_ps(sv, p0), _mm256_store_ps(sv + kRows, p1);
                        sum = _mm256_add_ps(sum, p0), sum1 = _mm256_add_ps(sum1, p1);
                    }
                    if (j < nk) {
                        float* sv = St.data + j * kRows + 8 * g;
                        const __m256 p0 = exp2_nonpos_ps(_mm256_sub_ps(_mm256_load_ps(sv), m_use));
                        _mm256_store_ps(sv, p0);
                        sum = _mm256_add_ps(sum, p0);
                    }
                    sum = _mm256_add_ps(sum, sum1);
                    _mm256_store_ps(l.data + 8 * g, sum);
                    _mm256_store_ps(m.data + 8 * g, m_new);
                }
                pv_gemm(d, nk, v + k0 * hd, hd, St.data, Ot.data); // O^T += V^T P^T
            }
        }
        // Normalise: out = O / l, lse = m ln 2 + log(l) (m is in log2 units). Every row allows at least its own
        // position, so l > 0.
        for (int64_t r = 0; r < rows; ++r) {
            float* o = out + base + (i0 + r) * hd;
            const float inv = 1.0f / l.data[r];
            for (int64_t c = 0; c < d; ++c) o[c] = Ot.data[c * kRows + r] * inv;
            lse[(b * p.heads + h) * Tn + i0 + r] = m.data[r] * kLn2 + std::log(l.data[r]);
        }
    }
}

JANUSDNA_AVX2 void bwd_head(const AttentionParams<float>& p, const AttentionGrads<float>& g, int64_t b, int64_t h) {
    const int64_t Tn = p.length, d = p.head_dim, hd = p.heads * d;
    const int64_t dp = (d + 7) / 8 * 8;
    const int64_t base = (b * Tn * p.heads + h) * d; // row i of this (b, h) at base + i * hd
    const float *q = p.q + base, *k = p.k + base, *v = p.v + base;
    const float *dout = g.grad_out + base, *out = g.out + base, *lse = g.lse + (b * p.heads + h) * Tn;
    const int64_t blocks = (Tn + kRows - 1) / kRows, Tr = blocks * kRows;

    // Per head, packed once: scale Q and dO as [Tr, dp], Di = dO . O per row, and the dQ accumulator.
    AlignedFloats Q(Tr * dp), dO(Tr * dp), dQ(Tr * dp);
    std::vector<float> Di(Tr, 0.0f);
    pack_rows(q, hd, d, dp, 0, Tr, Tn, p.scale, Q.data);
    pack_rows(dout, hd, d, dp, 0, Tr, Tn, 1.0f, dO.data);
    for (int64_t i = 0; i < Tn; ++i) {
        double di = 0;
        for (int64_t c = 0; c < d; ++c) di += double(dout[i * hd + c]) * out[i * hd + c];
        Di[i] = float(di);
    }
    std::vector<RowBlock> blk(blocks);
    for (int64_t x = 0; x < blocks; ++x) blk[x].set(p.mask, Tn, x * kRows, std::min(kRows, Tn - x * kRows));

    AlignedFloats Kt(dp * kKeys), K(kKeys * dp), Vt(dp * kKeys), S(kRows * kKeys), dP(kRows * kKeys);
    AlignedFloats dKt(dp * kKeys), dVt(dp * kKeys);
    bool active[kRows];
    for (int64_t k0 = 0; k0 < Tn; k0 += kKeys) {
        const int64_t k1 = std::min(Tn, k0 + kKeys);
        pack_transposed(k, hd, d, dp, k0, k1, Kt.data);
        pack_rows(k, hd, d, dp, k0, kKeys, k1, 1.0f, K.data);
        pack_transposed(v, hd, d, dp, k0, k1, Vt.data);
        std::fill(dKt.data, dKt.data + dp * kKeys, 0.0f);
        std::fill(dVt.data, dVt.data + dp * kKeys, 0.0f);
        for (int64_t x = 0; x < blocks; ++x) {
            const RowBlock& rb = blk[x];
            if (!rb.sees(k0, k1)) continue;
            const int64_t rows = rb.rows;
            const float* Qb = Q.data + rb.i0 * dp;
            const float* dOb = dO.data + rb.i0 * dp;
            gemm(rows, kKeys, dp, Qb, dp, 1, Kt.data, kKeys, S.data, kKeys, false);   // S = (scale Q) K^T
            gemm(rows, kKeys, dp, dOb, dp, 1, Vt.data, kKeys, dP.data, kKeys, false); // dP = dO V^T
            mask_tile(rb, k0, k1, S.data, active);
            for (int64_t r = 0; r < rows; ++r) {
                float *s = S.data + r * kKeys, *dp_row = dP.data + r * kKeys;
                if (!active[r]) {
                    std::fill(s, s + kKeys, 0.0f);
                    std::fill(dp_row, dp_row + kKeys, 0.0f);
                    continue;
                }
                const __m256 vl = set1(lse[rb.i0 + r]), vd = set1(Di[rb.i0 + r]);
                static_assert(kKeys % 32 == 0);
                for (int64_t j = 0; j < kKeys; j += 32) { // P = exp(S - lse) = exp2(log2(e) (S - lse)), 4 in lockstep
                    __m256 P[4];
#pragma GCC unroll 4
                    for (int i = 0; i < 4; ++i)
                        P[i] = _mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(s + j + 8 * i), vl), set1(1.44269504088896341f));
                    exp2_nonpos_lockstep<4>(P); // masked: 0
#pragma GCC unroll 4
                    for (int i = 0; i < 4; ++i) {
                        _mm256_store_ps(s + j + 8 * i, P[i]);
                        _mm256_store_ps(dp_row + j + 8 * i, _mm256_mul_ps(P[i], _mm256_sub_ps(_mm256_load_ps(dp_row + j + 8 * i), vd)));
                    }
                }
            }
            // S holds P, dP holds dS.
            gemm(dp, kKeys, rows, dOb, 1, dp, S.data, kKeys, dVt.data, kKeys, true);  // dV^T += dO^T P
            gemm(dp, kKeys, rows, Qb, 1, dp, dP.data, kKeys, dKt.data, kKeys, true);  // dK^T += (scale Q)^T dS
            gemm(rows, dp, kKeys, dP.data, kKeys, 1, K.data, dp, dQ.data + rb.i0 * dp, dp, true); // dQ += dS K
        }
        for (int64_t j = k0; j < k1; ++j)
            for (int64_t c = 0; c < d; ++c) {
                g.grad_k[base + j * hd + c] = dKt.data[c * kKeys + (j - k0)];
                g.grad_v[base + j * hd + c] = dVt.data[c * kKeys + (j - k0)];
            }
    }
    for (int64_t i = 0; i < Tn; ++i)
        for (int64_t c = 0; c < d; ++c) g.grad_q[base + i * hd + c] = p.scale * dQ.data[i * dp + c];
}

} // namespace

JANUSDNA_AVX2 void attention_fwd_avx2(const AttentionParams<float>& p, float* out, float* lse, int64_t b, int64_t h,
                                      int64_t i_begin, int64_t i_end) {
    fwd_rows(p, out, lse, b, h, i_begin, i_end);
}

JANUSDNA_AVX2 void attention_bwd_avx2(const AttentionParams<float>& p, const AttentionGrads<float>& g, int64_t b,
                                      int64_t h) {
    bwd_head(p, g, b, h);
}

bool attention_avx2_supported() { return avx2::cpu_has_avx2_fma(); }

} // namespace janusdna::kernels
