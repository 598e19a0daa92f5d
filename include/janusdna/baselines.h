// Baselines that a model has to beat before its numbers mean anything: the majority class, a k-mer-count
// logistic regression for sequence classification, and a both-sided Markov model for language modelling.
// Torch-free and single-threaded; deterministic for given inputs.
#pragma once
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace janusdna {

// The most frequent label (ties: the lowest index). Throws Error when n_classes < 1 or a label is out of range.
int majority_class(const std::vector<int>& labels, int n_classes);

// --- k-mer logistic regression ---

struct KmerLogRegOptions {
    int kmin = 3, kmax = 6;  // k-mer lengths used: 4^kmin + ... + 4^kmax features (5,440 for 3..6); 1 <= k <= 8
    double l2 = 1e-3;        // loss = mean cross-entropy + l2/2 * |W|^2 (W on standardised features, bias free)
    int max_iter = 200;      // L-BFGS iterations at most
};

// Multinomial logistic regression on k-mer frequencies. Features of a sequence: for each k, the count of each
// k-mer divided by the number of k-mers of that length in the sequence (k-mers holding a base other than ACGT,
// case-insensitive, are skipped and not counted), so sequences of different lengths are comparable; each
// feature is then standardised with the training mean and standard deviation (sd 0 is taken as 1). Features
// are kept sparse; the standardisation is folded into the weights, so nothing is ever densified.
class KmerLogisticRegression {
public:
    // Fits on labelled sequences (labels 0..n_classes-1) with full-batch L-BFGS from zero weights, until the
    // largest gradient entry is below 1e-5 or an iteration lowers the loss by less than 1e-10 (relative), at
    // most max_iter iterations. Throws Error on empty input, size mismatch, n_classes < 2, a label out of range
    // or bad options.
    void fit(const std::vector<std::string>& seqs, const std::vector<int>& labels, int n_classes,
             const KmerLogRegOptions& opt = {});
    // Class probabilities, one row of n_classes() values summing to 1 per sequence. Throws Error when unfitted.
    std::vector<std::vector<double>> predict_proba(const std::vector<std::string>& seqs) const;
    // argmax of predict_proba (lowest index on ties).
    std::vector<int> predict(const std::vector<std::string>& seqs) const;

    // Fits with each l2 in {1e-4, 1e-3, 1e-2, 1e-1} on the training set (base supplies the other options),
    // and returns the model with the best validation accuracy (ties: the larger l2, the simpler model). The
    // returned model was trained on `train` only.
    static KmerLogisticRegression fit_select(const std::vector<std::string>& train, const std::vector<int>& ytrain,
                                             const std::vector<std::string>& valid, const std::vector<int>& yvalid,
                                             int n_classes, KmerLogRegOptions base = {});

    double l2() const { return opt_.l2; }
    const KmerLogRegOptions& options() const { return opt_; }
    int n_classes() const { return n_classes_; }
    int n_features() const { return n_features_; }
    int iterations() const { return iterations_; }  // L-BFGS iterations the last fit took
    bool converged() const { return converged_; }   // stopped on a tolerance, not on max_iter
    double final_loss() const { return final_loss_; }

private:
    friend struct KmerFitter;  // fits on a feature matrix computed once (fit_select reuses it for every l2)
    KmerLogRegOptions opt_;
    int n_classes_ = 0, n_features_ = 0, iterations_ = 0;
    bool converged_ = false;
    double final_loss_ = NAN;
    // The fitted model on raw features: logits = bias_ + x . weights_ (feature-major, n_features x n_classes),
    // i.e. the standardised model with the mean and sd folded in.
    std::vector<double> weights_, bias_;
};

// --- both-sided Markov model ---

// P(x_t | x_{t-k..t-1}, x_{t+1..t+k}): the baseline for a model that predicts a base from both sides. Counts
// come from training sequences; probabilities use additive smoothing,
//   P(b | context) = (count(context, b) + alpha) / (count(context) + 4 alpha).
// Tables are kept for every order 0..k. A position whose order-k window [t-k, t+k] runs off the sequence or
// holds a base other than ACGT (case-insensitive) uses the longest symmetric window k' < k that is inside and
// clean, so every ACGT base is counted and scored; non-ACGT bases are neither. Memory: 4^(2j+1) uint32 counts
// (saturating) for each order j <= k: 273 MiB in all at k = 6 (the largest allowed), 17 MiB at k = 5.
class BothSidedMarkov {
public:
    explicit BothSidedMarkov(int k, double alpha = 0.5);  // throws Error unless 0 <= k <= 6 and alpha > 0

    // Adds the counts of one sequence; sequences (chunks) are independent: no window spans two of them.
    void add(std::string_view seq);

    struct Score {
        double bits = 0;   // -log2 P summed over the scored positions
        int64_t bases = 0; // scored (ACGT) positions
        double bits_per_base() const { return bases ? bits / static_cast<double>(bases) : NAN; }  // NaN if none
    };
    // Scores every ACGT position of seq with the model's order.
    Score score(std::string_view seq) const { return score_with_order(seq, k_); }
    // The same with the windows capped at `order` (0..order()), as if the model had been built with it.
    Score score_with_order(std::string_view seq, int order) const;

    // log2 P(A), log2 P(C), log2 P(G), log2 P(T) at position t of seq, from the longest clean symmetric window
    // around t; the base at t itself is not looked at (it is the one predicted). Throws Error when t is outside
    // seq.
    std::array<double, 4> log2_probs(std::string_view seq, size_t t) const;

    int order() const { return k_; }
    double alpha() const { return alpha_; }
    int64_t bases_counted() const { return counted_; }

private:
    int k_;
    double alpha_;
    int64_t counted_ = 0;
    // tables_[j][(context << 2) | base], context = left j bases then right j bases, 2 bits each.
    std::vector<std::vector<uint32_t>> tables_;

    double log2_prob(int order, uint64_t context, int base) const;
};

// Fits one BothSidedMarkov of order kmax on `train` (which fills every lower order too) and scores `valid` at
// each order 0..kmax. Returns the order with the lowest validation bits/base (ties: the lower order); when
// bits_per_base is given it receives the kmax+1 validation values. Throws Error when valid has no ACGT base.
int select_markov_order(const std::vector<std::string>& train, const std::vector<std::string>& valid, int kmax = 5,
                        double alpha = 0.5, std::vector<double>* bits_per_base = nullptr);

} // namespace janusdna
