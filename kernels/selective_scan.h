// Selective scan (Mamba-1, the JanusDNA mixer's recurrence), pure compute: no framework code.
//
// For every batch item b, channel d and state n, with zero initial state:
//   dt_t      = softplus(delta[b,t,d] + delta_bias[d])
//               (forward only: with delta null, delta[b,t,d] = sum_r delta_low[b,t,r] * delta_weight[d,r], the dt
//               projection computed where it is used instead of stored as a [B, L, D] array)
//   s_t[n]    = exp(dt_t * A[d,n]) * s_{t-1}[n] + dt_t * B[b,t,n] * u[b,t,d]
//   y_t       = sum_n s_t[n] * C[b,t,n] + D[d] * u[b,t,d]
//   out[b,t,d]= y_t * silu(z[b,t,d])            (or y_t when z is null)
// All arrays are dense and row-major in the shapes given; time runs along L.
#pragma once
#include <cstdint>

namespace janusdna::kernels {

template <typename T>
struct ScanParams {
    int64_t batch = 0, length = 0, channels = 0, states = 0; // B, L, D, N
    const T* u = nullptr;          // [B, L, D] input (after conv + SiLU)
    const T* delta = nullptr;      // [B, L, D] dt projection, before bias and softplus
    const T* delta_bias = nullptr; // [D]
    const T* delta_low = nullptr;    // [B, L, R] when delta is null (forward kernels only): the low-rank dt
    const T* delta_weight = nullptr; // [D, R]     and the dt projection's weight
    int64_t rank = 0;                // R, at most kScanMaxRank
    const T* A = nullptr;          // [D, N]  (= -exp(A_log))
    const T* B = nullptr;          // [B, L, N]
    const T* C = nullptr;          // [B, L, N]
    const T* D = nullptr;          // [D] skip
    const T* z = nullptr;          // [B, L, D] gate, may be null
};

template <typename T>
struct ScanGrads {
    const T* grad_out = nullptr;   // [B, L, D]
    // Outputs. All are overwritten (not accumulated into); any may be null when not needed, except that the
    // kernel may still compute it internally.
    T* grad_u = nullptr;           // [B, L, D]
    T* grad_delta = nullptr;       // [B, L, D]
    T* grad_delta_bias = nullptr;  // [D]
    T* grad_A = nullptr;           // [D, N]
    T* grad_B = nullptr;           // [B, L, N]
    T* grad_C = nullptr;           // [B, L, N]
    T* grad_D = nullptr;           // [D]
    T* grad_z = nullptr;           // [B, L, D]
};

// Scalar reference implementations (selective_scan_ref.cpp). Instantiated for float and double.
// Forward over channels [d_begin, d_end) of batch item b only, so callers can split work across threads;
// out is [B, L, D].
template <typename T>
void selective_scan_fwd_ref(const ScanParams<T>& p, T* out, int64_t b, int64_t d_begin, int64_t d_end);

// Backward over the whole problem, single-threaded (the reference). Recomputes the forward states.
template <typename T>
void selective_scan_bwd_ref(const ScanParams<T>& p, const ScanGrads<T>& g);

// The AVX2 kernels run time in chunks of kScanChunk steps; the backward restarts the recurrence from the state at
// each chunk's start ("chunk states", [B, scan_chunks(L), D, N], chunk 0's being zero).
constexpr int64_t kScanChunk = 64;
// The largest dt rank the forward kernels compute delta from (dt_rank = ceil(H / 16): 2 to 9 for H = 32 to 144).
constexpr int64_t kScanMaxRank = 16;
inline int64_t scan_chunks(int64_t L) { return (L + kScanChunk - 1) / kScanChunk; }

// AVX2 + FMA forward (selective_scan_avx2.cpp), float32 only, same arguments and contract as
// selective_scan_fwd_ref. Matches the reference to ~1e-6 relative to the output's scale (polynomial exp/softplus,
// float sums). When chunk_states is not null, also writes the chunk states of batch item b and channels
// [d_begin, d_end) into it, for the backward. Call only when selective_scan_avx2_supported() is true.
void selective_scan_fwd_avx2(const ScanParams<float>& p, float* out, int64_t b, int64_t d_begin, int64_t d_end,
                             float* chunk_states = nullptr);
// AVX2 + FMA backward (selective_scan_bwd_avx2.cpp), float32 only, same arguments and contract as
// selective_scan_bwd_ref (whole problem, single thread, every non-null output overwritten; grad_z is left alone when
// z is null, as there). Recomputes the states chunk by chunk from the chunk states: those the forward wrote when
// chunk_states is given (the results are then bit-identical), else its own sweep over the sequence (D N L / 64
// floats of work space). Matches the double reference to within 2e-5 relative to each gradient's largest magnitude
// (polynomial exp/softplus, float sums; measured <= 9e-6). Call only when selective_scan_avx2_supported() is true.
void selective_scan_bwd_avx2(const ScanParams<float>& p, const ScanGrads<float>& g,
                             const float* chunk_states = nullptr);
bool selective_scan_avx2_supported(); // the running CPU has AVX2 and FMA

} // namespace janusdna::kernels
