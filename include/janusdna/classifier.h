// Sequence classification on the JanusDNA backbone (MODEL.md section 5): the final hidden state pooled into one
// vector per sequence, one linear layer, cross-entropy plus the MoE load-balancing loss; optional reverse-complement
// training and strand-averaged logits at test time (the paper's "w/ rc").
//
// Pooling. The reference left-pads every sequence with [PAD] to a fixed length and averages over all positions,
// padding included (Pooling::Reference). The other poolings see no padding at all: sequences are run at their own
// length, in groups of equal length, so a sequence's features do not depend on what it is batched with; N bases are
// fed as [PAD] (as in pretraining) and, like embed, left out of means and maxima.
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

enum class Pooling {
    Reference, // mean over every position of the left-padded input, [PAD] included (the reference; MODEL.md 5.1)
    Mean,      // mean over the sequence's A/C/G/T positions
    Center,    // the hidden state of the middle position (index L / 2 of a sequence of L bases)
    MeanMax,   // the mean and the element-wise maximum over the A/C/G/T positions, concatenated: 2H features
};
// "reference", "mean", "center", "mean+max"; pooling_of throws on any other name.
Pooling pooling_of(const std::string& name);
std::string pooling_name(Pooling p);
// Features per sequence: H, or 2H for mean+max.
int64_t pooled_width(Pooling p, int64_t hidden);

// Pools a hidden state: hidden [B, L, H], ids [B, L] -> [B, F]. For Pooling::Reference, the mean over all L
// positions; for the others, the rows hold one sequence each without padding (at most one leading [PAD] when a
// one-base sequence is run at the model's minimum length 2), and [PAD] positions (N bases) are left out of the mean
// and the maximum. A row without any A/C/G/T pools to zeros.
torch::Tensor pool_hidden(const torch::Tensor& hidden, const torch::Tensor& ids, Pooling p);

struct SequenceClassifierImpl : torch::nn::Module {
    SequenceClassifierImpl(JanusModel backbone, int64_t n_classes, Pooling pooling = Pooling::Mean);
    // The backbone's final hidden state pooled: ids [B, L] -> [B, F] (see pool_hidden for what the rows must be).
    // With `aux`, the forward runs the routers' load-balancing loss too and stores it there.
    torch::Tensor pool(const torch::Tensor& ids, torch::Tensor* aux = nullptr);
    // [B, F] -> [B, C] logits.
    torch::Tensor classify(const torch::Tensor& pooled) { return head(pooled); }

    JanusModel backbone{nullptr};
    torch::nn::Linear head{nullptr};
    Pooling pooling;
};
TORCH_MODULE(SequenceClassifier);

// The reference's tokenisation for classification: A/C/G/T ids, N as [PAD], left-padded with [PAD] to `length`
// (a longer sequence keeps its first `length` bases). With `rc`, each sequence is reverse-complemented before
// padding. Sequences are upper-case ACGTN (as datasets hold them). -> [N, length] int64.
torch::Tensor encode_sequences(const std::vector<std::string>& seqs, int64_t length, bool rc);

// The length a sequence of `size` bases is run at under the non-reference poolings: its first `length` bases
// (the input length), and at least 2 (the model's minimum).
int64_t run_length(size_t size, int64_t length);
// Indices of `seqs` grouped by run_length, shortest first, each group in input order: the batches of the
// non-reference poolings, which run every sequence at its own length.
std::vector<std::vector<int64_t>> length_groups(const std::vector<std::string>& seqs, int64_t length);

// Pooled features of each sequence without autograd, `batch` sequences per forward: [N, F]. Reference pooling
// encodes them left-padded to `length` in input order; the others run them at their own length in length groups
// (a group larger than `batch` is split). With `rc`, the reverse complement of each sequence. on_done(n) after each
// forward, with the number of sequences done so far.
torch::Tensor pooled_features(SequenceClassifierImpl& clf, const std::vector<std::string>& seqs, int64_t length,
                              bool rc, int64_t batch, const std::function<void(int64_t)>& on_done = {});

struct FinetuneOptions {
    int64_t length = 0;              // padded input length; set by the caller (longest sequence, or --max-length)
    int64_t batch = 32, epochs = 10;
    double lr = 1e-3, min_lr_ratio = 0.1, warmup_fraction = 0.01;
    double weight_decay = 0.1, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, clip = 1.0;
    bool rc = false;                 // random reverse complements in training, strand-averaged logits in evaluation
    bool freeze_backbone = false;    // linear probe: pooled embeddings computed once, only the head trains
    std::string pooling = "mean";    // pooling_name() of the classifier's pooling; must match the classifier
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
    // The learning rate at optimiser step `step` (0-based): linear warm-up from 1e-6 over warmup_fraction of all
    // steps, then a cosine down to min_lr_ratio * lr at the last step (timm's schedule, as the reference sets it).
    double lr_at(int64_t step) const;
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
    void precompute_features();
    torch::Tensor train_batch_logits(const std::vector<int64_t>& idx);  // frozen backbone: [n, C] from the cache
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

// Class probabilities [N, C]: softmax of the logits, or of the mean of both strands' logits when rc; the
// classifier's pooling, with the batching of pooled_features. on_done(n) is called as sequences are done (both
// strands when rc).
torch::Tensor predict_proba(SequenceClassifierImpl& clf, const std::vector<std::string>& seqs, int64_t length, bool rc,
                            int64_t batch, const std::function<void(int64_t)>& on_done = {});

// What a fine-tuned model file records about its head (metadata "janusdna_classifier"). The file records
// "pooling" (a pooling_name) and "pooling_version": 2. Files without "pooling_version" were written before the
// poolings were named: their "pooling": "mean" (or no "pooling") is read as "reference", the pooling they were made
// with; "pooling": "reference" is read as such with or without a version.
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
