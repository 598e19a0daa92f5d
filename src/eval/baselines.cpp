// Baselines: majority class, k-mer logistic regression (sparse features, L-BFGS), both-sided Markov model.
#include "janusdna/baselines.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <string>

#include "janusdna/error.h"
#include "janusdna/metrics.h"

namespace janusdna {

namespace {

// A=0, C=1, G=2, T=3 (either case); 4 for anything else.
struct BaseCodes {
    std::array<uint8_t, 256> code;
    BaseCodes() {
        code.fill(4);
        const char* bases = "ACGT";
        for (int i = 0; i < 4; ++i) {
            code[static_cast<unsigned char>(bases[i])] = static_cast<uint8_t>(i);
            code[static_cast<unsigned char>(bases[i] + ('a' - 'A'))] = static_cast<uint8_t>(i);
        }
    }
};
const BaseCodes kCodes;

inline uint8_t base_code(char c) { return kCodes.code[static_cast<unsigned char>(c)]; }

void check_labels(const std::vector<int>& labels, int n_classes, const char* what) {
    for (size_t i = 0; i < labels.size(); ++i)
        if (labels[i] < 0 || labels[i] >= n_classes)
            throw Error(std::string(what) + ": label " + std::to_string(labels[i]) + " of example " +
                        std::to_string(i) + " is outside 0.." + std::to_string(n_classes - 1));
}

} // namespace

int majority_class(const std::vector<int>& labels, int n_classes) {
    if (n_classes < 1) throw Error("majority class: need at least one class, got " + std::to_string(n_classes));
    check_labels(labels, n_classes, "majority class");
    std::vector<int64_t> counts(n_classes, 0);
    for (int y : labels) ++counts[y];
    return static_cast<int>(std::max_element(counts.begin(), counts.end()) - counts.begin());  // first max
}

// ---------------------------------------------------------------------------------------------------------
// k-mer logistic regression

namespace {

// Sequences x k-mer frequencies in CSR form. A 100-500 bp sequence has at most a few hundred distinct k-mers
// of each k, against 4^k columns.
struct SparseRows {
    size_t rows = 0;
    std::vector<size_t> row_ptr{0};
    std::vector<uint32_t> col;
    std::vector<float> val;
};

size_t kmer_feature_count(int kmin, int kmax) {
    size_t n = 0;
    for (int k = kmin; k <= kmax; ++k) n += size_t{1} << (2 * k);
    return n;
}

SparseRows kmer_features(const std::vector<std::string>& seqs, int kmin, int kmax) {
    std::vector<uint32_t> offset(kmax + 1, 0);  // first column of each k
    for (int k = kmin + 1; k <= kmax; ++k) offset[k] = offset[k - 1] + (uint32_t{1} << (2 * (k - 1)));
    // Dense scratch counts plus the list of touched columns: cheaper than sorting each sequence's k-mers.
    std::vector<uint32_t> scratch(kmer_feature_count(kmin, kmax), 0);
    std::vector<uint32_t> touched;
    std::vector<int64_t> kmers_of_k(kmax + 1);

    SparseRows X;
    X.rows = seqs.size();
    X.row_ptr.reserve(seqs.size() + 1);
    for (const auto& seq : seqs) {
        touched.clear();
        std::fill(kmers_of_k.begin(), kmers_of_k.end(), 0);
        uint64_t window = 0;  // the last kmax bases, 2 bits each, newest lowest
        int clean_run = 0;    // ACGT bases ending at the current one
        for (char ch : seq) {
            const uint8_t b = base_code(ch);
            if (b > 3) {
                clean_run = 0;
                continue;
            }
            window = (window << 2) | b;
            clean_run = std::min(clean_run + 1, kmax);  // capped: only "at least k" matters
            for (int k = kmin; k <= clean_run; ++k) {
                const uint32_t column = offset[k] + static_cast<uint32_t>(window & ((uint64_t{1} << (2 * k)) - 1));
                if (scratch[column]++ == 0) touched.push_back(column);
                ++kmers_of_k[k];
            }
        }
        for (uint32_t column : touched) {
            int k = kmax;
            while (column < offset[k]) --k;
            X.col.push_back(column);
            X.val.push_back(static_cast<float>(static_cast<double>(scratch[column]) /
                                               static_cast<double>(kmers_of_k[k])));
            scratch[column] = 0;
        }
        X.row_ptr.push_back(X.col.size());
    }
    return X;
}

// Logits of every row: logits[i*C + c] = bias[c] + sum_j x_ij * weights[j*C + c].
void compute_logits(const SparseRows& X, const std::vector<double>& weights, const std::vector<double>& bias,
                    int C, std::vector<double>& logits) {
    logits.resize(X.rows * C);
    for (size_t i = 0; i < X.rows; ++i) {
        double* out = &logits[i * C];
        for (int c = 0; c < C; ++c) out[c] = bias[c];
        for (size_t p = X.row_ptr[i]; p < X.row_ptr[i + 1]; ++p) {
            const double x = X.val[p];
            const double* w = &weights[static_cast<size_t>(X.col[p]) * C];
            for (int c = 0; c < C; ++c) out[c] += x * w[c];
        }
    }
}

// In-place softmax of each row; returns sum_i log p(row i, class y_i) when labels is given.
double softmax_rows(std::vector<double>& logits, int C, const std::vector<int>* labels) {
    double log_likelihood = 0;
    const size_t rows = logits.size() / C;
    for (size_t i = 0; i < rows; ++i) {
        double* z = &logits[i * C];
        const double top = *std::max_element(z, z + C);  // subtracted so exp never overflows
        double sum = 0;
        for (int c = 0; c < C; ++c) sum += std::exp(z[c] - top);
        const double log_sum = std::log(sum) + top;
        if (labels) log_likelihood += z[(*labels)[i]] - log_sum;
        for (int c = 0; c < C; ++c) z[c] = std::exp(z[c] - log_sum);
    }
    return log_likelihood;
}

// The training objective on standardised features z_ij = (x_ij - mean_j) / sd_j, evaluated without forming z:
// the model on z with weights W and bias b is the model on x with weights W_jc / sd_j and bias
// b_c - sum_j mean_j W_jc / sd_j. Parameters theta = [W (F x C, feature-major), b (C)].
struct Objective {
    const SparseRows& X;
    const std::vector<int>& y;
    int C;
    std::vector<double> mean, sd;
    double l2;

    size_t n_features() const { return mean.size(); }

    // The equivalent raw-feature weights and bias.
    void raw_model(const std::vector<double>& theta, std::vector<double>& weights, std::vector<double>& bias) const {
        const size_t F = n_features();
        weights.resize(F * C);
        bias.assign(theta.begin() + F * C, theta.end());
        for (size_t j = 0; j < F; ++j)
            for (int c = 0; c < C; ++c) {
                weights[j * C + c] = theta[j * C + c] / sd[j];
                bias[c] -= mean[j] * weights[j * C + c];
            }
    }

    // Loss = mean cross-entropy + l2/2 |W|^2; fills grad.
    double operator()(const std::vector<double>& theta, std::vector<double>& grad) const {
        const size_t F = n_features(), n = X.rows;
        std::vector<double> weights, bias, prob;
        raw_model(theta, weights, bias);
        compute_logits(X, weights, bias, C, prob);
        const double log_likelihood = softmax_rows(prob, C, &y);
        // prob becomes dLoss/dlogits = (p - onehot) / n.
        for (size_t i = 0; i < n; ++i) {
            prob[i * C + y[i]] -= 1.0;
            for (int c = 0; c < C; ++c) prob[i * C + c] /= static_cast<double>(n);
        }
        grad.assign(theta.size(), 0.0);
        double* g_bias = &grad[F * C];
        for (size_t i = 0; i < n; ++i) {
            const double* g = &prob[i * C];
            for (int c = 0; c < C; ++c) g_bias[c] += g[c];
            for (size_t p = X.row_ptr[i]; p < X.row_ptr[i + 1]; ++p) {
                const double x = X.val[p];
                double* out = &grad[static_cast<size_t>(X.col[p]) * C];
                for (int c = 0; c < C; ++c) out[c] += x * g[c];
            }
        }
        // Chain rule through the standardisation: dL/dW_jc = (sum_i x_ij g_ic - mean_j sum_i g_ic) / sd_j.
        double penalty = 0;
        for (size_t j = 0; j < F; ++j)
            for (int c = 0; c < C; ++c) {
                const double w = theta[j * C + c];
                grad[j * C + c] = (grad[j * C + c] - mean[j] * g_bias[c]) / sd[j] + l2 * w;
                penalty += w * w;
            }
        return -log_likelihood / static_cast<double>(n) + 0.5 * l2 * penalty;
    }
};

double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

double max_abs(const std::vector<double>& a) {
    double m = 0;
    for (double v : a) m = std::max(m, std::fabs(v));
    return m;
}

struct LbfgsResult {
    int iterations = 0;
    bool converged = false;
    double loss = NAN;
};

// Plain L-BFGS (memory 10) with a backtracking Armijo line search; the objective is convex and smooth, so
// this is enough. Stops when max |grad| < 1e-5, when an iteration lowers the loss by less than 1e-10
// relatively, or after max_iter iterations.
LbfgsResult minimise_lbfgs(const Objective& f, std::vector<double>& theta, int max_iter) {
    constexpr int kMemory = 10;
    constexpr double kGradTol = 1e-5, kLossTol = 1e-10, kArmijo = 1e-4;
    std::vector<std::vector<double>> s_hist, y_hist;
    std::vector<double> rho_hist;
    std::vector<double> grad, new_grad, dir(theta.size()), trial(theta.size());
    double loss = f(theta, grad);
    LbfgsResult result;
    for (int iter = 0; iter < max_iter; ++iter) {
        if (max_abs(grad) < kGradTol) {
            result.converged = true;
            break;
        }
        // Two-loop recursion: dir = -H grad.
        for (size_t i = 0; i < dir.size(); ++i) dir[i] = -grad[i];
        std::vector<double> alpha(s_hist.size());
        for (size_t m = s_hist.size(); m-- > 0;) {
            alpha[m] = rho_hist[m] * dot(s_hist[m], dir);
            for (size_t i = 0; i < dir.size(); ++i) dir[i] -= alpha[m] * y_hist[m][i];
        }
        if (!s_hist.empty()) {
            const double gamma = dot(s_hist.back(), y_hist.back()) / dot(y_hist.back(), y_hist.back());
            for (double& d : dir) d *= gamma;
        }
        for (size_t m = 0; m < s_hist.size(); ++m) {
            const double beta = rho_hist[m] * dot(y_hist[m], dir);
            for (size_t i = 0; i < dir.size(); ++i) dir[i] += (alpha[m] - beta) * s_hist[m][i];
        }
        double slope = dot(grad, dir);
        if (slope >= 0) {  // numerical trouble: fall back to steepest descent and forget the history
            for (size_t i = 0; i < dir.size(); ++i) dir[i] = -grad[i];
            slope = dot(grad, dir);
            s_hist.clear();
            y_hist.clear();
            rho_hist.clear();
        }
        // The first step has no curvature estimate: scale it to a unit move.
        double step = s_hist.empty() ? std::min(1.0, 1.0 / std::sqrt(dot(grad, grad))) : 1.0;
        double new_loss = 0;
        bool accepted = false;
        for (int tries = 0; tries < 40; ++tries) {
            for (size_t i = 0; i < theta.size(); ++i) trial[i] = theta[i] + step * dir[i];
            new_loss = f(trial, new_grad);
            if (new_loss <= loss + kArmijo * step * slope) {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        result.iterations = iter + 1;
        if (!accepted) break;  // no decrease possible at this precision: as good as it gets

        std::vector<double> s(theta.size()), yv(theta.size());
        for (size_t i = 0; i < theta.size(); ++i) {
            s[i] = trial[i] - theta[i];
            yv[i] = new_grad[i] - grad[i];
        }
        const double sy = dot(s, yv);
        if (sy > 1e-12 * dot(yv, yv)) {  // keep the inverse-Hessian estimate positive definite
            if (s_hist.size() == kMemory) {
                s_hist.erase(s_hist.begin());
                y_hist.erase(y_hist.begin());
                rho_hist.erase(rho_hist.begin());
            }
            s_hist.push_back(std::move(s));
            y_hist.push_back(std::move(yv));
            rho_hist.push_back(1.0 / sy);
        }
        const double decrease = loss - new_loss;
        theta.swap(trial);
        grad.swap(new_grad);
        loss = new_loss;
        if (decrease <= kLossTol * std::max({std::fabs(loss), std::fabs(loss + decrease), 1.0})) {
            result.converged = true;
            break;
        }
    }
    if (!result.converged && max_abs(grad) < kGradTol) result.converged = true;
    result.loss = loss;
    return result;
}

void check_options(const KmerLogRegOptions& opt) {
    if (opt.kmin < 1 || opt.kmax > 8 || opt.kmin > opt.kmax)
        throw Error("k-mer logistic regression: k-mer lengths " + std::to_string(opt.kmin) + ".." +
                    std::to_string(opt.kmax) + " are not within 1..8");
    if (!(opt.l2 >= 0)) throw Error("k-mer logistic regression: negative L2 penalty " + std::to_string(opt.l2));
    if (opt.max_iter < 1)
        throw Error("k-mer logistic regression: max_iter must be at least 1, got " + std::to_string(opt.max_iter));
}

void check_training_set(const std::vector<std::string>& seqs, const std::vector<int>& labels, int n_classes,
                        const char* what) {
    if (n_classes < 2)
        throw Error("k-mer logistic regression: need at least 2 classes, got " + std::to_string(n_classes));
    if (seqs.empty()) throw Error(std::string("k-mer logistic regression: empty ") + what + " set");
    if (seqs.size() != labels.size())
        throw Error(std::string("k-mer logistic regression: ") + what + " set has " + std::to_string(seqs.size()) +
                    " sequences but " + std::to_string(labels.size()) + " labels");
    check_labels(labels, n_classes, "k-mer logistic regression");
}

} // namespace

// Fits on precomputed features (shared by fit and fit_select, which reuses one feature matrix for every l2).
struct KmerFitter {
    static void fit(KmerLogisticRegression& model, const SparseRows& X, const std::vector<int>& labels,
                    int n_classes, const KmerLogRegOptions& opt);
};

void KmerFitter::fit(KmerLogisticRegression& model, const SparseRows& X, const std::vector<int>& labels,
                     int n_classes, const KmerLogRegOptions& opt) {
    const size_t F = kmer_feature_count(opt.kmin, opt.kmax);
    Objective f{X, labels, n_classes, std::vector<double>(F, 0.0), std::vector<double>(F, 0.0), opt.l2};
    // Population mean and sd of each column (as sklearn's StandardScaler), zeros included.
    for (size_t p = 0; p < X.col.size(); ++p) {
        f.mean[X.col[p]] += X.val[p];
        f.sd[X.col[p]] += static_cast<double>(X.val[p]) * X.val[p];
    }
    const double n = static_cast<double>(X.rows);
    for (size_t j = 0; j < F; ++j) {
        f.mean[j] /= n;
        const double var = f.sd[j] / n - f.mean[j] * f.mean[j];
        f.sd[j] = var > 1e-20 ? std::sqrt(var) : 1.0;  // a constant column stays at 0 after centring
    }
    std::vector<double> theta((F + 1) * n_classes, 0.0);
    const LbfgsResult r = minimise_lbfgs(f, theta, opt.max_iter);

    model.opt_ = opt;
    model.n_classes_ = n_classes;
    model.n_features_ = static_cast<int>(F);
    model.iterations_ = r.iterations;
    model.converged_ = r.converged;
    model.final_loss_ = r.loss;
    f.raw_model(theta, model.weights_, model.bias_);
}

void KmerLogisticRegression::fit(const std::vector<std::string>& seqs, const std::vector<int>& labels,
                                 int n_classes, const KmerLogRegOptions& opt) {
    check_options(opt);
    check_training_set(seqs, labels, n_classes, "training");
    KmerFitter::fit(*this, kmer_features(seqs, opt.kmin, opt.kmax), labels, n_classes, opt);
}

std::vector<std::vector<double>> KmerLogisticRegression::predict_proba(const std::vector<std::string>& seqs) const {
    if (n_classes_ == 0) throw Error("k-mer logistic regression: predict before fit");
    const SparseRows X = kmer_features(seqs, opt_.kmin, opt_.kmax);
    std::vector<double> prob;
    compute_logits(X, weights_, bias_, n_classes_, prob);
    softmax_rows(prob, n_classes_, nullptr);
    std::vector<std::vector<double>> rows(seqs.size());
    for (size_t i = 0; i < seqs.size(); ++i)
        rows[i].assign(prob.begin() + i * n_classes_, prob.begin() + (i + 1) * n_classes_);
    return rows;
}

std::vector<int> KmerLogisticRegression::predict(const std::vector<std::string>& seqs) const {
    std::vector<int> pred;
    for (const auto& row : predict_proba(seqs))
        pred.push_back(static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin()));
    return pred;
}

KmerLogisticRegression KmerLogisticRegression::fit_select(const std::vector<std::string>& train,
                                                          const std::vector<int>& ytrain,
                                                          const std::vector<std::string>& valid,
                                                          const std::vector<int>& yvalid, int n_classes,
                                                          KmerLogRegOptions base) {
    check_options(base);
    check_training_set(train, ytrain, n_classes, "training");
    check_training_set(valid, yvalid, n_classes, "validation");
    const SparseRows X = kmer_features(train, base.kmin, base.kmax);
    KmerLogisticRegression best;
    double best_accuracy = -1;
    for (double l2 : {1e-4, 1e-3, 1e-2, 1e-1}) {
        KmerLogRegOptions opt = base;
        opt.l2 = l2;
        KmerLogisticRegression model;
        KmerFitter::fit(model, X, ytrain, n_classes, opt);
        const double acc = accuracy(confusion_matrix(yvalid, model.predict(valid), n_classes));
        if (acc >= best_accuracy) {  // >=: the larger l2 wins ties, as they come in increasing order
            best_accuracy = acc;
            best = std::move(model);
        }
    }
    return best;
}

// ---------------------------------------------------------------------------------------------------------
// Both-sided Markov model

namespace {

constexpr int kMaxMarkovOrder = 6;

inline uint64_t low_bits(int n_bits) { return (uint64_t{1} << n_bits) - 1; }

// Table index of the order-j window inside `window`, which holds the 2R+1 bases t-R..t+R with t+R in the low
// bits: context = left j bases then right j bases, then the centre base in the low 2 bits.
inline uint64_t table_index(uint64_t window, int R, int j) {
    const uint64_t sub = (window >> (2 * (R - j))) & low_bits(2 * (2 * j + 1));  // t-j..t+j
    const uint64_t left = sub >> (2 * j + 2), centre = (sub >> (2 * j)) & 3, right = sub & low_bits(2 * j);
    return (((left << (2 * j)) | right) << 2) | centre;
}

// Calls visit(radius, window) for every ACGT position t of seq, where radius = the largest r <= R with
// [t-r, t+r] inside seq and all ACGT, and window holds bases t-R..t+R (only t-radius..t+radius meaningful).
template <class Visit>
void for_each_clean_window(std::string_view seq, int R, Visit visit) {
    const size_t n = seq.size();
    auto code_at = [&](size_t p) -> uint64_t {
        if (p >= n) return 0;
        const uint8_t b = base_code(seq[p]);
        return b > 3 ? 0 : b;
    };
    const uint64_t mask = low_bits(2 * (2 * R + 1));
    uint64_t window = 0;
    for (int p = 0; p < R; ++p) window = (window << 2) | code_at(static_cast<size_t>(p));
    size_t run_left = 0;  // ACGT bases directly before t
    size_t next_bad = 0;  // the first position after t that is not ACGT (or n)
    for (size_t t = 0; t < n; ++t) {
        window = ((window << 2) | code_at(t + R)) & mask;
        if (next_bad <= t) {
            next_bad = t + 1;
            while (next_bad < n && base_code(seq[next_bad]) <= 3) ++next_bad;
        }
        if (base_code(seq[t]) > 3) {
            run_left = 0;
            continue;
        }
        const size_t radius = std::min({static_cast<size_t>(R), run_left, next_bad - t - 1});
        visit(static_cast<int>(radius), window);
        ++run_left;
    }
}

} // namespace

BothSidedMarkov::BothSidedMarkov(int k, double alpha) : k_(k), alpha_(alpha) {
    if (k < 0 || k > kMaxMarkovOrder)
        throw Error("both-sided Markov model: order " + std::to_string(k) + " is not within 0.." +
                    std::to_string(kMaxMarkovOrder));
    if (!(alpha > 0)) throw Error("both-sided Markov model: smoothing alpha must be > 0, got " + std::to_string(alpha));
    for (int j = 0; j <= k; ++j) tables_.emplace_back(size_t{1} << (2 * (2 * j + 1)), 0u);
}

void BothSidedMarkov::add(std::string_view seq) {
    // The high-order tables (16 MiB at order 5, 256 MiB at 6) are hit at random, so counting is bound by cache
    // misses: positions wait kLag steps in a ring while the entries they will increment are prefetched.
    constexpr size_t kLag = 16;
    constexpr int kPrefetchFrom = 4;  // orders below fit in cache
    struct Pending {
        int radius;
        uint64_t window;
    };
    std::array<Pending, kLag> ring;
    size_t seen = 0;
    const int R = k_;
    auto increment = [&](const Pending& p) {
        for (int j = 0; j <= p.radius; ++j) {
            uint32_t& count = tables_[j][table_index(p.window, R, j)];
            count += count != std::numeric_limits<uint32_t>::max();  // saturate rather than wrap
        }
    };
    for_each_clean_window(seq, R, [&](int radius, uint64_t window) {
#if defined(__GNUC__)
        for (int j = kPrefetchFrom; j <= radius; ++j) __builtin_prefetch(&tables_[j][table_index(window, R, j)], 1);
#endif
        if (seen >= kLag) increment(ring[seen % kLag]);
        ring[seen % kLag] = {radius, window};
        ++seen;
    });
    for (size_t i = seen > kLag ? seen - kLag : 0; i < seen; ++i) increment(ring[i % kLag]);
    counted_ += static_cast<int64_t>(seen);
}

double BothSidedMarkov::log2_prob(int order, uint64_t context, int base) const {
    const uint32_t* counts = &tables_[order][context << 2];
    const double total = static_cast<double>(counts[0]) + counts[1] + counts[2] + counts[3];
    return std::log2((counts[base] + alpha_) / (total + 4 * alpha_));
}

BothSidedMarkov::Score BothSidedMarkov::score_with_order(std::string_view seq, int order) const {
    if (order < 0 || order > k_)
        throw Error("both-sided Markov model: order " + std::to_string(order) + " is not within 0.." +
                    std::to_string(k_));
    Score s;
    const int R = order;
    for_each_clean_window(seq, R, [&](int radius, uint64_t window) {
        const uint64_t idx = table_index(window, R, radius);
        s.bits -= log2_prob(radius, idx >> 2, static_cast<int>(idx & 3));
        ++s.bases;
    });
    return s;
}

std::array<double, 4> BothSidedMarkov::log2_probs(std::string_view seq, size_t t) const {
    if (t >= seq.size())
        throw Error("both-sided Markov model: position " + std::to_string(t) + " is outside a sequence of " +
                    std::to_string(seq.size()) + " bases");
    int radius = 0;
    while (radius < k_ && t >= static_cast<size_t>(radius) + 1 && t + radius + 1 < seq.size() &&
           base_code(seq[t - radius - 1]) <= 3 && base_code(seq[t + radius + 1]) <= 3)
        ++radius;
    uint64_t left = 0, right = 0;
    for (int d = radius; d >= 1; --d) left = (left << 2) | base_code(seq[t - d]);
    for (int d = 1; d <= radius; ++d) right = (right << 2) | base_code(seq[t + d]);
    const uint64_t context = (left << (2 * radius)) | right;
    std::array<double, 4> out;
    for (int b = 0; b < 4; ++b) out[b] = log2_prob(radius, context, b);
    return out;
}

int select_markov_order(const std::vector<std::string>& train, const std::vector<std::string>& valid, int kmax,
                        double alpha, std::vector<double>* bits_per_base) {
    BothSidedMarkov model(kmax, alpha);
    for (const auto& seq : train) model.add(seq);
    std::vector<double> values;
    int best = 0;
    for (int order = 0; order <= kmax; ++order) {
        BothSidedMarkov::Score total;
        for (const auto& seq : valid) {
            const auto s = model.score_with_order(seq, order);
            total.bits += s.bits;
            total.bases += s.bases;
        }
        if (total.bases == 0) throw Error("Markov order selection: the validation sequences hold no ACGT base");
        values.push_back(total.bits_per_base());
        if (values.back() < values[best]) best = order;
    }
    if (bits_per_base) *bits_per_base = values;
    return best;
}

} // namespace janusdna
