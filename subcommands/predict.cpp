// janusdna predict: per-position base probabilities for every record of a FASTA file.
#include "common.h"

#include "janusdna/classifier.h"
#include "janusdna/error.h"
#include "janusdna/model_file.h"
#include "janusdna/predict.h"
#include "janusdna/strings.h"

#include <fmt/format.h>

using namespace janusdna;

int main_predict(int argc, char** argv) {
    CLI::App app{"Per-position probabilities of A, C, G, T for every record of a FASTA file. Each base is predicted "
                 "from both sides without seeing it, in one forward pass per record.", "predict"};
    std::string in_path, out_path = "-", out_type;
    int64_t window = cli::kWindowUnset, batch = 8;
    cli::CommonOptions common;
    cli::ModelOptions model;
    app.add_option("input", in_path, "FASTA file (plain, gzip or bgzip), - for stdin")->required()->group("Input");
    cli::add_model_options(app, model);
    app.add_option("-o,--output", out_path, "output file, - for stdout")->group("Output");
    cli::add_output_type_option(app, out_type, {"v", "safetensors"}, "v TSV text or safetensors [default: from the -o "
                                "suffix, else v]");
    cli::add_window_option(app, window, true, "Context");
    app.add_option("--batch", batch, "windows per forward pass")->group("Context");
    cli::add_common_options(app, common);
    app.footer("\nRecords longer than the window are tiled on a grid of windows starting every W/2 bases; each base is\n"
               "taken from the window where it is most central (as in track), so memory stays bounded whatever the\n"
               "record's length. --window 0 makes one pass per record.\n"
               "Output (tsv): name pos base pA pC pG pT, pos 1-based; probabilities renormalised over A/C/G/T.\n"
               "With a fine-tuned model (janusdna finetune): name predicted p(CLASS)... per record, as the model was\n"
               "trained (cut to its input length, pooled as it records; both strands averaged when it was trained with\n"
               "--rc).\n"
               "Output (safetensors): NAME.logits [L,16] and NAME.hidden [L,H], float32.\n"
               "N and IUPAC ambiguity codes are fed as [PAD], as in pretraining.\n\n"
               "Examples:\n  janusdna predict -m model.safetensors seqs.fa > probs.tsv\n"
               "  janusdna predict -O safetensors -o out.safetensors seqs.fa.gz\n");
    if (int rc = cli::parse(app, argc, argv); rc >= 0) return rc;

    return cli::guarded("predict", [&] {
        cli::apply_common_options(common);
        cli::check_writable_dir(out_path);  // before any work, so that none is lost at the end
        if (out_type.empty()) out_type = ends_with(out_path, ".safetensors") ? "safetensors" : "v";
        if (out_type == "safetensors" && out_path == "-")
            throw Error("safetensors output needs a file name: -o FILE.safetensors");
        if (batch < 1) throw Error(fmt::format("--batch must be at least 1, got {}", batch));
        LoadedModel m = cli::open_model(model, common, "predict");
        PredictSummary sum;
        if (is_classifier(m)) {
            if (out_type != "v") throw Error("a fine-tuned model's predictions are a table: use -O v");
            cli::Progress progress("predict", "records", 0, common.progress);
            sum = classify_records(classifier_of(m), in_path, out_path, [&](int64_t n) { progress.add(n); });
            progress.finish();
        } else {
            PredictOptions po;
            po.window = cli::resolve_window(window, m, true, cli::warner("predict", common));
            po.batch = batch;
            po.format = out_type == "safetensors" ? PredictFormat::Safetensors : PredictFormat::Tsv;
            po.metadata = {{"janusdna_command", cli::command_line(argc, argv)}, {"janusdna_version", JANUSDNA_VERSION},
                           {"model_md5", m.md5}};
            cli::Progress progress("predict", "bases", 0, common.progress);
            sum = predict_records(*m.model, in_path, out_path, po, [&](int64_t n) { progress.add(n); });
            progress.finish();
        }
        cli::info("predict", common, fmt::format("{}, {}", cli::plural(sum.records, "record"), cli::plural(sum.bases, "base")));
        return 0;
    });
}
