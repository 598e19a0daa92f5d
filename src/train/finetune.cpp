// Fine-tuning for sequence classification (MODEL.md 5.1, 5.4): pooling (the reference's over the padded input, or
// over the real bases of sequences run at their own length), a linear head, AdamW with warm-up and cosine decay per
// step (timm, as the reference), best-on-validation weights, exact resume.
#include "janusdna/classifier.h"
#include "janusdna/error.h"
#include "janusdna/metrics.h"
#include "janusdna/safetensors.h"
#include "janusdna/splitmix.h"
#include "janusdna/tokenizer.h"
#include "share_backward.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <fmt/format.h>
#include <numeric>
#include <torch/nn/functional/loss.h>

namespace janusdna {

namespace {

// The order of epoch `epoch`: a Fisher-Yates shuffle driven by splitmix64, identical on every platform.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    uint64_t state = splitmix64(seed ^ (0x5851f42d4c957f2dULL * static_cast<uint64_t>(epoch + 1)));
    for (int64_t i = n - 1; i > 0; --i) {
        state = splitmix64(state);
        std::swap(order[i], order[state % static_cast<uint64_t>(i + 1)]);
    }
    return order;
}

// Whether sequence `index` is reverse-complemented in epoch `epoch` (probability 1/2).
bool flip(uint64_t seed, int64_t epoch, int64_t index) {
    return splitmix64(splitmix64(seed + 0x632be59bd9b4e019ULL * static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(index)) & 1;
}

int64_t token_of(char b) {
    switch (b) {
    case 'A': return kIdA;
    case 'C': return kIdC;
    case 'G': return kIdG;
    case 'T': return kIdT;
    default: return kPadId;
    }
}

std::vector<std::pair<std::string, torch::Tensor>> trainable(SequenceClassifierImpl& clf, bool head_only) {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (auto& item : clf.named_parameters())
        if (!head_only || item.key().rfind("head.", 0) == 0) out.emplace_back(item.key(), item.value());
    return out;
}

double metric_of(const std::string& name, const std::vector<int>& truth, const torch::Tensor& probs, int n_classes) {
    std::vector<std::vector<double>> p(truth.size(), std::vector<double>(n_classes));
    auto acc = probs.to(torch::kDouble).contiguous();
    const double* d = acc.data_ptr<double>();
    for (size_t i = 0; i < truth.size(); ++i)
        for (int c = 0; c < n_classes; ++c) p[i][c] = d[i * n_classes + c];
    ClassificationReport r = classification_report(truth, p, n_classes);
    if (name == "accuracy") return r.accuracy;
    if (name == "mcc") return r.mcc;
    if (name == "f1") return r.macro_f1;
    if (name == "auroc") return std::isnan(r.auroc) ? 0.5 : r.auroc;
    throw Error(fmt::format("unknown metric \"{}\" (accuracy, mcc, f1, auroc)", name));
}

} // namespace

Pooling pooling_of(const std::string& name) {
    if (name == "reference") return Pooling::Reference;
    if (name == "mean") return Pooling::Mean;
    if (name == "center") return Pooling::Center;
    if (name == "mean+max") return Pooling::MeanMax;
    throw Error(fmt::format("unknown pooling \"{}\" (reference, mean, center, mean+max)", name));
}

std::string pooling_name(Pooling p) {
    switch (p) {
    case Pooling::Reference: return "reference";
    case Pooling::Mean: return "mean";
    case Pooling::Center: return "center";
    case Pooling::MeanMax: return "mean+max";
    }
    return "?";
}

int64_t pooled_width(Pooling p, int64_t hidden) { return p == Pooling::MeanMax ? 2 * hidden : hidden; }

torch::Tensor pool_hidden(const torch::Tensor& hidden, const torch::Tensor& ids, Pooling p) {
    if (p == Pooling::Reference) return hidden.mean(1);                                        // [B, H]
    if (p == Pooling::Center) return hidden.select(1, hidden.size(1) / 2);                      // [B, H]
    const torch::Tensor real = ids.ne(kPadId).unsqueeze(-1);                                   // [B, L, 1] A/C/G/T
    const torch::Tensor w = real.to(hidden.scalar_type());                                     // [B, L, 1]
    const torch::Tensor count = w.sum(1);                                                      // [B, 1]
    const torch::Tensor mean = (hidden * w).sum(1) / count.clamp_min(1);                       // [B, H]
    if (p == Pooling::Mean) return mean;
    torch::Tensor max = hidden.masked_fill(real.logical_not(), -std::numeric_limits<float>::infinity()).amax(1); // [B, H]
    max = torch::where(count > 0, max, torch::zeros_like(max));                                // [B, H]
    return torch::cat({mean, max}, 1);                                                         // [B, 2H]
}

SequenceClassifierImpl::SequenceClassifierImpl(JanusModel b, int64_t n_classes, Pooling p) : pooling(p) {
    backbone = register_module("backbone", b);
    head = register_module("head", torch::nn::Linear(pooled_width(p, b->config.hidden_size), n_classes));
    torch::NoGradGuard no_grad;
    head->weight.normal_(0, 0.1); // the reference's output_transform init (MODEL.md 5.1)
    head->bias.zero_();
}

torch::Tensor SequenceClassifierImpl::pool(const torch::Tensor& ids, torch::Tensor* aux) {
    ForwardOptions fo;
    fo.logits = false;
    fo.aux_loss = aux != nullptr;
    ForwardOutput y = backbone->forward(ids, fo);
    if (aux) *aux = y.aux_loss;
    return pool_hidden(y.hidden, ids, pooling);                                               // [B, F]
}

torch::Tensor encode_sequences(const std::vector<std::string>& seqs, int64_t length, bool rc) {
    torch::Tensor ids = torch::full({static_cast<int64_t>(seqs.size()), length}, kPadId, torch::kLong); // [N, length]
    int64_t* d = ids.data_ptr<int64_t>();
    for (size_t i = 0; i < seqs.size(); ++i) {
        const std::string s = rc ? reverse_complement(seqs[i]) : seqs[i];
        const int64_t n = std::min<int64_t>(length, static_cast<int64_t>(s.size()));
        int64_t* row = d + static_cast<int64_t>(i) * length + (length - n);  // left padding
        for (int64_t j = 0; j < n; ++j) row[j] = token_of(s[j]);
    }
    return ids;
}

int64_t run_length(size_t size, int64_t length) {
    return std::max<int64_t>(2, std::min<int64_t>(length, static_cast<int64_t>(size)));
}

std::vector<std::vector<int64_t>> length_groups(const std::vector<std::string>& seqs, int64_t length) {
    std::map<int64_t, std::vector<int64_t>> by_length;
    for (size_t i = 0; i < seqs.size(); ++i) by_length[run_length(seqs[i].size(), length)].push_back(static_cast<int64_t>(i));
    std::vector<std::vector<int64_t>> out;
    for (auto& [len, idx] : by_length) out.push_back(std::move(idx));
    return out;
}

torch::Tensor pooled_features(SequenceClassifierImpl& clf, const std::vector<std::string>& seqs, int64_t length,
                              bool rc, int64_t batch, const std::function<void(int64_t)>& on_done) {
    c10::InferenceMode guard;
    const int64_t N = static_cast<int64_t>(seqs.size());
    torch::Tensor out = torch::empty({N, pooled_width(clf.pooling, clf.backbone->config.hidden_size)}); // [N, F]
    int64_t done = 0;
    auto run = [&](const std::vector<int64_t>& idx, int64_t L) {
        std::vector<std::string> chunk;
        for (int64_t i : idx) chunk.push_back(seqs[i]);
        out.index_copy_(0, torch::tensor(idx), clf.pool(encode_sequences(chunk, L, rc)));      // [n, F] rows
        done += static_cast<int64_t>(idx.size());
        if (on_done) on_done(done);
    };
    if (clf.pooling == Pooling::Reference) {  // left-padded to `length`, in input order
        for (int64_t first = 0; first < N; first += batch) {
            std::vector<int64_t> idx(static_cast<size_t>(std::min(batch, N - first)));
            std::iota(idx.begin(), idx.end(), first);
            run(idx, length);
        }
    } else {  // every sequence at its own length: no padding
        for (const auto& group : length_groups(seqs, length)) {
            const int64_t L = run_length(seqs[group[0]].size(), length), n = static_cast<int64_t>(group.size());
            for (int64_t first = 0; first < n; first += batch)
                run(std::vector<int64_t>(group.begin() + first, group.begin() + std::min(n, first + batch)), L);
        }
    }
    return out;
}

nlohmann::json FinetuneOptions::to_json() const {
    return {{"length", length}, {"batch", batch}, {"epochs", epochs}, {"lr", lr}, {"min_lr_ratio", min_lr_ratio},
            {"warmup_fraction", warmup_fraction}, {"weight_decay", weight_decay}, {"beta1", beta1}, {"beta2", beta2},
            {"eps", eps}, {"clip", clip}, {"rc", rc}, {"freeze_backbone", freeze_backbone}, {"patience", patience},
            {"metric", metric}, {"seed", seed}, {"pooling", pooling}};
}

FinetuneOptions FinetuneOptions::from_json(const nlohmann::json& j) {
    FinetuneOptions o;
    o.length = j.at("length"); o.batch = j.at("batch"); o.epochs = j.at("epochs"); o.lr = j.at("lr");
    o.min_lr_ratio = j.at("min_lr_ratio"); o.warmup_fraction = j.at("warmup_fraction");
    o.weight_decay = j.at("weight_decay"); o.beta1 = j.at("beta1"); o.beta2 = j.at("beta2"); o.eps = j.at("eps");
    o.clip = j.at("clip"); o.rc = j.at("rc"); o.freeze_backbone = j.at("freeze_backbone"); o.patience = j.at("patience");
    o.metric = j.at("metric").get<std::string>(); o.seed = j.at("seed");
    o.pooling = j.value("pooling", "reference"); // written before the poolings were named: the reference's
    return o;
}

Finetuner::Finetuner(SequenceClassifier clf, FinetuneOptions o, std::vector<std::string> train_seqs,
                     std::vector<int> train_labels, std::vector<std::string> valid_seqs, std::vector<int> valid_labels,
                     int n_classes)
    : clf_(clf), o_(std::move(o)), train_seqs_(std::move(train_seqs)), valid_seqs_(std::move(valid_seqs)),
      train_labels_(std::move(train_labels)), valid_labels_(std::move(valid_labels)), n_classes_(n_classes) {
    if (train_seqs_.empty()) throw Error("fine-tuning needs at least one training sequence");
    if (o_.length < 2) throw Error("fine-tuning needs an input length of at least 2");
    if (o_.batch < 1 || o_.epochs < 1) throw Error("--batch and --epochs must be at least 1");
    if (o_.metric != "accuracy" && o_.metric != "mcc" && o_.metric != "f1" && o_.metric != "auroc")
        throw Error(fmt::format("unknown metric \"{}\" (accuracy, mcc, f1, auroc)", o_.metric));
    if (pooling_of(o_.pooling) != clf_->pooling)
        throw Error(fmt::format("fine-tuning options say pooling \"{}\" but the classifier pools \"{}\"", o_.pooling,
                                pooling_name(clf_->pooling)));
    adam_ = std::make_unique<AdamW>(trainable(*clf_, o_.freeze_backbone),
                                    AdamWOptions{o_.weight_decay, o_.beta1, o_.beta2, o_.eps, o_.clip});
    if (o_.freeze_backbone) precompute_features();
}

void Finetuner::precompute_features() {
    clf_->backbone->eval();
    c10::InferenceMode guard;
    auto features = [&](const std::vector<std::string>& seqs, bool rc) {
        return pooled_features(*clf_, seqs, o_.length, rc, o_.batch);                         // [N, F]
    };
    train_fwd_ = features(train_seqs_, false);
    valid_fwd_ = features(valid_seqs_, false);
    if (o_.rc) {
        train_rc_ = features(train_seqs_, true);
        valid_rc_ = features(valid_seqs_, true);
    }
}

int64_t Finetuner::steps_per_epoch() const {
    return (static_cast<int64_t>(train_seqs_.size()) + o_.batch - 1) / o_.batch;
}

bool Finetuner::done() const {
    return epoch_ >= o_.epochs || (o_.patience > 0 && stale_epochs_ >= o_.patience);
}

double Finetuner::lr_at(int64_t step) const {
    // timm's cosine schedule as the reference configures it: warm-up from 1e-6, floor min_lr_ratio * lr.
    const int64_t total = steps_per_epoch() * o_.epochs;
    const int64_t warmup = static_cast<int64_t>(o_.warmup_fraction * total);
    if (step < warmup) return 1e-6 + (o_.lr - 1e-6) * static_cast<double>(step) / warmup;
    const double progress = std::min(1.0, static_cast<double>(step - warmup) / std::max<int64_t>(1, total - warmup));
    const double floor = o_.min_lr_ratio * o_.lr;
    return floor + 0.5 * (o_.lr - floor) * (1.0 + std::cos(M_PI * progress));
}

torch::Tensor Finetuner::train_batch_logits(const std::vector<int64_t>& idx) {
    const int64_t n = static_cast<int64_t>(idx.size());
    torch::Tensor pooled = torch::empty({n, train_fwd_.size(1)});                             // [n, F]
    for (int64_t j = 0; j < n; ++j) {
        const bool rc = o_.rc && flip(o_.seed, epoch_, idx[j]);
        pooled[j].copy_((rc ? train_rc_ : train_fwd_)[idx[j]]);
    }
    return clf_->classify(pooled);                                                             // [n, C]
}

torch::Tensor Finetuner::train_batch_ids(const std::vector<int64_t>& idx) {
    const int64_t n = static_cast<int64_t>(idx.size());
    std::vector<std::string> fwd, rev;
    std::vector<int64_t> fwd_at, rev_at;
    for (int64_t j = 0; j < n; ++j) {
        const bool rc = o_.rc && flip(o_.seed, epoch_, idx[j]);
        (rc ? rev : fwd).push_back(train_seqs_[idx[j]]);
        (rc ? rev_at : fwd_at).push_back(j);
    }
    // One forward over the batch: the reverse-complemented rows are encoded as such.
    torch::Tensor ids = torch::empty({n, o_.length}, torch::kLong);                            // [n, L]
    if (!fwd.empty()) ids.index_copy_(0, torch::tensor(fwd_at), encode_sequences(fwd, o_.length, false));
    if (!rev.empty()) ids.index_copy_(0, torch::tensor(rev_at), encode_sequences(rev, o_.length, true));
    return ids;
}

EpochStats Finetuner::run_epoch(const std::function<bool()>& on_step) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::vector<int64_t> order = epoch_order(static_cast<int64_t>(train_seqs_.size()), o_.seed, epoch_);
    const int64_t per_epoch = steps_per_epoch();
    clf_->train();
    if (o_.freeze_backbone) clf_->backbone->eval();
    EpochStats st;
    double lr = 0;
    while (batch_in_epoch_ < per_epoch) {
        const int64_t first = batch_in_epoch_ * o_.batch;
        const int64_t last = std::min<int64_t>(first + o_.batch, static_cast<int64_t>(order.size()));
        std::vector<int64_t> idx(order.begin() + first, order.begin() + last);
        std::vector<int64_t> y;
        for (int64_t i : idx) y.push_back(train_labels_[i]);
        adam_->zero_grad();
        double ce_value = 0, aux_value = 0;
        if (o_.freeze_backbone) {
            torch::Tensor logits = train_batch_logits(idx);                                    // [n, C]
            torch::Tensor ce = torch::nn::functional::cross_entropy(logits, torch::tensor(y));
            ce.backward();
            ce_value = ce.item<double>();
        } else if (clf_->pooling != Pooling::Reference) {
            // Each share's sequences run at their own length, one forward per length (no padding reaches the
            // model, the head or the gradient); the shares' CE sums and routers go to share_backward as usual.
            namespace F = torch::nn::functional;
            const int64_t n = static_cast<int64_t>(idx.size());
            std::vector<std::string> strs;  // reverse-complemented where drawn
            for (int64_t j = 0; j < n; ++j) {
                const std::string& s = train_seqs_[idx[j]];
                strs.push_back(o_.rc && flip(o_.seed, epoch_, idx[j]) ? reverse_complement(s) : s);
            }
            const torch::Tensor labels = torch::tensor(y);                                     // [n]
            const auto r = train_detail::share_backward(*clf_->backbone, clf_->parameters(), n, 1.0 / n, 1.0,
                                                        [&](int64_t b0, int64_t b1) {
                const std::vector<std::string> part(strs.begin() + b0, strs.begin() + b1);
                train_detail::ShareOutput sh;
                std::vector<std::vector<RouterOutput>> fwd, bwd;  // per length group, per layer
                for (const auto& group : length_groups(part, o_.length)) {
                    std::vector<std::string> gs;
                    std::vector<int64_t> rows;
                    for (int64_t k : group) gs.push_back(part[k]), rows.push_back(b0 + k);
                    const torch::Tensor ids = encode_sequences(gs, run_length(gs[0].size(), o_.length), false); // [g, L]
                    ForwardOptions fo;
                    fo.logits = false;
                    fo.aux_loss = true; // collects the routers' outputs
                    ForwardOutput out = clf_->backbone->forward(ids, fo);
                    const torch::Tensor logits = clf_->classify(pool_hidden(out.hidden, ids, clf_->pooling)); // [g, C]
                    torch::Tensor loss = F::cross_entropy(logits, labels.index_select(0, torch::tensor(rows)),
                                                          F::CrossEntropyFuncOptions().reduction(torch::kSum));
                    sh.loss = sh.loss.defined() ? sh.loss + loss : loss;
                    fwd.push_back(std::move(out.router_fwd)), bwd.push_back(std::move(out.router_bwd));
                }
                // The groups' router outputs, token rows concatenated per layer.
                for (auto [groups, dst] : {std::pair{&fwd, &sh.router_fwd}, std::pair{&bwd, &sh.router_bwd}})
                    for (size_t layer = 0; layer < groups->front().size(); ++layer) {
                        std::vector<torch::Tensor> probs, chosen;
                        for (auto& g : *groups) probs.push_back(g[layer].probs), chosen.push_back(g[layer].chosen);
                        dst->push_back({torch::cat(probs, 0), torch::cat(chosen, 0)});        // [tokens, E], [tokens, k]
                    }
                return sh;
            });
            ce_value = r.loss_sum / static_cast<double>(n), aux_value = r.aux;
        } else {
            // The batch's sequences split over threads, one graph each (share_backward.h): the same gradient as
            // one graph of mean CE + aux over the whole batch.
            namespace F = torch::nn::functional;
            const torch::Tensor ids = train_batch_ids(idx), labels = torch::tensor(y);      // [n, L], [n]
            const int64_t n = ids.size(0);
            const auto r = train_detail::share_backward(*clf_->backbone, clf_->parameters(), n, 1.0 / n, 1.0,
                                                        [&](int64_t b0, int64_t b1) {
                ForwardOptions fo;
                fo.logits = false;
                fo.aux_loss = true; // collects the routers' outputs
                ForwardOutput out = clf_->backbone->forward(ids.narrow(0, b0, b1 - b0), fo);
                train_detail::ShareOutput sh;
                sh.loss = F::cross_entropy(clf_->classify(out.hidden.mean(1)), labels.narrow(0, b0, b1 - b0),
                                           F::CrossEntropyFuncOptions().reduction(torch::kSum));
                sh.router_fwd = std::move(out.router_fwd), sh.router_bwd = std::move(out.router_bwd);
                return sh;
            });
            ce_value = r.loss_sum / static_cast<double>(n), aux_value = r.aux;
        }
        lr = lr_at(step_);
        adam_->step(adam_->flat_grad(), lr, step_ + 1);
        loss_sum_ += ce_value;
        aux_sum_ += aux_value;
        ++step_;
        ++batch_in_epoch_;
        if (on_step && !on_step() && batch_in_epoch_ < per_epoch) {
            st.step = step_;
            return st; // interrupted mid-epoch (epoch stays 0-valued in st)
        }
    }
    st.epoch = ++epoch_;
    st.step = step_;
    st.lr = lr;
    st.train_loss = loss_sum_ / per_epoch;
    st.aux_loss = aux_sum_ / per_epoch;
    batch_in_epoch_ = 0;
    loss_sum_ = aux_sum_ = 0;
    if (!valid_seqs_.empty()) {
        std::tie(st.valid_loss, st.valid_metric) = validate();
        st.improved = st.valid_metric > best_metric_;
    } else {
        st.valid_loss = st.valid_metric = std::nan("");
        st.improved = true; // without validation the last epoch is the one kept
    }
    if (st.improved) {
        if (!valid_seqs_.empty()) best_metric_ = st.valid_metric;
        best_epoch_ = epoch_;
        stale_epochs_ = 0;
        best_.clear();
        for (const auto& p : clf_->parameters()) best_.push_back(p.detach().clone());
    } else {
        ++stale_epochs_;
    }
    st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    history_.push_back({{"epoch", st.epoch}, {"step", st.step}, {"lr", st.lr}, {"train_loss", st.train_loss},
                        {"aux_loss", st.aux_loss}, {"valid_loss", std::isnan(st.valid_loss) ? nlohmann::json(nullptr) : nlohmann::json(st.valid_loss)},
                        {"valid_" + o_.metric, std::isnan(st.valid_metric) ? nlohmann::json(nullptr) : nlohmann::json(st.valid_metric)}});
    return st;
}

std::pair<double, double> Finetuner::validate() {
    torch::Tensor p;                                                                           // [N, C]
    if (o_.freeze_backbone) {  // the backbone is fixed: its pooled features were computed once
        torch::NoGradGuard no_grad;
        torch::Tensor logits = clf_->classify(valid_fwd_);
        if (o_.rc) logits = 0.5 * (logits + clf_->classify(valid_rc_));
        p = torch::softmax(logits, 1);
    } else {
        p = predict_proba(*clf_, valid_seqs_, o_.length, o_.rc, o_.batch);
    }
    std::vector<int64_t> y(valid_labels_.begin(), valid_labels_.end());
    const double loss = torch::nn::functional::nll_loss(p.clamp_min(1e-12).log(), torch::tensor(y)).item<double>();
    clf_->train();
    if (o_.freeze_backbone) clf_->backbone->eval();
    return {loss, metric_of(o_.metric, valid_labels_, p, n_classes_)};
}

void Finetuner::restore_best() {
    if (best_.empty()) return;
    torch::NoGradGuard no_grad;
    auto params = clf_->parameters();
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(best_[i]);
}

void Finetuner::save_checkpoint(const std::string& path, const nlohmann::json& extra) const {
    SafetensorsWriter w;
    adam_->add_to(w, "weights/");
    std::vector<torch::Tensor> keep;
    auto named = clf_->named_parameters();
    for (size_t i = 0; i < best_.size(); ++i) {
        torch::Tensor c = best_[i].to(torch::kFloat).contiguous();
        keep.push_back(c);
        w.add("best/" + named[i].key(), DType::F32, c.sizes().vec(), c.data_ptr(), c.numel() * sizeof(float));
    }
    // A frozen backbone is not in the optimiser; it is saved too, so the checkpoint alone restores the model.
    if (o_.freeze_backbone)
        for (auto& item : clf_->named_parameters())
            if (item.key().rfind("head.", 0) != 0) {
                torch::Tensor c = item.value().detach().to(torch::kFloat).contiguous();
                keep.push_back(c);
                w.add("weights/" + item.key(), DType::F32, c.sizes().vec(), c.data_ptr(), c.numel() * sizeof(float));
            }
    nlohmann::json state = {{"step", step_}, {"epoch", epoch_}, {"batch_in_epoch", batch_in_epoch_},
                            {"stale_epochs", stale_epochs_}, {"best_epoch", best_epoch_}, {"best_metric", best_metric_},
                            {"loss_sum", loss_sum_}, {"aux_sum", aux_sum_}, {"options", o_.to_json()},
                            {"n_classes", n_classes_}, {"history", history_}, {"extra", extra}};
    w.set_metadata("janusdna_finetune_checkpoint", state.dump());
    w.set_metadata("janusdna_config", clf_->backbone->config.to_json().dump());
    w.write(path);
}

nlohmann::json Finetuner::load_checkpoint(const std::string& path) {
    SafetensorsFile f = SafetensorsFile::open(path);
    auto meta = f.metadata();
    if (!meta.count("janusdna_finetune_checkpoint") || !meta.count("janusdna_config"))
        throw Error(fmt::format("{}: not a janusdna finetune checkpoint", path));
    if (nlohmann::json::parse(meta.at("janusdna_config")) != clf_->backbone->config.to_json())
        throw Error(fmt::format("{}: checkpoint was made for a different model configuration", path));
    const nlohmann::json state = nlohmann::json::parse(meta.at("janusdna_finetune_checkpoint"));
    nlohmann::json was = state.at("options");
    if (!was.contains("pooling")) was["pooling"] = "reference"; // written before the poolings were named
    if (was != o_.to_json() || state.at("n_classes") != n_classes_)
        throw Error(fmt::format("{}: checkpoint was made with other options or classes ({}); resume with the same ones",
                                path, state.at("options").dump()));
    torch::NoGradGuard no_grad;
    auto load = [&](const std::string& name, torch::Tensor dst) {
        const TensorView* v = f.find(name);
        if (!v || v->dtype != DType::F32 || v->shape != dst.sizes().vec())
            throw Error(fmt::format("{}: checkpoint lacks tensor \"{}\"", path, name));
        torch::Tensor src = torch::empty(v->shape, torch::kFloat);
        convert_to_f32(*v, src.data_ptr<float>());
        dst.copy_(src);
    };
    if (o_.freeze_backbone)
        for (auto& item : clf_->named_parameters())
            if (item.key().rfind("head.", 0) != 0) load("weights/" + item.key(), item.value());
    adam_->load_from(f, path, "weights/");
    best_.clear();
    if (state.at("best_epoch").get<int64_t>() > 0)
        for (auto& item : clf_->named_parameters()) {
            best_.push_back(torch::empty_like(item.value()));
            load("best/" + item.key(), best_.back());
        }
    step_ = state.at("step"); epoch_ = state.at("epoch"); batch_in_epoch_ = state.at("batch_in_epoch");
    stale_epochs_ = state.at("stale_epochs"); best_epoch_ = state.at("best_epoch"); best_metric_ = state.at("best_metric");
    loss_sum_ = state.at("loss_sum"); aux_sum_ = state.at("aux_sum");
    history_ = state.at("history").get<std::vector<nlohmann::json>>();
    if (o_.freeze_backbone) precompute_features(); // the backbone may differ from the one the constructor saw
    return state.at("extra");
}

torch::Tensor predict_proba(SequenceClassifierImpl& clf, const std::vector<std::string>& seqs, int64_t length, bool rc,
                            int64_t batch, const std::function<void(int64_t)>& on_done) {
    clf.eval();
    c10::InferenceMode guard;
    const int64_t N = static_cast<int64_t>(seqs.size());
    auto report = [&](int64_t strand_done) { if (on_done) on_done(rc ? strand_done / 2 : strand_done); };
    torch::Tensor logits = clf.classify(pooled_features(clf, seqs, length, false, batch, report));     // [N, C]
    if (rc)
        logits = 0.5 * (logits + clf.classify(pooled_features(clf, seqs, length, true, batch,
                                                              [&](int64_t k) { report(N + k); })));   // [N, C]
    return torch::softmax(logits, 1);                                                          // [N, C]
}

bool is_classifier(const LoadedModel& m) { return m.metadata.count("janusdna_classifier") > 0; }

void save_classifier(const std::string& path, SequenceClassifierImpl& clf, const ClassifierInfo& info,
                     const std::map<std::string, std::string>& extra) {
    std::map<std::string, std::string> meta = extra;
    if (pooling_of(info.pooling) != clf.pooling)
        throw Error(fmt::format("{}: the classifier pools \"{}\", not \"{}\"", path, pooling_name(clf.pooling), info.pooling));
    meta["janusdna_classifier"] = nlohmann::json{{"classes", info.classes}, {"length", info.length}, {"rc", info.rc},
                                                 {"pooling", info.pooling}, {"pooling_version", 2},
                                                 {"protocol", info.protocol}}.dump();
    save_model(path, *clf.backbone, meta, {{"classifier.weight", clf.head->weight}, {"classifier.bias", clf.head->bias}});
}

LoadedClassifier classifier_of(const LoadedModel& m) {
    if (!is_classifier(m))
        throw Error(fmt::format("{}: not a fine-tuned model (no classifier head; make one with janusdna finetune)", m.path));
    nlohmann::json j = nlohmann::json::parse(m.metadata.at("janusdna_classifier"), nullptr, false);
    if (j.is_discarded() || !j.contains("classes") || !j.contains("length"))
        throw Error(fmt::format("{}: \"janusdna_classifier\" metadata is not valid", m.path));
    LoadedClassifier out;
    try {
        out.info.classes = j.at("classes").get<std::vector<std::string>>();
        out.info.length = j.at("length");
        out.info.rc = j.value("rc", false);
        out.info.pooling = j.value("pooling", "reference");
        out.info.protocol = j.value("protocol", nlohmann::json::object());
        if (!j.contains("pooling_version")) {
            // Written before the poolings were named, when "mean" was the reference's mean over the padded input.
            if (out.info.pooling == "mean") out.info.pooling = "reference";
        } else if (j.at("pooling_version") != 2) {
            throw Error(fmt::format("pooling_version {} (this janusdna reads 2)", j.at("pooling_version").dump()));
        }
    } catch (const std::exception& e) {
        throw Error(fmt::format("{}: \"janusdna_classifier\" metadata is not valid ({})", m.path, e.what()));
    }
    Pooling pooling = Pooling::Reference;
    try {
        pooling = pooling_of(out.info.pooling);
    } catch (const Error& e) {
        throw Error(fmt::format("{}: {}", m.path, e.what()));
    }
    const int64_t C = static_cast<int64_t>(out.info.classes.size()), H = pooled_width(pooling, m.config.hidden_size);
    auto w = m.head.find("classifier.weight"), b = m.head.find("classifier.bias");
    if (w == m.head.end() || b == m.head.end())
        throw Error(fmt::format("{}: missing tensor \"classifier.{}\"", m.path, w == m.head.end() ? "weight" : "bias"));
    if (w->second.sizes().vec() != std::vector<int64_t>{C, H} || b->second.sizes().vec() != std::vector<int64_t>{C})
        throw Error(fmt::format("{}: classifier head has shape [{}], expected [{}, {}] for {} classes", m.path,
                                fmt::join(w->second.sizes(), ", "), C, H, C));
    out.clf = SequenceClassifier(m.model, C, pooling);
    torch::NoGradGuard no_grad;
    out.clf->head->weight.copy_(w->second);
    out.clf->head->bias.copy_(b->second);
    out.clf->eval();
    return out;
}

} // namespace janusdna
