// janusdna predict: per-position base probabilities for every record of a FASTA file.
#include "common.h"

#include "janusdna/atomic_file.h"
#include "janusdna/classifier.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/heads.h"
#include "janusdna/model_file.h"
#include "janusdna/runner.h"
#include "janusdna/safetensors.h"
#include "janusdna/tokenizer.h"

#include <fmt/format.h>
#include <set>

using namespace janusdna;

namespace {

// A fine-tuned model classifies whole records: name, predicted class, one probability per class.
void classify_records(const LoadedModel& m, const std::string& in_path, const std::string& out_path, bool progress_forced) {
    LoadedClassifier lc = classifier_of(m);
    FastaReader reader(in_path);
    AtomicFile out(out_path);
    out.write(fmt::format("name\tpredicted\t{}\n", fmt::join(lc.info.classes, "\t")));
    std::vector<std::string> names, seqs;
    cli::Progress progress("predict", "records", 0, progress_forced);
    auto flush = [&] {
        torch::Tensor p = predict_proba(*lc.clf, seqs, lc.info.length, lc.info.rc, 32).contiguous();   // [n, C]
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
        progress.add(static_cast<int64_t>(seqs.size()));
        names.clear();
        seqs.clear();
    };
    FastaRecord rec;
    while (reader.next(rec)) {
        if (rec.seq.empty()) throw Error(fmt::format("{}: record \"{}\" is empty", in_path, rec.name));
        Tokens tok = tokenize(rec.seq, in_path, rec.name); // validates the characters, naming record and position
        std::string upper = rec.seq;
        for (auto& c : upper) c = base_index(c) >= 0 ? "ACGT"[base_index(c)] : 'N';
        names.push_back(rec.name);
        seqs.push_back(upper);
        if (seqs.size() == 256) flush();
    }
    if (!seqs.empty()) flush();
    progress.finish();
    out.commit();
}

} // namespace

int main_predict(int argc, char** argv) {
    CLI::App app{"Per-position probabilities of A, C, G, T for every record of a FASTA file. Each base is predicted "
                 "from both sides without seeing it, in one forward pass per record.", "predict"};
    std::string in_path, out_path = "-", out_type;
    int64_t window = cli::kWindowUnset, batch = 8;
    cli::CommonOptions common;
    cli::ModelOptions model;
    app.add_option("input", in_path, "FASTA file (plain, gzip or bgzip), - for stdin")->required()->group("Input");
    cli::add_model_options(app, model);
    app.add_option("-o,--output", out_path, "output file, - for stdout")->group("Output");
    app.add_option("-O,--output-type", out_type, "tsv or safetensors [default: from the -o suffix, else tsv]")
        ->check(CLI::IsMember({"tsv", "safetensors"}))->group("Output");
    cli::add_window_option(app, window, true, "Context");
    app.add_option("--batch", batch, "windows per forward pass")->group("Context");
    cli::add_common_options(app, common);
    app.footer("\nRecords longer than the window are tiled on a grid of windows starting every W/2 bases; each base is\n"
               "taken from the window where it is most central (as in track), so memory stays bounded whatever the\n"
               "record's length. --window 0 makes one pass per record.\n"
               "Output (tsv): name pos base pA pC pG pT, pos 1-based; probabilities renormalised over A/C/G/T.\n"
               "With a fine-tuned model (janusdna finetune): name predicted p(CLASS)... per record, as the model was\n"
               "trained (cut to its input length, pooled as it records; both strands averaged when it was trained with\n"
               "--rc).\n"
               "Output (safetensors): NAME.logits [L,16] and NAME.hidden [L,H], float32.\n"
               "N and IUPAC ambiguity codes are fed as [PAD], as in pretraining.\n\n"
               "Examples:\n  janusdna predict -m model.safetensors seqs.fa > probs.tsv\n"
               "  janusdna predict -O safetensors -o out.safetensors seqs.fa.gz\n");
    if (int rc = cli::parse(app, argc, argv); rc >= 0) return rc;

    return cli::guarded("predict", [&] {
        cli::apply_common_options(common);
        cli::check_writable_dir(out_path);  // before any work, so that none is lost at the end
        if (out_type.empty())
            out_type = out_path.size() > 12 && out_path.compare(out_path.size() - 12, 12, ".safetensors") == 0 ? "safetensors" : "tsv";
        if (out_type == "safetensors" && out_path == "-")
            throw Error("safetensors output needs a file name: -o FILE.safetensors");
        if (batch < 1) throw Error(fmt::format("--batch must be at least 1, got {}", batch));
        LoadedModel m = cli::open_model(model, common, "predict");
        if (is_classifier(m)) {
            if (out_type != "tsv") throw Error("a fine-tuned model's predictions are a table: use -O tsv");
            classify_records(m, in_path, out_path, common.progress);
            return 0;
        }
        FastaReader reader(in_path);
        std::unique_ptr<AtomicFile> out_tsv;
        SafetensorsWriter out_st;
        if (out_type == "tsv") {
            out_tsv = std::make_unique<AtomicFile>(out_path);
            out_tsv->write(std::string_view("name\tpos\tbase\tpA\tpC\tpG\tpT\n"));
        }
        window = cli::resolve_window(window, m, true, cli::warner("predict", common));
        Runner runner(*m.model, batch);
        RunOptions ro;
        ro.log_probs = out_tsv != nullptr;
        ro.logits = ro.hidden = out_tsv == nullptr;
        std::set<std::string> seen;
        cli::Progress progress("predict", "bases", 0, common.progress);
        FastaRecord rec;
        int64_t n_records = 0;
        while (reader.next(rec)) {
            ++n_records;
            if (!seen.insert(rec.name).second)
                throw Error(fmt::format("{}: record \"{}\" appears twice", in_path, rec.name));
            if (rec.seq.size() < 2)
                throw Error(fmt::format("{}: record \"{}\" has {} bases; at least 2 are needed", in_path, rec.name, rec.seq.size()));
            Tokens tok = tokenize(rec.seq, in_path, rec.name);
            const int64_t L = static_cast<int64_t>(tok.ids.size());
            torch::Tensor logits, hidden;  // [L, V], [L, H] for safetensors, filled window by window
            fmt::memory_buffer buf;
            run_tiled(runner, tok.ids, window, ro, [&](const WindowResult& r, int64_t wb, int64_t ob, int64_t oe) {
                if (!out_tsv) {
                    if (!logits.defined()) {
                        logits = torch::empty({L, r.logits.size(1)}, torch::kFloat);                     // [L, V]
                        hidden = torch::empty({L, r.hidden.size(1)}, torch::kFloat);                     // [L, H]
                    }
                    logits.slice(0, ob, oe).copy_(r.logits.slice(0, ob - wb, oe - wb));                   // [oe-ob, V]
                    hidden.slice(0, ob, oe).copy_(r.hidden.slice(0, ob - wb, oe - wb).to(torch::kFloat)); // [oe-ob, H]
                    return;
                }
                const float* lp = r.log_probs.data_ptr<float>();                                         // [Lw, 4]
                for (int64_t t = ob; t < oe; ++t) {
                    const float* q = lp + 4 * (t - wb);
                    fmt::format_to(std::back_inserter(buf), "{}\t{}\t{}\t{:.6f}\t{:.6f}\t{:.6f}\t{:.6f}\n", rec.name, t + 1,
                                   rec.seq[t], std::exp(q[0]), std::exp(q[1]), std::exp(q[2]), std::exp(q[3]));
                    if (buf.size() > (1 << 16)) { out_tsv->write(std::string_view(buf.data(), buf.size())); buf.clear(); }
                }
            });
            if (out_tsv) out_tsv->write(std::string_view(buf.data(), buf.size()));
            else {
                out_st.add(rec.name + ".logits", DType::F32, logits.sizes().vec(), logits.data_ptr(), logits.numel() * 4);
                out_st.add(rec.name + ".hidden", DType::F32, hidden.sizes().vec(), hidden.data_ptr(), hidden.numel() * 4);
            }
            progress.add(L);
        }
        progress.finish();
        if (out_tsv) out_tsv->commit();
        else {
            out_st.set_metadata("janusdna_command", cli::command_line(argc, argv));
            out_st.set_metadata("janusdna_version", JANUSDNA_VERSION);
            out_st.set_metadata("model_md5", file_md5(m.path));
            out_st.write(out_path);
        }
        return 0;
    });
}
