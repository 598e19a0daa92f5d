// predict's pipelines: every record of a FASTA file through a language model (per-base outputs) or through a
// fine-tuned classifier (one row per record).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "janusdna/classifier.h"
#include "janusdna/model.h"

namespace janusdna {

enum class PredictFormat {
    Tsv,          // name pos base pA pC pG pT: pos 1-based, probabilities renormalised over A/C/G/T
    Safetensors,  // NAME.logits [L, V] and NAME.hidden [L, H], float32
};

struct PredictOptions {
    int64_t window = 0;  // 0: one pass per record; else records longer than this are tiled (run_tiled)
    int64_t batch = 8;   // windows per forward pass
    PredictFormat format = PredictFormat::Tsv;
    std::map<std::string, std::string> metadata;  // written into safetensors output
};

struct PredictSummary {
    int64_t records = 0, bases = 0;
};

// Per-base outputs of every record of `fasta` ("-" for stdin) into out_path ("-" for stdout; TSV only). Throws
// Error naming the file and record for an empty, too short (< 2 bases) or repeated record or a character that is
// not a base, leaving no output. on_bases(n) reports progress.
PredictSummary predict_records(JanusModelImpl& model, const std::string& fasta, const std::string& out_path,
                               const PredictOptions& opt, const std::function<void(int64_t)>& on_bases = {});

// A fine-tuned model's class probabilities for every record: TSV "name predicted p(CLASS)...", each record cut to
// the model's input length and pooled as the model records, both strands averaged when it was trained with --rc.
// on_records(n) reports progress.
PredictSummary classify_records(const LoadedClassifier& lc, const std::string& fasta, const std::string& out_path,
                                const std::function<void(int64_t)>& on_records = {});

} // namespace janusdna
