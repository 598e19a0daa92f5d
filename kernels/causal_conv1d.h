// Depthwise causal 1-D convolution with bias and SiLU (the JanusDNA mixer's short conv), pure compute:
// no framework code.
//
// For every batch item b, time t and channel d:
//   pre[b,t,d] = bias[d] + sum_{k=0..K-1} weight[d,k] * x[b, t-(K-1)+k, d]    (x is zero for negative time)
//   out[b,t,d] = silu(pre[b,t,d])
// All arrays are dense and row-major in the shapes given; time runs along L.
#pragma once
#include <cstdint>

namespace janusdna::kernels {

template <typename T>
struct ConvParams {
    int64_t batch = 0, length = 0, channels = 0, width = 0; // B, L, D, K
    const T* x = nullptr;      // [B, L, D]
    const T* weight = nullptr; // [D, K]
    const T* bias = nullptr;   // [D], may be null (no bias)
};

template <typename T>
struct ConvGrads {
    const T* grad_out = nullptr; // [B, L, D]
    // Outputs, overwritten (not accumulated into); any may be null when not needed.
    T* grad_x = nullptr;         // [B, L, D]
    T* grad_weight = nullptr;    // [D, K]
    T* grad_bias = nullptr;      // [D]
};

// Scalar reference implementations (causal_conv1d_ref.cpp). Instantiated for float and double.
// Forward over channels [d_begin, d_end) of batch item b only, so callers can split work across threads;
// out is [B, L, D].
template <typename T>
void causal_conv1d_silu_fwd_ref(const ConvParams<T>& p, T* out, int64_t b, int64_t d_begin, int64_t d_end);

// Backward over the whole problem, single-threaded (the reference). Recomputes the pre-activation.
template <typename T>
void causal_conv1d_silu_bwd_ref(const ConvParams<T>& p, const ConvGrads<T>& g);

// AVX2 + FMA versions (causal_conv1d_avx2.cpp), float32 only, same arguments and contracts as the references above
// (any K >= 1, null bias, null grad outputs). Polynomial exp and float K-tap sums (grad_weight and grad_bias are
// summed in double across chunks of time), so they match the references to ~1e-6 of each output's scale: its largest
// |value| for out and grad_x, and for grad_weight and grad_bias the largest sum over (b, t) of |term| (their sums can
// cancel). Test with 1e-5 of that scale. Call only when causal_conv1d_avx2_supported() is true.
void causal_conv1d_silu_fwd_avx2(const ConvParams<float>& p, float* out, int64_t b, int64_t d_begin, int64_t d_end);
void causal_conv1d_silu_bwd_avx2(const ConvParams<float>& p, const ConvGrads<float>& g);
bool causal_conv1d_avx2_supported(); // the running CPU has AVX2 and FMA

} // namespace janusdna::kernels
