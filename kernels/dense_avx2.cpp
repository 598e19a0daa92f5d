// AVX2 + FMA dense layers (float32); semantics in dense.h, ground truth in dense_ref.cpp.
//
// One register block serves all three GEMM shapes: R <= 6 rows of x (read in place through row pointers, so a
// gathered expert batch needs no copy) times one packed weight panel of 16 output columns, over all K. Each k
// loads the panel's two vectors and broadcasts one value per row: 12 FMAs for 8 loads, so the block runs on the
// FMA ports. The block's 6 x 16 results go through a small aligned buffer to the epilogue (bias, SiLU gate,
// scale and accumulate); at K >= 32 that costs under 5 % of the FMAs.
#include "dense.h"
#include "simd_avx2.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace janusdna::kernels {
namespace {

using namespace avx2;

constexpr int kRowBlock = 6;
constexpr int64_t kPanel = 16; // output columns per packed panel

// The register block: out[r][0..16) = sum_k A(r, k) * panel[k * ldp + 0..16) for r < R, k < K, with A(r, k) read
// through `a` (rows of x by pointer for the forward GEMMs, a strided matrix for the weight gradient). 12
// accumulators, 8 loads and 12 FMAs per k.
struct RowPointers { // A(r, k) = xr[r][k]
    const float* const* xr;
    __attribute__((always_inline)) const float* at(int r, int64_t k) const { return xr[r] + k; }
};
struct Strided { // A(r, k) = a[k * lda + r]
    const float* a;
    int64_t lda;
    __attribute__((always_inline)) const float* at(int r, int64_t k) const { return a + k * lda + r; }
};

// Where a register block stores its results: row r's columns 0..8 at v0 + r * ld, 8..16 at v1 + r * ld.
struct Dest {
    float* v0;
    float* v1;
    int64_t ld;
};
// The block's aligned [R][16] buffer, for an epilogue to read.
inline Dest to_buffer(float (*out)[kPanel]) { return Dest{out[0], out[0] + 8, kPanel}; }

// V = 2 computes all 16 columns; V = 1 only the first 8 (a panel whose columns past 8 are padding: half the FMAs).
template <int R, int V, class Operand>
__attribute__((always_inline)) JANUSDNA_AVX2 inline void block_tile(Operand a, int64_t K, const float* panel, int64_t ldp,
                                                                    Dest out) {
    __m256 acc[R][V];
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) acc[r][v] = _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int64_t k = 0; k < K; ++k) {
        __m256 b[V];
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) b[v] = _mm256_loadu_ps(panel + k * ldp + 8 * v);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
            const __m256 x = _mm256_broadcast_ss(a.at(r, k));
#pragma GCC unroll 2
            for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(x, b[v], acc[r][v]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) _mm256_storeu_ps((v ? out.v1 : out.v0) + r * out.ld, acc[r][v]);
}

// block_tile for R = 1..6 rows.
template <int V, class Operand>
__attribute__((always_inline)) JANUSDNA_AVX2 inline void block_rows(int R, Operand a, int64_t K, const float* panel,
                                                                    int64_t ldp, Dest out) {
    switch (R) {
    case 6: block_tile<6, V>(a, K, panel, ldp, out); break;
    case 5: block_tile<5, V>(a, K, panel, ldp, out); break;
    case 4: block_tile<4, V>(a, K, panel, ldp, out); break;
    case 3: block_tile<3, V>(a, K, panel, ldp, out); break;
    case 2: block_tile<2, V>(a, K, panel, ldp, out); break;
    default: block_tile<1, V>(a, K, panel, ldp, out); break;
    }
}

// The forward GEMMs: rows of x by pointer, over a packed [K][16] panel; cols: the panel's columns in use (at
// most 8: only out[r][0..8) is computed).
// (The destination comes as three scalars, in registers: a Dest passed by value went through the stack, stored as
// two 8-byte halves and reloaded as one 16-byte vector, a store-forwarding stall on every call.)
JANUSDNA_AVX2 void tile_rows(int R, const float* const* xr, int64_t K, const float* panel, float* v0, float* v1,
                             int64_t ld, int64_t cols) {
    if (cols <= 8) block_rows<1>(R, RowPointers{xr}, K, panel, kPanel, Dest{v0, v1, ld});
    else block_rows<2>(R, RowPointers{xr}, K, panel, kPanel, Dest{v0, v1, ld});
}
JANUSDNA_AVX2 void tile_rows(int R, const float* const* xr, int64_t K, const float* panel, float (*out)[kPanel],
                             int64_t cols = kPanel) {
    tile_rows(R, xr, K, panel, out[0], out[0] + 8, kPanel, cols);
}

// The weight gradient: A(r, m) = a[m * lda + r] over M rows, the panel's rows ldp apart.
JANUSDNA_AVX2 void strided_rows(int R, const float* a, int64_t lda, int64_t M, const float* panel, int64_t ldp,
                                float (*out)[kPanel]) {
    block_rows<2>(R, Strided{a, lda}, M, panel, ldp, to_buffer(out));
}

// x[i] = the 8 N floats at g, s[i] = their sigmoids (sigmoid_lockstep): the GEMM's epilogue had run its SiLUs
// one after another.
template <int N>
__attribute__((always_inline)) JANUSDNA_AVX2 inline void load_sigmoid_lockstep(const float* g, __m256* x, __m256* s) {
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) x[i] = _mm256_loadu_ps(g + 8 * i);
    sigmoid_lockstep<N>(x, s);
}

// h[i] = silu(g[i]) u[i] for 8 N floats.
template <int N>
__attribute__((always_inline)) JANUSDNA_AVX2 inline void silu_mul_lockstep(const float* g, const float* u, float* h) {
    __m256 x[N], s[N];
    load_sigmoid_lockstep<N>(g, x, s);
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) _mm256_storeu_ps(h + 8 * i, _mm256_mul_ps(_mm256_mul_ps(x[i], s[i]), _mm256_loadu_ps(u + 8 * i)));
}

// The SwiGLU activation's backward for 8 N columns: dg = dh u silu'(g), du = dh silu(g), silu'(g) = s + g s (1 - s).
template <int N>
__attribute__((always_inline)) JANUSDNA_AVX2 inline void swiglu_grad_lockstep(const float* g, const float* u, const float* dh,
                                                                              float* dg, float* du) {
    __m256 gv[N], s[N];
    load_sigmoid_lockstep<N>(g, gv, s);
#pragma GCC unroll 8
    for (int j = 0; j < N; ++j) {
        const __m256 uv = _mm256_loadu_ps(u + 8 * j), d = _mm256_loadu_ps(dh + 8 * j);
        const __m256 gs = _mm256_mul_ps(gv[j], s[j]);
        const __m256 dsilu = _mm256_fmadd_ps(gs, _mm256_sub_ps(set1(1.0f), s[j]), s[j]);
        _mm256_storeu_ps(dg + 8 * j, _mm256_mul_ps(_mm256_mul_ps(d, uv), dsilu));
        _mm256_storeu_ps(du + 8 * j, _mm256_mul_ps(d, gs));
    }
}

// One row of the activation's backward: g, u = gu[0, I), gu[I, 2I); dg, du into dgu the same way.
JANUSDNA_AVX2 void swiglu_grad_rows(const float* gu, const float* dh, int64_t inter, float* dgu) {
    const float* u = gu + inter;
    float* du = dgu + inter;
    int64_t i = 0;
    for (; i + 32 <= inter; i += 32) swiglu_grad_lockstep<4>(gu + i, u + i, dh + i, dgu + i, du + i);
    for (; i < inter; i += 8) {
        const int n = static_cast<int>(std::min<int64_t>(8, inter - i));
        const __m256i mask = lane_mask(n);
        const __m256 gv = load_n(gu + i, n, mask), uv = load_n(u + i, n, mask), d = load_n(dh + i, n, mask);
        const __m256 s = sigmoid_fast_ps(gv);
        const __m256 gs = _mm256_mul_ps(gv, s);                             // silu(g)
        const __m256 dsilu = _mm256_fmadd_ps(gs, _mm256_sub_ps(set1(1.0f), s), s); // silu'(g) = s + gs (1 - s)
        store_n(dgu + i, _mm256_mul_ps(_mm256_mul_ps(d, uv), dsilu), n, mask);
        store_n(du + i, _mm256_mul_ps(d, gs), n, mask);
    }
}

// Packs columns [c0, c0 + n) of W^T (W [N, K] row-major) into lanes [lane0, lane0 + width) of rows [0, Kpad) of a
// [Kpad][16] panel, zero past n columns and K rows (every lane it owns is written: the panel is not zeroed first).
// W's element (c, k) is at W[c * sc + k * sk] (sc = K, sk = 1 for a row-major [N, K]).
// Rows r[0..8) transposed in place: r[t][i] becomes the old r[i][t].
JANUSDNA_AVX2 inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {
        u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
    }
}

JANUSDNA_AVX2 void pack_columns(const float* W, int64_t sc, int64_t sk, int64_t K, int64_t Kpad, int64_t c0, int64_t n,
                                int64_t width, float* panel, int64_t lane0) {
    int64_t k0 = 0;
    if (sk == 1 && n == width && width % 8 == 0) { // row-major columns, all in use: 8 x 8 blocks transposed
        for (; k0 + 8 <= K; k0 += 8)
            for (int64_t j0 = 0; j0 < width; j0 += 8) {
                __m256 r[8];
                for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(W + (c0 + j0 + i) * sc + k0); // column j0 + i, k0..k0+8
                transpose8(r);
                for (int t = 0; t < 8; ++t) _mm256_storeu_ps(panel + (k0 + t) * kPanel + lane0 + j0, r[t]);
            }
    }
    for (int64_t k = k0; k < Kpad; ++k)
        for (int64_t j = 0; j < width; ++j)
            panel[k * kPanel + lane0 + j] = k < K && j < n ? W[(c0 + j) * sc + k * sk] : 0.0f;
}

} // namespace

bool dense_avx2_supported() { return avx2::cpu_has_avx2_fma(); }

void pack_linear_avx2(PackedLinear& p, const float* weight, int64_t out, int64_t in, int64_t stride_out, int64_t stride_in) {
    p.in = in, p.out = out;
    const int64_t panels = (out + kPanel - 1) / kPanel;
    p.panels.resize(static_cast<size_t>(panels * in * kPanel));
    for (int64_t q = 0; q < panels; ++q)
        pack_columns(weight, stride_out, stride_in, in, in, q * kPanel, std::min(kPanel, out - q * kPanel), kPanel,
                     p.panels.data() + q * in * kPanel, 0);
}

PackedLinear pack_linear_avx2(const float* weight, int64_t out, int64_t in) {
    PackedLinear p;
    pack_linear_avx2(p, weight, out, in, in, 1);
    return p;
}

void pack_mlp_avx2(PackedMlp& p, const float* gate, const float* up, const float* down, int64_t hidden, int64_t inter) {
    p.hidden = hidden, p.inter = inter, p.inter_pad = (inter + 7) / 8 * 8;
    const int64_t H = hidden, Ip = p.inter_pad;
    p.gate_up.resize(static_cast<size_t>(Ip / 8 * H * kPanel));
    for (int64_t q = 0; q < Ip / 8; ++q) {
        const int64_t n = std::min<int64_t>(8, inter - 8 * q);
        pack_columns(gate, H, 1, H, H, 8 * q, n, 8, p.gate_up.data() + q * H * kPanel, 0);
        pack_columns(up, H, 1, H, H, 8 * q, n, 8, p.gate_up.data() + q * H * kPanel, 8);
    }
    // Down: W_down [H, I] packed over K = I_pad (rows past I are zero, as h is zero there).
    const int64_t panels = (H + kPanel - 1) / kPanel;
    p.down.resize(static_cast<size_t>(panels * Ip * kPanel));
    for (int64_t q = 0; q < panels; ++q)
        pack_columns(down, inter, 1, inter, Ip, q * kPanel, std::min(kPanel, H - q * kPanel), kPanel,
                     p.down.data() + q * Ip * kPanel, 0);
}

PackedMlp pack_mlp_avx2(const float* gate, const float* up, const float* down, int64_t hidden, int64_t inter) {
    PackedMlp p;
    pack_mlp_avx2(p, gate, up, down, hidden, inter);
    return p;
}

JANUSDNA_AVX2 void linear_avx2(const LinearParams<float>& p, const PackedLinear& w, int64_t r0, int64_t r1) {
    const int64_t N = p.out, K = p.in, panels = (N + kPanel - 1) / kPanel;
    alignas(32) float out[kRowBlock][kPanel];
    const float* xr[kRowBlock];
    for (int64_t m = r0; m < r1; m += kRowBlock) {
        const int R = static_cast<int>(std::min<int64_t>(kRowBlock, r1 - m));
        for (int r = 0; r < R; ++r) xr[r] = p.x + (m + r) * p.ldx;
        for (int64_t q = 0; q < panels; ++q) {
            const int64_t cols = std::min(kPanel, N - q * kPanel);
            if (!p.bias && !p.residual && (cols == kPanel || cols == 8)) { // nothing to add: store into y directly
                float* y = p.y + m * p.ldy + q * kPanel;
                tile_rows(R, xr, K, w.panels.data() + q * K * kPanel, y, y + 8, p.ldy, cols);
                continue;
            }
            tile_rows(R, xr, K, w.panels.data() + q * K * kPanel, out, cols);
            for (int v = 0; v < 2; ++v) {
                const int64_t c = q * kPanel + 8 * v;
                const int n = static_cast<int>(std::min<int64_t>(8, N - c));
                if (n <= 0) break;
                const __m256i mask = lane_mask(n);
                const __m256 b = p.bias ? load_n(p.bias + c, n, mask) : _mm256_setzero_ps();
                for (int r = 0; r < R; ++r) {
                    __m256 o = _mm256_add_ps(_mm256_load_ps(out[r] + 8 * v), b);
                    if (p.residual) o = _mm256_add_ps(o, load_n(p.residual + (m + r) * p.ldr + c, n, mask));
                    store_n(p.y + (m + r) * p.ldy + c, o, n, mask);
                }
            }
        }
    }
}

JANUSDNA_AVX2 void swiglu_bwd_avx2(const float* dy, int64_t lddy, const PackedLinear& down_t, const float* gu, float* dgu,
                                  int64_t r0, int64_t r1) {
    const int64_t H = down_t.in, I = down_t.out, panels = (I + kPanel - 1) / kPanel, Ip = panels * kPanel;
    // The row block's dh, [R][Ip]: every panel's GEMM first, then the activation's backward over whole rows, four
    // vectors at a time (per panel, two vectors in lockstep ran 8 % slower than the unfused pair of kernels).
    std::vector<float> buf(static_cast<size_t>(kRowBlock * Ip + 8));
    float* dh = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buf.data()) + 31) & ~uintptr_t(31));
    const float* xr[kRowBlock];
    for (int64_t m = r0; m < r1; m += kRowBlock) {
        const int R = static_cast<int>(std::min<int64_t>(kRowBlock, r1 - m));
        for (int r = 0; r < R; ++r) xr[r] = dy + (m + r) * lddy;
        for (int64_t q = 0; q < panels; ++q)
            tile_rows(R, xr, H, down_t.panels.data() + q * H * kPanel, dh + q * kPanel, dh + q * kPanel + 8, Ip,
                      std::min(kPanel, I - q * kPanel));
        for (int r = 0; r < R; ++r)
            swiglu_grad_rows(gu + (m + r) * 2 * I, dh + r * Ip, I, dgu + (m + r) * 2 * I);
    }
}

JANUSDNA_AVX2 void swiglu_mlp_avx2(const MlpParams<float>& p, const PackedMlp& w, int64_t r0, int64_t r1) {
    const int64_t H = p.hidden, Ip = w.inter_pad, panels = (H + kPanel - 1) / kPanel;
    // h: the row block's [R][Ip] activations; g, u: its gate and up outputs, [R][Ip] each.
    std::vector<float> hbuf(static_cast<size_t>(3 * kRowBlock * Ip + 8));
    float *h = hbuf.data(), *gb = h + kRowBlock * Ip, *ub = gb + kRowBlock * Ip;
    alignas(32) float out[kRowBlock][kPanel];
    const float* xr[kRowBlock];
    const float* hr[kRowBlock];
    for (int64_t m = r0; m < r1; m += kRowBlock) {
        const int R = static_cast<int>(std::min<int64_t>(kRowBlock, r1 - m));
        int64_t rows[kRowBlock];
        for (int r = 0; r < R; ++r) {
            rows[r] = p.index ? p.index[m + r] : m + r;
            xr[r] = p.x + rows[r] * p.ldx;
            hr[r] = h + r * Ip;
        }
        // h = silu(x W_gate^T) * (x W_up^T), 8 columns of each per panel: the GEMM first, then the SiLUs of the
        // whole block four vectors at a time (between the panels one by one, they ran at about half that speed).
        for (int64_t q = 0; q < Ip / 8; ++q) tile_rows(R, xr, H, w.gate_up.data() + q * H * kPanel, gb + 8 * q, ub + 8 * q, Ip, kPanel);
        for (int r = 0; r < R; ++r) {
            int64_t i = 0;
            for (; i + 32 <= Ip; i += 32) silu_mul_lockstep<4>(gb + r * Ip + i, ub + r * Ip + i, h + r * Ip + i);
            for (; i < Ip; i += 8) silu_mul_lockstep<1>(gb + r * Ip + i, ub + r * Ip + i, h + r * Ip + i);
        }
        // y (+)= scale * h W_down^T.
        for (int64_t q = 0; q < panels; ++q) {
            tile_rows(R, hr, Ip, w.down.data() + q * Ip * kPanel, out, H - q * kPanel);
            for (int v = 0; v < 2; ++v) {
                const int64_t c = q * kPanel + 8 * v;
                const int n = static_cast<int>(std::min<int64_t>(8, H - c));
                if (n <= 0) break;
                const __m256i mask = lane_mask(n);
                for (int r = 0; r < R; ++r) {
                    __m256 o = _mm256_load_ps(out[r] + 8 * v);
                    if (p.scale) o = _mm256_mul_ps(o, set1(p.scale[m + r]));
                    float* y = p.y + rows[r] * p.ldy + c;
                    if (p.accumulate) o = _mm256_add_ps(load_n(y, n, mask), o);
                    if (p.residual) o = _mm256_add_ps(o, load_n(p.residual + rows[r] * p.ldr + c, n, mask));
                    store_n(y, o, n, mask);
                }
            }
        }
    }
}

JANUSDNA_AVX2 void weight_grad_avx2(const WeightGradParams<float>& p) {
    const int64_t M = p.rows, N = p.out, K = p.in;
    // The panels run over the wider of N and K (fewer padded lanes, and the broadcast side is the narrower
    // matrix, which stays in cache): out(q, c) = sum_m Q[m, q] P[m, c].
    const bool panel_k = K >= N;
    const int64_t P = panel_k ? K : N, Q = panel_k ? N : K;
    const float* pm = panel_k ? p.x : p.dy;
    const float* qm = panel_k ? p.dy : p.x;
    const int64_t ldp = panel_k ? p.ldx : p.lddy, ldq = panel_k ? p.lddy : p.ldx;
    // Per chunk of rows and 16-lane panel of the wider side (read in place, or packed and zero padded when
    // partial), the 6 x 16 register block over the chunk's rows for each block of the other side, both read in
    // place (packing the broadcast side as well measured 10-20 % slower), the block's sums added into acc.
    constexpr int64_t kChunk = 256;
    // Q in blocks of at most 6 split as evenly as possible (32 = 6 + 6 + 5 + 5 + 5 + 5, not 5 x 6 + 2: a block of
    // two rows has four accumulators, too few to cover the FMA latency, and costs nearly a full block's time).
    const int64_t qblocks = (Q + kRowBlock - 1) / kRowBlock, Ppad = (P + kPanel - 1) / kPanel * kPanel;
    auto block_start = [&](int64_t b) { return Q * b / qblocks; };
    // acc: the sums as [Q][Ppad], added into dw at the end.
    std::vector<float> buf(static_cast<size_t>(kChunk * kPanel + Q * Ppad + 8), 0.0f);
    float* panel = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(buf.data()) + 31) & ~uintptr_t(31));
    float* acc = panel + kChunk * kPanel;
    alignas(32) float out[kRowBlock][kPanel];
    for (int64_t m0 = 0; m0 < M; m0 += kChunk) {
        const int64_t mc = std::min(kChunk, M - m0);
        for (int64_t c0 = 0; c0 < P; c0 += kPanel) {
            const int64_t nc = std::min(kPanel, P - c0);
            const __m256i mask0 = lane_mask(static_cast<int>(std::min<int64_t>(8, nc)));
            const __m256i mask1 = lane_mask(static_cast<int>(std::max<int64_t>(0, nc - 8)));
            // A full panel is read in place; a partial one is packed (rows [m0, m0 + mc), zero padded).
            const float* pan = pm + m0 * ldp + c0;
            int64_t ldpan = ldp;
            if (nc < kPanel) {
                for (int64_t m = 0; m < mc; ++m) {
                    const float* src = pm + (m0 + m) * ldp + c0;
                    _mm256_store_ps(panel + m * kPanel, nc >= 8 ? _mm256_loadu_ps(src) : _mm256_maskload_ps(src, mask0));
                    _mm256_store_ps(panel + m * kPanel + 8, _mm256_maskload_ps(src + 8, mask1));
                }
                pan = panel, ldpan = kPanel;
            }
            for (int64_t b = 0; b < qblocks; ++b) {
                const int64_t q0 = block_start(b);
                const int R = static_cast<int>(block_start(b + 1) - q0);
                strided_rows(R, qm + m0 * ldq + q0, ldq, mc, pan, ldpan, out);
                for (int r = 0; r < R; ++r) {
                    float* a = acc + (q0 + r) * Ppad + c0;
                    _mm256_store_ps(a, _mm256_add_ps(_mm256_load_ps(a), _mm256_load_ps(out[r])));
                    _mm256_store_ps(a + 8, _mm256_add_ps(_mm256_load_ps(a + 8), _mm256_load_ps(out[r] + 8)));
                }
            }
        }
    }
    for (int64_t q = 0; q < Q; ++q)
        for (int64_t c = 0; c < P; ++c) {
            float& w = panel_k ? p.dw[q * K + c] : p.dw[c * K + q];
            w = (p.accumulate ? w : 0.0f) + acc[q * Ppad + c];
        }
}

// Lane r = the sum of v[r]'s 8 lanes, for 8 vectors at once (one reduction tree instead of eight hsums).
JANUSDNA_AVX2 inline __m256 hsum8(const __m256 v[8]) {
    const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3])); // rows 0-3, per 128-bit half
    const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7])); // rows 4-7
    return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

// 1 / sqrt(sum / D + eps) of eight rows' per-lane sums of squares (lane r: row r), and of one row's.
JANUSDNA_AVX2 inline __m256 inv_rms8(const __m256 ss[8], int64_t D, float eps) {
    const __m256 mean = _mm256_div_ps(hsum8(ss), set1(static_cast<float>(D)));
    return _mm256_div_ps(set1(1.0f), _mm256_sqrt_ps(_mm256_add_ps(mean, set1(eps))));
}
// The sum of v's 8 lanes in hsum8's order, ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): a row gets the same
// bits whether it falls in a group of eight or in the tail, so a window's output does not depend on the rows
// (other windows of a batch) beside it.
JANUSDNA_AVX2 inline float hsum_tree(__m256 v) {
    const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(v, v), _mm256_hadd_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
}
JANUSDNA_AVX2 inline float inv_rms1(__m256 ss, int64_t D, float eps) {
    return 1.0f / std::sqrt(hsum_tree(ss) / static_cast<float>(D) + eps);
}

// RMSNorm of one row with its 1 / rms given; Full: D is a multiple of 8 (no masked tail).
template <bool Full>
JANUSDNA_AVX2 inline void rmsnorm_scale_row(const float* x, const float* weight, int64_t D, __m256 inv, float* y) {
    for (int64_t k = 0; k < D; k += 8) {
        if (Full) {
            _mm256_storeu_ps(y + k, _mm256_mul_ps(_mm256_loadu_ps(weight + k), _mm256_mul_ps(_mm256_loadu_ps(x + k), inv)));
            continue;
        }
        const int n = static_cast<int>(std::min<int64_t>(8, D - k));
        const __m256i mask = lane_mask(n);
        store_n(y + k, _mm256_mul_ps(load_n(weight + k, n, mask), _mm256_mul_ps(load_n(x + k, n, mask), inv)), n, mask);
    }
}

// Sum of squares of one row's D floats, per lane.
template <bool Full>
JANUSDNA_AVX2 inline __m256 row_squares(const float* x, int64_t D) {
    __m256 ss = _mm256_setzero_ps();
    for (int64_t k = 0; k < D; k += 8) {
        const int n = Full ? 8 : static_cast<int>(std::min<int64_t>(8, D - k));
        const __m256 v = Full ? _mm256_loadu_ps(x + k) : load_n(x + k, n, lane_mask(n));
        ss = _mm256_fmadd_ps(v, v, ss);
    }
    return ss;
}

template <bool Full>
JANUSDNA_AVX2 void rmsnorm_rows(const RmsNormParams<float>& p, int64_t r0, int64_t r1) {
    const int64_t D = p.dim;
    const float eps = static_cast<float>(p.eps);
    constexpr int64_t kChunkRows = 64;
    alignas(32) float inv[kChunkRows];
    for (int64_t c0 = r0; c0 < r1; c0 += kChunkRows) {
        const int64_t n = std::min(kChunkRows, r1 - c0);
        // 1 / rms of the chunk's rows, eight at a time (groups independent of each other, so they overlap)...
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 ss[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j) ss[j] = row_squares<Full>(p.x + (c0 + i + j) * p.ldx, D);
            _mm256_store_ps(inv + i, inv_rms8(ss, D, eps));
        }
        for (; i < n; ++i) inv[i] = inv_rms1(row_squares<Full>(p.x + (c0 + i) * p.ldx, D), D, eps);
        // ... then the rows scaled.
        for (i = 0; i < n; ++i)
            rmsnorm_scale_row<Full>(p.x + (c0 + i) * p.ldx, p.weight, D, _mm256_broadcast_ss(inv + i), p.y + (c0 + i) * p.ldy);
    }
}

// Rows go in chunks of 64: first every row's 1 / rms, eight rows at a time (their sums of squares as eight
// independent chains, one reduction tree for all eight totals, one vector square root and division), then the
// scaling. One row at a time, each row's chain (FMAs, horizontal sum, scalar square root and division, then the
// scaling that waits for it) was latency-bound: 41 cycles per row at D = 32 in L1.
JANUSDNA_AVX2 void rmsnorm_avx2(const RmsNormParams<float>& p, int64_t r0, int64_t r1) {
    if (p.dim % 8 == 0) rmsnorm_rows<true>(p, r0, r1);
    else rmsnorm_rows<false>(p, r0, r1);
}

// Row r's per-lane sums of x^2 and of dy w x (RMSNorm's backward).
template <bool Full>
JANUSDNA_AVX2 inline void rmsnorm_bwd_sums(const RmsNormParams<float>& p, const RmsNormGrads<float>& g, int64_t r,
                                           __m256& ss, __m256& dot) {
    const int64_t D = p.dim;
    const float* x = p.x + r * p.ldx;
    const float* dy = g.grad_out + r * D;
    ss = _mm256_setzero_ps(), dot = _mm256_setzero_ps();
    for (int64_t k = 0; k < D; k += 8) {
        const int n = Full ? 8 : static_cast<int>(std::min<int64_t>(8, D - k));
        const __m256i mask = lane_mask(n);
        const __m256 xv = Full ? _mm256_loadu_ps(x + k) : load_n(x + k, n, mask);
        const __m256 dv = Full ? _mm256_loadu_ps(dy + k) : load_n(dy + k, n, mask);
        const __m256 wv = Full ? _mm256_loadu_ps(p.weight + k) : load_n(p.weight + k, n, mask);
        ss = _mm256_fmadd_ps(xv, xv, ss);
        dot = _mm256_fmadd_ps(_mm256_mul_ps(dv, wv), xv, dot);
    }
}

// RMSNorm's backward in chunks of 64 rows, as the forward: each row's 1 / rms and its coefficient
// inv^3 (dy w . x) / D first, eight rows at a time; then per 8 columns over the chunk's rows, grad_x stored and the
// weight gradient summed in a register (added to grad_weight once per chunk and column vector, instead of a
// load-add-store chain through grad_weight from row to row).
template <bool Full>
JANUSDNA_AVX2 void rmsnorm_bwd_rows(const RmsNormParams<float>& p, const RmsNormGrads<float>& g, int64_t r0, int64_t r1) {
    const int64_t D = p.dim, ldgx = g.ldgx ? g.ldgx : D;
    const float eps = static_cast<float>(p.eps);
    const __m256 dim = set1(static_cast<float>(D));
    constexpr int64_t kChunkRows = 64;
    alignas(32) float inv[kChunkRows], coef[kChunkRows];
    for (int64_t c0 = r0; c0 < r1; c0 += kChunkRows) {
        const int64_t n = std::min(kChunkRows, r1 - c0);
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 ss[8], dot[8];
#pragma GCC unroll 8
            for (int j = 0; j < 8; ++j) rmsnorm_bwd_sums<Full>(p, g, c0 + i + j, ss[j], dot[j]);
            const __m256 iv = inv_rms8(ss, D, eps);
            _mm256_store_ps(inv + i, iv);
            _mm256_store_ps(coef + i, _mm256_div_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(iv, iv), iv), hsum8(dot)), dim));
        }
        for (; i < n; ++i) {
            __m256 ss, dot;
            rmsnorm_bwd_sums<Full>(p, g, c0 + i, ss, dot);
            inv[i] = inv_rms1(ss, D, eps);
            coef[i] = inv[i] * inv[i] * inv[i] * hsum_tree(dot) / static_cast<float>(D);
        }
        for (int64_t k = 0; k < D; k += 8) {
            const int nk = Full ? 8 : static_cast<int>(std::min<int64_t>(8, D - k));
            const __m256i mask = lane_mask(nk);
            const __m256 wv = Full ? _mm256_loadu_ps(p.weight + k) : load_n(p.weight + k, nk, mask);
            __m256 gw = _mm256_setzero_ps();
            for (i = 0; i < n; ++i) {
                const int64_t r = c0 + i;
                const __m256 xv = Full ? _mm256_loadu_ps(p.x + r * p.ldx + k) : load_n(p.x + r * p.ldx + k, nk, mask);
                const __m256 dv = Full ? _mm256_loadu_ps(g.grad_out + r * D + k) : load_n(g.grad_out + r * D + k, nk, mask);
                const __m256 vinv = _mm256_broadcast_ss(inv + i);
                const __m256 gx = _mm256_fnmadd_ps(_mm256_broadcast_ss(coef + i), xv, _mm256_mul_ps(vinv, _mm256_mul_ps(dv, wv)));
                if (Full) _mm256_storeu_ps(g.grad_x + r * ldgx + k, gx);
                else store_n(g.grad_x + r * ldgx + k, gx, nk, mask);
                gw = _mm256_fmadd_ps(_mm256_mul_ps(dv, xv), vinv, gw);
            }
            if (g.grad_weight)
                store_n(g.grad_weight + k, _mm256_add_ps(load_n(g.grad_weight + k, nk, mask), gw), nk, mask);
        }
    }
}

JANUSDNA_AVX2 void rmsnorm_bwd_avx2(const RmsNormParams<float>& p, const RmsNormGrads<float>& g, int64_t r0, int64_t r1) {
    if (p.dim % 8 == 0) rmsnorm_bwd_rows<true>(p, g, r0, r1);
    else rmsnorm_bwd_rows<false>(p, g, r0, r1);
}

JANUSDNA_AVX2 void swiglu_act_avx2(const float* gu, int64_t inter, float* h, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
        const float* g = gu + r * 2 * inter;
        const float* u = g + inter;
        int64_t i = 0;
        for (; i + 32 <= inter; i += 32) silu_mul_lockstep<4>(g + i, u + i, h + r * inter + i); // same results
        for (; i < inter; i += 8) {
            const int n = static_cast<int>(std::min<int64_t>(8, inter - i));
            const __m256i mask = lane_mask(n);
            store_n(h + r * inter + i, _mm256_mul_ps(silu_fast_ps(load_n(g + i, n, mask)), load_n(u + i, n, mask)), n, mask);
        }
    }
}

JANUSDNA_AVX2 void swiglu_act_bwd_avx2(const float* gu, const float* dh, int64_t inter, float* dgu, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) swiglu_grad_rows(gu + r * 2 * inter, dh + r * inter, inter, dgu + r * 2 * inter);
}

} // namespace janusdna::kernels
