// Differentiable ops with hand-written kernels behind them. Each checks its tensors and dispatches to the
// kernel for their device and dtype (kernels/); autograd glue lives in src/ops/.
// Every op throws janusdna::Error when a tensor's shape, dtype or device does not match.
#pragma once
#include <torch/types.h>

namespace janusdna::ops {

// Selective scan with fused softplus(delta + delta_bias), D skip and SiLU(z) gate (see kernels/selective_scan.h).
// u, delta, z: [B, L, D]; A: [D, N]; B, C: [B, L, N]; D, delta_bias: [D]. Returns [B, L, D].
// z, D and delta_bias may be undefined tensors (no gate, no skip, no bias).
// float32 and float64, all on one device; differentiable with respect to every input.
// CPU: reference kernel (forward parallel over batch and channel blocks); other devices: composite torch ops.
torch::Tensor selective_scan(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                             const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& D,
                             const torch::Tensor& z, const torch::Tensor& delta_bias);

// Depthwise causal conv over time followed by SiLU (see kernels/causal_conv1d.h):
// out[b,t,d] = silu(bias[d] + sum_k weight[d,k] * x[b, t-(K-1)+k, d]), x zero before t = 0.
// x: [B, L, D]; weight: [D, K]; bias: [D] (may be undefined: no bias). Returns [B, L, D].
// float32 and float64, all on one device; differentiable with respect to every input.
torch::Tensor causal_conv1d_silu(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

namespace detail {
// The same ops written with plain (autograd-aware) torch ops: the path for non-CPU devices, exposed for tests.
// Same arguments, checks and results as the ops above, on any device.
torch::Tensor selective_scan_composite(const torch::Tensor& u, const torch::Tensor& delta, const torch::Tensor& A,
                                       const torch::Tensor& B, const torch::Tensor& C, const torch::Tensor& D,
                                       const torch::Tensor& z, const torch::Tensor& delta_bias);
torch::Tensor causal_conv1d_silu_composite(const torch::Tensor& x, const torch::Tensor& weight,
                                           const torch::Tensor& bias);
} // namespace detail

} // namespace janusdna::ops
