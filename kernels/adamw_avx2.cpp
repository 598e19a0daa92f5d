// AVX2 + FMA AdamW update (see adamw.h); the tail goes through the scalar reference.
#include "adamw.h"
#include "simd_avx2.h"

namespace janusdna::kernels {

bool adamw_avx2_supported() { return avx2::cpu_has_avx2_fma(); }

JANUSDNA_AVX2 void adamw_avx2(float* p, float* m, float* v, const float* g, int64_t n, const AdamWScalars<float>& s) {
    using avx2::set1;
    const __m256 clip = set1(s.clip), decay = set1(s.decay), b1 = set1(s.b1), b2 = set1(s.b2);
    const __m256 c1 = set1(1.0f - s.b1), c2 = set1(1.0f - s.b2), sqrt_bc2 = set1(s.sqrt_bc2), eps = set1(s.eps);
    const __m256 step = set1(s.step);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), clip);
        const __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay);
        const __m256 mi = _mm256_fmadd_ps(_mm256_loadu_ps(m + i), b1, _mm256_mul_ps(gi, c1));
        const __m256 vi = _mm256_fmadd_ps(_mm256_loadu_ps(v + i), b2, _mm256_mul_ps(_mm256_mul_ps(gi, gi), c2));
        _mm256_storeu_ps(m + i, mi), _mm256_storeu_ps(v + i, vi);
        const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), sqrt_bc2), eps);
        _mm256_storeu_ps(p + i, _mm256_fmadd_ps(step, _mm256_div_ps(mi, denom), pi));
    }
    adamw_ref<float>(p + i, m + i, v + i, g + i, n - i, s);
}

} // namespace janusdna::kernels
