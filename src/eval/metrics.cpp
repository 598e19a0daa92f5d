// Classification and ranking metrics with scikit-learn's definitions.
#include "janusdna/metrics.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <string>

#include "janusdna/error.h"

namespace janusdna {

namespace {

void check_sizes(size_t a, size_t b, const char* what) {
    if (a != b)
        throw Error(std::string(what) + ": " + std::to_string(a) + " scores but " + std::to_string(b) + " labels");
}

// One point of the threshold sweep: cumulative true and false positives when every example scoring at least
// the threshold is called positive.
struct SweepPoint {
    int64_t tp, fp;
};

// The sweep behind roc_curve, auroc and auprc: one point per distinct score, from the highest down, so tied
// examples always enter together (that is what makes ties count 1/2 in the AUROC). Also returns the totals.
std::vector<SweepPoint> threshold_sweep(const std::vector<double>& scores, const std::vector<int>& is_positive,
                                        const char* what, int64_t& positives, int64_t& negatives) {
    check_sizes(scores.size(), is_positive.size(), what);
    for (size_t i = 0; i < scores.size(); ++i)
        if (std::isnan(scores[i])) throw Error(std::string(what) + ": score " + std::to_string(i) + " is NaN");
    std::vector<size_t> order(scores.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
    std::vector<SweepPoint> points;
    int64_t tp = 0, fp = 0;
    for (size_t i = 0; i < order.size(); ++i) {
        if (is_positive[order[i]])
            ++tp;
        else
            ++fp;
        if (i + 1 == order.size() || scores[order[i + 1]] != scores[order[i]]) points.push_back({tp, fp});
    }
    positives = tp;
    negatives = fp;
    return points;
}

double safe_ratio(double num, double den) { return den == 0 ? 0.0 : num / den; }

// numpy.percentile(values, 100*q) with the default linear interpolation; values sorted, non-empty.
double percentile_sorted(const std::vector<double>& v, double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    if (lo + 1 >= v.size()) return v.back();
    const double frac = pos - static_cast<double>(lo);
    return v[lo] + frac * (v[lo + 1] - v[lo]);
}

// Ranks 1..n with ties getting the mean of the ranks they span.
std::vector<double> average_ranks(const std::vector<double>& v) {
    std::vector<size_t> order(v.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
    std::vector<double> ranks(v.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i;
        while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
        const double rank = 0.5 * static_cast<double>(i + j) + 1.0;  // mean of ranks i+1 .. j+1
        for (size_t m = i; m <= j; ++m) ranks[order[m]] = rank;
        i = j + 1;
    }
    return ranks;
}

} // namespace

int64_t ConfusionMatrix::total() const { return std::accumulate(counts.begin(), counts.end(), int64_t{0}); }

ConfusionMatrix confusion_matrix(const std::vector<int>& truth, const std::vector<int>& pred, int n_classes) {
    if (n_classes < 1) throw Error("confusion matrix: need at least one class, got " + std::to_string(n_classes));
    if (truth.size() != pred.size())
        throw Error("confusion matrix: " + std::to_string(truth.size()) + " true labels but " +
                    std::to_string(pred.size()) + " predictions");
    ConfusionMatrix cm;
    cm.n_classes = n_classes;
    cm.counts.assign(static_cast<size_t>(n_classes) * n_classes, 0);
    for (size_t i = 0; i < truth.size(); ++i) {
        if (truth[i] < 0 || truth[i] >= n_classes || pred[i] < 0 || pred[i] >= n_classes)
            throw Error("confusion matrix: example " + std::to_string(i) + " has label " + std::to_string(truth[i]) +
                        " / prediction " + std::to_string(pred[i]) + ", outside 0.." +
                        std::to_string(n_classes - 1));
        ++cm.counts[static_cast<size_t>(truth[i]) * n_classes + pred[i]];
    }
    return cm;
}

double accuracy(const ConfusionMatrix& cm) {
    const int64_t total = cm.total();
    if (total == 0) return NAN;
    int64_t correct = 0;
    for (int c = 0; c < cm.n_classes; ++c) correct += cm.at(c, c);
    return static_cast<double>(correct) / static_cast<double>(total);
}

double mcc(const ConfusionMatrix& cm) {
    // sklearn: cov(y,p) = correct*n - t.p, cov(y,y) = n^2 - t.t, cov(p,p) = n^2 - p.p with t, p the per-class
    // true and predicted totals. Doubles, since n^2 * n^2 overflows int64 for n around 50,000.
    const int n = cm.n_classes;
    std::vector<double> t(n, 0.0), p(n, 0.0);
    double correct = 0, total = 0;
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            const double c = static_cast<double>(cm.at(i, j));
            t[i] += c;
            p[j] += c;
            total += c;
            if (i == j) correct += c;
        }
    double tp = 0, tt = 0, pp = 0;
    for (int i = 0; i < n; ++i) {
        tp += t[i] * p[i];
        tt += t[i] * t[i];
        pp += p[i] * p[i];
    }
    const double cov_yp = correct * total - tp;
    const double cov_yy = total * total - tt;
    const double cov_pp = total * total - pp;
    if (cov_yy * cov_pp == 0) return 0.0;
    return cov_yp / std::sqrt(cov_yy * cov_pp);
}

double f1_binary(const ConfusionMatrix& cm, int positive) {
    if (positive < 0 || positive >= cm.n_classes)
        throw Error("F1: positive class " + std::to_string(positive) + " outside 0.." +
                    std::to_string(cm.n_classes - 1));
    int64_t tp = cm.at(positive, positive), fp = 0, fn = 0;
    for (int c = 0; c < cm.n_classes; ++c) {
        if (c == positive) continue;
        fp += cm.at(c, positive);
        fn += cm.at(positive, c);
    }
    return safe_ratio(2.0 * static_cast<double>(tp), static_cast<double>(2 * tp + fp + fn));
}

double macro_f1(const ConfusionMatrix& cm) {
    if (cm.n_classes < 1) return NAN;
    double sum = 0;
    for (int c = 0; c < cm.n_classes; ++c) sum += f1_binary(cm, c);
    return sum / cm.n_classes;
}

double auroc(const std::vector<double>& scores, const std::vector<int>& is_positive) {
    int64_t pos = 0, neg = 0;
    const auto points = threshold_sweep(scores, is_positive, "AUROC", pos, neg);
    if (pos == 0 || neg == 0) return NAN;
    // Twice the trapezoid area in count units, exact in integers: each step adds dfp * (tp_before + tp_after).
    int64_t area2 = 0;
    SweepPoint prev{0, 0};
    for (const auto& pt : points) {
        area2 += (pt.fp - prev.fp) * (prev.tp + pt.tp);
        prev = pt;
    }
    return static_cast<double>(area2) / (2.0 * static_cast<double>(pos) * static_cast<double>(neg));
}

double auprc(const std::vector<double>& scores, const std::vector<int>& is_positive) {
    int64_t pos = 0, neg = 0;
    const auto points = threshold_sweep(scores, is_positive, "AUPRC", pos, neg);
    if (pos == 0) return NAN;
    double ap = 0;
    int64_t prev_tp = 0;
    for (const auto& pt : points) {
        const double precision = static_cast<double>(pt.tp) / static_cast<double>(pt.tp + pt.fp);
        ap += static_cast<double>(pt.tp - prev_tp) / static_cast<double>(pos) * precision;
        prev_tp = pt.tp;
    }
    return ap;
}

Curve roc_curve(const std::vector<double>& scores, const std::vector<int>& is_positive) {
    int64_t pos = 0, neg = 0;
    const auto points = threshold_sweep(scores, is_positive, "ROC curve", pos, neg);
    Curve curve;
    if (pos == 0 || neg == 0) return curve;
    curve.x.push_back(0.0);
    curve.y.push_back(0.0);
    for (const auto& pt : points) {
        curve.x.push_back(static_cast<double>(pt.fp) / static_cast<double>(neg));
        curve.y.push_back(static_cast<double>(pt.tp) / static_cast<double>(pos));
    }
    return curve;
}

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
    if (x.size() != y.size())
        throw Error("Spearman correlation: " + std::to_string(x.size()) + " values against " +
                    std::to_string(y.size()));
    if (x.size() < 2) return NAN;
    for (size_t i = 0; i < x.size(); ++i)
        if (std::isnan(x[i]) || std::isnan(y[i])) return NAN;
    const auto rx = average_ranks(x), ry = average_ranks(y);
    const double mean = 0.5 * static_cast<double>(x.size() + 1);  // the mean of any rank vector
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < rx.size(); ++i) {
        const double dx = rx[i] - mean, dy = ry[i] - mean;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (sxx == 0 || syy == 0) return NAN;
    return sxy / std::sqrt(sxx * syy);
}

ConfidenceInterval bootstrap_ci(size_t n, const std::function<double(const std::vector<size_t>&)>& stat,
                                int reps, double level, uint64_t seed) {
    if (reps < 1) throw Error("bootstrap: need at least one replicate, got " + std::to_string(reps));
    if (!(level > 0 && level < 1)) throw Error("bootstrap: confidence level " + std::to_string(level) +
                                               " is not in (0, 1)");
    if (n == 0) return {};
    // rng() % n rather than std::uniform_int_distribution, whose algorithm differs between standard libraries;
    // the modulo bias is below n / 2^64.
    std::mt19937_64 rng(seed);
    std::vector<size_t> idx(n);
    std::vector<double> values;
    values.reserve(static_cast<size_t>(reps));
    for (int r = 0; r < reps; ++r) {
        for (auto& i : idx) i = static_cast<size_t>(rng() % n);
        const double v = stat(idx);
        if (!std::isnan(v)) values.push_back(v);
    }
    if (values.empty()) return {};
    std::sort(values.begin(), values.end());
    return {percentile_sorted(values, (1 - level) / 2), percentile_sorted(values, (1 + level) / 2)};
}

MeanSd mean_sd(const std::vector<double>& values) {
    MeanSd out;
    double sum = 0;
    for (double v : values)
        if (!std::isnan(v)) {
            sum += v;
            ++out.n;
        }
    if (out.n == 0) return out;
    out.mean = sum / out.n;
    if (out.n == 1) {
        out.sd = 0;
        return out;
    }
    double ss = 0;  // two passes: no cancellation for values far from 0
    for (double v : values)
        if (!std::isnan(v)) ss += (v - out.mean) * (v - out.mean);
    out.sd = std::sqrt(ss / (out.n - 1));
    return out;
}

ClassificationReport classification_report(const std::vector<int>& truth,
                                           const std::vector<std::vector<double>>& probs, int n_classes) {
    if (n_classes < 2) throw Error("classification report: need at least 2 classes, got " +
                                   std::to_string(n_classes));
    if (truth.size() != probs.size())
        throw Error("classification report: " + std::to_string(truth.size()) + " labels but " +
                    std::to_string(probs.size()) + " probability rows");
    std::vector<int> pred(truth.size());
    for (size_t i = 0; i < probs.size(); ++i) {
        const auto& row = probs[i];
        if (row.size() != static_cast<size_t>(n_classes))
            throw Error("classification report: row " + std::to_string(i) + " has " + std::to_string(row.size()) +
                        " probabilities for " + std::to_string(n_classes) + " classes");
        int best = 0;
        for (int c = 0; c < n_classes; ++c) {
            if (std::isnan(row[c]))
                throw Error("classification report: probability " + std::to_string(c) + " of row " +
                            std::to_string(i) + " is NaN");
            if (row[c] > row[best]) best = c;  // strict: the lowest index wins ties
        }
        pred[i] = best;
    }

    ClassificationReport rep;
    rep.cm = confusion_matrix(truth, pred, n_classes);
    rep.accuracy = accuracy(rep.cm);
    rep.mcc = mcc(rep.cm);
    rep.macro_f1 = macro_f1(rep.cm);
    rep.f1 = n_classes == 2 ? f1_binary(rep.cm, 1) : NAN;

    std::vector<double> column(truth.size());
    std::vector<int> is_class(truth.size());
    for (int c = 0; c < n_classes; ++c) {
        for (size_t i = 0; i < truth.size(); ++i) {
            column[i] = probs[i][c];
            is_class[i] = truth[i] == c;
        }
        rep.auroc_per_class.push_back(auroc(column, is_class));
        rep.auprc_per_class.push_back(auprc(column, is_class));
        rep.roc_per_class.push_back(roc_curve(column, is_class));
    }
    if (n_classes == 2) {
        rep.auroc = rep.auroc_per_class[1];
        rep.auprc = rep.auprc_per_class[1];
    } else {
        // Macro average over the classes present: a class absent from the truth has NaN one-vs-rest values.
        const MeanSd roc = mean_sd(rep.auroc_per_class), pr = mean_sd(rep.auprc_per_class);
        rep.auroc = roc.mean;
        rep.auprc = pr.mean;
    }
    return rep;
}

} // namespace janusdna
