// janusdna info: describe a model file.
#include "common.h"

#include "janusdna/model_file.h"
#include "janusdna/safetensors.h"

#include <htslib/hts.h>

#include <fmt/format.h>

int main_info(int argc, char** argv) {
    CLI::App app{"Describe a model file: config, layer plan, parameter counts and checksum.", "info"};
    std::string model_path;
    bool json_out = false, tensors = false;
    app.add_option("model", model_path, "model file (safetensors); default: the bundled model")->group("Input");
    app.add_flag("-j,--json", json_out, "print one JSON object instead of text")->group("Output");
    app.add_flag("-t,--tensors", tensors, "list the file's tensors instead: name, dtype, shape, MD5 of the data")->group("Output");
    app.footer("\nExample:\n  janusdna info data/models/default.safetensors\n");
    // `janusdna info` alone describes the default model, so it is not a usage error.
    if (argc <= 1) {
        static char name[] = "info";
        static char* empty_argv[] = {name, nullptr};
        argv = empty_argv;
    }
    try {
        app.parse(std::max(argc, 1), argv);
    } catch (const CLI::CallForHelp&) {
        std::fputs(app.help().c_str(), stdout);
        return 0;
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "janusdna info: %s\n", e.what());
        return 1;
    }
    return janusdna::cli::guarded("info", [&] {
        const std::string path = janusdna::resolve_model_path(model_path);
        if (tensors) {
            // Works on any safetensors file (checkpoints, outputs), not only on models.
            janusdna::SafetensorsFile f = janusdna::SafetensorsFile::open(path);
            for (const auto& v : f.tensors()) {
                hts_md5_context* ctx = hts_md5_init();
                hts_md5_update(ctx, v.data, v.nbytes);
                unsigned char digest[16];
                char hex[33];
                hts_md5_final(digest, ctx);
                hts_md5_destroy(ctx);
                hts_md5_hex(hex, digest);
                fmt::print("{}\t{}\t[{}]\t{}\n", v.name, janusdna::dtype_name(v.dtype), fmt::join(v.shape, ","), hex);
            }
            return 0;
        }
        janusdna::LoadedModel m = janusdna::load_model(path);
        const auto& c = m.config;
        auto counts = janusdna::count_parameters(*m.model);
        const std::string md5 = janusdna::file_md5(path);
        std::vector<std::string> plan;
        for (int64_t i = 0; i < c.num_hidden_layers; ++i)
            plan.push_back(fmt::format("{}+{}", c.is_attention_layer(i) ? "attn" : "mamba",
                                       c.is_expert_layer(i) ? fmt::format("moe{}", c.num_experts) : "mlp"));
        if (json_out) {
            nlohmann::json j;
            j["path"] = path;
            j["md5"] = md5;
            j["config"] = c.to_json();
            j["layers"] = plan;
            j["parameters"] = {{"total", counts.total}, {"backbone", counts.backbone},
                               {"activated", counts.activated}, {"lm_head", counts.lm_head}};
            for (const auto& [k, v] : counts.components) j["parameters"]["components"][k] = v;
            for (const auto& [k, v] : m.metadata)
                if (k != "janusdna_config") j["metadata"][k] = v;
            fmt::print("{}\n", j.dump(2));
            return 0;
        }
        fmt::print("file\t{}\nmd5\t{}\n", path, md5);
        fmt::print("hidden_size\t{}\nintermediate_size\t{}\nlayers\t{}\nheads\t{}\nflex_attn_n_embd\t{}\n", c.hidden_size,
                   c.intermediate_size, c.num_hidden_layers, c.num_attention_heads, c.flex_attn_n_embd);
        fmt::print("experts\t{} (top-{})\nd_state\t{}\nd_conv\t{}\nexpand\t{}\ndt_rank\t{}\nvocab\t{} (padded from {})\n",
                   c.num_experts, c.num_experts_per_tok, c.mamba_d_state, c.mamba_d_conv, c.mamba_expand, c.dt_rank(),
                   c.padded_vocab(), c.vocab_size);
        fmt::print("final_attention\tjanus mask, softmax scale 1/sqrt({}/{})\nfinal_mlp\t{}\n", c.flex_attn_n_embd,
                   c.num_attention_heads, c.final_mlp ? "yes" : "no");
        for (size_t i = 0; i < plan.size(); ++i) fmt::print("layer {}\t{}\n", i, plan[i]);
        fmt::print("params_total\t{}\nparams_backbone\t{}\nparams_activated\t{}\nparams_lm_head\t{}\n", counts.total,
                   counts.backbone, counts.activated, counts.lm_head);
        for (const auto& [k, v] : counts.components) fmt::print("params[{}]\t{}\n", k, v);
        for (const auto& [k, v] : m.metadata)
            if (k != "janusdna_config") fmt::print("meta[{}]\t{}\n", k, v);
        return 0;
    });
}
