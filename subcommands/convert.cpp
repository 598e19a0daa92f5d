// janusdna convert: the reference's checkpoints (Lightning, Hugging Face, bare state dicts) to janusdna model
// files, and janusdna models to the Hugging Face layout.
#include "common.h"

#include "janusdna/convert.h"
#include "janusdna/error.h"

#include <fmt/format.h>

using namespace janusdna;

int main_convert(int argc, char** argv) {
    CLI::App app{"Convert the reference's checkpoints into janusdna model files, safely (nothing in them is ever "
                 "run), or a janusdna model into the reference's Hugging Face layout.", "convert"};
    ConvertOptions o;
    std::string to = "janusdna", dtype = "float32";
    std::vector<std::string> allow;
    cli::CommonOptions common;
    app.add_option("input", o.input, "Lightning .ckpt, Hugging Face directory (or its *.index.json), or a state dict "
                                     "(.bin, .pt, .safetensors); with --to hf, a janusdna model")->required()->group("Input");
    app.add_option("--config", o.config_path, "the model config, JSON or the reference's YAML (instead of the one "
                                              "in the input)")->group("Input");
    app.add_option("--set", o.set, "override a config field (repeatable), e.g. --set num_attention_heads=4")
        ->allow_extra_args(false)->group("Input");
    app.add_option("--allow-global", allow, "accept one more pickled class as inert data, never called "
                                            "(repeatable)")->allow_extra_args(false)->group("Input");
    app.add_option("-o,--output", o.output, "output model file (safetensors), or the directory with --to hf")
        ->required()->group("Output");
    app.add_option("--to", to, "janusdna (a model file every subcommand reads) or hf (config.json + "
                               "model.safetensors under the reference's names)")->capture_default_str()
        ->check(CLI::IsMember({"janusdna", "hf"}))->group("Output");
    app.add_option("--dtype", dtype, "stored dtype of the weights")->capture_default_str()
        ->check(CLI::IsMember({"float32", "float16", "bfloat16"}))->group("Output");
    cli::add_common_options(app, common);
    app.footer("\nThe config is taken from the input (Lightning's hyper_parameters, config.json), then --config, then\n"
               "--set; sizes, layer plan, experts and final_mlp are completed from the tensor shapes, and a field that\n"
               "contradicts the tensors is an error. Provenance (source, MD5, Lightning version, global_step, epoch,\n"
               "inferred fields) goes into the metadata: janusdna info shows it.\n\n"
               "Examples:\n"
               "  janusdna convert janusdna-32-midattn.ckpt -o janusdna-32.safetensors\n"
               "  janusdna convert hf/JanusDNA_72/ -o janusdna-72.safetensors\n"
               "  janusdna convert pytorch_model.bin --config janusdna.yaml -o m.safetensors\n"
               "  janusdna convert --to hf m.safetensors -o m_hf/\n");
    if (int rc = cli::parse(app, argc, argv); rc >= 0) return rc;
    return cli::guarded("convert", [&] {
        cli::apply_common_options(common);
        if (to == "hf") {
            export_hf(o.input, o.output);
            if (common.verbosity > 0)
                std::fprintf(stderr, "janusdna convert: wrote %s/config.json and %s/model.safetensors\n", o.output.c_str(),
                             o.output.c_str());
            return 0;
        }
        o.dtype = dtype == "float16" ? DType::F16 : dtype == "bfloat16" ? DType::BF16 : DType::F32;
        o.allow_globals.insert(allow.begin(), allow.end());
        cli::check_writable_dir(o.output);
        const ConvertSummary s = convert_checkpoint(o);
        if (common.verbosity > 0)
            std::fprintf(stderr, "janusdna convert: %s checkpoint -> %s: %zu tensor%s%s; inferred from the tensors: %s\n",
                         s.format.c_str(), o.output.c_str(), s.tensors, s.tensors == 1 ? "" : "s",
                         s.classifier ? " (a classifier)" : "",
                         s.inferred.empty() ? "nothing" : fmt::format("{}", fmt::join(s.inferred, ", ")).c_str());
        return 0;
    });
}
