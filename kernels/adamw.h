// One AdamW update over n parameters, in one pass (torch.optim.AdamW's arithmetic, element by element):
//   g = clip g;  p *= decay;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p += step * m / (sqrt(v) / sqrt_bc2 + eps)        (step = -lr / (1 - b1^t), sqrt_bc2 = sqrt(1 - b2^t))
// Pure compute; the optimiser (src/train/optim.cpp) owns the state.
#pragma once
#include <cstdint>

namespace janusdna::kernels {

template <typename T>
struct AdamWScalars {
    T clip = 1, decay = 1, b1 = 0.9, b2 = 0.95, sqrt_bc2 = 1, eps = 1e-8, step = 0;
};

// Scalar reference (adamw_ref.cpp), float and double.
template <typename T>
void adamw_ref(T* p, T* m, T* v, const T* g, int64_t n, const AdamWScalars<T>& s);

// AVX2 + FMA, float32 (adamw_avx2.cpp): the same operations 8 lanes at a time (sqrt and division correctly rounded
// as in the reference; results differ from it only where FMA contraction rounds differently). Call only when
// adamw_avx2_supported().
void adamw_avx2(float* p, float* m, float* v, const float* g, int64_t n, const AdamWScalars<float>& s);
bool adamw_avx2_supported();

} // namespace janusdna::kernels
