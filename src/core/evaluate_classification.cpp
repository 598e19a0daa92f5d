// Classification: fine-tuned models on their test splits vs the majority class and k-mer logistic regression; see
// include/janusdna/evaluate.h.
#include "janusdna/evaluate.h"

#include "janusdna/baselines.h"
#include "janusdna/classifier.h"
#include "janusdna/error.h"
#include "janusdna/metrics.h"
#include "janusdna/model_file.h"
#include "janusdna/svg_plot.h"

#include <fmt/format.h>
#include <map>

namespace janusdna {

namespace {


std::vector<std::vector<double>> rows_of(const torch::Tensor& probs) {
    torch::Tensor p = probs.to(torch::kDouble).contiguous();
    const int64_t n = p.size(0), c = p.size(1);
    std::vector<std::vector<double>> out(n, std::vector<double>(c));
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < c; ++j) out[i][j] = p.data_ptr<double>()[i * c + j];
    return out;
}

void record(MethodRuns& mr, const ClassificationReport& r) {
    mr.values["accuracy"].push_back(r.accuracy);
    mr.values["mcc"].push_back(r.mcc);
    mr.values["macro_f1"].push_back(r.macro_f1);
    mr.values["f1"].push_back(r.f1);
    mr.values["auroc"].push_back(r.auroc);
    mr.values["auprc"].push_back(r.auprc);
}

nlohmann::json report_json(const ClassificationReport& r) {
    std::vector<std::vector<int64_t>> cm(r.cm.n_classes, std::vector<int64_t>(r.cm.n_classes));
    for (int i = 0; i < r.cm.n_classes; ++i)
        for (int j = 0; j < r.cm.n_classes; ++j) cm[i][j] = r.cm.at(i, j);
    std::vector<nlohmann::json> a, p;
    for (double x : r.auroc_per_class) a.push_back(json_number(x));
    for (double x : r.auprc_per_class) p.push_back(json_number(x));
    return {{"accuracy", json_number(r.accuracy)}, {"mcc", json_number(r.mcc)}, {"macro_f1", json_number(r.macro_f1)},
            {"f1", json_number(r.f1)}, {"auroc", json_number(r.auroc)}, {"auprc", json_number(r.auprc)},
            {"auroc_per_class", a}, {"auprc_per_class", p}, {"confusion", cm}};
}

// The two baselines of one split.
struct SplitBaselines {
    ClassificationReport majority, kmer;
    double kmer_l2 = 0;
};

SplitBaselines run_baselines(const Dataset& d) {
    const int C = static_cast<int>(d.classes.size());
    SplitBaselines b;
    const std::vector<int> ytest = labels_of(d.test);
    const int maj = majority_class(labels_of(d.train), C);
    std::vector<std::vector<double>> onehot(d.test.size(), std::vector<double>(C, 0.0));
    for (auto& row : onehot) row[maj] = 1.0;
    b.majority = classification_report(ytest, onehot, C);
    KmerLogisticRegression lr = KmerLogisticRegression::fit_select(sequences_of(d.train), labels_of(d.train),
                                                                   sequences_of(d.valid), labels_of(d.valid), C);
    b.kmer = classification_report(ytest, lr.predict_proba(sequences_of(d.test)), C);
    b.kmer_l2 = lr.l2();
    return b;
}

} // namespace

EvalReport evaluate_classification(const std::vector<std::string>& models, const SplitResolver& resolve,
                                   int64_t batch, const EvalProgressFn& progress) {
    if (batch < 1) throw Error("--batch must be at least 1");
    if (models.empty())
        throw Error("classification needs one or more fine-tuned models (-m; make them with janusdna finetune), "
                    "or use --variants or --lm");
    MethodRuns model_runs{"janusdna (fine-tuned)", {}}, kmer_runs{"k-mer logistic regression (k=3..6)", {}},
        majority_runs{"majority class", {}};
    std::map<std::string, SplitBaselines> cache; // baselines per distinct split
    nlohmann::json runs = nlohmann::json::array();
    std::vector<std::string> classes;
    std::string test_description;
    ConfusionMatrix summed;
    std::vector<std::pair<std::string, Curve>> curves;
    for (size_t i = 0; i < models.size(); ++i) {
        LoadedModel m = load_model(models[i]);
        LoadedClassifier lc = classifier_of(m);
        if (!classes.empty() && lc.info.classes != classes)
            throw Error(fmt::format("{}: classes {} differ from the first model's ({})", models[i],
                                    fmt::join(lc.info.classes, ","), fmt::join(classes, ",")));
        classes = lc.info.classes;
        // The split the model was trained on, unless the caller says otherwise.
        const ResolvedSplit split = resolve(models[i], lc.info);
        const Dataset& d = split.dataset;
        if (d.test.empty()) throw Error(fmt::format("{}: no test split (give --test FILE)", split.name));
        const std::string described = fmt::format("{}; test n={}", d.description, d.test.size());
        if (i == 0) test_description = described;
        else if (described != test_description && test_description.find("per run") == std::string::npos)
            test_description += "; the runs' validation splits differ (per run in --json)";
        const nlohmann::json fo = lc.info.protocol.value("options", nlohmann::json::object());
        const std::string protocol = std::string(fo.value("freeze_backbone", false) ? "linear probe" : "fine-tuned") +
                                     ", " + lc.info.pooling + " pooling" + (lc.info.rc ? ", w/ rc" : "");
        if (i == 0) model_runs.name = "janusdna (" + protocol + ")";
        else if (model_runs.name != "janusdna (" + protocol + ")") model_runs.name = "janusdna (mixed protocols)";
        const int C = static_cast<int>(classes.size());
        const int64_t n_test = static_cast<int64_t>(d.test.size());
        int64_t reported = -1;
        auto report = [&](int64_t n) {
            if (progress && n != reported) progress(n, n_test);
            reported = n;
        };
        report(0);
        torch::Tensor probs = predict_proba(*lc.clf, sequences_of(d.test), lc.info.length, lc.info.rc, batch, report);
        report(n_test);
        ClassificationReport r = classification_report(labels_of(d.test), rows_of(probs), C);
        const std::string key = split.json.dump();
        if (!cache.count(key)) cache[key] = run_baselines(d);
        const SplitBaselines& b = cache.at(key);
        record(model_runs, r);
        record(kmer_runs, b.kmer);
        record(majority_runs, b.majority);
        if (i == 0) {
            summed = r.cm;
            if (C == 2) {
                curves.push_back({fmt::format("JanusDNA (AUROC {})", format_number(r.auroc, 3)), r.roc_per_class.at(1)});
                curves.push_back({fmt::format("k-mer LR (AUROC {})", format_number(b.kmer.auroc, 3)), b.kmer.roc_per_class.at(1)});
            } else {
                for (int c = 0; c < C; ++c)
                    curves.push_back({fmt::format("JanusDNA: {} vs rest (AUROC {})", classes[c], format_number(r.auroc_per_class[c], 3)),
                                      r.roc_per_class[c]});
            }
        } else {
            for (size_t k = 0; k < summed.counts.size(); ++k) summed.counts[k] += r.cm.counts[k];
        }
        runs.push_back({{"model", models[i]}, {"model_md5", m.md5}, {"dataset", split.json},
                        {"split", d.description}, {"test_examples", d.test.size()}, {"rc", lc.info.rc}, {"pooling", lc.info.pooling},
                        {"janusdna", report_json(r)}, {"kmer_logreg", report_json(b.kmer)}, {"kmer_logreg_l2", b.kmer_l2},
                        {"majority", report_json(b.majority)}});
    }
    EvalReport rep;
    rep.task = "classification";
    rep.methods = {model_runs, kmer_runs, majority_runs};
    rep.metrics = {"accuracy", "mcc", "macro_f1", "auroc", "auprc"};
    if (classes.size() == 2) rep.metrics.insert(rep.metrics.begin() + 3, "f1");
    rep.header.push_back(fmt::format("# janusdna evaluate: classification; {}; {} run(s), mean ± sd over runs",
                                     test_description, models.size()));
    rep.json = nlohmann::json{{"task", "classification"}, {"classes", classes}, {"runs", runs},
                              {"summary", summary_json(rep.methods)}};
    rep.figures.push_back({".roc.svg", roc_svg(curves, "ROC, test split (run 1)")});
    rep.figures.push_back({".confusion.svg", confusion_svg(summed, classes, fmt::format("JanusDNA confusion matrix, test "
                                                                                        "split ({} run(s) summed)", models.size()))});
    return rep;
}

} // namespace janusdna
