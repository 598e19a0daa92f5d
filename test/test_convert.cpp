// janusdna convert: the reference's checkpoint layouts reproduce the fixtures' outputs, configs are completed and
// checked from the tensors, and the Hugging Face export round-trips.
#include "janusdna/classifier.h"
#include "janusdna/convert.h"
#include "janusdna/error.h"
#include "janusdna/model_file.h"
#include "janusdna/torch_checkpoint.h"

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "tempdir.h"

using namespace janusdna;

namespace {

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Max |diff| of logits and hidden states against NAME.expected.safetensors.
std::pair<double, double> parity(LoadedModel m, const std::string& name) {
    SafetensorsFile expected = SafetensorsFile::open(test::data(name + ".expected.safetensors"));
    torch::Tensor ids = test::read_tensor(expected, "input_ids");                        // [B, L]
    c10::InferenceMode guard;
    ForwardOutput y = m.model->forward(ids);
    return {max_abs_diff(y.logits, test::read_tensor(expected, "logits")),
            max_abs_diff(y.hidden, test::read_tensor(expected, "hidden"))};
}

ConvertSummary convert(const std::string& in, const std::string& out, std::vector<std::string> set = {},
                       const std::string& config = "") {
    ConvertOptions o;
    o.input = in;
    o.output = out;
    o.set = std::move(set);
    o.config_path = config;
    return convert_checkpoint(o);
}

const std::string kCkpt = "checkpoints/tiny-midattn.lightning.ckpt";
const std::string kHf = "checkpoints/tiny-nomidattn.hf";
const std::string kTuned = "checkpoints/tiny-nomidattn.lightning-finetuned.ckpt";

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

} // namespace

TEST_CASE("convert: the Lightning and Hugging Face layouts reproduce the reference's outputs") {
    test::TempDir dir;
    ConvertSummary s = convert(test::data(kCkpt), dir.file("a.safetensors"));
    CHECK(s.format == "lightning");
    CHECK(has(s.inferred, "final_mlp"));  // no config field says it; the tensors do
    LoadedModel a = load_model(dir.file("a.safetensors"));
    CHECK(a.config.final_mlp);
    auto [la, ha] = parity(a, "tiny-midattn");
    CHECK(la <= 1e-4);
    CHECK(ha <= 1e-4);
    // Provenance: the source, its MD5, Lightning's version, step and epoch, and what was inferred.
    const nlohmann::json p = nlohmann::json::parse(a.metadata.at("janusdna_source"));
    CHECK(p["file"] == "tiny-midattn.lightning.ckpt");
    CHECK(p["md5"]["tiny-midattn.lightning.ckpt"] == file_md5(test::data(kCkpt)));
    CHECK(p["lightning_version"] == "2.4.0");
    CHECK(p["global_step"] == 10000);
    CHECK(p["epoch"] == 3);
    CHECK(p["inferred"] == nlohmann::json(s.inferred));

    s = convert(test::data(kHf), dir.file("b.safetensors"));
    CHECK(s.format == "hf");
    CHECK(has(s.inferred, "final_mlp"));
    LoadedModel b = load_model(dir.file("b.safetensors"));
    CHECK(b.config.final_mlp);
    auto [lb, hb] = parity(b, "tiny-nomidattn");
    CHECK(lb <= 1e-4);
    CHECK(hb <= 1e-4);
}

TEST_CASE("convert: weights without a final MLP (as published before 2025-08) are told by their tensors") {
    test::TempDir dir;
    // A bare safetensors state dict of the fixture without final_mlp.* and without janusdna's metadata.
    SafetensorsFile f = SafetensorsFile::open(test::data("tiny-midattn.model.safetensors"));
    SafetensorsWriter w;
    for (const auto& v : f.tensors())
        if (v.name.rfind("model.final_mlp.", 0) != 0) w.add(v.name, v.dtype, v.shape, v.data, v.nbytes);
    w.write(dir.file("sd.safetensors"));
    const std::string cfg = test::data("tiny-midattn.config.json"); // says "final_mlp": true
    CHECK(test::error_of([&] { convert(dir.file("sd.safetensors"), dir.file("x.safetensors"), {}, cfg); })
              .find("config field final_mlp=true contradicts the tensors, which give false") != std::string::npos);
    ConvertSummary s = convert(dir.file("sd.safetensors"), dir.file("n.safetensors"), {"final_mlp=null"}, cfg);
    CHECK(has(s.inferred, "final_mlp"));
    LoadedModel m = load_model(dir.file("n.safetensors"));
    CHECK_FALSE(m.config.final_mlp);
    CHECK(m.model->forward(test::random_ids(20)).logits.size(2) == 16);
}

TEST_CASE("convert: a fine-tuned checkpoint becomes a classifier; its probabilities are softmax(W mean(h) + b)") {
    test::TempDir dir;
    ConvertSummary s = convert(test::data(kTuned), dir.file("c.safetensors"));
    CHECK(s.classifier);
    CHECK(has(s.ignored, "train_torchmetrics.MulticlassAccuracy.tp"));
    LoadedModel m = load_model(dir.file("c.safetensors"));
    REQUIRE(is_classifier(m));
    CHECK_FALSE(m.lm_head);
    auto [l, h] = parity(m, "tiny-nomidattn");
    CHECK(h <= 1e-4); // the backbone's hidden states
    LoadedClassifier lc = classifier_of(m);
    REQUIRE(lc.info.length == 1024); // the checkpoint's dataset.max_length
    CHECK(lc.info.classes == std::vector<std::string>{"0", "1"});
    CHECK(lc.info.pooling == "reference"); // the reference fine-tuned with its mean over the padded input

    // The head as the checkpoint stores it, read independently of the converter.
    TorchArchive ar = TorchArchive::open(test::data(kTuned));
    torch::Tensor W, B;
    for (auto& [name, t] : ar.tensors_of(ar.root()->get("state_dict"))) {
        if (name.rfind("decoder.", 0) != 0) continue;
        torch::Tensor x = torch::empty(t.shape, torch::kFloat);
        convert_to_f32(t.view(name), x.data_ptr<float>());
        if (name == "decoder.0.output_transform.weight") W = x;
        if (name == "decoder.0.output_transform.bias") B = x;
    }
    REQUIRE((W.defined() && B.defined()));
    torch::manual_seed(3);
    std::string seq;
    for (int i = 0; i < 1024; ++i) seq += "ACGT"[torch::randint(0, 4, {1}).item<int>()];
    torch::Tensor p = predict_proba(*lc.clf, {seq}, lc.info.length, false, 1);                          // [1, 2]
    torch::Tensor ids = torch::empty({1, 1024}, torch::kLong);                                          // [1, L]
    for (int i = 0; i < 1024; ++i) ids[0][i] = static_cast<int64_t>(std::string("ACGT").find(seq[i]) + 7);
    c10::InferenceMode guard;
    torch::Tensor hidden = m.model->forward(ids).hidden[0];                                             // [L, H]
    torch::Tensor want = torch::softmax(torch::matmul(W, hidden.mean(0)) + B, 0);                       // [2]
    CHECK(max_abs_diff(p[0], want) <= 1e-5);
}

TEST_CASE("convert: the config is completed from the tensors and checked against them") {
    test::TempDir dir;
    const std::string bin = test::data(kHf + "/pytorch_model.bin");
    // Only what no shape tells: heads, the final attention's width, experts per token.
    const std::string minimal = dir.write("min.json", R"({"num_attention_heads": 4, "flex_attn_n_embd": 64,
                                                          "num_experts_per_tok": 2})");
    ConvertSummary s = convert(bin, dir.file("m.safetensors"), {}, minimal);
    CHECK(s.format == "state_dict");
    for (const char* f : {"hidden_size", "num_hidden_layers", "mamba_d_state", "mamba_d_conv", "mamba_expand",
                          "mamba_dt_rank", "num_experts", "intermediate_size", "attn_layer_offset",
                          "expert_layer_period", "expert_layer_offset", "final_mlp", "vocab_size"}) {
        CAPTURE(f);
        CHECK(has(s.inferred, f));
    }
    LoadedModel m = load_model(dir.file("m.safetensors"));
    CHECK(parity(m, "tiny-nomidattn").first <= 1e-4);
    CHECK(m.config.num_hidden_layers == 8);
    CHECK(m.config.is_expert_layer(1));
    CHECK_FALSE(m.config.is_expert_layer(2));
    for (int64_t i = 0; i < 8; ++i) CHECK_FALSE(m.config.is_attention_layer(i));

    // The reference's YAML model config (configs/model/janusdna.yaml), with a "${...}" left unresolved.
    const std::string yaml = dir.write("janusdna.yaml", "_name_: janusdna_lm\nconfig:\n"
                                       "  _target_: janusdna.configuration_janusdna.JanusDNAConfig\n"
                                       "  hidden_size: 32\n  num_attention_heads: 4\n  flex_attn_n_embd: 64\n"
                                       "  num_experts_per_tok: 2\n  rms_norm_eps: 1.0e-6\n  vocab_size: 12\n"
                                       "  attn_layer_offset: 100\n  attn_layer_period: 8\n"
                                       "  initializer_range: ${eval:0.02}\n"
                                       "  ssm_cfg:\n    d_state: 16\n    d_conv: 4\n    expand: 2\n    dt_rank: auto\n");
    convert(bin, dir.file("y.safetensors"), {}, yaml);
    CHECK(parity(load_model(dir.file("y.safetensors")), "tiny-nomidattn").first <= 1e-4);

    // Fields that contradict the tensors name both values; fields nothing can infer name the flag to give.
    CHECK(test::error_of([&] { convert(bin, dir.file("x.safetensors"), {"hidden_size=64"}, minimal); })
              .find("config field hidden_size=64 contradicts the tensors, which give 32") != std::string::npos);
    CHECK(test::error_of([&] { convert(test::data(kCkpt), dir.file("x.safetensors"), {"attn_layer_offset=2"}); })
              .find("put attention layers at {2}, but the tensors have them at {4}") != std::string::npos);
    CHECK(test::error_of([&] { convert(bin, dir.file("x.safetensors"), {"mamba_d_state=8"}, minimal); })
              .find("mamba_d_state=8 contradicts the tensors, which give 16") != std::string::npos);
    CHECK(test::error_of([&] { convert(bin, dir.file("x.safetensors"), {"vocab_size=20"}, minimal); })
              .find("vocab_size=20") != std::string::npos);
    const std::string no_heads = dir.write("nh.json", R"({"flex_attn_n_embd": 64, "num_experts_per_tok": 2})");
    CHECK(test::error_of([&] { convert(bin, dir.file("x.safetensors"), {}, no_heads); })
              .find("give it with --set num_attention_heads=N") != std::string::npos);
    CHECK(test::error_of([&] { convert(bin, dir.file("x.safetensors"), {"num_attention_heads=4"}, no_heads); }) ==
          "(no error)");
    CHECK(test::error_of([&] { convert(bin, dir.file("x.safetensors")); }).find("--config") != std::string::npos);
    // The engine's refusals keep their messages.
    CHECK(test::error_of([&] { convert(test::data(kCkpt), dir.file("x.safetensors"), {"layer_fusion=true"}); })
              .find("layer_fusion=true is not supported") != std::string::npos);
    CHECK(test::error_of([&] { convert(test::data(kCkpt), dir.file("x.safetensors"), {"num_attention_heads=5"}); })
              .find("not divisible by num_attention_heads 5") != std::string::npos);
}

TEST_CASE("convert: dtypes, and the Hugging Face export round-trips") {
    test::TempDir dir;
    ConvertOptions o;
    o.input = test::data(kCkpt);
    o.output = dir.file("h.safetensors");
    o.dtype = DType::BF16;
    convert_checkpoint(o);
    SafetensorsFile h = SafetensorsFile::open(dir.file("h.safetensors"));
    CHECK(h.find("model.embed_tokens.weight")->dtype == DType::BF16);
    CHECK(parity(load_model(dir.file("h.safetensors")), "tiny-midattn").first < 0.5);

    convert(test::data(kCkpt), dir.file("a.safetensors"));
    export_hf(dir.file("a.safetensors"), dir.file("hf"));
    std::ifstream cj(dir.file("hf/config.json"));
    const nlohmann::json config = nlohmann::json::parse(cj);
    CHECK(config["model_type"] == "JanusDNA");
    CHECK(config["hidden_size"] == 32);
    ConvertSummary s = convert(dir.file("hf"), dir.file("b.safetensors"));
    CHECK(s.inferred.empty());
    SafetensorsFile a = SafetensorsFile::open(dir.file("a.safetensors")), b = SafetensorsFile::open(dir.file("b.safetensors"));
    CHECK(a.metadata().at("janusdna_config") == b.metadata().at("janusdna_config"));
    REQUIRE(a.tensors().size() == b.tensors().size());
    for (size_t i = 0; i < a.tensors().size(); ++i) {
        const TensorView &x = a.tensors()[i], &y = b.tensors()[i];
        CHECK(x.name == y.name);
        CHECK((x.nbytes == y.nbytes && std::memcmp(x.data, y.data, x.nbytes) == 0));
    }
    CHECK(test::error_of([&] {
              convert(test::data(kTuned), dir.file("c.safetensors"));
              export_hf(dir.file("c.safetensors"), dir.file("hf2"));
          }).find("classifier") != std::string::npos);
}

TEST_CASE("convert: a checkpoint given as a model says what it is and what to run") {
    CHECK(test::error_of([] { load_model(test::data(kCkpt)); })
              .find("a PyTorch checkpoint (torch.save zip), not a janusdna model file; convert it first: janusdna "
                    "convert") != std::string::npos);
    CHECK(test::error_of([] { load_model(test::data(kHf)); }).find("a Hugging Face model directory") != std::string::npos);
    CHECK(test::error_of([] { load_model(test::data("tiny-midattn.fa")); }).find("not a safetensors model file") !=
          std::string::npos);
    test::TempDir dir;
    CHECK(test::error_of([&] { convert(test::data("tiny-midattn.model.safetensors"), dir.file("x.safetensors")); })
              .find("already a janusdna model file") != std::string::npos);
}
