// Sequence classification on the JanusDNA backbone, as the reference fine-tunes it (MODEL.md section 5): the final
// hidden state averaged over all positions (left padding included, as the reference does), one linear layer,
// cross-entropy plus the MoE load-balancing loss; optional reverse-complement training and strand-averaged logits
// at test time (the paper's "w/ rc").
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include "janusdna/model.h"
#include "janusdna/model_file.h"
#include "janusdna/optim.h"

namespace janusdna {

struct SequenceClassifierImpl : torch::nn::Module {
    SequenceClassifierImpl(JanusModel backbone, int64_t n_classes);
    // Mean of the final hidden state over all positions: ids [B, L] -> [B, H]. With `aux`, the forward runs
    // the routers' load-balancing loss too and stores it there.
    torch::Tensor pool(const torch::Tensor& ids, torch::Tensor* aux = nullptr);
    // [B, H] -> [B, C] logits.
    torch::Tensor classify(const torch::Tensor& pooled) { return head(pooled); }

    JanusModel backbone{nullptr};
    torch::nn::Linear head{nullptr};
};
TORCH_MODULE(SequenceClassifier);

// The reference's tokenisation for classification: A/C/G/T ids, N as [PAD], left-padded with [PAD] to `length`
// (a longer sequence keeps its first `length` bases). With `rc`, each sequence is reverse-complemented before
// padding. Sequences are upper-case ACGTN (as datasets hold them). -> [N, length] int64.
torch::Tensor encode_sequences(const std::vector<std::string>& seqs, int64_t length, bool rc);

struct FinetuneOptions {
    int64_t length = 0;              // padded input length; set by the caller (longest sequence, or --max-length)
    int64_t batch = 32, epochs = 10;
    double lr = 1e-3, min_lr_ratio = 0.1, warmup_fraction = 0.01;
    double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, clip = 1.0;
    bool rc = false;                 // random reverse complements in training, strand-averaged logits in evaluation
    bool freeze_backbone = false;    // linear probe: pooled embeddings computed once, only the head trains
    int64_t patience = 0;            // stop after this many epochs without a better validation metric (0 = never)
    std::string metric = "accuracy"; // accuracy, mcc, f1 (macro) or auroc: what "best" means on validation
    uint64_t seed = 1;
    nlohmann::json to_json() const;
    static FinetuneOptions from_json(const nlohmann::json& j);
};

struct EpochStats {
    int64_t epoch = 0, step = 0;     // 1-based epoch just finished; optimiser steps so far
    double lr = 0, train_loss = 0, aux_loss = 0, valid_loss = 0, valid_metric = 0, seconds = 0;
    bool improved = false;
};

// Runs the fine-tuning loop. Every random choice (epoch order, which sequences are reverse-complemented) is a
// pure function of (seed, epoch, index), so a resumed run repeats the uninterrupted one exactly.
class Finetuner {
public:
    Finetuner(SequenceClassifier clf, FinetuneOptions o, std::vector<std::string> train_seqs, std::vector<int> train_labels,
              std::vector<std::string> valid_seqs, std::vector<int> valid_labels, int n_classes);
    // Optimiser steps per epoch.
    int64_t steps_per_epoch() const;
    int64_t step() const { return step_; }
    int64_t epoch() const { return epoch_; }
    // Whether all epochs ran or early stopping fired.
    bool done() const;
    // Trains until the end of the current epoch (from wherever a resumed run stands) and validates.
    // on_step is called after each optimiser step; returning false there stops early (for a mid-epoch checkpoint).
    EpochStats run_epoch(const std::function<bool()>& on_step = {});
    // The best validation metric so far, and its epoch (0 before any).
    double best_metric() const { return best_metric_; }
    int64_t best_epoch() const { return best_epoch_; }
    // Copies the best epoch's weights into the model (the last epoch's if no validation set).
    void restore_best();
    // Atomic checkpoint: weights, optimiser moments, best weights, data position, options.
    void save_checkpoint(const std::string& path, const nlohmann::json& extra) const;
    // Restores a checkpoint of the same configuration and options; throws otherwise. Returns its `extra`.
    nlohmann::json load_checkpoint(const std::string& path);
    const std::vector<nlohmann::json>& history() const { return history_; }

private:
    double lr_at(int64_t step) const;
    void precompute_features();
    torch::Tensor train_batch_logits(const std::vector<int64_t>& idx, torch::Tensor* aux);
    torch::Tensor train_batch_ids(const std::vector<int64_t>& idx); // [n, length], reverse-complemented where drawn
    std::pair<double, double> validate(); // (loss, metric)

    SequenceClassifier clf_;
    FinetuneOptions o_;
    std::vector<std::string> train_seqs_, valid_seqs_;
    std::vector<int> train_labels_, valid_labels_;
    int n_classes_;
    std::unique_ptr<AdamW> adam_;
    torch::Tensor train_fwd_, train_rc_;      // frozen backbone: pooled features [N, H] of each strand
    torch::Tensor valid_fwd_, valid_rc_;
    int64_t step_ = 0, epoch_ = 0, batch_in_epoch_ = 0, stale_epochs_ = 0, best_epoch_ = 0;
    double best_metric_ = -1e300, loss_sum_ = 0, aux_sum_ = 0;
    std::vector<torch::Tensor> best_;         // copies of the parameters at the best epoch
    std::vector<nlohmann::json> history_;
};

// Class probabilities [N, C]: softmax of the logits, or of the mean of both strands' logits when rc.
// on_done(n) is called after each batch with the number of sequences done so far.
torch::Tensor predict_proba(SequenceClassifierImpl& clf, const std::vector<std::string>& seqs, int64_t length, bool rc,
                            int64_t batch, const std::function<void(int64_t)>& on_done = {});

// What a fine-tuned model file records about its head (metadata "janusdna_classifier").
struct ClassifierInfo {
    std::vector<std::string> classes;
    int64_t length = 0;
    bool rc = false;
    std::string pooling = "mean";
    nlohmann::json protocol;   // options, data, split and validation results: provenance for evaluate
};

// Writes backbone + head + info atomically; `extra` adds metadata entries.
void save_classifier(const std::string& path, SequenceClassifierImpl& clf, const ClassifierInfo& info,
                     const std::map<std::string, std::string>& extra = {});
struct LoadedClassifier {
    SequenceClassifier clf{nullptr};
    ClassifierInfo info;
};
// The classifier of a loaded fine-tuned model; throws naming the file when it has no head or the head's shape
// does not match its classes and hidden size.
LoadedClassifier classifier_of(const LoadedModel& m);
bool is_classifier(const LoadedModel& m);

} // namespace janusdna
