// Language modelling: the model's bits per base on regions or records vs both-sided Markov models; see
// include/janusdna/evaluate.h.
#include "janusdna/evaluate.h"

#include "janusdna/baselines.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/heads.h"
#include "janusdna/model_file.h"
#include "janusdna/regions.h"
#include "janusdna/tokenizer.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <unistd.h>

namespace janusdna {

namespace {

// Bits of the model on seq (every ACGT base once): non-overlapping windows of W; the last window keeps a full W of
// context by starting earlier, and only its new bases are scored. on_bases(n) after each window.
void model_bits_of(JanusModelImpl& model, const std::string& seq, int64_t W, const std::string& source,
                   const std::string& name, int64_t first_pos, double& bits, int64_t& bases,
                   const std::function<void(int64_t)>& on_bases) {
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
        on_bases(e - b);
    }
}

} // namespace

EvalReport evaluate_lm(const LmEvalOptions& la, LoadedModel& m, int64_t W, const WarnFn& warn,
                       const EvalProgressFn& progress) {
    const bool by_region = !la.regions.empty() || !la.regions_bed.empty();

    // What is evaluated: regions of an indexed FASTA, or every record of a FASTA file.
    std::unique_ptr<Reference> ref;
    std::vector<Region> regions;
    std::vector<std::string> eval_seqs, eval_names;
    if (by_region) {
        ref = std::make_unique<Reference>(Reference::open(la.reference, warn));
        regions = collect_regions(la.regions, la.regions_bed, *ref, la.contigs, warn);
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
    int64_t model_bases = 0, total = 0, done = 0;
    for (const auto& s : eval_seqs) total += static_cast<int64_t>(s.size());
    if (progress) progress(0, total);
    {
        c10::InferenceMode guard;
        for (size_t i = 0; i < eval_seqs.size(); ++i)
            model_bits_of(*m.model, eval_seqs[i], W, la.reference, eval_names[i], by_region ? regions[i].beg + 1 : 1,
                          model_bits, model_bases, [&](int64_t n) { done += n; if (progress) progress(done, total); });
    }
    if (progress && done != total) progress(total, total);

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
            // A readable file is a BED of regions, anything else a region text.
            if (access(la.train_regions.c_str(), R_OK) == 0) train = collect_regions({}, la.train_regions, *ref, la.contigs, warn);
            else train = collect_regions({la.train_regions}, "", *ref, la.contigs, warn);
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
    EvalReport rep;
    rep.task = "lm";
    rep.methods = {{"janusdna", {{"bits_per_base", {model_bases ? model_bits / model_bases : std::nan("")}},
                                 {"bases", {static_cast<double>(model_bases)}}}},
                   {fmt::format("both-sided Markov k={}", best), {{"bits_per_base", {per_order[best]}}}},
                   {"uniform", {{"bits_per_base", {2.0}}}}};
    rep.metrics = {"bits_per_base"};
    rep.header.push_back(fmt::format("# janusdna evaluate: language modelling; {} {}, {} bases scored; model {} (window {}, "
                                     "probabilities over A/C/G/T); Markov counted on {} bases of {}, order 0..{} chosen on "
                                     "the evaluated sequence", eval_seqs.size(), by_region ? "region(s)" : "record(s)",
                                     model_bases, m.path, W, train_bases, train_what, la.markov_max_order));
    std::vector<nlohmann::json> po;
    for (double x : per_order) po.push_back(json_number(x));
    rep.json = nlohmann::json{{"task", "lm"}, {"model", m.path}, {"model_md5", m.md5}, {"window", W},
                              {"bases", model_bases}, {"markov_bits_per_base_by_order", po},
                              {"markov_train_bases", train_bases}, {"summary", summary_json(rep.methods)}};
    return rep;
}

} // namespace janusdna
