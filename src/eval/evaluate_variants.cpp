// Zero-shot variant effect: a score of score-variants vs labels or a measured effect, next to a both-sided Markov
// model's log-likelihood ratio; see include/janusdna/evaluate.h. Torch-free: htslib, the baselines and the metrics.
#include "janusdna/evaluate.h"

#include "janusdna/baselines.h"
#include "janusdna/error.h"
#include "janusdna/tokenizer.h"
#include "janusdna/fasta.h"
#include "janusdna/metrics.h"
#include "janusdna/svg_plot.h"
#include "janusdna/vcf_io.h"

#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <regex>

namespace janusdna {

EvalReport evaluate_variants(const VariantEvalOptions& va, const WarnFn& warn) {
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
    Reference ref = Reference::open(va.reference, warn);

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
            const std::string name = va.contigs.to_reference(v.chrom, ref);
            if (!ref.has(name)) throw Error(fmt::format("{}: {}", v.where, ref.missing_contig_message(v.chrom)));
            contig_seq[v.chrom] = ref.fetch(name, 0, ref.length(name));
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
    if (ref_mismatch && warn) warn(fmt::format("{} SNV(s) whose REF differs from {}", ref_mismatch, va.reference));

    EvalReport rep;
    rep.task = "variants";
    std::vector<MethodRuns>& methods = rep.methods;
    methods = {{fmt::format("janusdna ({})", va.score_tag), {}},
               {fmt::format("both-sided Markov k={} LLR", va.markov_order), {}}};
    std::vector<std::pair<std::string, Curve>> curves;
    const bool labelled = !va.label_id.empty() || !va.label_info.empty();
    int64_t positives = 0;
    for (int l : label) positives += l == 1;
    for (size_t k = 0; k < methods.size(); ++k) {
        const std::vector<double>& sc = k == 0 ? model_score : markov_score;
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
            curves.push_back({fmt::format("{} (AUROC {})", methods[k].name, format_number(a, 3)), roc_curve(sc, label)});
        }
        if (!va.effect_info.empty()) methods[k].values["spearman"] = {spearman(sc, effect)};
    }
    rep.header.push_back(fmt::format("# janusdna evaluate: zero-shot variant effect; {}: {} records, {} SNVs evaluated ({} not "
                                     "biallelic SNVs, {} without {}, {} without a label/effect); score oriented so that {} "
                                     "{} = more likely positive", va.vcf, records, vars.size(), skipped_not_snv,
                                     skipped_no_score, va.score_tag, skipped_no_label, va.direction, va.score_tag));
    if (labelled)
        rep.header.push_back(fmt::format("# {} positive, {} negative; chance: AUROC 0.5, AUPRC {:.4f}; 95% percentile bootstrap "
                                         "intervals ({} resamples, seed {})", positives, static_cast<int64_t>(vars.size()) - positives,
                                         static_cast<double>(positives) / vars.size(), va.bootstrap, va.seed));
    for (const char* k : {"auroc", "auroc_lo95", "auroc_hi95", "auprc", "auprc_lo95", "auprc_hi95", "spearman"})
        if (methods[0].values.count(k)) rep.metrics.push_back(k);
    rep.json = nlohmann::json{{"task", "variants"}, {"vcf", va.vcf}, {"score", va.score_tag}, {"direction", va.direction},
                              {"snvs", vars.size()}, {"positives", positives}, {"records", records},
                              {"summary", summary_json(methods)}};
    if (labelled) rep.figures.push_back({".roc.svg", roc_svg(curves, "ROC, zero-shot variant effect")});
    return rep;
}

} // namespace janusdna
