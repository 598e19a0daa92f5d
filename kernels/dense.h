// Row-wise dense layers of the model, pure compute (no framework code): a linear layer, the SwiGLU MLP (the MLPs
// and MoE experts) with optional row gather/scatter for expert dispatch, and RMSNorm.
//
// All matrices are row-major. Rows of x and y sit at a row stride (ldx, ldy) so that column slices of wider
// tensors can be read and written in place. Weights use torch::nn::Linear's layout, [out, in].
//
//   linear:  y[r, n] = bias[n] + sum_k x[r, k] w[n, k] (+ residual[r, n])
//   mlp:     h = silu(x W_gate^T) * (x W_up^T);  out = h W_down^T;  y[row] (+)= scale[r] * out[r] (+ residual[row])
//   rmsnorm: y[r, :] = weight * x[r, :] / sqrt(mean_k x[r, k]^2 + eps)
#pragma once
#include <cstdint>
#include <vector>

namespace janusdna::kernels {

template <typename T>
struct LinearParams {
    int64_t rows = 0, in = 0, out = 0; // M, K, N
    const T* x = nullptr;              // [M, K] at row stride ldx
    int64_t ldx = 0;
    const T* weight = nullptr;         // [N, K]
    const T* bias = nullptr;           // [N] or null
    T* y = nullptr;                    // [M, N] at row stride ldy (overwritten)
    int64_t ldy = 0;
    const T* residual = nullptr;       // [M, N] at row stride ldr, added to y, or null
    int64_t ldr = 0;
};

template <typename T>
struct MlpParams {
    int64_t rows = 0, hidden = 0, inter = 0; // M, H, I
    const T* x = nullptr;                    // [*, H] at row stride ldx
    int64_t ldx = 0;
    const int64_t* index = nullptr; // [M] or null: problem row r reads x row index[r] and writes y row index[r]
    const T* scale = nullptr;       // [M] or null: out[r] is multiplied by scale[r]
    const T* gate = nullptr;        // [I, H]
    const T* up = nullptr;          // [I, H]
    const T* down = nullptr;        // [H, I]
    T* y = nullptr;                 // [*, H] at row stride ldy
    int64_t ldy = 0;
    bool accumulate = false;        // y += instead of y =
    const T* residual = nullptr;    // [*, H] at row stride ldr, added to y's rows (as y's), or null
    int64_t ldr = 0;
};

template <typename T>
struct RmsNormParams {
    int64_t rows = 0, dim = 0;
    const T* x = nullptr; // [M, dim] at row stride ldx
    int64_t ldx = 0;
    const T* weight = nullptr; // [dim]
    double eps = 1e-6;
    T* y = nullptr; // [M, dim] at row stride ldy
    int64_t ldy = 0;
};

// The weight gradient of a linear layer, a reduction over all rows: dw[n, k] (+)= sum_m dy[m, n] x[m, k], dw [N, K]
// contiguous (torch::nn::Linear's layout). One call runs on one thread (training runs one graph per thread).
template <typename T>
struct WeightGradParams {
    int64_t rows = 0, in = 0, out = 0; // M, K, N
    const T* dy = nullptr;             // [M, N] at row stride lddy
    int64_t lddy = 0;
    const T* x = nullptr;              // [M, K] at row stride ldx
    int64_t ldx = 0;
    T* dw = nullptr;                   // [N, K]
    bool accumulate = false;           // dw += instead of dw =
};

// RMSNorm's backward over rows [r0, r1): grad_x (overwritten) and, when grad_weight is not null, the rows'
// contribution sum_r dy[r, k] x[r, k] / rms[r] added to grad_weight[k].
template <typename T>
struct RmsNormGrads {
    const T* grad_out = nullptr; // [M, dim], contiguous
    T* grad_x = nullptr;         // [M, dim] at row stride ldgx
    T* grad_weight = nullptr;    // [dim] accumulated into, or null
    int64_t ldgx = 0;            // 0: dim (contiguous)
};

// The SwiGLU activation on a [M, 2I] gate|up matrix (gate in columns [0, I), up in [I, 2I)), rows [r0, r1):
//   forward   h = silu(g) * u                              -> h [M, I]
//   backward  dg = dh u silu'(g), du = dh silu(g)          -> dgu [M, 2I], the same layout as gu
// silu'(g) = s (1 + g (1 - s)), s = sigmoid(g). All contiguous.
template <typename T>
void swiglu_act_ref(const T* gu, int64_t inter, T* h, int64_t r0, int64_t r1);
template <typename T>
void swiglu_act_bwd_ref(const T* gu, const T* dh, int64_t inter, T* dgu, int64_t r0, int64_t r1);
void swiglu_act_avx2(const float* gu, int64_t inter, float* h, int64_t r0, int64_t r1);
void swiglu_act_bwd_avx2(const float* gu, const float* dh, int64_t inter, float* dgu, int64_t r0, int64_t r1);

// Scalar references (dense_ref.cpp), instantiated for float and double, over rows [r0, r1). Sums run in the
// input precision, in index order; silu(g) = g / (1 + exp(-g)).
template <typename T>
void linear_ref(const LinearParams<T>& p, int64_t r0, int64_t r1);
template <typename T>
void swiglu_mlp_ref(const MlpParams<T>& p, int64_t r0, int64_t r1);
template <typename T>
void rmsnorm_ref(const RmsNormParams<T>& p, int64_t r0, int64_t r1);
template <typename T>
void rmsnorm_bwd_ref(const RmsNormParams<T>& p, const RmsNormGrads<T>& g, int64_t r0, int64_t r1);
template <typename T>
void weight_grad_ref(const WeightGradParams<T>& p);

// AVX2 + FMA (dense_avx2.cpp), float32. The weights are first packed once per call into panels of 16 output
// columns ([K][16], zero-padded), which every thread then shares; a 6-row x 16-column register block runs over
// them (12 accumulators, 8 loads and 12 FMAs per k). The MLP packs gate and up side by side in one panel
// (8 + 8 columns), so silu(g) * u is formed in registers and the [rows, I] intermediate never leaves L1; no
// zero-fill of the output, no packing of x. Sums run in a different order than the references: tested to 1e-5
// of the output's scale (sum over k of |terms|). Call only when dense_avx2_supported().
struct PackedLinear {
    int64_t in = 0, out = 0;
    std::vector<float> panels; // [ceil(N / 16)][K][16]
};
struct PackedMlp {
    int64_t hidden = 0, inter = 0, inter_pad = 0; // inter_pad: I rounded up to 8
    std::vector<float> gate_up; // [I_pad / 8][H][16]: 8 gate columns, then the same 8 up columns
    std::vector<float> down;    // [ceil(H / 16)][I_pad][16]
};
PackedLinear pack_linear_avx2(const float* weight, int64_t out, int64_t in);
PackedMlp pack_mlp_avx2(const float* gate, const float* up, const float* down, int64_t hidden, int64_t inter);
// The same into an existing pack, reusing its storage (no allocation or zero-fill once it is large enough: a MoE
// layer packs 16 experts per call); the linear weight strided, element (n, k) at weight[n * stride_out + k *
// stride_in] (a transposed view packs in place).
void pack_linear_avx2(PackedLinear& p, const float* weight, int64_t out, int64_t in, int64_t stride_out, int64_t stride_in);
void pack_mlp_avx2(PackedMlp& p, const float* gate, const float* up, const float* down, int64_t hidden, int64_t inter);
void linear_avx2(const LinearParams<float>& p, const PackedLinear& w, int64_t r0, int64_t r1);
// The SwiGLU MLP's backward through W_down and the activation in one pass over rows [r0, r1): dh = dy W_down
// (dy [M, H] at row stride lddy; down_t: W_down^T, i.e. W_down [H, I] packed as a linear layer with out = I,
// in = H), then swiglu_act_bwd's dg, du from gu into dgu (both [M, 2I] contiguous). Each row block's dh stays in
// L1 (never written out); the same results as linear_avx2 followed by swiglu_act_bwd_avx2.
void swiglu_bwd_avx2(const float* dy, int64_t lddy, const PackedLinear& down_t, const float* gu, float* dgu, int64_t r0,
                     int64_t r1);
void swiglu_mlp_avx2(const MlpParams<float>& p, const PackedMlp& w, int64_t r0, int64_t r1);
void rmsnorm_avx2(const RmsNormParams<float>& p, int64_t r0, int64_t r1);
void rmsnorm_bwd_avx2(const RmsNormParams<float>& p, const RmsNormGrads<float>& g, int64_t r0, int64_t r1);
// The weight gradient: rows in chunks of 256; the wider of N and K in 16-lane panels (read in place, a partial
// one packed), the other broadcast in blocks of up to 6, through a 6 x 16 register block as above.
void weight_grad_avx2(const WeightGradParams<float>& p);
bool dense_avx2_supported(); // the running CPU has AVX2 and FMA

} // namespace janusdna::kernels
