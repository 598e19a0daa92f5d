// Shared helpers for the unit tests.
#pragma once
#include <string>
#include <torch/types.h>

#include "janusdna/config.h"
#include "janusdna/safetensors.h"

namespace test {

inline std::string data(const std::string& name) { return std::string(JANUSDNA_TEST_DATA) + "/" + name; }
// The bundled default model (data/models/default.safetensors: H = 32, trained on GRCh37 chr20).
inline std::string bundled_model() { return std::string(JANUSDNA_TEST_DATA) + "/../../data/models/default.safetensors"; }

// A float32 copy of a tensor stored in a safetensors file.
inline torch::Tensor read_tensor(const janusdna::SafetensorsFile& f, const std::string& name) {
    const janusdna::TensorView* v = f.find(name);
    if (!v) throw std::runtime_error("test data lacks tensor " + name);
    if (v->dtype == janusdna::DType::I64)
        return torch::from_blob(const_cast<void*>(v->data), v->shape, torch::kLong).clone();
    torch::Tensor t = torch::empty(v->shape, torch::kFloat);
    janusdna::convert_to_f32(*v, t.data_ptr<float>());
    return t;
}

// A small config exercising every block: mamba, mid attention, MoE, final MLP.
inline janusdna::ModelConfig tiny_config() {
    janusdna::ModelConfig c;
    c.hidden_size = 8;
    c.intermediate_size = 12;
    c.num_hidden_layers = 3;
    c.num_attention_heads = 2;
    c.flex_attn_n_embd = 8;
    c.attn_layer_period = 3;
    c.attn_layer_offset = 1;
    c.num_experts = 4;
    c.num_experts_per_tok = 2;
    c.mamba_d_state = 4;
    c.final_mlp = true;
    return c;
}

// A random sequence of token ids 7..10, [1, L].
inline torch::Tensor random_ids(int64_t L, int64_t batch = 1) { return torch::randint(7, 11, {batch, L}, torch::kLong); }

} // namespace test
