// janusdna evaluate: benchmark numbers with the baselines a reviewer asks for, on the same splits.
//   classification: fine-tuned models on a test split vs the majority class and k-mer logistic regression;
//   --variants:     zero-shot scores from score-variants vs labels or measured effects, with a Markov baseline;
//   --lm:           bits per base on regions vs the best both-sided Markov model.
#include "common.h"
#include "dataset_args.h"

#include "janusdna/atomic_file.h"
#include "janusdna/baselines.h"
#include "janusdna/classifier.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/heads.h"
#include "janusdna/metrics.h"
#include "janusdna/model_file.h"
#include "janusdna/regions.h"
#include "janusdna/svg_plot.h"
#include "janusdna/tokenizer.h"
#include "janusdna/vcf_io.h"

#include <cmath>
#include <fmt/format.h>
#include <algorithm>
#include <map>
#include <memory>
#include <regex>
#include <unistd.h>

using namespace janusdna;

namespace {

struct Outputs {
    std::string table = "-", json, tsv, plot;
};

nlohmann::json num(double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); }

std::string fmt_num(double x, int digits = 4) { return std::isnan(x) ? "NA" : fmt::format("{:.{}f}", x, digits); }

void write_file(const std::string& path, const std::string& text) {
    AtomicFile f(path);
    f.write(text);
    f.commit();
}

// One method's results over the runs: metric -> value per run.
struct MethodRuns {
    std::string name;
    std::map<std::string, std::vector<double>> values;
};

// "mean ± sd" per metric for each method; the readable table and the machine-readable summary.
std::string summary_table(const std::vector<MethodRuns>& methods, const std::vector<std::string>& metrics) {
    std::string out = fmt::format("{:<36}{:>5}", "method", "runs");
    for (const auto& m : metrics) out += fmt::format("  {:>17}", m);
    out += "\n";
    for (const auto& mr : methods) {
        const size_t runs = mr.values.empty() ? 0 : mr.values.begin()->second.size();
        out += fmt::format("{:<36}{:>5}", mr.name, runs);
        for (const auto& m : metrics) {
            auto it = mr.values.find(m);
            MeanSd s = it == mr.values.end() ? MeanSd{} : mean_sd(it->second);
            out += fmt::format("  {:>17}", s.n == 0 ? "NA" : s.n == 1 ? fmt_num(s.mean) : fmt_num(s.mean) + " ± " + fmt_num(s.sd));
        }
        out += "\n";
    }
    return out;
}

nlohmann::json summary_json(const std::vector<MethodRuns>& methods) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& mr : methods)
        for (const auto& [metric, v] : mr.values) {
            MeanSd s = mean_sd(v);
            std::vector<nlohmann::json> vals;
            for (double x : v) vals.push_back(num(x));
            j[mr.name][metric] = {{"mean", num(s.mean)}, {"sd", num(s.sd)}, {"n", s.n}, {"values", vals}};
        }
    return j;
}

std::string summary_tsv(const std::vector<MethodRuns>& methods) {
    std::string out = "method\trun\tmetric\tvalue\n";
    for (const auto& mr : methods)
        for (const auto& [metric, v] : mr.values) {
            for (size_t r = 0; r < v.size(); ++r) out += fmt::format("{}\t{}\t{}\t{}\n", mr.name, r + 1, metric, fmt_num(v[r], 6));
            MeanSd s = mean_sd(v);
            out += fmt::format("{}\tmean\t{}\t{}\n{}\tsd\t{}\t{}\n", mr.name, metric, fmt_num(s.mean, 6), mr.name, metric, fmt_num(s.sd, 6));
        }
    return out;
}

std::vector<std::vector<double>> rows_of(const torch::Tensor& probs) {
    torch::Tensor p = probs.to(torch::kDouble).contiguous();
    const int64_t n = p.size(0), c = p.size(1);
    std::vector<std::vector<double>> out(n, std::vector<double>(c));
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < c; ++j) out[i][j] = p.data_ptr<double>()[i * c + j];
    return out;
}

const std::vector<std::string> kClassMetrics = {"accuracy", "mcc", "macro_f1", "f1", "auroc", "auprc"};

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
    for (double x : r.auroc_per_class) a.push_back(num(x));
    for (double x : r.auprc_per_class) p.push_back(num(x));
    return {{"accuracy", num(r.accuracy)}, {"mcc", num(r.mcc)}, {"macro_f1", num(r.macro_f1)}, {"f1", num(r.f1)},
            {"auroc", num(r.auroc)}, {"auprc", num(r.auprc)}, {"auroc_per_class", a}, {"auprc_per_class", p},
            {"confusion", cm}};
}

// The three rows of a classification table for one split.
struct SplitBaselines {
    ClassificationReport majority, kmer;
    double kmer_l2 = 0;
};

SplitBaselines run_baselines(const Dataset& d) {
    const int C = static_cast<int>(d.classes.size());
    SplitBaselines b;
    const std::vector<int> ytest = cli::labels_of(d.test);
    const int maj = majority_class(cli::labels_of(d.train), C);
    std::vector<std::vector<double>> onehot(d.test.size(), std::vector<double>(C, 0.0));
    for (auto& row : onehot) row[maj] = 1.0;
    b.majority = classification_report(ytest, onehot, C);
    KmerLogisticRegression lr = KmerLogisticRegression::fit_select(cli::sequences_of(d.train), cli::labels_of(d.train),
                                                                   cli::sequences_of(d.valid), cli::labels_of(d.valid), C);
    b.kmer = classification_report(ytest, lr.predict_proba(cli::sequences_of(d.test)), C);
    b.kmer_l2 = lr.l2();
    return b;
}

int run_classification(const std::vector<std::string>& models, cli::DatasetArgs cli_data, const CLI::App& app,
                       int64_t batch, const Outputs& out, const cli::CommonOptions& common) {
    const std::string cmd = "evaluate";
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
        // The split the model was trained on, unless the command line says otherwise.
        cli::DatasetArgs a = lc.info.protocol.contains("dataset") ? cli::DatasetArgs::from_json_for_model(lc.info.protocol.at("dataset"), models[i]) : cli_data;
        auto given = [&](const char* opt) { return app.count(opt) > 0; };
        if (given("data")) a.data = cli_data.data;
        if (given("--valid")) a.valid = cli_data.valid;
        if (given("--test")) a.test = cli_data.test;
        if (given("--fasta-ref")) a.reference = cli_data.reference;
        if (given("--seq-column")) a.seq_column = cli_data.seq_column;
        if (given("--label-column")) a.label_column = cli_data.label_column;
        if (given("--valid-fraction")) a.valid_fraction = cli_data.valid_fraction;
        if (given("--folds")) a.folds = cli_data.folds;
        if (given("--fold")) a.fold = cli_data.fold;
        if (given("--split-seed")) a.split_seed = cli_data.split_seed;
        if (a.data.empty()) throw Error(fmt::format("{}: no dataset recorded; give DATA", models[i]));
        if (!classes.empty() && lc.info.classes != classes)
            throw Error(fmt::format("{}: classes {} differ from the first model's ({})", models[i],
                                    fmt::join(lc.info.classes, ","), fmt::join(classes, ",")));
        classes = lc.info.classes;
        Dataset d = cli::load_split(a, classes, cli::warner(cmd, common));
        if (d.test.empty()) throw Error(fmt::format("{}: no test split (give --test FILE)", a.data));
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
        cli::Progress progress(cmd, "sequences", static_cast<int64_t>(d.test.size()), common.progress);
        int64_t done = 0;
        torch::Tensor probs = predict_proba(*lc.clf, cli::sequences_of(d.test), lc.info.length, lc.info.rc, batch,
                                            [&](int64_t n) { progress.add(n - done); done = n; });
        progress.finish();
        ClassificationReport r = classification_report(cli::labels_of(d.test), rows_of(probs), C);
        const std::string key = a.to_json().dump();
        if (!cache.count(key)) cache[key] = run_baselines(d);
        const SplitBaselines& b = cache.at(key);
        record(model_runs, r);
        record(kmer_runs, b.kmer);
        record(majority_runs, b.majority);
        if (i == 0) {
            summed = r.cm;
            if (C == 2) {
                curves.push_back({fmt::format("JanusDNA (AUROC {})", fmt_num(r.auroc, 3)), r.roc_per_class.at(1)});
                curves.push_back({fmt::format("k-mer LR (AUROC {})", fmt_num(b.kmer.auroc, 3)), b.kmer.roc_per_class.at(1)});
            } else {
                for (int c = 0; c < C; ++c)
                    curves.push_back({fmt::format("JanusDNA: {} vs rest (AUROC {})", classes[c], fmt_num(r.auroc_per_class[c], 3)),
                                      r.roc_per_class[c]});
            }
        } else {
            for (size_t k = 0; k < summed.counts.size(); ++k) summed.counts[k] += r.cm.counts[k];
        }
        runs.push_back({{"model", models[i]}, {"model_md5", file_md5(models[i])}, {"dataset", a.to_json()},
                        {"split", d.description}, {"test_examples", d.test.size()}, {"rc", lc.info.rc}, {"pooling", lc.info.pooling},
                        {"janusdna", report_json(r)}, {"kmer_logreg", report_json(b.kmer)}, {"kmer_logreg_l2", b.kmer_l2},
                        {"majority", report_json(b.majority)}});
    }
    const std::vector<MethodRuns> methods = {model_runs, kmer_runs, majority_runs};
    std::vector<std::string> shown = {"accuracy", "mcc", "macro_f1", "auroc", "auprc"};
    if (classes.size() == 2) shown.insert(shown.begin() + 3, "f1");
    std::string table = fmt::format("# janusdna evaluate: classification; {}; {} run(s), mean ± sd over runs\n",
                                    test_description, models.size());
    table += summary_table(methods, shown);
    write_file(out.table, table);
    if (!out.json.empty())
        write_file(out.json, nlohmann::json{{"task", "classification"}, {"classes", classes}, {"runs", runs},
                                            {"summary", summary_json(methods)}}.dump(2) + "\n");
    if (!out.tsv.empty()) write_file(out.tsv, summary_tsv(methods));
    if (!out.plot.empty()) {
        write_file(out.plot + ".roc.svg", roc_svg(curves, "ROC, test split (run 1)"));
        write_file(out.plot + ".confusion.svg",
                   confusion_svg(summed, classes, fmt::format("JanusDNA confusion matrix, test split ({} run(s) summed)", models.size())));
    }
    return 0;
}

// --- zero-shot variant effect ---

struct VariantArgs {
    std::string vcf, score_tag = "JANUS_LLR", direction = "lower", label_id, label_info, positive, effect_info;
    std::string reference;
    int markov_order = 5, bootstrap = 1000;
    uint64_t seed = 1;
};

int run_variants(const VariantArgs& va, const Outputs& out, const cli::CommonOptions& common) {
    const std::string cmd = "evaluate";
    if (va.label_id.empty() && va.label_info.empty() && va.effect_info.empty())
        throw Error("--variants needs labels (--label-id REGEX or --label-info TAG) or a measured effect (--effect-info TAG)");
    if (va.reference.empty())
        throw Error("--variants needs the reference (-f FASTA) for the Markov baseline: a result is not reported without its baseline");
    if (va.direction != "lower" && va.direction != "higher") throw Error("--direction must be lower or higher");
    VcfReader in(va.vcf);
    bcf_hdr_t* hdr = in.header();
    auto info_type = [&](const std::string& tag) {
        int id = bcf_hdr_id2int(hdr, BCF_DT_ID, tag.c_str());
        if (id < 0 || !bcf_hdr_idinfo_exists(hdr, BCF_HL_INFO, id))
            throw Error(fmt::format("{}: INFO/{} is not declared in the header", in.display_name(), tag));
        return bcf_hdr_id2type(hdr, BCF_HL_INFO, id);
    };
    info_type(va.score_tag);
    if (!va.label_info.empty()) {
        const int t = info_type(va.label_info);
        if (t == BCF_HT_STR && va.positive.empty())
            throw Error(fmt::format("INFO/{} is a string: say which value is positive with --positive", va.label_info));
    }
    if (!va.effect_info.empty()) info_type(va.effect_info);
    const std::regex id_re(va.label_id.empty() ? "." : va.label_id);
    Reference ref = Reference::open(va.reference, cli::warner(cmd, common));

    struct Var { std::string chrom; int64_t pos0; char ref, alt; double score, effect; int label; std::string where; };
    std::vector<Var> vars;
    int64_t records = 0, skipped_not_snv = 0, skipped_no_score = 0, skipped_no_label = 0;
    bcf1_t* rec = bcf_init();
    // The label from INFO: a flag's presence, a non-zero number, or a string equal to --positive; -1 when absent.
    auto info_label = [&](bcf1_t* r) -> int {
        const char* tag = va.label_info.c_str();
        const int t = bcf_hdr_id2type(hdr, BCF_HL_INFO, bcf_hdr_id2int(hdr, BCF_DT_ID, tag));
        if (t == BCF_HT_FLAG) return bcf_get_info_flag(hdr, r, tag, nullptr, nullptr) == 1;
        int label = -1;
        if (t == BCF_HT_STR) {
            char* b = nullptr;
            int n = 0;
            if (bcf_get_info_string(hdr, r, tag, &b, &n) > 0) label = va.positive == b;
            free(b);
        } else if (t == BCF_HT_INT) {
            int32_t* b = nullptr;
            int n = 0;
            if (bcf_get_info_int32(hdr, r, tag, &b, &n) > 0 && b[0] != bcf_int32_missing) label = b[0] != 0;
            free(b);
        } else if (t == BCF_HT_REAL) {
            float* b = nullptr;
            int n = 0;
            if (bcf_get_info_float(hdr, r, tag, &b, &n) > 0 && !bcf_float_is_missing(b[0])) label = b[0] != 0;
            free(b);
        }
        return label;
    };
    float* fbuf = nullptr;
    int fn = 0;
    try {
        while (in.next(rec)) {
            ++records;
            bcf_unpack(rec, BCF_UN_INFO);
            const std::string where = fmt::format("{}: record {} ({}:{})", in.display_name(), records, bcf_seqname(hdr, rec), rec->pos + 1);
            if (rec->n_allele != 2 || std::strlen(rec->d.allele[0]) != 1 || std::strlen(rec->d.allele[1]) != 1 ||
                base_index(rec->d.allele[0][0]) < 0 || base_index(rec->d.allele[1][0]) < 0) {
                ++skipped_not_snv;
                continue;
            }
            if (bcf_get_info_float(hdr, rec, va.score_tag.c_str(), &fbuf, &fn) < 1 || bcf_float_is_missing(fbuf[0]) || std::isnan(fbuf[0])) {
                ++skipped_no_score;
                continue;
            }
            Var v{bcf_seqname(hdr, rec), rec->pos, static_cast<char>(std::toupper(rec->d.allele[0][0])),
                  static_cast<char>(std::toupper(rec->d.allele[1][0])), fbuf[0], std::nan(""), -1, where};
            if (!va.label_id.empty()) v.label = std::regex_search(rec->d.id, id_re) ? 1 : 0;
            if (!va.label_info.empty()) {
                v.label = info_label(rec);
                if (v.label < 0) { ++skipped_no_label; continue; }
            }
            if (!va.effect_info.empty()) {
                const int t = bcf_hdr_id2type(hdr, BCF_HL_INFO, bcf_hdr_id2int(hdr, BCF_DT_ID, va.effect_info.c_str()));
                int32_t* ib = nullptr;
                int in_ = 0;
                if (t == BCF_HT_REAL && bcf_get_info_float(hdr, rec, va.effect_info.c_str(), &fbuf, &fn) > 0) v.effect = fbuf[0];
                else if (t == BCF_HT_INT && bcf_get_info_int32(hdr, rec, va.effect_info.c_str(), &ib, &in_) > 0) v.effect = ib[0];
                else if (t != BCF_HT_REAL && t != BCF_HT_INT)
                    throw Error(fmt::format("INFO/{} must be Integer or Float for --effect-info", va.effect_info));
                free(ib);
                if (std::isnan(v.effect)) { ++skipped_no_label; continue; }
            }
            vars.push_back(v);
        }
    } catch (...) {
        free(fbuf);
        bcf_destroy(rec);
        throw;
    }
    free(fbuf);
    bcf_destroy(rec);
    if (vars.size() < 2) throw Error(fmt::format("{}: fewer than two scored SNVs to evaluate", va.vcf));

    // Baseline: the both-sided Markov model's log-likelihood ratio, trained on the variants' contigs.
    BothSidedMarkov mk(va.markov_order);
    std::map<std::string, std::string> contig_seq;
    for (const auto& v : vars)
        if (!contig_seq.count(v.chrom)) {
            if (!ref.has(v.chrom)) throw Error(fmt::format("{}: contig \"{}\" is not in {}", v.where, v.chrom, va.reference));
            contig_seq[v.chrom] = ref.fetch(v.chrom, 0, ref.length(v.chrom));
            mk.add(contig_seq[v.chrom]);
        }
    std::vector<double> model_score, markov_score, effect;
    std::vector<int> label;
    const double sign = va.direction == "lower" ? -1.0 : 1.0; // oriented so that larger = more likely positive
    int64_t ref_mismatch = 0;
    for (const auto& v : vars) {
        const std::string& s = contig_seq.at(v.chrom);
        if (v.pos0 >= static_cast<int64_t>(s.size())) throw Error(fmt::format("{}: position past the contig end", v.where));
        if (std::toupper(s[v.pos0]) != v.ref) ++ref_mismatch;
        const std::array<double, 4> lp = mk.log2_probs(s, v.pos0);
        const double llr = (lp[base_index(v.alt)] - lp[base_index(v.ref)]) * std::log(2.0);
        model_score.push_back(sign * v.score);
        markov_score.push_back(sign * llr);
        label.push_back(v.label);
        effect.push_back(v.effect);
    }
    if (ref_mismatch) cli::warn(cmd, fmt::format("{} SNV(s) whose REF differs from {}", ref_mismatch, va.reference));

    std::vector<MethodRuns> methods = {{fmt::format("janusdna ({})", va.score_tag), {}},
                                       {fmt::format("both-sided Markov k={} LLR", va.markov_order), {}}};
    nlohmann::json detail = nlohmann::json::object();
    std::vector<std::pair<std::string, Curve>> curves;
    const bool labelled = !va.label_id.empty() || !va.label_info.empty();
    int64_t positives = 0;
    for (int l : label) positives += l == 1;
    for (size_t k = 0; k < methods.size(); ++k) {
        const std::vector<double>& sc = k == 0 ? model_score : markov_score;
        nlohmann::json j;
        if (labelled) {
            const double a = auroc(sc, label), p = auprc(sc, label);
            auto sub = [&](const std::vector<size_t>& idx, bool roc) {
                std::vector<double> s2;
                std::vector<int> l2;
                for (size_t i : idx) { s2.push_back(sc[i]); l2.push_back(label[i]); }
                return roc ? auroc(s2, l2) : auprc(s2, l2);
            };
            const auto ca = bootstrap_ci(sc.size(), [&](const std::vector<size_t>& idx) { return sub(idx, true); }, va.bootstrap, 0.95, va.seed);
            const auto cp = bootstrap_ci(sc.size(), [&](const std::vector<size_t>& idx) { return sub(idx, false); }, va.bootstrap, 0.95, va.seed);
            methods[k].values["auroc"] = {a};
            methods[k].values["auroc_lo95"] = {ca.lo};
            methods[k].values["auroc_hi95"] = {ca.hi};
            methods[k].values["auprc"] = {p};
            methods[k].values["auprc_lo95"] = {cp.lo};
            methods[k].values["auprc_hi95"] = {cp.hi};
            curves.push_back({fmt::format("{} (AUROC {})", methods[k].name, fmt_num(a, 3)), roc_curve(sc, label)});
        }
        if (!va.effect_info.empty()) methods[k].values["spearman"] = {spearman(sc, effect)};
    }
    std::string table = fmt::format("# janusdna evaluate: zero-shot variant effect; {}: {} records, {} SNVs evaluated ({} not "
                                    "biallelic SNVs, {} without {}, {} without a label/effect); score oriented so that {} "
                                    "{} = more likely positive\n", va.vcf, records, vars.size(), skipped_not_snv,
                                    skipped_no_score, va.score_tag, skipped_no_label, va.direction, va.score_tag);
    if (labelled)
        table += fmt::format("# {} positive, {} negative; chance: AUROC 0.5, AUPRC {:.4f}; 95% percentile bootstrap "
                             "intervals ({} resamples, seed {})\n", positives, static_cast<int64_t>(vars.size()) - positives,
                             static_cast<double>(positives) / vars.size(), va.bootstrap, va.seed);
    std::vector<std::string> shown;
    for (const char* k : {"auroc", "auroc_lo95", "auroc_hi95", "auprc", "auprc_lo95", "auprc_hi95", "spearman"})
        if (methods[0].values.count(k)) shown.push_back(k);
    table += summary_table(methods, shown);
    write_file(out.table, table);
    if (!out.json.empty())
        write_file(out.json, nlohmann::json{{"task", "variants"}, {"vcf", va.vcf}, {"score", va.score_tag},
                                            {"direction", va.direction}, {"snvs", vars.size()}, {"positives", positives},
                                            {"records", records}, {"summary", summary_json(methods)}}.dump(2) + "\n");
    if (!out.tsv.empty()) write_file(out.tsv, summary_tsv(methods));
    if (!out.plot.empty() && labelled) write_file(out.plot + ".roc.svg", roc_svg(curves, "ROC, zero-shot variant effect"));
    return 0;
}

// --- language modelling ---

struct LmArgs {
    std::string reference, model, regions_bed, train_regions, markov_train;
    std::vector<std::string> regions;
    int64_t window = cli::kWindowUnset;
    int markov_max_order = 5;
};

std::vector<Region> lm_regions(const LmArgs& la, const Reference& ref, const WarnFn& warn) {
    return collect_regions(la.regions, la.regions_bed, ref, ContigMatcher(), warn);
}

// Bits of the model on seq (every ACGT base once): non-overlapping windows of W; the last window keeps a full W of
// context by starting earlier, and only its new bases are scored.
void model_bits_of(JanusModelImpl& model, const std::string& seq, int64_t W, const std::string& source,
                   const std::string& name, int64_t first_pos, double& bits, int64_t& bases, cli::Progress& progress) {
    for (int64_t b = 0; b < static_cast<int64_t>(seq.size()); b += W) {
        const int64_t e = std::min<int64_t>(b + W, static_cast<int64_t>(seq.size()));
        const int64_t s = std::max<int64_t>(0, e - W);
        if (e - s < 2) continue;
        Tokens tok = tokenize(std::string_view(seq).substr(s, e - s), source, name, first_pos + s);
        torch::Tensor ids = torch::from_blob(tok.ids.data(), {1, e - s}, torch::kLong).clone();      // [1, w]
        torch::Tensor lp = base_log_probs(model.forward(ids).logits[0]).contiguous();              // [w, 4]
        const float* p = lp.data_ptr<float>();
        for (int64_t t = b - s; t < e - s; ++t) {
            const int bi = base_index(seq[s + t]);
            if (bi < 0) continue;
            bits -= p[4 * t + bi] / std::log(2.0);
            ++bases;
        }
        progress.add(e - b);
    }
}

int run_lm(const LmArgs& la, const Outputs& out, const cli::CommonOptions& common) {
    const std::string cmd = "evaluate";
    WarnFn warn = cli::warner(cmd, common);
    const bool by_region = !la.regions.empty() || !la.regions_bed.empty();
    LoadedModel m = load_model(resolve_model_path(la.model));
    const int64_t W = cli::resolve_window(la.window, m, false, warn);

    // What is evaluated: regions of an indexed FASTA, or every record of a FASTA file.
    std::unique_ptr<Reference> ref;
    std::vector<Region> regions;
    std::vector<std::string> eval_seqs, eval_names;
    if (by_region) {
        ref = std::make_unique<Reference>(Reference::open(la.reference, warn));
        regions = lm_regions(la, *ref, warn);
        for (const auto& r : regions) {
            eval_seqs.push_back(ref->fetch(r.contig, r.beg, r.end));
            eval_names.push_back(r.contig);
        }
    } else {
        FastaReader reader(la.reference);
        FastaRecord rec;
        while (reader.next(rec)) {
            eval_seqs.push_back(rec.seq);
            eval_names.push_back(rec.name);
        }
    }
    double model_bits = 0;
    int64_t model_bases = 0, total = 0;
    for (const auto& s : eval_seqs) total += static_cast<int64_t>(s.size());
    cli::Progress progress(cmd, "bases", total, common.progress);
    {
        c10::InferenceMode guard;
        for (size_t i = 0; i < eval_seqs.size(); ++i)
            model_bits_of(*m.model, eval_seqs[i], W, la.reference, eval_names[i], by_region ? regions[i].beg + 1 : 1,
                          model_bits, model_bases, progress);
    }
    progress.finish();

    // The baseline: both-sided Markov models of every order up to the maximum, counted on the training regions
    // (default: the rest of the evaluated contigs); the best order on the evaluated regions is reported, which
    // favours the baseline.
    std::vector<std::string> train_seqs;
    std::string train_what;
    if (!la.markov_train.empty()) {
        FastaReader reader(la.markov_train);
        FastaRecord rec;
        while (reader.next(rec)) train_seqs.push_back(rec.seq);
        train_what = "the records of " + la.markov_train;
    } else if (!by_region) {
        train_seqs = eval_seqs;
        train_what = "the evaluated records themselves (in-sample, which favours the baseline)";
    } else {
        std::vector<Region> train;
        if (!la.train_regions.empty()) {
            LmArgs t;
            if (access(la.train_regions.c_str(), R_OK) == 0) t.regions_bed = la.train_regions;
            else t.regions = {la.train_regions};
            train = lm_regions(t, *ref, warn);
            train_what = la.train_regions;
        } else {
            std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> by_contig;
            for (const auto& r : regions) by_contig[r.contig].push_back({r.beg, r.end});
            for (auto& [c, iv] : by_contig) {
                std::sort(iv.begin(), iv.end());
                int64_t at = 0;
                for (const auto& [b, e] : iv) {
                    if (b > at) train.push_back({c, at, b, "", '+'});
                    at = std::max(at, e);
                }
                if (at < ref->length(c)) train.push_back({c, at, ref->length(c), "", '+'});
            }
            train_what = "the rest of the evaluated contigs";
        }
        for (const auto& r : train) train_seqs.push_back(ref->fetch(r.contig, r.beg, r.end));
    }
    BothSidedMarkov mk(la.markov_max_order);
    for (const auto& s : train_seqs) mk.add(s);
    std::vector<double> per_order;
    int best = 0;
    for (int k = 0; k <= la.markov_max_order; ++k) {
        double bits = 0;
        int64_t n = 0;
        for (const auto& s : eval_seqs) {
            auto sc = mk.score_with_order(s, k);
            bits += sc.bits;
            n += sc.bases;
        }
        per_order.push_back(n ? bits / n : std::nan(""));
        if (per_order[k] < per_order[best]) best = k;
    }
    const int64_t train_bases = mk.bases_counted();
    std::vector<MethodRuns> methods = {{"janusdna", {{"bits_per_base", {model_bases ? model_bits / model_bases : std::nan("")}},
                                                     {"bases", {static_cast<double>(model_bases)}}}},
                                       {fmt::format("both-sided Markov k={}", best), {{"bits_per_base", {per_order[best]}}}},
                                       {"uniform", {{"bits_per_base", {2.0}}}}};
    std::string table = fmt::format("# janusdna evaluate: language modelling; {} {}, {} bases scored; model {} (window {}, "
                                    "probabilities over A/C/G/T); Markov counted on {} bases of {}, order 0..{} chosen on "
                                    "the evaluated sequence\n", eval_seqs.size(), by_region ? "region(s)" : "record(s)",
                                    model_bases, m.path, W, train_bases, train_what, la.markov_max_order);
    table += summary_table(methods, {"bits_per_base"});
    write_file(out.table, table);
    if (!out.json.empty()) {
        std::vector<nlohmann::json> po;
        for (double x : per_order) po.push_back(num(x));
        write_file(out.json, nlohmann::json{{"task", "lm"}, {"model", m.path}, {"model_md5", file_md5(m.path)}, {"window", W},
                                            {"bases", model_bases}, {"markov_bits_per_base_by_order", po},
                                            {"markov_train_bases", train_bases}, {"summary", summary_json(methods)}}.dump(2) + "\n");
    }
    if (!out.tsv.empty()) write_file(out.tsv, summary_tsv(methods));
    return 0;
}

} // namespace

int main_evaluate(int argc, char** argv) {
    CLI::App app{"Benchmark metrics next to the baselines a reviewer asks for, on the same splits. Classification (default): "
                 "fine-tuned models on the test split vs the majority class and k-mer logistic regression, mean ± sd over "
                 "models (seeds or folds). --variants: zero-shot scores vs labels or measured effects, with a Markov "
                 "baseline. --lm: bits per base on regions vs the best both-sided Markov model.", "evaluate"};
    cli::DatasetArgs data;
    std::vector<std::string> models;
    Outputs out;
    VariantArgs va;
    LmArgs la;
    bool lm = false;
    int64_t batch = 32;
    cli::CommonOptions common;
    cli::add_dataset_options(app, data, true);
    app.add_option("-m,--model", models, "fine-tuned model (repeat for several seeds or folds); with --lm, the model")->group("Model");
    app.add_option("--batch", batch, "sequences per forward pass")->group("Model");
    app.add_option("-o,--output", out.table, "readable table, - for stdout")->group("Output");
    app.add_option("--json", out.json, "everything, as JSON")->group("Output");
    app.add_option("--tsv", out.tsv, "method, run, metric, value rows")->group("Output");
    app.add_option("--plot", out.plot, "write PREFIX.roc.svg and PREFIX.confusion.svg")->group("Output");
    app.add_option("--variants", va.vcf, "zero-shot variant effect: a VCF/BCF scored by janusdna score-variants")->group("Variant effect");
    app.add_option("--score", va.score_tag, "INFO tag holding the score")->group("Variant effect");
    app.add_option("--direction", va.direction, "lower or higher: which end of the score the positive class is expected at")->group("Variant effect");
    app.add_option("--label-id", va.label_id, "positive when the ID matches this regular expression")->group("Variant effect");
    app.add_option("--label-info", va.label_info, "positive from this INFO tag (flag, non-zero number, or --positive string)")->group("Variant effect");
    app.add_option("--positive", va.positive, "the --label-info value that means positive")->group("Variant effect");
    app.add_option("--effect-info", va.effect_info, "numeric INFO tag of a measured effect (Spearman correlation)")->group("Variant effect");
    app.add_option("--markov-order", va.markov_order, "order of the Markov baseline for variants")->group("Variant effect");
    app.add_option("--bootstrap", va.bootstrap, "bootstrap resamples for the intervals")->group("Variant effect");
    app.add_option("--seed", va.seed, "bootstrap seed")->group("Variant effect");
    app.add_flag("--lm", lm, "language modelling: bits per base of -m on -r REGION... / -R BED of the indexed FASTA given as DATA, or on every record of DATA")->group("Language modelling");
    app.add_option("-r,--region", la.regions, "region to evaluate (1-based, inclusive; repeatable)")->group("Language modelling");
    app.add_option("-R,--regions-file", la.regions_bed, "BED of regions to evaluate")->group("Language modelling");
    app.add_option("--train-regions", la.train_regions, "BED or REGION the Markov baseline is counted on [the rest of the evaluated contigs]")->group("Language modelling");
    app.add_option("--markov-train", la.markov_train, "FASTA the Markov baseline is counted on (records mode) [the evaluated records]")->group("Language modelling");
    cli::add_window_option(app, la.window, false, "Language modelling");
    app.add_option("--markov-max-order", la.markov_max_order, "largest Markov order tried (0..6)")->group("Language modelling");
    cli::add_common_options(app, common);
    app.footer("\nExamples:\n"
               "  janusdna evaluate -m tata.1.safetensors -m tata.2.safetensors -m tata.3.safetensors --json tata.json --plot tata\n"
               "  janusdna evaluate -m cohn.safetensors --test human_enhancers_cohn.test.tsv\n"
               "  janusdna evaluate --variants scored.vcf.gz --label-id '^Pathogenic' -f 20.fa.gz\n"
               "  janusdna evaluate --lm 20.fa.gz -r 20:60,000,001-60,100,000\n");
    if (int rc = cli::parse(app, argc, argv); rc >= 0) return rc;

    return cli::guarded("evaluate", [&]() -> int {
        cli::apply_common_options(common);
        for (const std::string& p : {out.table, out.json, out.tsv, out.plot}) cli::check_writable_dir(p);  // before any work
        if (batch < 1) throw Error("--batch must be at least 1");
        if (!va.vcf.empty() && lm) throw Error("--variants and --lm are different tasks; give one");
        if (!va.vcf.empty()) {
            va.reference = data.reference;
            return run_variants(va, out, common);
        }
        if (lm) {
            if (data.data.empty()) throw Error("--lm needs the reference FASTA as DATA");
            if (models.size() > 1) throw Error("--lm takes one model");
            la.reference = data.data;
            la.model = models.empty() ? "" : models[0];
            return run_lm(la, out, common);
        }
        return run_classification(models, data, app, batch, out, common);
    });
}
