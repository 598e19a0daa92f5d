// The JanusDNA network (MODEL.md section 2) as LibTorch modules. Knows nothing of files: weights come in through
// model_file.h, token ids through the tokenizer. Tensors keep the device and dtype of the parameters, so the same
// code runs in float64 (gradient checks), float32 and on other devices.
//
// Module and parameter names follow the reference state_dict (without its "model." prefix), so the module tree's
// named_parameters() are the model file's tensor names.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include "janusdna/config.h"

namespace janusdna {

// y = w * normalise(x) with the normalisation in at least float32 (JanusDNARMSNorm).
struct RMSNormImpl : torch::nn::Module {
    RMSNormImpl(int64_t dim, double eps);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight;
    double eps;
};
TORCH_MODULE(RMSNorm);

// SwiGLU MLP: down(silu(gate(x)) * up(x)), no biases.
struct MLPImpl : torch::nn::Module {
    MLPImpl(int64_t hidden, int64_t inter);
    // residual, when given, is added to the output (in the kernel's epilogue without a graph).
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {});
    torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(MLP);

// What an MoE layer's router decided, for the load-balancing loss and expert-load statistics.
struct RouterOutput {
    torch::Tensor probs;  // [T, E] softmax of the router logits (float32, or float64 for a float64 model); under
                          // autograd it is the tensor the routing weights were gathered from, with its graph
    torch::Tensor chosen; // [T, k] int64 on the CPU: each token's experts, largest probability first
};

// Sparse MoE (softmax router, top-k, weights not renormalised). Tokens are grouped per expert so each expert
// runs one GEMM per call.
struct MoEImpl : torch::nn::Module {
    MoEImpl(int64_t hidden, int64_t inter, int64_t experts, int64_t top_k);
    // x: [T, H] -> y: [T, H] (+ residual when given); router, when not null, receives the routing (for the
    // load-balancing loss).
    torch::Tensor forward(const torch::Tensor& x, RouterOutput* router, const torch::Tensor& residual = {});
    torch::nn::Linear router{nullptr};
    torch::nn::ModuleList experts{nullptr};
    int64_t top_k;
};
TORCH_MODULE(MoE);

// A dense MLP or an MoE, per the layer schedule.
struct FeedForwardImpl : torch::nn::Module {
    FeedForwardImpl(const ModelConfig& c, bool experts);
    torch::Tensor forward(const torch::Tensor& x, std::vector<RouterOutput>* routers,
                          const torch::Tensor& residual = {}); // [B, L, H] (+ residual)
    MLP mlp{nullptr};
    MoE moe{nullptr};
};
TORCH_MODULE(FeedForward);

// Jamba-style Mamba mixer with RMSNorms on dt, B and C (MODEL.md 2.4).
struct MambaMixerImpl : torch::nn::Module {
    // shared_in/shared_out: the tied projections of the forward mixer (reverse mixer with weight tying);
    // null to own them.
    MambaMixerImpl(const ModelConfig& c, torch::nn::Linear shared_in, torch::nn::Linear shared_out);
    torch::Tensor forward(const torch::Tensor& u, const torch::Tensor& residual = {}); // [B, L, H] (+ residual)
    torch::nn::Linear in_proj{nullptr}, x_proj{nullptr}, dt_proj{nullptr}, out_proj{nullptr};
    torch::nn::Conv1d conv1d{nullptr};
    RMSNorm dt_layernorm{nullptr}, b_layernorm{nullptr}, c_layernorm{nullptr};
    torch::Tensor A_log, D;
    int64_t d_inner, d_state, dt_rank;
};
TORCH_MODULE(MambaMixer);

// Causal multi-head softmax attention within one stream, no positional encoding.
struct CausalAttentionImpl : torch::nn::Module {
    CausalAttentionImpl(int64_t hidden, int64_t heads);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual = {}); // [B, L, H] (+ residual)
    torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
    int64_t heads;
};
TORCH_MODULE(CausalAttention);

// One decoder layer: per direction, x + mixer(norm(x)) then h + ffn(norm(h)); the two streams never meet.
struct DecoderLayerImpl : torch::nn::Module {
    DecoderLayerImpl(const ModelConfig& c, int64_t index);
    // One stream through the layer: x is [B, L, H] (the backward stream in reversed order, with reverse = true);
    // an MoE layer appends its routing to `routers` when it is not null. Returns [B, L, H].
    torch::Tensor forward(const torch::Tensor& x, bool reverse, std::vector<RouterOutput>* routers);
    bool attention = false;
    MambaMixer mamba_fwd{nullptr}, mamba_rev{nullptr};
    CausalAttention self_attn_fwd{nullptr}, self_attn_bwd{nullptr};
    RMSNorm input_layernorm_fwd{nullptr}, pre_ff_layernorm_fwd{nullptr};
    RMSNorm input_layernorm_bwd{nullptr}, pre_ff_layernorm_bwd{nullptr};
    FeedForward feed_forward_fwd{nullptr}, feed_forward_bwd{nullptr};
};
TORCH_MODULE(DecoderLayer);

// The final attention over both streams with the Janus mask (MODEL.md 2.7), then a dense MLP.
struct FinalAttentionImpl : torch::nn::Module {
    explicit FinalAttentionImpl(const ModelConfig& c);
    torch::Tensor forward(const torch::Tensor& s); // [B, 2L, H]: forward states, then backward states in original order
    torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
    RMSNorm input_layernorm{nullptr}, pre_ff_layernorm{nullptr};
    MLP feed_forward{nullptr};
    int64_t heads;
    double scale; // 1/sqrt(flex_attn_n_embd/heads): the reference's padded head dim sets it
};
TORCH_MODULE(FinalAttention);

// Boolean Janus mask [2L, 2L] (true = may attend), on the given device.
torch::Tensor janus_mask(int64_t L, const torch::Device& device);

struct ForwardOutput {
    torch::Tensor hidden;                     // [B, L, H] fused, normed (and final-MLP'd): what feeds lm_head
    torch::Tensor logits;                     // [B, L, V] float32 (float64 for a float64 model)
    torch::Tensor stream_fwd, stream_bwd;     // [B, L, H] after the layer stack, both in original order
    std::vector<RouterOutput> router_fwd, router_bwd; // per MoE layer, B*L rows (the stream's own order)
    torch::Tensor aux_loss;                   // router_aux_loss_coef * (aux_fwd + aux_bwd), scalar
};

struct ForwardOptions {
    bool logits = true;       // run lm_head
    bool streams = false;     // keep the layer stack's outputs (for tests)
    bool aux_loss = false;    // collect the routers' outputs and compute the load-balancing loss
};

struct JanusModelImpl : torch::nn::Module {
    explicit JanusModelImpl(const ModelConfig& c);
    // ids: [B, L] int64, L >= 2.
    // Without autograd (inference mode or no-grad), batches of two or more windows are split across
    // parallel_width() threads, and within a thread's share the two streams run as two tasks (parallel.h);
    // results do not depend on the thread count. With autograd it runs on the calling thread.
    ForwardOutput forward(const torch::Tensor& ids, const ForwardOptions& opt = {});
    // The model on one share of the batch (forward() splits the batch and calls this per part); collects the
    // routers' outputs when opt.aux_loss but leaves aux_loss itself to forward(), which sees the whole batch.
    ForwardOutput forward_part(const torch::Tensor& ids, const ForwardOptions& opt);
    // Reference initialisation (MODEL.md 2.11), deterministic given torch's RNG state.
    void init_weights();

    ModelConfig config;
    torch::nn::Embedding embed_tokens{nullptr};
    torch::nn::ModuleList layers{nullptr};
    FinalAttention final_attention{nullptr};
    RMSNorm final_layernorm{nullptr};
    torch::nn::Sequential final_mlp{nullptr};
    torch::nn::Linear lm_head{nullptr};
};
TORCH_MODULE(JanusModel);

// Switch/Mixtral load-balancing loss over one direction's MoE layers: E sum_j sum_e f[j, e] P[e], f[j, e] the
// fraction of tokens whose j-th choice is e and P the mean router probability, over all layers' tokens. The
// gradient flows through the probabilities (the choices are constants).
torch::Tensor load_balancing_loss(const std::vector<RouterOutput>& routers);
// The same from router logits (each [T, E]): their softmax and top-k choices.
torch::Tensor load_balancing_loss(const std::vector<torch::Tensor>& router_logits, int64_t top_k);
// The routing of router logits [T, E]: probs = softmax in float32 or wider, chosen = top_k_indices(probs, k).
RouterOutput router_output(const torch::Tensor& logits, int64_t top_k);
// The indices of each row's k largest scores, largest first, ties to the lower index: [T, E] -> [T, k] int64. A
// plain scan on the CPU (torch::topk cost ~0.6 ms per call at [4096, 16], the router's shape); the result is a
// CPU tensor whatever the device of scores.
torch::Tensor top_k_indices(const torch::Tensor& scores, int64_t k);

struct ParameterCounts {
    int64_t total = 0;      // every parameter once (tied projections once), lm_head included
    int64_t backbone = 0;   // total minus lm_head
    int64_t activated = 0;  // backbone minus experts[top_k:] of every MoE block (the reference's definition)
    int64_t lm_head = 0;
    std::vector<std::pair<std::string, int64_t>> components; // embedding, mamba, attention, mlp, moe, final ...
};
ParameterCounts count_parameters(JanusModelImpl& model);

} // namespace janusdna
