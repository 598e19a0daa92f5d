// Pieces shared by the AVX2 selective-scan kernels (selective_scan_avx2.cpp, selective_scan_bwd_avx2.cpp).
#pragma once
#include "simd_avx2.h"

#include <cstdint>

namespace janusdna::kernels::avx2 {

// Whether some decay argument dt log2(e) A of a chunk may fall below -126, so that the clamped exp2 is needed:
// dt_max, the chunk's largest dt per lane; A2_min, the channel block's most negative log2(e) A. Every argument is
// >= dt_max A2_min (float rounding is monotonic); on real inputs it never comes near -126 (dt A below -87, a decay
// under 1e-38). A NaN dt makes its states NaN on either path.
JANUSDNA_AVX2 inline bool scan_needs_clamp(__m256 dt_max, float A2_min) { return !(hmax(dt_max) * A2_min >= -126.0f); }

// The decays a_t = exp(dt_t A) = exp2(dt_t log2(e) A) of states n0 .. n0+G-1 of one block of 8 channels over a
// chunk of T steps into a [T][G][8] buffer (32-byte aligned), in a pass of their own before the recurrence that
// uses them: written as one loop with the recurrence, each exp's chain of ~10 dependent ops and the recurrence
// crowded Zen 2's FP scheduler and a step ran at about half its op-count bound. A2_block: log2(e) A, [N][8].
template <int G>
JANUSDNA_AVX2 void scan_decays(int64_t n0, int64_t T, const __m256* dt, const float* A2_block, bool clamp, float* a) {
    __m256 A[G];
#pragma GCC unroll 8
    for (int j = 0; j < G; ++j) A[j] = _mm256_loadu_ps(A2_block + 8 * (n0 + j));
    if (clamp) {
        for (int64_t t = 0; t < T; ++t)
#pragma GCC unroll 8
            for (int j = 0; j < G; ++j) _mm256_store_ps(a + 8 * (t * G + j), exp2_nonpos_ps(_mm256_mul_ps(dt[t], A[j])));
    } else {
        for (int64_t t = 0; t < T; ++t)
#pragma GCC unroll 8
            for (int j = 0; j < G; ++j) _mm256_store_ps(a + 8 * (t * G + j), exp2_m126_0_ps(_mm256_mul_ps(dt[t], A[j])));
    }
}

} // namespace janusdna::kernels::avx2
