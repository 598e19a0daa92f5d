// AVX2 + FMA vector math shared by the AVX2 kernels (float32, 8 lanes). Pure compute, no framework code.
//
// Every function carries the target attribute itself, so a translation unit compiled for generic x86-64 can hold
// AVX2 code; callers must be AVX2 functions too, and must only run after cpu_has_avx2_fma() said yes.
#pragma once
#include <immintrin.h>

#define JANUSDNA_AVX2 __attribute__((target("avx2,fma")))

namespace janusdna::kernels::avx2 {

// True when the running CPU has AVX2 and FMA (checked once).
inline bool cpu_has_avx2_fma() {
    static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return ok;
}

JANUSDNA_AVX2 inline __m256 set1(float v) { return _mm256_set1_ps(v); }

// exp(x), Cephes expf polynomial on x = n ln2 + r, |r| <= ln2/2: max relative error ~1.5e-7 over [-87, 88].
// Arguments below -87.3 (where float would go subnormal) return exactly 0; above 88 are clamped (no inf).
JANUSDNA_AVX2 inline __m256 exp_ps(__m256 x) {
    const __m256 lo = set1(-87.33654f);
    const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(_mm256_min_ps(x, set1(88.0f)), lo);
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, set1(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // r = x - n ln2, with ln2 split in two so that n * ln2_hi is exact.
    __m256 r = _mm256_fnmadd_ps(n, set1(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, set1(-2.12194440e-4f), r);
    __m256 p = set1(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, set1(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, set1(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, set1(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, set1(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, set1(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, r, set1(1.0f)); // p r^2 + r + 1 written as (p r + 1) r + 1
    p = _mm256_fmadd_ps(p, r, set1(1.0f));
    // 2^n built in the exponent field; n >= -126 after the clamp, so the biased exponent stays normal.
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// 2^x for x <= 0, with 2^-inf = 0 up to ~1e-38 (as exp_nonpos_ps): n = round(x), 2^(x - n) by a degree-5
// polynomial in r = x - n, |r| <= 1/2 (1.5e-7 relative), times 2^n by adding n to the polynomial's exponent
// field: an integer add instead of a multiply, which leaves the multiply pipes to the FMAs. After the clamp at
// -126 the result is a normal float (n = -126 only with r >= 0, where p >= 1), so the add equals the product bit
// for bit. Ten vector ops against exp_ps's eighteen: callers fold log2(e) into a factor they apply anyway (the
// attention scale, the scan's A). Arguments below -126, and -inf, give 2^-126 (~1.2e-38).
JANUSDNA_AVX2 inline __m256 exp2_nonpos_ps(__m256 x) {
    x = _mm256_max_ps(x, set1(-126.0f));
    const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 r = _mm256_sub_ps(x, n);
    // Degree-5 fit minimising the relative error on [-1/2, 1/2] (with p(0) = 1): 1.5e-7 in float arithmetic,
    // as good as the degree-6 Taylor polynomial (1.2e-7) for one FMA less.
    __m256 p = _mm256_fmadd_ps(set1(1.3264723821e-3f), r, set1(9.6715129912e-3f));
    p = _mm256_fmadd_ps(p, r, set1(5.5507335812e-2f));
    p = _mm256_fmadd_ps(p, r, set1(2.4022242427e-1f));
    p = _mm256_fmadd_ps(p, r, set1(6.9314700365e-1f));
    p = _mm256_fmadd_ps(p, r, set1(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23); // n in the exponent field's position
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

// 2^x for -126 <= x <= 0 (the caller guarantees the range; nothing is clamped): n = round(x) by the magic-number
// addition (t = x + 1.5 2^23 + 127 holds 127 + n in its low mantissa bits, so t << 23 is 2^n's bit pattern: no
// round, cvt or integer add), and the polynomial of exp2_nonpos_ps in Estrin's form (three FMA levels deep instead
// of five). 1.9e-7 relative. Shorter chains matter where exps compete with a recurrence for the FP scheduler
// (the scan's decays).
JANUSDNA_AVX2 inline __m256 exp2_m126_0_ps(__m256 x) {
    const __m256 magic = set1(12583039.0f); // 1.5 * 2^23 + 127
    const __m256 t = _mm256_add_ps(x, magic);
    const __m256 r = _mm256_sub_ps(x, _mm256_sub_ps(t, magic));
    const __m256 r2 = _mm256_mul_ps(r, r);
    const __m256 a = _mm256_fmadd_ps(set1(6.9314700365e-1f), r, set1(1.0f));
    const __m256 b = _mm256_fmadd_ps(set1(5.5507335812e-2f), r, set1(2.4022242427e-1f));
    const __m256 c = _mm256_fmadd_ps(set1(1.3264723821e-3f), r, set1(9.6715129912e-3f));
    const __m256 p = _mm256_fmadd_ps(_mm256_fmadd_ps(c, r2, b), r2, a);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23)));
}

// x[i] = exp2_nonpos_ps(x[i]) for i < N, the same operations (bit-identical results) issued in lockstep: each step
// for all N vectors before the next. One exp is a chain of ~10 dependent ops (~40 cycles of latency); written one
// after another, the FP scheduler fills with a single chain's waiting ops and the pipes idle (Zen 2: ~8 cycles per
// exp in the attention's softmax). Interleaved, N chains advance together: N = 4 measured 7 % faster there.
template <int N>
__attribute__((always_inline)) JANUSDNA_AVX2 inline void exp2_nonpos_lockstep(__m256* x) {
    __m256 n[N], r[N], p[N];
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) x[i] = _mm256_max_ps(x[i], set1(-126.0f));
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) n[i] = _mm256_round_ps(x[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) r[i] = _mm256_sub_ps(x[i], n[i]);
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) p[i] = _mm256_fmadd_ps(set1(1.3264723821e-3f), r[i], set1(9.6715129912e-3f));
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) p[i] = _mm256_fmadd_ps(p[i], r[i], set1(5.5507335812e-2f));
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) p[i] = _mm256_fmadd_ps(p[i], r[i], set1(2.4022242427e-1f));
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) p[i] = _mm256_fmadd_ps(p[i], r[i], set1(6.9314700365e-1f));
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) p[i] = _mm256_fmadd_ps(p[i], r[i], set1(1.0f));
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i)
        x[i] = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p[i]), _mm256_slli_epi32(_mm256_cvtps_epi32(n[i]), 23)));
}

// exp(x) for x <= 0 (softmax arguments s - max, scan decays dt A) as exp2_nonpos_ps(log2(e) x): ~1.5e-7 relative
// plus the rounding of log2(e) x (6e-8 |x| relative, i.e. 1e-6 at x = -20, where exp(x) is 2e-9). Arguments
// below -87.3, and -inf, give ~1e-38 instead of 0: a weight that no sum of fewer than 2^60 such terms can move.
JANUSDNA_AVX2 inline __m256 exp_nonpos_ps(__m256 x) {
    return exp2_nonpos_ps(_mm256_mul_ps(x, set1(1.44269504088896341f)));
}

// softplus(x) = log(1 + exp(x)) written as max(x, 0) + log1p(e), e = exp(-|x|) in (0, 1]: never overflows, and
// equals x in float for large x (the reference switches to x above 20). log1p(e) = 2 atanh(s) with s = e / (2 + e) in
// (0, 1/3]: 2 s (1 + s^2/3 + s^4/5 + ... + s^12/13), the first omitted term below 2e-8 relative, exact for tiny
// e without special cases. One exp, one division and eight FMAs instead of a log: 2.6e-7 relative (the log1p form
// it replaced: 2.1e-7); in the scan forward 1.8 instead of 4.6 cycles per 8 channels and 16 states.
// softplus_from_exp(x, e) takes e = exp(-|x|) from the caller (the scan's backward shares it with sigmoid).
JANUSDNA_AVX2 inline __m256 softplus_from_exp(__m256 x, __m256 e) {
    const __m256 s = _mm256_div_ps(e, _mm256_add_ps(set1(2.0f), e)); // tanh(log1p(e) / 2)
    const __m256 s2 = _mm256_mul_ps(s, s);
    __m256 q = _mm256_fmadd_ps(set1(1.0f / 13), s2, set1(1.0f / 11));
    q = _mm256_fmadd_ps(q, s2, set1(1.0f / 9));
    q = _mm256_fmadd_ps(q, s2, set1(1.0f / 7));
    q = _mm256_fmadd_ps(q, s2, set1(1.0f / 5));
    q = _mm256_fmadd_ps(q, s2, set1(1.0f / 3));
    q = _mm256_fmadd_ps(q, s2, set1(1.0f));
    return _mm256_fmadd_ps(_mm256_add_ps(s, s), q, _mm256_max_ps(x, _mm256_setzero_ps()));
}

JANUSDNA_AVX2 inline __m256 softplus_ps(__m256 x) {
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000)));
    return softplus_from_exp(x, exp_ps(_mm256_or_ps(x, sign))); // e = exp(-|x|)
}

// x * sigmoid(x) = x / (1 + exp(-x)); exp_ps clamps, so very negative x gives -0-ish tiny values, not NaN.
JANUSDNA_AVX2 inline __m256 silu_ps(__m256 x) {
    const __m256 neg = _mm256_sub_ps(_mm256_setzero_ps(), x);
    return _mm256_div_ps(x, _mm256_add_ps(set1(1.0f), exp_ps(neg)));
}

// sigmoid(x) without a division: e = exp(-|x|) through exp2_nonpos_ps, 1 / (1 + e) by rcp plus one Newton step
// (~2e-7 relative), and e / (1 + e) for negative x. ~3e-7 relative overall.
// sigmoid(x) from e = exp(-|x|) (the rest of sigmoid_fast_ps, for callers that compute their exps in lockstep).
JANUSDNA_AVX2 inline __m256 sigmoid_from_exp(__m256 x, __m256 e) {
    const __m256 d = _mm256_add_ps(set1(1.0f), e);                          // in (1, 2]
    __m256 inv = _mm256_rcp_ps(d);
    inv = _mm256_mul_ps(inv, _mm256_fnmadd_ps(d, inv, set1(2.0f)));
    return _mm256_blendv_ps(inv, _mm256_mul_ps(e, inv), x);                // x's sign bit picks e / (1 + e)
}

JANUSDNA_AVX2 inline __m256 sigmoid_fast_ps(__m256 x) {
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000)));
    const __m256 neg_abs = _mm256_or_ps(x, sign);                          // -|x|
    return sigmoid_from_exp(x, exp2_nonpos_ps(_mm256_mul_ps(neg_abs, set1(1.44269504088896341f))));
}

// x * sigmoid(x) without a division (see sigmoid_fast_ps).
JANUSDNA_AVX2 inline __m256 silu_fast_ps(__m256 x) { return _mm256_mul_ps(x, sigmoid_fast_ps(x)); }

// s[i] = sigmoid_fast_ps(x[i]) for i < N (the same operations, the same results) with the N exps in lockstep
// (exp2_nonpos_lockstep): one sigmoid is a chain of ~20 dependent ops.
template <int N>
__attribute__((always_inline)) JANUSDNA_AVX2 inline void sigmoid_lockstep(const __m256* x, __m256* s) {
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(int(0x80000000)));
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) s[i] = _mm256_mul_ps(_mm256_or_ps(x[i], sign), set1(1.44269504088896341f)); // -|x| log2(e)
    exp2_nonpos_lockstep<N>(s);
#pragma GCC unroll 8
    for (int i = 0; i < N; ++i) s[i] = sigmoid_from_exp(x[i], s[i]);
}

// Mask with the first n (0..8) lanes set, for _mm256_maskload_ps / _mm256_maskstore_ps.
JANUSDNA_AVX2 inline __m256i lane_mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Loads n (1..8) floats; the lanes past n read as 0 and touch no memory.
JANUSDNA_AVX2 inline __m256 load_n(const float* p, int n, __m256i mask) {
    return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

JANUSDNA_AVX2 inline void store_n(float* p, __m256 v, int n, __m256i mask) {
    if (n == 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask, v);
}

// Sum of the 8 lanes.
JANUSDNA_AVX2 inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// Max of the 8 lanes.
JANUSDNA_AVX2 inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

} // namespace janusdna::kernels::avx2
