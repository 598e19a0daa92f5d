// Classification and ranking metrics for the evaluation tables, defined exactly as scikit-learn defines them so
// that numbers can be compared with published ones. Pure functions of their inputs; inputs that cannot be scored
// (size mismatches, labels out of range, NaN scores) throw Error, undefined values (one class only) are NaN.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace janusdna {

// Counts of (truth, predicted) pairs: row-major n_classes x n_classes, row = truth, column = predicted.
// at() does not check its arguments.
struct ConfusionMatrix {
    int n_classes = 0;
    std::vector<int64_t> counts;
    int64_t at(int truth, int pred) const { return counts[static_cast<size_t>(truth) * n_classes + pred]; }
    int64_t total() const;
};

// Labels are 0..n_classes-1. Throws Error when the sizes differ, n_classes < 1 or a label is out of range.
ConfusionMatrix confusion_matrix(const std::vector<int>& truth, const std::vector<int>& pred, int n_classes);

// Fraction of correct predictions; NaN for an empty matrix.
double accuracy(const ConfusionMatrix& cm);
// sklearn matthews_corrcoef: the multi-class R_K of Gorodkin (2004), equal to the usual MCC for two classes;
// 0 when the denominator is 0 (all truths or all predictions in one class).
double mcc(const ConfusionMatrix& cm);
// sklearn f1_score(average="macro", zero_division=0) with labels = 0..n_classes-1: the plain mean of the
// per-class F1 = 2TP / (2TP + FP + FN) over all n_classes, a class with a zero denominator counting as 0.
double macro_f1(const ConfusionMatrix& cm);
// F1 of class `positive` (sklearn f1_score(pos_label=positive, zero_division=0)). Throws on a bad class.
double f1_binary(const ConfusionMatrix& cm, int positive = 1);

// sklearn roc_auc_score for binary labels (is_positive != 0 is a positive): the probability that a random
// positive scores above a random negative, ties counting 1/2. NaN when only one class is present.
// Throws Error when the sizes differ or a score is NaN.
double auroc(const std::vector<double>& scores, const std::vector<int>& is_positive);
// sklearn average_precision_score: sum over distinct thresholds (descending) of (R_i - R_{i-1}) * P_i, no
// interpolation; examples with equal scores enter together. NaN when there are no positives.
double auprc(const std::vector<double>& scores, const std::vector<int>& is_positive);

// ROC: x = false-positive rate, y = true-positive rate.
struct Curve {
    std::vector<double> x, y;
};
// sklearn roc_curve(drop_intermediate=False): starts at (0,0), one point per distinct threshold from the
// highest down, ends at (1,1). Empty when only one class is present (the curve is undefined).
Curve roc_curve(const std::vector<double>& scores, const std::vector<int>& is_positive);

// Spearman rank correlation (scipy.stats.spearmanr): Pearson correlation of the ranks, tied values getting
// their average rank. NaN when fewer than 2 values, either side is constant, or any value is NaN.
// Throws Error when the sizes differ.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

// (Not "Interval": train.h has a genomic one in this namespace.)
struct ConfidenceInterval {
    double lo = NAN, hi = NAN;
};
// Percentile bootstrap: draws `reps` resamples of the indices 0..n-1 with replacement (index = rng() % n with
// std::mt19937_64 seeded by `seed`, so the result is the same on every platform), evaluates stat(indices) on
// each, drops NaN results and returns the (1-level)/2 and (1+level)/2 percentiles of the rest (linear
// interpolation between order statistics, numpy's default). NaN interval when n == 0 or every result is NaN.
// Throws Error when reps < 1 or level is not in (0, 1).
ConfidenceInterval bootstrap_ci(size_t n, const std::function<double(const std::vector<size_t>&)>& stat,
                                int reps = 1000, double level = 0.95, uint64_t seed = 1);

// Mean and sample standard deviation (n-1 denominator) of the non-NaN values; n counts them. sd = 0 when n == 1;
// mean and sd NaN when n == 0.
struct MeanSd {
    double mean = NAN, sd = NAN;
    int n = 0;
};
MeanSd mean_sd(const std::vector<double>& values);

// Everything a classification table needs.
struct ClassificationReport {
    ConfusionMatrix cm;
    double accuracy = NAN, mcc = NAN, macro_f1 = NAN;
    double f1 = NAN;                     // binary F1 of class 1; NaN when n_classes > 2
    double auroc = NAN, auprc = NAN;     // see classification_report
    std::vector<double> auroc_per_class; // one-vs-rest, one per class (NaN for a class absent from the truth)
    std::vector<double> auprc_per_class;
    std::vector<Curve> roc_per_class;    // one-vs-rest ROC curves, one per class (empty when undefined)
};

// From per-example class probabilities probs (n rows of n_classes values; rows are expected to sum to 1 but
// only the ordering within a row and the per-class columns are used). The prediction is the argmax of a row
// (lowest index on ties). Two classes: auroc/auprc of class 1's probability. More: the macro average of the
// one-vs-rest values over the classes present in the truth (sklearn roc_auc_score(multi_class="ovr",
// average="macro"), which would refuse a missing class instead). Throws Error when n_classes < 2, the sizes
// differ, a label is out of range or a probability is NaN.
ClassificationReport classification_report(const std::vector<int>& truth,
                                           const std::vector<std::vector<double>>& probs, int n_classes);

} // namespace janusdna
