// Unit tests for the evaluation layer: metrics (hand-worked values, scikit-learn definitions), baselines (k-mer
// logistic regression, both-sided Markov model) and the SVG writers.
#include <doctest/doctest.h>

#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "janusdna/baselines.h"
#include "janusdna/error.h"
#include "janusdna/metrics.h"
#include "janusdna/svg_plot.h"

using namespace janusdna;

namespace {

// Builds truth/pred vectors holding counts[t][p] examples of each (truth t, prediction p).
void expand(const std::vector<std::vector<int>>& counts, std::vector<int>& truth, std::vector<int>& pred) {
    for (size_t t = 0; t < counts.size(); ++t)
        for (size_t p = 0; p < counts[t].size(); ++p)
            for (int i = 0; i < counts[t][p]; ++i) {
                truth.push_back(static_cast<int>(t));
                pred.push_back(static_cast<int>(p));
            }
}

std::string random_dna(std::mt19937_64& rng, size_t n) {
    std::string s(n, 'A');
    for (auto& c : s) c = "ACGT"[rng() % 4];
    return s;
}

// A sequence from a one-sided Markov chain of the given order: transition[context][base], context = the last
// `order` bases (2 bits each, newest lowest); the first `order` bases are uniform.
std::string markov_chain(std::mt19937_64& rng, size_t n, int order,
                         const std::vector<std::array<double, 4>>& transition) {
    std::uniform_real_distribution<double> u(0, 1);
    std::string s;
    size_t context = 0;
    for (size_t i = 0; i < n; ++i) {
        int b = static_cast<int>(rng() % 4);
        if (static_cast<int>(i) >= order) {
            const double r = u(rng);
            double acc = 0;
            for (b = 0; b < 3; ++b) {
                acc += transition[context][b];
                if (r < acc) break;
            }
        }
        s += "ACGT"[b];
        context = ((context << 2) | b) & ((size_t{1} << (2 * order)) - 1);
    }
    return s;
}

int count_of(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
}

// Minimal well-formedness check for the writers' output (no comments, CDATA or processing instructions): tags
// nest, attributes are quoted, and every '&' starts an entity.
bool well_formed(const std::string& xml) {
    std::vector<std::string> open;
    for (size_t i = 0; i < xml.size(); ++i) {
        if (xml[i] == '&') {
            const size_t semi = xml.find(';', i);
            const std::string entity = xml.substr(i, semi == std::string::npos ? 0 : semi - i + 1);
            if (entity != "&amp;" && entity != "&lt;" && entity != "&gt;" && entity != "&quot;" && entity != "&apos;")
                return false;
        }
        if (xml[i] == '>') return false;  // a '>' outside a tag: the writers escape these
        if (xml[i] != '<') continue;
        size_t j = i + 1;
        bool in_quotes = false;
        while (j < xml.size() && (in_quotes || xml[j] != '>')) {
            if (xml[j] == '"') in_quotes = !in_quotes;
            if (!in_quotes && xml[j] == '<') return false;
            ++j;
        }
        if (j == xml.size()) return false;
        const std::string tag = xml.substr(i + 1, j - i - 1);
        const bool closing = tag[0] == '/', self_closing = tag.back() == '/';
        const std::string name = tag.substr(closing ? 1 : 0, tag.find_first_of(" /", 1) - (closing ? 1 : 0));
        if (closing) {
            if (open.empty() || open.back() != name) return false;
            open.pop_back();
        } else if (!self_closing) {
            open.push_back(name);
        }
        i = j;
    }
    return open.empty();
}

} // namespace

// --- confusion-matrix metrics ---

TEST_CASE("metrics: 2x2 confusion matrix by hand") {
    // truth 0: 4 predicted 0 (TN), 2 predicted 1 (FP); truth 1: 1 predicted 0 (FN), 3 predicted 1 (TP).
    std::vector<int> truth, pred;
    expand({{4, 2}, {1, 3}}, truth, pred);
    const ConfusionMatrix cm = confusion_matrix(truth, pred, 2);
    CHECK(cm.at(0, 0) == 4);
    CHECK(cm.at(0, 1) == 2);
    CHECK(cm.at(1, 0) == 1);
    CHECK(cm.at(1, 1) == 3);
    CHECK(cm.total() == 10);
    CHECK(accuracy(cm) == doctest::Approx(0.7));
    // MCC = (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (12 - 2) / sqrt(5 * 4 * 6 * 5) = 10 / sqrt(600).
    CHECK(mcc(cm) == doctest::Approx(10 / std::sqrt(600.0)).epsilon(1e-12));
    // F1(1) = 2*3 / (2*3 + 2 + 1) = 6/9; F1(0) = 2*4 / (2*4 + 1 + 2) = 8/11; macro = (6/9 + 8/11) / 2 = 23/33.
    CHECK(f1_binary(cm) == doctest::Approx(6.0 / 9).epsilon(1e-12));
    CHECK(f1_binary(cm, 0) == doctest::Approx(8.0 / 11).epsilon(1e-12));
    CHECK(macro_f1(cm) == doctest::Approx(23.0 / 33).epsilon(1e-12));
}

TEST_CASE("metrics: 3x3 confusion matrix by hand (multi-class MCC, macro F1)") {
    //            pred 0  1  2
    // truth 0:        5  1  0   (6)
    // truth 1:        2  3  1   (6)
    // truth 2:        0  1  4   (5)
    //                (7)(5)(5)   n = 17, correct = 12
    std::vector<int> truth, pred;
    expand({{5, 1, 0}, {2, 3, 1}, {0, 1, 4}}, truth, pred);
    const ConfusionMatrix cm = confusion_matrix(truth, pred, 3);
    CHECK(accuracy(cm) == doctest::Approx(12.0 / 17));
    // Gorodkin R_K: cov(y,p) = 12*17 - (6*7 + 6*5 + 5*5) = 107; cov(y,y) = 17^2 - (36+36+25) = 192;
    // cov(p,p) = 17^2 - (49+25+25) = 190; MCC = 107 / sqrt(192 * 190) = 0.56022...
    CHECK(mcc(cm) == doctest::Approx(107 / std::sqrt(192.0 * 190.0)).epsilon(1e-12));
    CHECK(mcc(cm) == doctest::Approx(0.560217).epsilon(1e-5));
    // F1: class 0: 2*5/(10+2+1) = 10/13; class 1: 2*3/(6+2+3) = 6/11; class 2: 2*4/(8+1+1) = 8/10.
    CHECK(macro_f1(cm) == doctest::Approx((10.0 / 13 + 6.0 / 11 + 0.8) / 3).epsilon(1e-12));
}

TEST_CASE("metrics: degenerate confusion matrices") {
    // Every prediction in one class: cov(p,p) = 0, so MCC is 0 by sklearn's convention (not NaN).
    const ConfusionMatrix all_one = confusion_matrix({0, 1, 0, 1}, {1, 1, 1, 1}, 2);
    CHECK(mcc(all_one) == 0.0);
    CHECK(accuracy(all_one) == doctest::Approx(0.5));
    // F1(1) = 2*2/(4+2+0) = 2/3, F1(0) = 0/(0+0+2) = 0: macro 1/3.
    CHECK(macro_f1(all_one) == doctest::Approx(1.0 / 3));
    // Perfect predictions: MCC 1.
    CHECK(mcc(confusion_matrix({0, 1, 2, 2}, {0, 1, 2, 2}, 3)) == doctest::Approx(1.0));
    // A class never seen nor predicted still counts (as 0) in the macro average over n_classes.
    const ConfusionMatrix absent = confusion_matrix({0, 1, 0, 1}, {0, 1, 0, 1}, 3);
    CHECK(macro_f1(absent) == doctest::Approx(2.0 / 3));
    CHECK(mcc(absent) == doctest::Approx(1.0));
    CHECK(std::isnan(accuracy(confusion_matrix({}, {}, 2))));
    CHECK(mcc(confusion_matrix({}, {}, 2)) == 0.0);

    CHECK_THROWS_AS(confusion_matrix({0, 1}, {0}, 2), Error);
    CHECK_THROWS_AS(confusion_matrix({0, 2}, {0, 1}, 2), Error);
    CHECK_THROWS_AS(confusion_matrix({0, 1}, {0, -1}, 2), Error);
    CHECK_THROWS_AS(f1_binary(all_one, 2), Error);
}

// --- ranking metrics ---

TEST_CASE("metrics: AUROC, AUPRC and the ROC curve with ties") {
    // Positives score {0.8, 0.5, 0.5}, negatives {0.5, 0.2, 0.8}.
    const std::vector<double> scores = {0.8, 0.5, 0.5, 0.5, 0.2, 0.8};
    const std::vector<int> pos = {1, 1, 1, 0, 0, 0};
    // The 9 (positive, negative) pairs: 0.8 beats 0.5 and 0.2, ties 0.8 -> 2.5; each 0.5 ties 0.5, beats 0.2,
    // loses to 0.8 -> 1.5 each. AUROC = (2.5 + 1.5 + 1.5) / 9 = 5.5/9.
    CHECK(auroc(scores, pos) == doctest::Approx(5.5 / 9).epsilon(1e-12));
    // Thresholds: 0.8 -> TP 1, FP 1 (P 1/2, R 1/3); 0.5 -> TP 3, FP 2 (P 3/5, R 1); 0.2 -> R unchanged.
    // AP = 1/3 * 1/2 + 2/3 * 3/5 = 17/30.
    CHECK(auprc(scores, pos) == doctest::Approx(17.0 / 30).epsilon(1e-12));
    const Curve roc = roc_curve(scores, pos);
    REQUIRE(roc.x.size() == 4);
    REQUIRE(roc.y.size() == 4);
    const double ex[] = {0, 1.0 / 3, 2.0 / 3, 1}, ey[] = {0, 1.0 / 3, 1, 1};
    for (int i = 0; i < 4; ++i) {
        CHECK(roc.x[i] == doctest::Approx(ex[i]));
        CHECK(roc.y[i] == doctest::Approx(ey[i]));
    }
    // Without ties: perfect and reversed rankings.
    CHECK(auroc({0.9, 0.8, 0.1}, {1, 1, 0}) == 1.0);
    CHECK(auroc({0.9, 0.8, 0.1}, {0, 0, 1}) == 0.0);
    CHECK(auprc({0.9, 0.8, 0.1}, {1, 1, 0}) == 1.0);
    // Ranking 1,0,1: AP = 1/2 * 1 + 1/2 * 2/3 = 5/6; AUROC = 1/2.
    CHECK(auprc({3, 2, 1}, {1, 0, 1}) == doctest::Approx(5.0 / 6));
    CHECK(auroc({3, 2, 1}, {1, 0, 1}) == doctest::Approx(0.5));
    // All tied: AUROC 1/2, AP = prevalence.
    CHECK(auroc({1, 1, 1, 1}, {1, 0, 0, 0}) == doctest::Approx(0.5));
    CHECK(auprc({1, 1, 1, 1}, {1, 0, 0, 0}) == doctest::Approx(0.25));
}

TEST_CASE("metrics: single-class edge cases are NaN") {
    CHECK(std::isnan(auroc({0.1, 0.2}, {1, 1})));
    CHECK(std::isnan(auroc({0.1, 0.2}, {0, 0})));
    CHECK(std::isnan(auroc({}, {})));
    CHECK(std::isnan(auprc({0.1, 0.2}, {0, 0})));
    CHECK(auprc({0.1, 0.2}, {1, 1}) == 1.0);  // positives only: precision is 1 everywhere
    CHECK(roc_curve({0.1, 0.2}, {1, 1}).x.empty());
    CHECK_THROWS_AS(auroc({0.1, 0.2}, {1}), Error);
    CHECK_THROWS_AS(auprc({0.1, NAN}, {1, 0}), Error);
}

TEST_CASE("metrics: Spearman correlation") {
    // x = 1 2 2 3 -> ranks 1 2.5 2.5 4; y = 1 3 2 4 -> ranks 1 3 2 4; centred (mean 2.5):
    // dx = -1.5 0 0 1.5, dy = -1.5 0.5 -0.5 1.5: sxy = 4.5, sxx = 4.5, syy = 5 -> rho = 4.5/sqrt(22.5) = sqrt(0.9).
    CHECK(spearman({1, 2, 2, 3}, {1, 3, 2, 4}) == doctest::Approx(std::sqrt(0.9)).epsilon(1e-12));
    CHECK(spearman({1, 2, 3}, {10, 100, 1000}) == doctest::Approx(1.0));  // monotone, not linear
    CHECK(spearman({1, 2, 3}, {3, 2, 1}) == doctest::Approx(-1.0));
    CHECK(std::isnan(spearman({1, 1, 1}, {1, 2, 3})));
    CHECK(std::isnan(spearman({1, 2, 3}, {5, 5, 5})));
    CHECK(std::isnan(spearman({1}, {1})));
    CHECK(std::isnan(spearman({1, NAN, 3}, {1, 2, 3})));
    CHECK_THROWS_AS(spearman({1, 2}, {1, 2, 3}), Error);
}

// --- summaries ---

TEST_CASE("metrics: bootstrap confidence interval") {
    const std::vector<double> v = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3};
    auto mean_of = [&](const std::vector<size_t>& idx) {
        double s = 0;
        for (size_t i : idx) s += v[i];
        return s / static_cast<double>(idx.size());
    };
    const ConfidenceInterval a = bootstrap_ci(v.size(), mean_of, 500, 0.95, 7);
    const ConfidenceInterval b = bootstrap_ci(v.size(), mean_of, 500, 0.95, 7);
    const ConfidenceInterval c = bootstrap_ci(v.size(), mean_of, 500, 0.95, 8);
    CHECK(a.lo == b.lo);  // deterministic for a seed
    CHECK(a.hi == b.hi);
    CHECK((a.lo != c.lo || a.hi != c.hi));
    const double point = mean_of({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15});
    CHECK(a.lo < point);
    CHECK(point < a.hi);
    const ConfidenceInterval narrow = bootstrap_ci(v.size(), mean_of, 500, 0.5, 7);
    CHECK(narrow.lo >= a.lo);
    CHECK(narrow.hi <= a.hi);

    // The resamples are rng() % n from std::mt19937_64(seed), as documented.
    std::vector<size_t> seen;
    bootstrap_ci(5, [&](const std::vector<size_t>& idx) { seen = idx; return 0.0; }, 1, 0.9, 42);
    std::mt19937_64 rng(42);
    for (size_t i = 0; i < 5; ++i) CHECK(seen[i] == rng() % 5);

    // Percentiles of the replicate values 0..99 (numpy linear): 5% -> 0.05 * 99 = 4.95, 95% -> 94.05.
    int calls = 0;
    const ConfidenceInterval ramp =
        bootstrap_ci(3, [&](const std::vector<size_t>&) { return double(calls++); }, 100, 0.9);
    CHECK(ramp.lo == doctest::Approx(4.95));
    CHECK(ramp.hi == doctest::Approx(94.05));
    // NaN replicates are dropped: every other one here, leaving 0, 2, ..., 98 (50 values); 2.5% -> 0.025*49*2.
    calls = 0;
    const ConfidenceInterval half = bootstrap_ci(3, [&](const std::vector<size_t>&) {
        const int k = calls++;
        return k % 2 ? NAN : double(k);
    }, 100, 0.95);
    CHECK(half.lo == doctest::Approx(0.025 * 49 * 2));
    CHECK(half.hi == doctest::Approx(0.975 * 49 * 2));

    CHECK(std::isnan(bootstrap_ci(3, [](const std::vector<size_t>&) { return NAN; }).lo));
    CHECK(std::isnan(bootstrap_ci(0, mean_of).hi));
    CHECK_THROWS_AS(bootstrap_ci(3, mean_of, 0), Error);
    CHECK_THROWS_AS(bootstrap_ci(3, mean_of, 10, 1.0), Error);
}

TEST_CASE("metrics: mean and sample sd") {
    // 2 4 4 4 5 5 7 9: mean 5, squared deviations 9+1+1+1+0+0+4+16 = 32, sd = sqrt(32/7).
    const MeanSd m = mean_sd({2, 4, NAN, 4, 4, 5, 5, 7, 9});
    CHECK(m.n == 8);
    CHECK(m.mean == doctest::Approx(5.0));
    CHECK(m.sd == doctest::Approx(std::sqrt(32.0 / 7)));
    const MeanSd one = mean_sd({3.5});
    CHECK(one.n == 1);
    CHECK(one.mean == 3.5);
    CHECK(one.sd == 0.0);
    const MeanSd none = mean_sd({NAN});
    CHECK(none.n == 0);
    CHECK(std::isnan(none.mean));
    CHECK(std::isnan(none.sd));
}

TEST_CASE("metrics: classification report") {
    SUBCASE("binary, with an argmax tie going to class 0") {
        const std::vector<int> truth = {0, 0, 1, 1, 1};
        const std::vector<std::vector<double>> probs = {{0.9, 0.1}, {0.5, 0.5}, {0.3, 0.7}, {0.6, 0.4}, {0.2, 0.8}};
        const ClassificationReport r = classification_report(truth, probs, 2);
        // Predictions 0 0 1 0 1: TN 2, FP 0, FN 1, TP 2.
        CHECK(r.cm.at(0, 0) == 2);
        CHECK(r.cm.at(0, 1) == 0);
        CHECK(r.cm.at(1, 0) == 1);
        CHECK(r.cm.at(1, 1) == 2);
        CHECK(r.accuracy == doctest::Approx(0.8));
        CHECK(r.f1 == doctest::Approx(0.8));  // 2*2 / (4 + 0 + 1)
        // MCC = (2*2 - 0*1) / sqrt(2 * 3 * 2 * 3) = 4/6.
        CHECK(r.mcc == doctest::Approx(4.0 / 6));
        // Class-1 scores: positives 0.7 0.4 0.8 vs negatives 0.1 0.5: pairs won 2 + 1 + 2 = 5 of 6.
        CHECK(r.auroc == doctest::Approx(5.0 / 6));
        CHECK(r.auroc == r.auroc_per_class[1]);
        // Ranking 0.8+ 0.7+ 0.5- 0.4+ 0.1-: AP = 1/3 (1 + 1 + 3/4).
        CHECK(r.auprc == doctest::Approx((1 + 1 + 0.75) / 3));
        REQUIRE(r.roc_per_class.size() == 2);
        CHECK(r.roc_per_class[1].x.size() == 6);  // (0,0) + 5 distinct thresholds
    }
    SUBCASE("three classes, one absent from the truth") {
        const std::vector<int> truth = {0, 0, 1, 1};
        const std::vector<std::vector<double>> probs = {
            {0.7, 0.2, 0.1}, {0.4, 0.5, 0.1}, {0.2, 0.6, 0.2}, {0.1, 0.3, 0.6}};
        const ClassificationReport r = classification_report(truth, probs, 3);
        CHECK(std::isnan(r.f1));
        CHECK(std::isnan(r.auroc_per_class[2]));
        CHECK(std::isnan(r.auprc_per_class[2]));
        CHECK(r.roc_per_class[2].x.empty());
        // Class 0: positives 0.7 0.4 vs negatives 0.2 0.1 -> 1. Class 1: positives 0.6 0.3 vs 0.2 0.5 -> 3/4.
        CHECK(r.auroc_per_class[0] == doctest::Approx(1.0));
        CHECK(r.auroc_per_class[1] == doctest::Approx(0.75));
        CHECK(r.auroc == doctest::Approx(0.875));  // mean over the two classes present
        // Predictions 0 1 1 2: accuracy 1/2; F1(0) = 2/(2+0+1), F1(1) = 2/(2+1+1), F1(2) = 0: macro 7/18.
        CHECK(r.accuracy == doctest::Approx(0.5));
        CHECK(r.macro_f1 == doctest::Approx(7.0 / 18));
    }
    CHECK_THROWS_AS(classification_report({0, 1}, {{0.5, 0.5}}, 2), Error);
    CHECK_THROWS_AS(classification_report({0}, {{0.2, 0.3, 0.5}}, 2), Error);
    CHECK_THROWS_AS(classification_report({0}, {{1.0}}, 1), Error);
    CHECK_THROWS_AS(classification_report({0}, {{NAN, 0.5}}, 2), Error);
}

// --- baselines ---

TEST_CASE("baselines: majority class") {
    CHECK(majority_class({2, 1, 2, 1, 0}, 3) == 1);  // 1 and 2 tie: the lower wins
    CHECK(majority_class({2, 2, 0}, 3) == 2);
    CHECK(majority_class({}, 4) == 0);
    CHECK_THROWS_AS(majority_class({0, 3}, 3), Error);
}

namespace {

// 100 bp random sequences; label 1 ones carry "TATAAA" at a random place, label 0 ones are guaranteed free of it.
void motif_data(std::mt19937_64& rng, size_t n, std::vector<std::string>& seqs, std::vector<int>& labels,
                int copies = 1) {
    for (size_t i = 0; i < n; ++i) {
        const int y = static_cast<int>(i % 2);
        std::string s;
        do s = random_dna(rng, 100); while (s.find("TATAAA") != std::string::npos);
        for (int c = 0; c < copies * y; ++c) s.replace(rng() % 95, 6, "TATAAA");
        seqs.push_back(s);
        labels.push_back(y);
    }
}

double accuracy_of(const KmerLogisticRegression& model, const std::vector<std::string>& seqs,
                   const std::vector<int>& labels) {
    return accuracy(confusion_matrix(labels, model.predict(seqs), model.n_classes()));
}

} // namespace

TEST_CASE("baselines: k-mer logistic regression learns a planted motif") {
    std::mt19937_64 rng(11);
    std::vector<std::string> train, test;
    std::vector<int> ytrain, ytest;
    motif_data(rng, 1000, train, ytrain);
    motif_data(rng, 600, test, ytest);

    KmerLogisticRegression model;
    model.fit(train, ytrain, 2);
    CHECK(model.n_features() == 64 + 256 + 1024 + 4096);
    CHECK(model.iterations() > 0);
    CHECK(accuracy_of(model, test, ytest) > 0.9);
    for (const auto& row : model.predict_proba(test)) {
        REQUIRE(row.size() == 2);
        CHECK(row[0] + row[1] == doctest::Approx(1.0).epsilon(1e-12));
        CHECK(row[0] >= 0);
        CHECK(row[1] >= 0);
    }

    // Label-shuffled training data holds no signal: test accuracy stays near chance (sd ~0.02 at n = 600).
    std::vector<int> shuffled = ytrain;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    KmerLogisticRegression noise;
    noise.fit(train, shuffled, 2);
    const double chance = accuracy_of(noise, test, ytest);
    CHECK(chance > 0.4);
    CHECK(chance < 0.6);

    // Deterministic: the same fit gives the same probabilities.
    KmerLogisticRegression again;
    again.fit(train, ytrain, 2);
    CHECK(again.predict_proba({test[0]})[0][1] == model.predict_proba({test[0]})[0][1]);
}

TEST_CASE("baselines: k-mer logistic regression, three classes and options") {
    // Class c carries motif c; k = 2..4 only.
    const char* motifs[] = {"GGGG", "TTAA", "CACA"};
    std::mt19937_64 rng(5);
    std::vector<std::string> train, test;
    std::vector<int> ytrain, ytest;
    for (int i = 0; i < 900; ++i) {
        std::string s = random_dna(rng, 80);
        for (int c = 0; c < 3; ++c) s.replace(rng() % 76, 4, motifs[i % 3]);
        (i < 600 ? train : test).push_back(s);
        (i < 600 ? ytrain : ytest).push_back(i % 3);
    }
    KmerLogRegOptions opt;
    opt.kmin = 2;
    opt.kmax = 4;
    KmerLogisticRegression model;
    model.fit(train, ytrain, 3, opt);
    CHECK(model.n_features() == 16 + 64 + 256);
    CHECK(accuracy_of(model, test, ytest) > 0.9);
    const auto probs = model.predict_proba({"NNNN", "", "ACGTNNACGTacgt"});  // no k-mers, lower case
    for (const auto& row : probs) CHECK(row[0] + row[1] + row[2] == doctest::Approx(1.0));

    KmerLogisticRegression unfitted;
    CHECK_THROWS_AS(unfitted.predict_proba({"ACGT"}), Error);
    CHECK_THROWS_AS(model.fit(train, std::vector<int>(train.size(), 3), 3), Error);
    CHECK_THROWS_AS(model.fit(train, {0, 1}, 3), Error);
    CHECK_THROWS_AS(model.fit({}, {}, 3), Error);
    opt.kmin = 0;
    CHECK_THROWS_AS(model.fit(train, ytrain, 3, opt), Error);
}

TEST_CASE("baselines: fit_select picks l2 on validation accuracy, ties to the larger") {
    std::mt19937_64 rng(3);
    std::vector<std::string> train, valid;
    std::vector<int> ytrain, yvalid;
    // Three copies of the motif: every l2 gets the same validation accuracy (199 of 200 here), so 0.1 wins.
    motif_data(rng, 1000, train, ytrain, 3);
    motif_data(rng, 200, valid, yvalid, 3);
    for (double l2 : {1e-4, 1e-1}) {
        KmerLogRegOptions opt;
        opt.l2 = l2;
        KmerLogisticRegression fixed;
        fixed.fit(train, ytrain, 2, opt);
        CHECK(accuracy_of(fixed, valid, yvalid) == doctest::Approx(0.995));
    }
    const KmerLogisticRegression model = KmerLogisticRegression::fit_select(train, ytrain, valid, yvalid, 2);
    CHECK(model.l2() == 0.1);
    CHECK(accuracy_of(model, valid, yvalid) == doctest::Approx(0.995));
    CHECK_THROWS_AS(KmerLogisticRegression::fit_select(train, ytrain, {}, {}, 2), Error);
}

TEST_CASE("baselines: both-sided Markov model, hand-computed probabilities") {
    SUBCASE("order 0") {
        // Counts A 2, C 1, G 1, T 0 (N skipped, lower case counted); alpha 0.5: P(b) = (count + 0.5) / (4 + 2).
        BothSidedMarkov m(0);
        m.add("AcNG");
        m.add("A");
        CHECK(m.bases_counted() == 4);
        const auto lp = m.log2_probs("A", 0);
        CHECK(lp[0] == doctest::Approx(std::log2(2.5 / 6)));
        CHECK(lp[1] == doctest::Approx(std::log2(1.5 / 6)));
        CHECK(lp[2] == doctest::Approx(std::log2(1.5 / 6)));
        CHECK(lp[3] == doctest::Approx(std::log2(0.5 / 6)));
        const auto s = m.score("ATN");
        CHECK(s.bases == 2);
        CHECK(s.bits == doctest::Approx(-std::log2(2.5 / 6) - std::log2(0.5 / 6)));
    }
    SUBCASE("order 1, edges and N") {
        // Training "ACAGT": positions 0 and 4 are at the edges and count at order 0 only; position 1 counts C in
        // context A_A, 2 counts A in C_G, 3 counts G in A_T. Order-0 counts (every position): A 2, C 1, G 1, T 1.
        BothSidedMarkov m(1, 0.5);
        m.add("ACAGT");
        // "ACA": A at the edge, order 0: 2.5/7; C in context A_A: (1 + 0.5) / (1 + 2) = 1/2; A again 2.5/7.
        const auto s = m.score("ACA");
        CHECK(s.bases == 3);
        CHECK(s.bits == doctest::Approx(-2 * std::log2(2.5 / 7) + 1));
        // An unseen context is uniform: T in T_T.
        CHECK(m.log2_probs("TTT", 1)[3] == doctest::Approx(-2.0));
        // The centre base is not looked at: context A_A whatever stands at position 1.
        const auto lp = m.log2_probs("ANA", 1);
        CHECK(lp[1] == doctest::Approx(std::log2(0.5)));
        CHECK(lp[0] == doctest::Approx(std::log2(0.5 / 3)));
        // "ACNAT": C has N on its right and A has N on its left, so both fall back to order 0; N is not scored.
        const auto n = m.score("ACNAT");
        CHECK(n.bases == 4);
        CHECK(n.bits == doctest::Approx(-2 * std::log2(2.5 / 7) - 2 * std::log2(1.5 / 7)));
        CHECK(m.score("NNN").bases == 0);
        CHECK(std::isnan(m.score("").bits_per_base()));
        // Capping the order: "ACA" at order 0 scores every base from the order-0 counts.
        CHECK(m.score_with_order("ACA", 0).bits ==
              doctest::Approx(-2 * std::log2(2.5 / 7) - std::log2(1.5 / 7)));
        CHECK_THROWS_AS(m.score_with_order("ACA", 2), Error);
        CHECK_THROWS_AS(m.log2_probs("ACA", 3), Error);
    }
    CHECK_THROWS_AS(BothSidedMarkov(7), Error);
    CHECK_THROWS_AS(BothSidedMarkov(2, 0.0), Error);
}

TEST_CASE("baselines: both-sided Markov model on an order-1 chain") {
    // A one-sided order-1 chain. Given both neighbours, x_t is independent of everything else, so the best
    // both-sided model is order 1 and its entropy is H(x_t | x_{t-1}, x_{t+1}) with
    // P(b | a, c) = T[a][b] T[b][c] / sum_b' T[a][b'] T[b'][c].
    const std::vector<std::array<double, 4>> T = {
        {0.7, 0.1, 0.1, 0.1}, {0.1, 0.1, 0.7, 0.1}, {0.1, 0.1, 0.1, 0.7}, {0.25, 0.25, 0.25, 0.25}};
    std::array<double, 4> pi = {0.25, 0.25, 0.25, 0.25};  // stationary distribution by power iteration
    for (int it = 0; it < 1000; ++it) {
        std::array<double, 4> next{};
        for (int a = 0; a < 4; ++a)
            for (int b = 0; b < 4; ++b) next[b] += pi[a] * T[a][b];
        pi = next;
    }
    double h_both = 0, h_marginal = 0;
    for (int b = 0; b < 4; ++b) h_marginal -= pi[b] * std::log2(pi[b]);
    for (int a = 0; a < 4; ++a)
        for (int c = 0; c < 4; ++c) {
            double z = 0;
            for (int b = 0; b < 4; ++b) z += T[a][b] * T[b][c];
            for (int b = 0; b < 4; ++b) {
                const double joint = pi[a] * T[a][b] * T[b][c];
                h_both -= joint * std::log2(T[a][b] * T[b][c] / z);
            }
        }

    std::mt19937_64 rng(2024);
    std::vector<std::string> train, valid;
    for (int i = 0; i < 20; ++i) train.push_back(markov_chain(rng, 10000, 1, T));
    for (int i = 0; i < 10; ++i) valid.push_back(markov_chain(rng, 10000, 1, T));

    BothSidedMarkov m(3);
    for (const auto& s : train) m.add(s);
    BothSidedMarkov::Score s0, s1;
    for (const auto& s : valid) {
        const auto a = m.score_with_order(s, 0), b = m.score_with_order(s, 1);
        s0.bits += a.bits, s0.bases += a.bases;
        s1.bits += b.bits, s1.bases += b.bases;
    }
    CHECK(s1.bits_per_base() < s0.bits_per_base() - 0.1);
    CHECK(s0.bits_per_base() == doctest::Approx(h_marginal).epsilon(0.01));
    CHECK(s1.bits_per_base() == doctest::Approx(h_both).epsilon(0.01));

    // log2_probs agrees with score on a clean sequence.
    const std::string w = valid[0].substr(0, 200);
    double bits = 0;
    for (size_t t = 0; t < w.size(); ++t) bits -= m.log2_probs(w, t)[std::string("ACGT").find(w[t])];
    CHECK(bits == doctest::Approx(m.score(w).bits).epsilon(1e-12));

    std::vector<double> per_order;
    CHECK(select_markov_order(train, valid, 3, 0.5, &per_order) == 1);
    REQUIRE(per_order.size() == 4);
    CHECK(per_order[1] == doctest::Approx(s1.bits_per_base()));
}

TEST_CASE("baselines: select_markov_order recovers orders 0 and 2") {
    std::mt19937_64 rng(99);
    // Order 0: i.i.d. bases with a skewed composition; any context only adds noise.
    const std::vector<std::array<double, 4>> iid = {{0.4, 0.3, 0.2, 0.1}};
    std::vector<std::string> train, valid;
    for (int i = 0; i < 10; ++i) train.push_back(markov_chain(rng, 10000, 0, iid));
    for (int i = 0; i < 5; ++i) valid.push_back(markov_chain(rng, 10000, 0, iid));
    CHECK(select_markov_order(train, valid, 3) == 0);

    // Order 2 (one-sided): its both-sided Markov blanket is two bases on each side. The likely next base is a
    // Latin square of the two previous ones, so either base alone says nothing about it.
    const int likely[16] = {0, 2, 1, 3, 3, 0, 2, 1, 1, 3, 0, 2, 2, 1, 3, 0};
    std::vector<std::array<double, 4>> T(16);
    for (size_t c = 0; c < 16; ++c) {
        T[c] = {0.1, 0.1, 0.1, 0.1};
        T[c][likely[c]] = 0.7;
    }
    train.clear();
    valid.clear();
    for (int i = 0; i < 40; ++i) train.push_back(markov_chain(rng, 10000, 2, T));
    for (int i = 0; i < 10; ++i) valid.push_back(markov_chain(rng, 10000, 2, T));
    CHECK(select_markov_order(train, valid, 3) == 2);
    CHECK_THROWS_AS(select_markov_order(train, {"NNNN"}, 2), Error);
}

// --- SVG ---

TEST_CASE("svg: ROC plot") {
    Curve a;
    a.x = {0, 0.1, 0.5, 1};
    a.y = {0, 0.6, 0.9, 1};
    Curve b = roc_curve({0.9, 0.8, 0.3, 0.2}, {1, 0, 1, 0});
    const std::string svg = roc_svg({{"model <A> (AUROC 0.87)", a}, {"k-mer & LR", b}}, "ROC: a < b");
    CHECK(svg.rfind("<svg", 0) == 0);
    CHECK(svg.find("xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
    CHECK(count_of(svg, "<polyline") == 2);
    CHECK(svg.find("ROC: a &lt; b") != std::string::npos);
    CHECK(svg.find("a < b") == std::string::npos);
    CHECK(svg.find("model &lt;A&gt; (AUROC 0.87)") != std::string::npos);
    CHECK(svg.find("k-mer &amp; LR") != std::string::npos);
    CHECK(svg.find("FPR") != std::string::npos);
    CHECK(svg.find("TPR") != std::string::npos);
    CHECK(well_formed(svg));
    // An empty curve (undefined ROC) gets a legend entry but no polyline.
    const std::string one = roc_svg({{"one class", Curve{}}, {"ok", a}}, "t");
    CHECK(count_of(one, "<polyline") == 1);
    CHECK(well_formed(one));
    Curve bad;
    bad.x = {0, 1};
    CHECK_THROWS_AS(roc_svg({{"bad", bad}}, "t"), Error);
}

TEST_CASE("svg: confusion matrix heat map") {
    std::vector<int> truth, pred;
    expand({{517, 3, 0}, {22, 48, 1}, {0, 9, 1234}}, truth, pred);
    const ConfusionMatrix cm = confusion_matrix(truth, pred, 3);
    const std::string svg = confusion_svg(cm, {"promoter", "enhancer & co", "<none>"}, "Confusion \"test\"");
    CHECK(svg.rfind("<svg", 0) == 0);
    CHECK(well_formed(svg));
    for (const char* count : {">517<", ">3<", ">0<", ">22<", ">48<", ">1<", ">9<", ">1234<"})
        CHECK(svg.find(count) != std::string::npos);
    CHECK(count_of(svg, "<rect") == 1 + 9);  // background + one per cell
    CHECK(svg.find("enhancer &amp; co") != std::string::npos);
    CHECK(svg.find("&lt;none&gt;") != std::string::npos);
    CHECK(svg.find("Confusion &quot;test&quot;") != std::string::npos);
    CHECK(svg.find("Predicted") != std::string::npos);
    CHECK(well_formed(confusion_svg(cm, {}, "default names")));
    CHECK_THROWS_AS(confusion_svg(cm, {"a", "b"}, "t"), Error);
}
