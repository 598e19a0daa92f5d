// predict's pipelines (include/janusdna/predict.h).
#include "janusdna/predict.h"

#include "janusdna/atomic_file.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/heads.h"
#include "janusdna/runner.h"
#include "janusdna/safetensors.h"
#include "janusdna/tokenizer.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <memory>
#include <set>

namespace janusdna {

namespace {

// The TSV rows of one record, as windows hand them back: rows own_beg .. own_end - 1 of each window.
class TsvRows {
public:
    explicit TsvRows(const std::string& path) : out_(path) {
        out_.write(std::string_view("name\tpos\tbase\tpA\tpC\tpG\tpT\n"));
    }
    void add(const std::string& name, const std::string& seq, const WindowResult& r, int64_t wb, int64_t ob, int64_t oe) {
        const float* lp = r.log_probs.data_ptr<float>();  // [Lw, 4]
        for (int64_t t = ob; t < oe; ++t) {
            const float* q = lp + 4 * (t - wb);
            fmt::format_to(std::back_inserter(buf_), "{}\t{}\t{}\t{:.6f}\t{:.6f}\t{:.6f}\t{:.6f}\n", name, t + 1, seq[t],
                           std::exp(q[0]), std::exp(q[1]), std::exp(q[2]), std::exp(q[3]));
            if (buf_.size() > (1 << 16)) flush();
        }
    }
    void flush() {
        out_.write(std::string_view(buf_.data(), buf_.size()));
        buf_.clear();
    }
    void commit() {
        flush();
        out_.commit();
    }

private:
    AtomicFile out_;
    fmt::memory_buffer buf_;
};

} // namespace

PredictSummary predict_records(JanusModelImpl& model, const std::string& fasta, const std::string& out_path,
                               const PredictOptions& opt, const std::function<void(int64_t)>& on_bases) {
    const bool st = opt.format == PredictFormat::Safetensors;
    if (st && out_path == "-") throw Error("safetensors output needs a file name: -o FILE.safetensors");
    FastaReader reader(fasta);
    std::unique_ptr<TsvRows> tsv;
    SafetensorsWriter out_st;
    if (!st) tsv = std::make_unique<TsvRows>(out_path);
    Runner runner(model, opt.batch);
    RunOptions ro;
    ro.log_probs = !st;
    ro.logits = ro.hidden = st;
    std::set<std::string> seen;
    PredictSummary sum;
    FastaRecord rec;
    while (reader.next(rec)) {
        ++sum.records;
        if (!seen.insert(rec.name).second) throw Error(fmt::format("{}: record \"{}\" appears twice", fasta, rec.name));
        if (rec.seq.size() < 2)
            throw Error(fmt::format("{}: record \"{}\" has {} bases; at least 2 are needed", fasta, rec.name, rec.seq.size()));
        Tokens tok = tokenize(rec.seq, fasta, rec.name);
        const int64_t L = static_cast<int64_t>(tok.ids.size());
        torch::Tensor logits, hidden;  // [L, V], [L, H] for safetensors, filled window by window
        run_tiled(runner, tok.ids, opt.window, ro, [&](const WindowResult& r, int64_t wb, int64_t ob, int64_t oe) {
            if (tsv) return tsv->add(rec.name, rec.seq, r, wb, ob, oe);
            if (!logits.defined()) {
                logits = torch::empty({L, r.logits.size(1)}, torch::kFloat);                     // [L, V]
                hidden = torch::empty({L, r.hidden.size(1)}, torch::kFloat);                     // [L, H]
            }
            logits.slice(0, ob, oe).copy_(r.logits.slice(0, ob - wb, oe - wb));                   // [oe-ob, V]
            hidden.slice(0, ob, oe).copy_(r.hidden.slice(0, ob - wb, oe - wb).to(torch::kFloat)); // [oe-ob, H]
        });
        if (st) {
            out_st.add(rec.name + ".logits", DType::F32, logits.sizes().vec(), logits.data_ptr(), logits.numel() * 4);
            out_st.add(rec.name + ".hidden", DType::F32, hidden.sizes().vec(), hidden.data_ptr(), hidden.numel() * 4);
        }
        sum.bases += L;
        if (on_bases) on_bases(L);
    }
    if (tsv) tsv->commit();
    else {
        for (const auto& [k, v] : opt.metadata) out_st.set_metadata(k, v);
        out_st.write(out_path);
    }
    return sum;
}

PredictSummary classify_records(const LoadedClassifier& lc, const std::string& fasta, const std::string& out_path,
                                const std::function<void(int64_t)>& on_records) {
    FastaReader reader(fasta);
    AtomicFile out(out_path);
    out.write(fmt::format("name\tpredicted\t{}\n", fmt::join(lc.info.classes, "\t")));
    std::vector<std::string> names, seqs;
    PredictSummary sum;
    auto flush = [&] {
        SequenceClassifier clf = lc.clf;  // a shared handle: the model itself is not const
        torch::Tensor p = predict_proba(*clf, seqs, lc.info.length, lc.info.rc, 32).contiguous();  // [n, C]
        const int64_t C = p.size(1);
        std::string text;
        for (size_t i = 0; i < seqs.size(); ++i) {
            const float* row = p.data_ptr<float>() + i * C;
            const int64_t best = std::max_element(row, row + C) - row;
            text += names[i] + "\t" + lc.info.classes[best];
            for (int64_t c = 0; c < C; ++c) text += fmt::format("\t{:.6f}", row[c]);
            text += "\n";
        }
        out.write(text);
        if (on_records) on_records(static_cast<int64_t>(seqs.size()));
        names.clear();
        seqs.clear();
    };
    FastaRecord rec;
    while (reader.next(rec)) {
        if (rec.seq.empty()) throw Error(fmt::format("{}: record \"{}\" is empty", fasta, rec.name));
        tokenize(rec.seq, fasta, rec.name);  // validates the characters, naming record and position
        std::string upper = rec.seq;
        for (auto& c : upper) c = base_index(c) >= 0 ? "ACGT"[base_index(c)] : 'N';
        names.push_back(rec.name);
        seqs.push_back(upper);
        sum.bases += static_cast<int64_t>(upper.size());
        ++sum.records;
        if (seqs.size() == 256) flush();
    }
    if (!seqs.empty()) flush();
    out.commit();
    return sum;
}

} // namespace janusdna
