#include "janusdna/config.h"
#include "janusdna/error.h"

#include <cmath>
#include <fmt/format.h>

namespace janusdna {

int64_t ModelConfig::padded_vocab() const {
    const int64_t m = pad_vocab_size_multiple > 0 ? pad_vocab_size_multiple : 1;
    return (vocab_size + m - 1) / m * m;
}

int64_t ModelConfig::dt_rank() const {
    return mamba_dt_rank > 0 ? mamba_dt_rank : (hidden_size + 15) / 16;
}

namespace {

// Fields that change nothing in the forward pass of the released configurations, or that name a code path we
// refuse to run (checked in validate()).
const char* const kKnownFields[] = {
    "vocab_size", "pad_vocab_size_multiple", "hidden_size", "intermediate_size", "num_hidden_layers",
    "num_attention_heads", "num_key_value_heads", "flex_attn_n_embd", "attn_layer_period", "attn_layer_offset",
    "expert_layer_period", "expert_layer_offset", "num_experts", "num_experts_per_tok", "mamba_d_state",
    "mamba_d_conv", "mamba_expand", "mamba_dt_rank", "mamba_conv_bias", "mamba_proj_bias", "rms_norm_eps",
    "bidirectional_weight_tie", "final_attention", "final_mlp", "router_aux_loss_coef"};

template <typename T>
void get(const nlohmann::json& j, const char* key, T& out, const std::string& source) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return;
    try {
        if constexpr (std::is_same_v<T, bool>) {
            if (!it->is_boolean()) throw Error("expected true or false");
        } else if constexpr (std::is_integral_v<T>) {
            if (!it->is_number_integer()) throw Error("expected an integer");
        } else {
            if (!it->is_number()) throw Error("expected a number");
        }
        out = it->get<T>();
    } catch (const std::exception& e) {
        throw Error(fmt::format("{}: config field \"{}\": {} (got {})", source, key, e.what(), it->dump()));
    }
}

} // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& j_in, const std::string& source) {
    // The reference's model_config.json wraps the fields as {"config": {...}}.
    const nlohmann::json& j = (j_in.is_object() && j_in.contains("config") && j_in["config"].is_object())
                                  ? j_in["config"] : j_in;
    if (!j.is_object()) throw Error(fmt::format("{}: model config is not a JSON object", source));
    ModelConfig c;
    get(j, "vocab_size", c.vocab_size, source);
    get(j, "pad_vocab_size_multiple", c.pad_vocab_size_multiple, source);
    get(j, "hidden_size", c.hidden_size, source);
    get(j, "intermediate_size", c.intermediate_size, source);
    get(j, "num_hidden_layers", c.num_hidden_layers, source);
    get(j, "num_attention_heads", c.num_attention_heads, source);
    get(j, "flex_attn_n_embd", c.flex_attn_n_embd, source);
    get(j, "attn_layer_period", c.attn_layer_period, source);
    get(j, "attn_layer_offset", c.attn_layer_offset, source);
    get(j, "expert_layer_period", c.expert_layer_period, source);
    get(j, "expert_layer_offset", c.expert_layer_offset, source);
    get(j, "num_experts", c.num_experts, source);
    get(j, "num_experts_per_tok", c.num_experts_per_tok, source);
    get(j, "mamba_d_state", c.mamba_d_state, source);
    get(j, "mamba_d_conv", c.mamba_d_conv, source);
    get(j, "mamba_expand", c.mamba_expand, source);
    if (auto it = j.find("mamba_dt_rank"); it != j.end() && !(it->is_string() && *it == "auto"))
        get(j, "mamba_dt_rank", c.mamba_dt_rank, source);
    get(j, "mamba_conv_bias", c.mamba_conv_bias, source);
    get(j, "mamba_proj_bias", c.mamba_proj_bias, source);
    get(j, "rms_norm_eps", c.rms_norm_eps, source);
    get(j, "bidirectional_weight_tie", c.bidirectional_weight_tie, source);
    get(j, "final_attention", c.final_attention, source);
    get(j, "final_mlp", c.final_mlp, source);
    get(j, "router_aux_loss_coef", c.router_aux_loss_coef, source);
    if (auto it = j.find("num_key_value_heads"); it != j.end() && !it->is_null()) {
        if (!it->is_number_integer() || it->get<int64_t>() != c.num_attention_heads)
            throw Error(fmt::format("{}: num_key_value_heads={} differs from num_attention_heads={}: grouped-query "
                                    "attention is not supported", source, it->dump(), c.num_attention_heads));
    }
    // Settings that select reference code paths known to be broken (MODEL.md section 7) are refused.
    auto refuse = [&](const char* key, bool bad_value, const char* why) {
        auto it = j.find(key);
        if (it != j.end() && it->is_boolean() && it->get<bool>() == bad_value)
            throw Error(fmt::format("{}: {}={} is not supported: {}", source, key, bad_value, why));
    };
    refuse("layer_fusion", true, "the reference path discards the mixer output");
    refuse("mid_single_direction_attention", false, "the reference path leaks the target across streams");
    refuse("bidirectional_attn_tie", true, "tied mid-attention weights are not implemented");
    for (auto& [k, v] : j.items()) {
        bool known = false;
        for (const char* f : kKnownFields) known = known || k == f;
        if (!known) c.extra[k] = v;
    }
    c.validate(source);
    return c;
}

void ModelConfig::validate(const std::string& source) const {
    auto fail = [&](const std::string& what) { throw Error(fmt::format("{}: invalid model config: {}", source, what)); };
    if (vocab_size < 11) fail("vocab_size must be at least 11 (the DNA token ids)");
    if (pad_vocab_size_multiple < 1) fail("pad_vocab_size_multiple must be >= 1");
    if (hidden_size < 1 || intermediate_size < 1 || num_hidden_layers < 0) fail("sizes must be positive");
    if (num_attention_heads < 1 || hidden_size % num_attention_heads != 0)
        fail(fmt::format("hidden_size {} is not divisible by num_attention_heads {}", hidden_size, num_attention_heads));
    if (flex_attn_n_embd < num_attention_heads) fail("flex_attn_n_embd must be at least num_attention_heads");
    if (attn_layer_period < 1 || expert_layer_period < 1) fail("layer periods must be >= 1");
    if (num_experts < 1 || num_experts_per_tok < 1 || num_experts_per_tok > num_experts)
        fail("need 1 <= num_experts_per_tok <= num_experts");
    if (mamba_d_state < 1 || mamba_d_conv < 1 || mamba_expand < 1) fail("mamba sizes must be positive");
    if (!final_attention) fail("final_attention=false pairs the wrong positions in the reference fusion");
    if (!(rms_norm_eps > 0)) fail("rms_norm_eps must be > 0");
}

nlohmann::json ModelConfig::to_json() const {
    nlohmann::json j = extra;
    j["vocab_size"] = vocab_size;
    j["pad_vocab_size_multiple"] = pad_vocab_size_multiple;
    j["hidden_size"] = hidden_size;
    j["intermediate_size"] = intermediate_size;
    j["num_hidden_layers"] = num_hidden_layers;
    j["num_attention_heads"] = num_attention_heads;
    j["flex_attn_n_embd"] = flex_attn_n_embd;
    j["attn_layer_period"] = attn_layer_period;
    j["attn_layer_offset"] = attn_layer_offset;
    j["expert_layer_period"] = expert_layer_period;
    j["expert_layer_offset"] = expert_layer_offset;
    j["num_experts"] = num_experts;
    j["num_experts_per_tok"] = num_experts_per_tok;
    j["mamba_d_state"] = mamba_d_state;
    j["mamba_d_conv"] = mamba_d_conv;
    j["mamba_expand"] = mamba_expand;
    j["mamba_dt_rank"] = dt_rank();
    j["mamba_conv_bias"] = mamba_conv_bias;
    j["mamba_proj_bias"] = mamba_proj_bias;
    j["rms_norm_eps"] = rms_norm_eps;
    j["bidirectional_weight_tie"] = bidirectional_weight_tie;
    j["final_attention"] = final_attention;
    j["final_mlp"] = final_mlp;
    j["router_aux_loss_coef"] = router_aux_loss_coef;
    j["layer_fusion"] = false;
    j["mid_single_direction_attention"] = true;
    return j;
}

const char* ModelConfig::preset_names() { return "32-midattn, 32-nomidattn, 72-midattn, 72-nomidattn, 144-nomidattn"; }

ModelConfig ModelConfig::preset(const std::string& name) {
    // MODEL.md section 2.1: H / I / flex from the pretraining scripts; everything else is shared.
    ModelConfig c;
    const auto dash = name.find('-');
    const std::string size = name.substr(0, dash), kind = dash == std::string::npos ? "" : name.substr(dash + 1);
    if (size == "32") { c.hidden_size = 32; c.intermediate_size = 128; c.flex_attn_n_embd = 64; }
    else if (size == "72") { c.hidden_size = 72; c.intermediate_size = 288; c.flex_attn_n_embd = 128; }
    else if (size == "144") { c.hidden_size = 144; c.intermediate_size = 576; c.flex_attn_n_embd = 256; }
    else throw Error(fmt::format("unknown preset \"{}\" (known: {})", name, preset_names()));
    if (kind == "midattn" && size != "144") c.attn_layer_offset = 4;
    else if (kind == "nomidattn") c.attn_layer_offset = 100;
    else throw Error(fmt::format("unknown preset \"{}\" (known: {})", name, preset_names()));
    c.vocab_size = 12;
    return c;
}

} // namespace janusdna
