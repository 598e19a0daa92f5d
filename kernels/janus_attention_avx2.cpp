// AVX2 + FMA masked attention forward (float32); semantics in janus_attention.h, ground truth in
// janus_attention_ref.cpp.
//
// Flash-attention form: query rows go in blocks of kRows, keys in tiles of kKeys. Each key tile is packed once per
// row block as K^T and V^T ([d][kKeys], keys along the vector lanes), then every row of the block takes it in
// with an online softmax: scores for 8 keys per vector (d FMAs with q broadcast), the row's running max updated
// once per tile (rescaling the accumulators only when it grows), exp by polynomial, and acc[c] += p * V^T[c]
// with lane-wise partial sums reduced once per row at the end. Only tiles that the row block's allowed key ranges
// touch are visited (the Janus mask excludes about half of all (row, key) pairs), and per row only the allowed
// part of a tile is computed; lanes outside it are masked to -inf. Memory: the row block's state and two packed
// tiles, independent of T.
#include "janus_attention.h"
#include "simd_avx2.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace janusdna::kernels {
namespace {

using namespace avx2;

constexpr int64_t kRows = 64;  // query rows per block: their state (d + 1 vectors each) stays in L1/L2
constexpr int64_t kKeys = 128; // keys per tile: K^T and V^T tiles (2 * d * 128 floats) stay in L1

// A float buffer aligned to 32 bytes (std::vector<__m256> would not be: GCC drops the alignment attribute).
struct AlignedFloats {
    std::vector<float> storage;
    float* data = nullptr;
    explicit AlignedFloats(size_t n) : storage(n + 8, 0.0f) {
        data = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(storage.data()) + 31) & ~uintptr_t(31));
    }
};

// Running state of one query row: max m, lane-wise sum l and lane-wise accumulators acc[d] (all over keys).
struct RowState {
    float m;
    __m256* l;   // [1]
    __m256* acc; // [d]
};

// Lanes j0 .. j0+7 that fall inside [r.begin, r.end), as an all-ones mask.
JANUSDNA_AVX2 inline __m256 lanes_in(int64_t j0, const KeyRange& r) {
    const __m256i j = _mm256_add_epi32(_mm256_set1_epi32(int(j0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i ge = _mm256_cmpgt_epi32(j, _mm256_set1_epi32(int(r.begin) - 1));
    const __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(r.end)), j);
    return _mm256_castsi256_ps(_mm256_and_si256(ge, lt));
}

// One row against one packed key tile [k0, k0 + kKeys): the allowed keys of the row inside the tile are the
// ranges r[0], r[1] (already clipped to the tile, either may be empty; hull [lo, hi)). DH > 0 fixes d at compile
// time so q and the accumulators live in registers; DH = 0 takes any d.
template <int DH>
JANUSDNA_AVX2 void row_tile(const float* q_scaled, int64_t d_rt, const float* Kt, const float* Vt, int64_t k0,
                            const KeyRange r[2], int64_t lo, int64_t hi, RowState& st) {
    const int64_t d = DH > 0 ? DH : d_rt;
    constexpr int kMaxD = DH > 0 ? DH : 1;
    __m256 qv_fixed[kMaxD], acc_fixed[kMaxD];
    __m256* acc = DH > 0 ? acc_fixed : st.acc;
    if (DH > 0)
        for (int c = 0; c < DH; ++c) qv_fixed[c] = set1(q_scaled[c]), acc_fixed[c] = st.acc[c];

    // Scores of the vectors of 8 keys covering [lo, hi), starting at an 8-aligned offset inside the tile.
    __m256 s[kKeys / 8];
    const int64_t v0 = (lo - k0) / 8, v1 = (hi - k0 + 7) / 8;
    __m256 mx = set1(-std::numeric_limits<float>::infinity());
    for (int64_t vi = v0; vi < v1; ++vi) {
        const int64_t off = vi * 8, j0 = k0 + off;
        __m256 x = _mm256_setzero_ps();
        for (int64_t c = 0; c < d; ++c)
            x = _mm256_fmadd_ps(DH > 0 ? qv_fixed[c] : set1(q_scaled[c]), _mm256_load_ps(Kt + c * kKeys + off), x);
        const bool inside = (j0 >= r[0].begin && j0 + 8 <= r[0].end) || (j0 >= r[1].begin && j0 + 8 <= r[1].end);
        if (!inside) // boundary vector: keys outside the allowed ranges get -inf, i.e. probability 0
            x = _mm256_blendv_ps(set1(-std::numeric_limits<float>::infinity()), x,
                                 _mm256_or_ps(lanes_in(j0, r[0]), lanes_in(j0, r[1])));
        s[vi] = x;
        mx = _mm256_max_ps(mx, x);
    }
    // Online softmax: rescale what was summed so far only when the running max grows.
    const float m_tile = hmax(mx);
    if (m_tile > st.m) {
        const __m256 alpha = set1(std::exp(st.m - m_tile)); // exp(-inf) = 0 on the first tile
        *st.l = _mm256_mul_ps(*st.l, alpha);
        for (int64_t c = 0; c < d; ++c) acc[c] = _mm256_mul_ps(acc[c], alpha);
        st.m = m_tile;
    }
    const __m256 m = set1(st.m);
    __m256 l = *st.l;
    for (int64_t vi = v0; vi < v1; ++vi) {
        const __m256 pr = exp_ps(_mm256_sub_ps(s[vi], m)); // masked lanes: exp(-inf) = 0
        l = _mm256_add_ps(l, pr);
        for (int64_t c = 0; c < d; ++c) acc[c] = _mm256_fmadd_ps(pr, _mm256_load_ps(Vt + c * kKeys + vi * 8), acc[c]);
    }
    *st.l = l;
    if (DH > 0)
        for (int c = 0; c < DH; ++c) st.acc[c] = acc_fixed[c];
}

template <int DH>
JANUSDNA_AVX2 void fwd_rows(const AttentionParams<float>& p, float* out, float* lse, int64_t b, int64_t h,
                            int64_t i_begin, int64_t i_end) {
    const int64_t Tn = p.length, d = p.head_dim, hd = p.heads * d; // hd: stride between rows of [B, T, h, d]
    const float* q = p.q + (b * Tn * p.heads + h) * d;              // row i at q + i * hd
    const float* k = p.k + (b * Tn * p.heads + h) * d;
    const float* v = p.v + (b * Tn * p.heads + h) * d;
    AlignedFloats Kt(d * kKeys), Vt(d * kKeys), state(kRows * (d + 1) * 8), q_scaled(kRows * d);

    for (int64_t i0 = i_begin; i0 < i_end; i0 += kRows) {
        const int64_t rows = std::min(kRows, i_end - i0);
        // Per row: its key ranges; the block's hull of each range decides which tiles to visit.
        KeyRange ranges[kRows][2];
        KeyRange hull[2] = {{Tn, 0}, {Tn, 0}};
        std::vector<RowState> st(rows);
        for (int64_t r = 0; r < rows; ++r) {
            attention_key_ranges(p.mask, Tn, i0 + r, ranges[r]);
            for (int x = 0; x < 2; ++x)
                if (ranges[r][x].begin < ranges[r][x].end)
                    hull[x] = {std::min(hull[x].begin, ranges[r][x].begin), std::max(hull[x].end, ranges[r][x].end)};
            float* sr = state.data + r * (d + 1) * 8;
            std::fill(sr, sr + (d + 1) * 8, 0.0f);
            st[r] = {-std::numeric_limits<float>::infinity(), reinterpret_cast<__m256*>(sr),
                     reinterpret_cast<__m256*>(sr + 8)};
            for (int64_t c = 0; c < d; ++c) q_scaled.data[r * d + c] = p.scale * q[(i0 + r) * hd + c];
        }
        // Tile indices to visit: those of hull 0, then those of hull 1 not already visited.
        int64_t tile_lo[2], tile_hi[2];
        for (int x = 0; x < 2; ++x) {
            tile_lo[x] = hull[x].begin < hull[x].end ? hull[x].begin / kKeys : 0;
            tile_hi[x] = hull[x].begin < hull[x].end ? (hull[x].end - 1) / kKeys + 1 : 0;
        }
        if (tile_lo[1] < tile_hi[0]) tile_lo[1] = std::min(tile_hi[1], tile_hi[0]); // overlapping: skip repeats
        for (int x = 0; x < 2; ++x) {
            for (int64_t tile = tile_lo[x]; tile < tile_hi[x]; ++tile) {
                const int64_t k0 = tile * kKeys, k1 = std::min(Tn, k0 + kKeys);
                // Pack K^T, V^T of this tile: [d][kKeys], zero past the sequence end.
                for (int64_t j = k0; j < k0 + kKeys; ++j)
                    for (int64_t c = 0; c < d; ++c) {
                        Kt.data[c * kKeys + (j - k0)] = j < k1 ? k[j * hd + c] : 0.0f;
                        Vt.data[c * kKeys + (j - k0)] = j < k1 ? v[j * hd + c] : 0.0f;
                    }
                for (int64_t r = 0; r < rows; ++r) {
                    KeyRange clip[2];
                    int64_t lo = k1, hi = k0;
                    for (int y = 0; y < 2; ++y) {
                        clip[y] = {std::max(k0, ranges[r][y].begin), std::min(k1, ranges[r][y].end)};
                        if (clip[y].begin < clip[y].end) lo = std::min(lo, clip[y].begin), hi = std::max(hi, clip[y].end);
                    }
                    if (lo >= hi) continue; // the mask excludes this row from the whole tile
                    row_tile<DH>(q_scaled.data + r * d, d, Kt.data, Vt.data, k0, clip, lo, hi, st[r]);
                }
            }
        }
        // Normalise: out = acc / l, lse = m + log(l).
        for (int64_t r = 0; r < rows; ++r) {
            const float l = hsum(*st[r].l);
            float* o = out + ((b * Tn + i0 + r) * p.heads + h) * d;
            for (int64_t c = 0; c < d; ++c) o[c] = hsum(st[r].acc[c]) / l;
            lse[(b * p.heads + h) * Tn + i0 + r] = st[r].m + std::log(l);
        }
    }
}

// Backward of one row against one packed key tile (see row_tile for the arguments). With s = scale q.k (q_scaled
// holds scale * q), P = exp(s - lse), dP = dO.v and dS = P (dP - Di):
//   dq += dS k (lane-wise in dq_acc, times scale at the end), dk += dS * scale q, dv += P dO,
// with dk, dv accumulated transposed ([d][T], keys along lanes) in gKt, gVt.
template <int DH>
JANUSDNA_AVX2 void row_tile_bwd(const float* q_scaled, const float* dout, float lse, float Di, int64_t d_rt,
                                const float* Kt, const float* Vt, float* gKt, float* gVt, int64_t Tpad, int64_t k0,
                                const KeyRange r[2], int64_t lo, int64_t hi, __m256* dq_acc) {
    const int64_t d = DH > 0 ? DH : d_rt;
    const int64_t v0 = (lo - k0) / 8, v1 = (hi - k0 + 7) / 8;
    const __m256 vlse = set1(lse), vDi = set1(Di);
    for (int64_t vi = v0; vi < v1; ++vi) {
        const int64_t off = vi * 8, j0 = k0 + off;
        __m256 x = _mm256_setzero_ps(), dp = _mm256_setzero_ps();
        for (int64_t c = 0; c < d; ++c) {
            x = _mm256_fmadd_ps(set1(q_scaled[c]), _mm256_load_ps(Kt + c * kKeys + off), x);
            dp = _mm256_fmadd_ps(set1(dout[c]), _mm256_load_ps(Vt + c * kKeys + off), dp);
        }
        const bool inside = (j0 >= r[0].begin && j0 + 8 <= r[0].end) || (j0 >= r[1].begin && j0 + 8 <= r[1].end);
        if (!inside)
            x = _mm256_blendv_ps(set1(-std::numeric_limits<float>::infinity()), x,
                                 _mm256_or_ps(lanes_in(j0, r[0]), lanes_in(j0, r[1])));
        const __m256 P = exp_ps(_mm256_sub_ps(x, vlse));             // masked lanes: 0
        const __m256 dS = _mm256_mul_ps(P, _mm256_sub_ps(dp, vDi)); // masked lanes: 0
        for (int64_t c = 0; c < d; ++c) {
            dq_acc[c] = _mm256_fmadd_ps(dS, _mm256_load_ps(Kt + c * kKeys + off), dq_acc[c]);
            float* gk = gKt + c * Tpad + j0;
            float* gv = gVt + c * Tpad + j0;
            _mm256_storeu_ps(gk, _mm256_fmadd_ps(dS, set1(q_scaled[c]), _mm256_loadu_ps(gk)));
            _mm256_storeu_ps(gv, _mm256_fmadd_ps(P, set1(dout[c]), _mm256_loadu_ps(gv)));
        }
    }
}

template <int DH>
JANUSDNA_AVX2 void bwd_head(const AttentionParams<float>& p, const AttentionGrads<float>& g, int64_t b, int64_t h) {
    const int64_t Tn = p.length, d = p.head_dim, hd = p.heads * d;
    const int64_t base = (b * Tn * p.heads + h) * d; // row i of this (b, h) at base + i * hd
    const float *q = p.q + base, *k = p.k + base, *v = p.v + base;
    const float *dout = g.grad_out + base, *out = g.out + base, *lse = g.lse + (b * p.heads + h) * Tn;
    const int64_t Tpad = (Tn + kKeys - 1) / kKeys * kKeys + 8; // the last tile's vectors stay inside
    AlignedFloats Kt(d * kKeys), Vt(d * kKeys), gKt(d * Tpad), gVt(d * Tpad), dq(kRows * d * 8);
    AlignedFloats q_scaled(kRows * d), dout_rows(kRows * d);
    std::vector<float> Di(kRows);

    for (int64_t i0 = 0; i0 < Tn; i0 += kRows) {
        const int64_t rows = std::min(kRows, Tn - i0);
        KeyRange ranges[kRows][2];
        KeyRange hull[2] = {{Tn, 0}, {Tn, 0}};
        std::fill(dq.data, dq.data + kRows * d * 8, 0.0f);
        for (int64_t r = 0; r < rows; ++r) {
            attention_key_ranges(p.mask, Tn, i0 + r, ranges[r]);
            for (int x = 0; x < 2; ++x)
                if (ranges[r][x].begin < ranges[r][x].end)
                    hull[x] = {std::min(hull[x].begin, ranges[r][x].begin), std::max(hull[x].end, ranges[r][x].end)};
            double di = 0; // Di = dO . O = sum_j P_ij dP_ij
            for (int64_t c = 0; c < d; ++c) {
                q_scaled.data[r * d + c] = p.scale * q[(i0 + r) * hd + c];
                dout_rows.data[r * d + c] = dout[(i0 + r) * hd + c];
                di += double(dout[(i0 + r) * hd + c]) * out[(i0 + r) * hd + c];
            }
            Di[r] = float(di);
        }
        int64_t tile_lo[2], tile_hi[2];
        for (int x = 0; x < 2; ++x) {
            tile_lo[x] = hull[x].begin < hull[x].end ? hull[x].begin / kKeys : 0;
            tile_hi[x] = hull[x].begin < hull[x].end ? (hull[x].end - 1) / kKeys + 1 : 0;
        }
        if (tile_lo[1] < tile_hi[0]) tile_lo[1] = std::min(tile_hi[1], tile_hi[0]);
        for (int x = 0; x < 2; ++x) {
            for (int64_t tile = tile_lo[x]; tile < tile_hi[x]; ++tile) {
                const int64_t k0 = tile * kKeys, k1 = std::min(Tn, k0 + kKeys);
                for (int64_t j = k0; j < k0 + kKeys; ++j)
                    for (int64_t c = 0; c < d; ++c) {
                        Kt.data[c * kKeys + (j - k0)] = j < k1 ? k[j * hd + c] : 0.0f;
                        Vt.data[c * kKeys + (j - k0)] = j < k1 ? v[j * hd + c] : 0.0f;
                    }
                for (int64_t r = 0; r < rows; ++r) {
                    KeyRange clip[2];
                    int64_t lo = k1, hi = k0;
                    for (int y = 0; y < 2; ++y) {
                        clip[y] = {std::max(k0, ranges[r][y].begin), std::min(k1, ranges[r][y].end)};
                        if (clip[y].begin < clip[y].end) lo = std::min(lo, clip[y].begin), hi = std::max(hi, clip[y].end);
                    }
                    if (lo >= hi) continue;
                    row_tile_bwd<DH>(q_scaled.data + r * d, dout_rows.data + r * d, lse[i0 + r], Di[r], d, Kt.data,
                                     Vt.data, gKt.data, gVt.data, Tpad, k0, clip, lo, hi,
                                     reinterpret_cast<__m256*>(dq.data + r * d * 8));
                }
            }
        }
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < d; ++c)
                g.grad_q[base + (i0 + r) * hd + c] = p.scale * hsum(_mm256_load_ps(dq.data + (r * d + c) * 8));
    }
    for (int64_t j = 0; j < Tn; ++j)
        for (int64_t c = 0; c < d; ++c) {
            g.grad_k[base + j * hd + c] = gKt.data[c * Tpad + j];
            g.grad_v[base + j * hd + c] = gVt.data[c * Tpad + j];
        }
}

} // namespace

JANUSDNA_AVX2 void attention_fwd_avx2(const AttentionParams<float>& p, float* out, float* lse, int64_t b, int64_t h,
                                      int64_t i_begin, int64_t i_end) {
    switch (p.head_dim) {
    case 8: fwd_rows<8>(p, out, lse, b, h, i_begin, i_end); break;
    case 16: fwd_rows<16>(p, out, lse, b, h, i_begin, i_end); break;
    default: fwd_rows<0>(p, out, lse, b, h, i_begin, i_end); break;
    }
}

JANUSDNA_AVX2 void attention_bwd_avx2(const AttentionParams<float>& p, const AttentionGrads<float>& g, int64_t b,
                                      int64_t h) {
    switch (p.head_dim) {
    case 8: bwd_head<8>(p, g, b, h); break;
    case 16: bwd_head<16>(p, g, b, h); break;
    default: bwd_head<0>(p, g, b, h); break;
    }
}

bool attention_avx2_supported() { return avx2::cpu_has_avx2_fma(); }

} // namespace janusdna::kernels
