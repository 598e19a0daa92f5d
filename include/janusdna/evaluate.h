// janusdna evaluate's three pipelines, each reporting its numbers next to baselines computed on the same data:
//   classification: fine-tuned models on a test split vs the majority class and k-mer logistic regression;
//   variant effect: zero-shot scores from score-variants vs labels or measured effects, with a Markov baseline;
//   language modelling: bits per base on regions or records vs the best both-sided Markov model.
// Library code: failures throw janusdna::Error, warnings and progress go to the caller's callbacks, and the report
// is returned as text and JSON for the caller to write.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "janusdna/dataset.h"
#include "janusdna/error.h"
#include "janusdna/regions.h"

namespace janusdna {

struct ClassifierInfo;  // classifier.h
struct LoadedModel;     // model_file.h

// One method's results over the runs: metric -> one value per run.
struct MethodRuns {
    std::string name;
    std::map<std::string, std::vector<double>> values;
};

// What an evaluation reports: methods x metrics over runs, the whole result as JSON, and figures.
struct EvalReport {
    std::string task;                     // "classification", "variants" or "lm"
    std::vector<std::string> header;      // the table's comment lines ("# ..."), without their newlines
    std::vector<MethodRuns> methods;      // the table's rows: the model first, then the baselines
    std::vector<std::string> metrics;     // the table's columns, in order
    nlohmann::json json;                  // everything (--json), summary_json(methods) under "summary"
    std::vector<std::pair<std::string, std::string>> figures;  // (file-name suffix such as ".roc.svg", SVG document)

    // The readable table: the header lines, then one row per method with the number of runs and, per metric,
    // "mean ± sd" over the runs (the value alone for one run, NA for none), 4 decimals.
    std::string table() const;
    // "method run metric value" rows, tab-separated under a header line: each run's value, then a "mean" and an
    // "sd" row, for every method and every metric it has; 6 decimals, NA for NaN.
    std::string tsv() const;
};

// A number for the JSON: null for NaN.
nlohmann::json json_number(double x);
// A number for the tables: `digits` decimals, "NA" for NaN.
std::string format_number(double x, int digits = 4);
// The JSON "summary": method -> metric -> {"mean", "sd", "n", "values"} (mean_sd of the runs; NaN as null).
nlohmann::json summary_json(const std::vector<MethodRuns>& methods);

// Progress of a long pass (one per model, or one over every base): called with (0, total) when the pass starts,
// then each time the count done grows, last with (total, total); never twice with the same count.
using EvalProgressFn = std::function<void(int64_t done, int64_t total)>;

// --- classification ---

// The split a fine-tuned model is evaluated on, as the caller makes it (e.g. the split the model's metadata
// records, with what the command line gives instead).
struct ResolvedSplit {
    Dataset dataset;      // classes in the model's order (its ClassifierInfo::classes)
    nlohmann::json json;  // how the split was made: recorded per run; models with equal JSON share one split,
                          // whose baselines are fitted once
    std::string name;     // the dataset as messages name it
};
using SplitResolver = std::function<ResolvedSplit(const std::string& model_path, const ClassifierInfo& info)>;

// Loads each fine-tuned model in turn, predicts the test split `resolve` makes for it (with the pooling, input
// length and strand averaging the model records, `batch` sequences per forward pass) and fits the baselines on
// the split's training part (validation part for the k-mer regression's L2). Metrics: accuracy, MCC, macro-F1,
// F1 (two classes only), AUROC, AUPRC, mean ± sd over the models. Figures: ".roc.svg" (the first model's test
// split) and ".confusion.svg" (summed over the models). Throws Error when batch < 1, models is empty, a model is
// not a fine-tuned classifier, its classes differ from the first model's, or its split has no test examples.
EvalReport evaluate_classification(const std::vector<std::string>& models, const SplitResolver& resolve,
                                   int64_t batch, const EvalProgressFn& progress = {});

// --- zero-shot variant effect ---

struct VariantEvalOptions {
    std::string vcf;                      // VCF/BCF scored by score-variants
    std::string score_tag = "JANUS_LLR";  // INFO tag holding the score
    std::string direction = "lower";      // "lower" or "higher": the end of the score the positive class is at
    std::string label_id;                 // positive when the ID matches this regular expression
    std::string label_info;               // positive from this INFO tag: a flag, a non-zero number, or == positive
    std::string positive;                 // the label_info string that means positive
    std::string effect_info;              // numeric INFO tag of a measured effect (Spearman correlation)
    std::string reference;                // FASTA the Markov baseline is counted on (the variants' contigs)
    ContigMatcher contigs;                // the VCF's contig names -> the reference's (--chr-prefix, --rename-chrs)
    int markov_order = 5;
    int bootstrap = 1000;                 // resamples of the 95% intervals
    uint64_t seed = 1;
};

// Evaluates the biallelic SNVs of o.vcf that carry the score (and a label or effect): AUROC and AUPRC with
// percentile bootstrap intervals when labelled, Spearman with an effect, for the score and for the log-likelihood
// ratio of a both-sided Markov model counted on the variants' contigs. Figure: ".roc.svg" when labelled. warn
// hears about SNVs whose REF differs from the reference. Throws Error for missing labels or reference, an
// undeclared INFO tag, a bad direction, fewer than two SNVs, or a contig the reference lacks.
EvalReport evaluate_variants(const VariantEvalOptions& o, const WarnFn& warn = {});

// --- language modelling ---

struct LmEvalOptions {
    std::string reference;             // an indexed FASTA with regions; without them, any FASTA, every record evaluated
    std::vector<std::string> regions;  // region texts (each a comma-separated list), as collect_regions reads them
    std::string regions_bed;           // BED of regions ("" for none)
    std::string train_regions;         // a readable BED file, else a region text: where the Markov model is counted
                                       // ("": the rest of the evaluated contigs)
    std::string markov_train;          // records mode: FASTA the Markov model is counted on ("": the evaluated records)
    int markov_max_order = 5;          // Markov orders 0..this are tried (at most 6)
    ContigMatcher contigs;             // the regions' contig names -> the reference's (--chr-prefix, --rename-chrs)
};

// Bits per base of `model` (its LM head, probabilities over A/C/G/T) on the regions of o.reference, or on every
// record of it without regions: non-overlapping windows of `window` bases, the last one moved back to keep a full
// window of context with only its new bases scored. Baselines: uniform (2 bits) and the best both-sided Markov
// model of order 0..o.markov_max_order, the order chosen on the evaluated bases. No figures. progress counts
// bases. Throws Error for an unreadable FASTA, a bad region or a Markov order out of range.
EvalReport evaluate_lm(const LmEvalOptions& o, LoadedModel& model, int64_t window, const WarnFn& warn = {},
                       const EvalProgressFn& progress = {});

} // namespace janusdna
