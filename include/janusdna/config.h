// JanusDNA model configuration, with the reference implementation's field names (JanusDNAConfig).
#pragma once
#include <cstdint>
#include <string>
#include <nlohmann/json.hpp>

namespace janusdna {

struct ModelConfig {
    int64_t vocab_size = 12;             // before padding; padded_vocab() is what the tensors have
    int64_t pad_vocab_size_multiple = 8;
    int64_t hidden_size = 32;            // H
    int64_t intermediate_size = 128;     // I: MLP / expert width
    int64_t num_hidden_layers = 8;
    int64_t num_attention_heads = 4;
    int64_t flex_attn_n_embd = 64;       // sets the final attention's softmax scale (MODEL.md 2.7)
    int64_t attn_layer_period = 8, attn_layer_offset = 4;
    int64_t expert_layer_period = 2, expert_layer_offset = 1;
    int64_t num_experts = 16, num_experts_per_tok = 2;
    int64_t mamba_d_state = 16, mamba_d_conv = 4, mamba_expand = 2;
    int64_t mamba_dt_rank = 0;           // 0 = "auto" = ceil(H / 16)
    bool mamba_conv_bias = true, mamba_proj_bias = false;
    double rms_norm_eps = 1e-6;
    bool bidirectional_weight_tie = true; // in_proj/out_proj shared by the forward and reverse mixers
    bool final_attention = true;
    bool final_mlp = false;
    double router_aux_loss_coef = 0.2;
    nlohmann::json extra = nlohmann::json::object(); // fields we do not interpret, kept for round trips

    int64_t padded_vocab() const;        // vocab_size rounded up to pad_vocab_size_multiple
    int64_t d_inner() const { return mamba_expand * hidden_size; }
    int64_t dt_rank() const;             // resolved "auto"
    int64_t head_dim() const { return hidden_size / num_attention_heads; }
    bool is_attention_layer(int64_t i) const { return i % attn_layer_period == attn_layer_offset; }
    bool is_expert_layer(int64_t i) const { return i % expert_layer_period == expert_layer_offset; }

    // Throws janusdna::Error naming `source` for a missing/ill-typed field or an unsupported setting.
    static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
    nlohmann::json to_json() const;
    void validate(const std::string& source) const;

    // The paper's configurations: "32-midattn", "32-nomidattn", "72-midattn", "72-nomidattn", "144-nomidattn".
    static ModelConfig preset(const std::string& name);
    static const char* preset_names();
};

} // namespace janusdna
