// Differentiable ops with hand-written kernels behind them. Each checks its tensors and dispatches to the
// kernel for their device and dtype (kernels/); autograd glue lives in src/ops/.
// Every op throws janusdna::Error when a tensor's shape, dtype or device does not match.
#pragma once
#include <vector>
#include <torch/types.h>

namespace janusdna::ops {

// Selective scan with fused softplus(delta + delta_bias), D skip and SiLU(z) gate (see kernels/selective_scan.h).
// u, delta, z: [B, L, D]; A: [D, N]; B, C: [B, L, N]; D, delta_bias: [D]. Returns [B, L, D].
// z, D and delta_bias may be undefined tensors (no gate, no skip, no bias).
// float32 and float64, all on one device; differentiable with respect to every input.
// CPU: AVX2 kernels for float32 where the CPU has them (forward parallel over batch items and channel blocks,
// backward over batch items; the backward recomputes states from chunk checkpoints), else the scalar references.
// Other devices: composite torch ops.
torch::Tensor selective_scan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                             const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& D,
                             const torch::Tensor& z, const torch::Tensor& delta_bias);

// The same scan with delta given as its low-rank factors, delta = dt_low dt_weight^T (dt_low: [B, L, R],
// dt_weight: [D, R]; the mixer's dt projection). Without an autograd graph on the CPU the kernels compute delta as
// they use it (no [B, L, D] array; R <= 16); otherwise it is selective_scan(u, linear(dt_low, dt_weight), ...).
torch::Tensor selective_scan_low_rank(const torch::Tensor& u, const torch::Tensor& dt_low, const torch::Tensor& dt_weight,
                                      const torch::Tensor& A, const torch::Tensor& B, const torch::Tensor& C,
                                      const torch::Tensor& D, const torch::Tensor& z, const torch::Tensor& delta_bias);

// Depthwise causal conv over time followed by SiLU (see kernels/causal_conv1d.h):
// out[b,t,d] = silu(bias[d] + sum_k weight[d,k] * x[b, t-(K-1)+k, d]), x zero before t = 0.
// x: [B, L, D]; weight: [D, K]; bias: [D] (may be undefined: no bias). Returns [B, L, D].
// float32 and float64, all on one device; differentiable with respect to every input. CPU: AVX2 kernels for
// float32 where the CPU has them, else the scalar references.
torch::Tensor causal_conv1d_silu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

// Which keys each query row may attend to (see kernels/janus_attention.h).
//   causal: key j <= row i.
//   janus (T = 2L; rows 0..L-1 the forward stream, L..2L-1 the backward stream): the four blocks of the final
//   Janus attention, M1 (q<L, k<L, k<=q), M2 (q<L, k>=L, k>=L+q+2), M3 (q>=L, k<L, q>=k+L+2), M4 (q>=L, k>=L, k>=q).
enum class AttentionMask { causal = 0, janus = 1 };

// softmax(scale * q k^T, masked) v per head, without ever building the T x T matrix (flash-attention form:
// memory O(T * h * d) forward and backward). q, k, v: [B, T, h, d], the natural view of a [B, T, H] projection;
// returns [B, T, h, d]. float32 and float64, all on one device; differentiable with respect to q, k and v.
// CPU: tiled AVX2 kernels for float32 where the CPU has them, else the row-wise reference; the backward recomputes
// the probabilities from the stored per-row log-sum-exp (parallel over batch items and heads). Other devices: the dense composite below.
torch::Tensor janus_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                              AttentionMask mask);

// The dense layers (kernels/dense.h), with inference fast paths: AVX2 kernels when the CPU has them, the tensors
// are float32 on the CPU and no autograd graph is wanted (grad mode off, or nothing requires grad); otherwise the
// same computation in torch ops (differentiable). x may be a column slice of a wider tensor (read in place).
// linear: x [..., K], weight [N, K], bias [N] or undefined, residual [..., N] or undefined -> [..., N]
// (residual added in the kernel's epilogue: a decoder layer's skip connection without a pass of its own).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias = {},
                     const torch::Tensor& residual = {});
// SwiGLU MLP without biases: (silu(x gate^T) * (x up^T)) down^T. x [..., H]; gate, up [I, H]; down [H, I]
// -> [..., H]. The fast path never materialises the [..., I] intermediates.
torch::Tensor swiglu_mlp(const torch::Tensor& x, const torch::Tensor& gate, const torch::Tensor& up,
                         const torch::Tensor& down, const torch::Tensor& residual = {});
// Expert dispatch: y[index[r]] += scale[r] * swiglu_mlp(x[index[r]]) for r < M, rows read and written in place
// (no gathered copies). x, y [T, H]; index [M] int64, distinct; scale [M].
void swiglu_mlp_index_add_(torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& index,
                           const torch::Tensor& scale, const torch::Tensor& gate, const torch::Tensor& up,
                           const torch::Tensor& down);
// The experts of a MoE layer: y[token[p]] += weight[p] * swiglu_mlp_e(x[token[p]]) over the (token, slot) pairs p,
// grouped by expert (expert e's pairs are [start[e], start[e + 1])). x [T, H]; token [P] int64, distinct within an
// expert; weight [P]; gates, ups [E] x [I, H]; downs [E] x [H, I] -> y [T, H]. Without a graph each expert adds
// into y in place (swiglu_mlp_index_add_); under autograd on the kernels it is one node for all experts (gradients
// for x, the pair weights and every expert's weights), else the same in torch ops.
// A residual [T, H], when given, is where y starts instead of zeros.
torch::Tensor moe_experts(const torch::Tensor& x, const torch::Tensor& token, const torch::Tensor& weight,
                          const std::vector<int64_t>& start, const std::vector<torch::Tensor>& gates,
                          const std::vector<torch::Tensor>& ups, const std::vector<torch::Tensor>& downs,
                          const torch::Tensor& residual = {});
// RMSNorm as the reference's JanusDNARMSNorm: normalised in float32 (float64 for double), cast back to x's
// dtype, times weight. x [..., D], weight [D] -> [..., D].
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
// Consecutive column segments of x, each normalised on its own: x [..., sum d_i], weights[i] [d_i] ->
// rms_norm(x[..., segment i], weights[i], eps), each a contiguous [..., d_i] (the mixer's dt, B and C after x_proj).
// One node under autograd, whose backward writes x's gradient in one tensor (three slices of x would each
// scatter a gradient into zeros of x's shape, then be summed).
std::vector<torch::Tensor> rms_norm_split(const torch::Tensor& x, const std::vector<torch::Tensor>& weights, double eps);

// Benchmarks only: true makes the ops above use the scalar reference kernels even where AVX2 ones exist, so that
// both can be measured side by side in one run. Process-wide; off by default.
void set_reference_kernels(bool on);
bool reference_kernels();

namespace detail {
// The boolean [T, T] mask (true = attend) on `device`.
torch::Tensor attention_mask(int64_t T, AttentionMask mask, const torch::Device& device);
// Dense masked softmax attention with plain torch ops (memory O(T^2)): the path for non-CPU devices.
torch::Tensor janus_attention_composite(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                        double scale, AttentionMask mask);

// The same ops written with plain (autograd-aware) torch ops: the path for non-CPU devices, exposed for tests.
// Same arguments, checks and results as the ops above, on any device.
torch::Tensor selective_scan_composite(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                       const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& D,
                                       const torch::Tensor& z, const torch::Tensor& delta_bias);
torch::Tensor causal_conv1d_silu_composite(const torch::Tensor& x, const torch::Tensor& weight,
                                           const torch::Tensor& bias);
} // namespace detail

} // namespace janusdna::ops
