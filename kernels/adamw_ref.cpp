// Scalar reference of the AdamW update (see adamw.h).
#include "adamw.h"

#include <cmath>

namespace janusdna::kernels {

template <typename T>
void adamw_ref(T* p, T* m, T* v, const T* g, int64_t n, const AdamWScalars<T>& s) {
    for (int64_t i = 0; i < n; ++i) {
        const T gi = g[i] * s.clip;
        const T pi = p[i] * s.decay;
        const T mi = m[i] * s.b1 + gi * (T(1) - s.b1);
        const T vi = v[i] * s.b2 + gi * gi * (T(1) - s.b2);
        m[i] = mi, v[i] = vi;
        p[i] = pi + s.step * (mi / (std::sqrt(vi) / s.sqrt_bc2 + s.eps));
    }
}

template void adamw_ref<float>(float*, float*, float*, const float*, int64_t, const AdamWScalars<float>&);
template void adamw_ref<double>(double*, double*, double*, const double*, int64_t, const AdamWScalars<double>&);

} // namespace janusdna::kernels
