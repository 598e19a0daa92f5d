// janusdna evaluate: benchmark numbers with the baselines a reviewer asks for, on the same splits. Three separate
// modes, each one call into the library (include/janusdna/evaluate.h):
//   classification (default): fine-tuned models on a test split vs the majority class and k-mer logistic regression;
//   --variants VCF:           zero-shot scores from score-variants vs labels or measured effects, with a Markov baseline;
//   --lm:                     bits per base on regions vs the best both-sided Markov model.
// An option that belongs to another mode is refused.
#include "common.h"
#include "dataset_args.h"

#include "janusdna/atomic_file.h"
#include "janusdna/classifier.h"
#include "janusdna/error.h"
#include "janusdna/evaluate.h"
#include "janusdna/model_file.h"

#include <fmt/format.h>
#include <memory>
#include <utility>

using namespace janusdna;

namespace {

enum Mode { kClassification = 1, kVariants = 2, kLm = 4 };

// The options that belong to some modes only (named as CLI11 finds them); -f, --chr-prefix, --rename-chrs, -o,
// --json, --tsv and the common options are shared by all three.
const std::pair<int, std::vector<const char*>> kModeOptions[] = {
    {kClassification, {"--valid", "--test", "--seq-column", "--label-column", "--valid-fraction", "--folds", "--fold",
                       "--split-seed", "--batch"}},
    {kClassification | kLm, {"data", "--model"}},
    {kClassification | kVariants, {"--plot"}},
    {kVariants, {"--score", "--direction", "--label-id", "--label-info", "--positive", "--effect-info", "--markov-order",
                 "--bootstrap", "--seed"}},
    {kLm, {"--region", "--regions-file", "--train-regions", "--markov-train", "--window", "--markov-max-order"}},
};

// Throws "OPTION belongs to evaluate --variants" for the first option given that `mode` does not take.
void refuse_other_modes(const CLI::App& app, int mode) {
    for (const auto& [modes, names] : kModeOptions) {
        if (modes & mode) continue;
        for (const char* name : names) {
            if (app.count(name) == 0) continue;
            std::vector<std::string> owners;
            if (modes & kClassification) owners.push_back("evaluate (classification)");
            if (modes & kVariants) owners.push_back("evaluate --variants");
            if (modes & kLm) owners.push_back("evaluate --lm");
            const std::string shown = std::string(name) == "data" ? "DATA" : name;
            throw Error(fmt::format("{} belongs to {}", shown, fmt::join(owners, " and ")));
        }
    }
}

// The library's progress as a bar on stderr: a new bar when a pass starts, finished when it ends.
struct ProgressBar {
    std::string unit;
    bool force = false;
    std::shared_ptr<cli::Progress> bar;
    int64_t shown = 0;
    void operator()(int64_t done, int64_t total) {
        if (!bar) {
            bar = std::make_shared<cli::Progress>("evaluate", unit, total, force);
            shown = 0;
        }
        bar->add(done - shown);
        shown = done;
        if (done >= total) bar.reset();  // the pass ends: the final line is drawn
    }
};

void write_file(const std::string& path, const std::string& text) {
    AtomicFile f(path);
    f.write(text);
    f.commit();
}

} // namespace

int main_evaluate(int argc, char** argv) {
    CLI::App app{"Benchmark metrics next to the baselines a reviewer asks for, on the same splits. Classification (default): "
                 "fine-tuned models on the test split vs the majority class and k-mer logistic regression, mean ± sd over "
                 "models (seeds or folds). --variants: zero-shot scores vs labels or measured effects, with a Markov "
                 "baseline. --lm: bits per base on regions vs the best both-sided Markov model. Each mode takes its own "
                 "options; an option of another mode is refused.", "evaluate"};
    cli::DatasetArgs data;
    std::vector<std::string> models;
    std::string table_path = "-", json_path, tsv_path, plot_prefix;
    VariantEvalOptions va;
    LmEvalOptions la;
    int64_t window = cli::kWindowUnset, batch = 32;
    bool lm = false;
    cli::CommonOptions common;
    cli::add_dataset_options(app, data, true);
    app.add_option("-m,--model", models, "fine-tuned model (repeat for several seeds or folds); with --lm, the model")->group("Model");
    app.add_option("--batch", batch, "sequences per forward pass")->group("Model");
    app.add_option("-o,--output", table_path, "readable table, - for stdout")->group("Output");
    app.add_option("--json", json_path, "everything, as JSON")->group("Output");
    app.add_option("--tsv", tsv_path, "method, run, metric, value rows")->group("Output");
    app.add_option("--plot", plot_prefix, "write PREFIX.roc.svg and PREFIX.confusion.svg")->group("Output");
    app.add_option("--variants", va.vcf, "zero-shot variant effect: a VCF/BCF scored by janusdna score-variants")->group("Variant effect");
    app.add_option("--score", va.score_tag, "INFO tag holding the score")->group("Variant effect");
    app.add_option("--direction", va.direction, "lower or higher: which end of the score the positive class is expected at")->group("Variant effect");
    app.add_option("--label-id", va.label_id, "positive when the ID matches this regular expression")->group("Variant effect");
    app.add_option("--label-info", va.label_info, "positive from this INFO tag (flag, non-zero number, or --positive string)")->group("Variant effect");
    app.add_option("--positive", va.positive, "the --label-info value that means positive")->group("Variant effect");
    app.add_option("--effect-info", va.effect_info, "numeric INFO tag of a measured effect (Spearman correlation)")->group("Variant effect");
    app.add_option("--markov-order", va.markov_order, "order of the Markov baseline for variants")->group("Variant effect");
    app.add_option("--bootstrap", va.bootstrap, "bootstrap resamples for the intervals")->group("Variant effect");
    app.add_option("--seed", va.seed, "bootstrap seed")->group("Variant effect");
    app.add_flag("--lm", lm, "language modelling: bits per base of -m on -r REGION... / -R BED of the indexed FASTA given as DATA, or on every record of DATA")->group("Language modelling");
    app.add_option("-r,--region", la.regions, "region to evaluate (1-based, inclusive; repeatable)")->group("Language modelling");
    app.add_option("-R,--regions-file", la.regions_bed, "BED of regions to evaluate")->group("Language modelling");
    app.add_option("--train-regions", la.train_regions, "BED or REGION the Markov baseline is counted on [the rest of the evaluated contigs]")->group("Language modelling");
    app.add_option("--markov-train", la.markov_train, "FASTA the Markov baseline is counted on (records mode) [the evaluated records]")->group("Language modelling");
    cli::add_window_option(app, window, false, "Language modelling");
    app.add_option("--markov-max-order", la.markov_max_order, "largest Markov order tried (0..6)")->group("Language modelling");
    cli::add_common_options(app, common);
    app.footer("\nExamples:\n"
               "  janusdna evaluate -m tata.1.safetensors -m tata.2.safetensors -m tata.3.safetensors --json tata.json --plot tata\n"
               "  janusdna evaluate -m cohn.safetensors --test human_enhancers_cohn.test.tsv\n"
               "  janusdna evaluate --variants scored.vcf.gz --label-id '^Pathogenic' -f 20.fa.gz\n"
               "  janusdna evaluate --lm 20.fa.gz -r 20:60,000,001-60,100,000\n");
    if (int rc = cli::parse(app, argc, argv); rc >= 0) return rc;

    return cli::guarded("evaluate", [&]() -> int {
        cli::apply_common_options(common);
        if (!va.vcf.empty() && lm) throw Error("--variants and --lm are different tasks; give one");
        const int mode = !va.vcf.empty() ? kVariants : lm ? kLm : kClassification;
        refuse_other_modes(app, mode);
        for (const std::string& p : {table_path, json_path, tsv_path, plot_prefix}) cli::check_writable_dir(p);  // before any work
        const WarnFn warn = cli::warner("evaluate", common);
        EvalReport report;
        if (mode == kVariants) {
            va.reference = data.reference;
            va.contigs = ContigMatcher(data.chr_prefix, data.rename_chrs);
            report = evaluate_variants(va, warn);
        } else if (mode == kLm) {
            if (!data.data.empty() && !data.reference.empty() && data.data != data.reference)
                throw Error(fmt::format("two references given: -f {} and {}; give one", data.reference, data.data));
            if (data.data.empty()) data.data = data.reference;
            if (data.data.empty()) throw Error("--lm needs the reference FASTA: DATA or -f FILE");
            la.contigs = ContigMatcher(data.chr_prefix, data.rename_chrs);
            if (models.size() > 1) throw Error("--lm takes one model");
            la.reference = data.data;
            LoadedModel m = cli::open_model(cli::ModelOptions{models.empty() ? "" : models[0]}, common, "evaluate");
            const int64_t W = cli::resolve_window(window, m, false, warn);
            report = evaluate_lm(la, m, W, warn, ProgressBar{"bases", common.progress});
        } else {
            // Each model's split: the one its metadata records, with what the command line gives instead.
            auto resolve = [&](const std::string& model, const ClassifierInfo& info) {
                const cli::DatasetArgs a = info.protocol.contains("dataset")
                    ? cli::DatasetArgs::from_json_for_model(info.protocol.at("dataset"), model).overridden_by(data, app)
                    : data;
                if (a.data.empty()) throw Error(fmt::format("{}: no dataset recorded; give DATA", model));
                return ResolvedSplit{cli::load_split(a, info.classes, warn), a.to_json(), a.data};
            };
            report = evaluate_classification(models, resolve, batch, ProgressBar{"sequences", common.progress});
        }
        write_file(table_path, report.table());
        if (!json_path.empty()) write_file(json_path, report.json.dump(2) + "\n");
        if (!tsv_path.empty()) write_file(tsv_path, report.tsv());
        if (!plot_prefix.empty())
            for (const auto& [suffix, svg] : report.figures) write_file(plot_prefix + suffix, svg);
        return 0;
    });
}
