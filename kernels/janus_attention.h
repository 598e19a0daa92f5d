// Masked multi-head softmax attention without the T x T score matrix, pure compute: no framework code.
// Used for the final Janus attention (T = 2L: forward stream rows 0..L-1, backward stream rows L..2L-1) and for
// the causal attention of the mid layers (T = L).
//
// For every batch item b, head h and query row i:
//   s[j]      = scale * sum_c q[b,i,h,c] * k[b,j,h,c]            for keys j allowed by the mask
//   lse[b,h,i]= log sum_j exp(s[j])
//   out[b,i,h,c] = sum_j exp(s[j] - lse) * v[b,j,h,c]
// Layout: q, k, v, out are [B, T, h, d] contiguous (the natural view of a [B, T, H] projection, so no transposes
// are needed); lse is [B, h, T].
//
// The masks. Janus (L = T / 2), four triangular blocks:
//   M1 q<L,  k<L : k <= q            (forward stream, causal)
//   M2 q<L,  k>=L: k >= L + q + 2    (forward row i sees backward-stream positions >= i + 2)
//   M3 q>=L, k<L : q >= k + L + 2    (backward row sees forward-stream positions <= its position - 2)
//   M4 q>=L, k>=L: k >= q            (backward stream, anti-causal)
// Causal: k <= q. In both, every row's allowed keys are at most two contiguous ranges (attention_key_ranges),
// which is what lets the kernels skip masked work without testing the mask per element, and every row allows at
// least its own position, so no row is empty.
#pragma once
#include <algorithm>
#include <cstdint>

namespace janusdna::kernels {

enum class AttentionMask { causal, janus };

template <typename T>
struct AttentionParams {
    int64_t batch = 0, length = 0, heads = 0, head_dim = 0; // B, T, h, d
    AttentionMask mask = AttentionMask::causal;             // janus needs an even T
    T scale = 1;                                            // multiplies q . k
    const T* q = nullptr;                                   // [B, T, h, d]
    const T* k = nullptr;                                   // [B, T, h, d]
    const T* v = nullptr;                                   // [B, T, h, d]
};

template <typename T>
struct AttentionGrads {
    const T* grad_out = nullptr; // [B, T, h, d]
    const T* out = nullptr;      // [B, T, h, d] the forward's output
    const T* lse = nullptr;      // [B, h, T]    the forward's log-sum-exp per row
    T* grad_q = nullptr;         // [B, T, h, d] outputs, overwritten, never null
    T* grad_k = nullptr;
    T* grad_v = nullptr;
};

// A half-open range of key positions [begin, end); empty when begin >= end.
struct KeyRange {
    int64_t begin = 0, end = 0;
};

// The keys query row i may attend to, as two ranges (either may be empty), in increasing order.
inline void attention_key_ranges(AttentionMask mask, int64_t T, int64_t i, KeyRange out[2]) {
    if (mask == AttentionMask::causal) {
        out[0] = {0, i + 1};
        out[1] = {0, 0};
        return;
    }
    const int64_t L = T / 2;
    if (i < L) {
        out[0] = {0, i + 1};                       // M1
        out[1] = {std::min(T, L + i + 2), T};      // M2
    } else {
        out[0] = {0, std::max<int64_t>(0, i - L - 1)}; // M3: k <= i - L - 2
        out[1] = {i, T};                           // M4
    }
}

// True when query row i may attend to key j (the same mask, one element at a time; for tests and references).
inline bool attention_allows(AttentionMask mask, int64_t T, int64_t i, int64_t j) {
    KeyRange r[2];
    attention_key_ranges(mask, T, i, r);
    return (j >= r[0].begin && j < r[0].end) || (j >= r[1].begin && j < r[1].end);
}

// Scalar reference (janus_attention_ref.cpp), instantiated for float and double; row by row, exact two-pass
// softmax (max, then sum) accumulated in double. Memory O(T) per call.
// Forward for batch item b, head h, query rows [i_begin, i_end): writes those rows of out and lse.
template <typename T>
void attention_fwd_ref(const AttentionParams<T>& p, T* out, T* lse, int64_t b, int64_t h, int64_t i_begin,
                       int64_t i_end);

// Backward for batch item b and head h (all rows): writes the (b, h) slices of grad_q, grad_k and grad_v.
// Recomputes the probabilities from q, k and the stored lse (the flash-attention backward), so nothing of size
// T x T is ever stored.
template <typename T>
void attention_bwd_ref(const AttentionParams<T>& p, const AttentionGrads<T>& g, int64_t b, int64_t h);

// AVX2 + FMA forward (janus_attention_avx2.cpp), float32, same contract as attention_fwd_ref: tiled online softmax
// over blocks of query rows and key tiles (masked tiles skipped), polynomial exp. Agrees with the reference to
// ~1e-6 relative. Call only when attention_avx2_supported() is true.
void attention_fwd_avx2(const AttentionParams<float>& p, float* out, float* lse, int64_t b, int64_t h,
                        int64_t i_begin, int64_t i_end);
// AVX2 + FMA backward, float32, same contract as attention_bwd_ref (tile-wise recompute of P from lse; dK and dV
// accumulated in float, transposed, O(T d) extra memory per call).
void attention_bwd_avx2(const AttentionParams<float>& p, const AttentionGrads<float>& g, int64_t b, int64_t h);
bool attention_avx2_supported();

} // namespace janusdna::kernels
