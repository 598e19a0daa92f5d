// Zero-shot variant scores (LLR, PLL) and per-base region scans; definitions in include/janusdna/variant_scoring.h.
#include "janusdna/variant_scoring.h"

#include "janusdna/error.h"
#include "janusdna/heads.h"
#include "janusdna/tokenizer.h"
#include "janusdna/window_plan.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <map>
#include <numeric>

namespace janusdna {

const char* missing_name(Missing m) {
    switch (m) {
        case Missing::None: return "none";
        case Missing::NotApplicable: return "not applicable";
        case Missing::MissingContig: return "contig missing from the reference";
        case Missing::RefMismatch: return "REF mismatch";
        case Missing::Symbolic: return "symbolic or unscorable allele";
        case Missing::TooLong: return "longer than --max-indel";
        case Missing::Ambiguous: return "non-ACGT base in REF or ALT";
        case Missing::NoContext: return "window shorter than 2 bases";
        default: return "?";
    }
}

namespace {

std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}
bool all_acgt(const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return base_index(c) >= 0; });
}
bool symbolic(const std::string& a) {
    return a.empty() || a == "." || a == "*" || a[0] == '<' || a.find('[') != std::string::npos ||
           a.find(']') != std::string::npos || (a.size() > 1 && (a.front() == '.' || a.back() == '.'));
}

// Tokenizes seq on the forward strand or as its reverse complement.
Tokens tokens_of(const std::string& seq, bool rc, const std::string& source, const std::string& contig) {
    return rc ? tokenize(reverse_complement(seq), source, contig) : tokenize(seq, source, contig);
}

// Sum of log p(x_t) over the scored positions of one window result.
double pll_of(const Tokens& tok, const torch::Tensor& lp) {
    const float* p = lp.data_ptr<float>();
    double s = 0;
    for (size_t t = 0; t < tok.ids.size(); ++t)
        if (tok.scored[t]) s += p[4 * t + (tok.ids[t] - kIdA)];
    return s;
}

struct SnvItem { size_t var, allele; int64_t i; int r, a; double sum = 0; };
struct RefWin { std::string contig; int64_t beg, end; std::string seq; double pll = 0; std::vector<SnvItem> snvs; };
struct AltJob { size_t var, allele, win; std::string hap; double pll = 0; };

} // namespace

VariantScorer::VariantScorer(const Reference& ref, Runner& runner, ScoreOptions opt) : ref_(ref), runner_(runner), opt_(opt) {
    if (opt_.window < 2) throw Error(fmt::format("--window must be at least 2, got {}", opt_.window));
    if (opt_.flank < 0) opt_.flank = opt_.window / 4;
    if (opt_.max_indel < 1) throw Error(fmt::format("--max-indel must be at least 1, got {}", opt_.max_indel));
}

std::vector<VariantScore> VariantScorer::score(const std::vector<VariantInput>& variants) {
    std::vector<VariantScore> out(variants.size());
    // 1. Classify every allele; collect the positions that need a pass, per contig.
    std::map<std::string, std::vector<std::pair<int64_t, size_t>>> by_contig;
    for (size_t v = 0; v < variants.size(); ++v) {
        const VariantInput& in = variants[v];
        VariantScore& vs = out[v];
        vs.alleles.resize(in.alts.size());
        auto set_all = [&](Missing m) { for (auto& a : vs.alleles) a.llr_missing = a.pll_missing = m; };
        const int64_t len = ref_.length(in.contig);
        if (len < 0) { vs.missing_contig = true; set_all(Missing::MissingContig); continue; }
        const std::string ref_allele = upper(in.ref);
        const int64_t r = static_cast<int64_t>(ref_allele.size());
        if (in.pos0 < 0 || r == 0 || in.pos0 + r > len || upper(ref_.fetch(in.contig, in.pos0, in.pos0 + r)) != ref_allele) {
            vs.ref_mismatch = true; set_all(Missing::RefMismatch); continue;
        }
        bool need = false;
        for (size_t k = 0; k < in.alts.size(); ++k) {
            AlleleScore& a = vs.alleles[k];
            const std::string alt = upper(in.alts[k]);
            Missing m = Missing::None;
            if (symbolic(alt)) m = Missing::Symbolic;
            else if (std::max<int64_t>(r, alt.size()) > opt_.max_indel) m = Missing::TooLong;
            else if (!all_acgt(ref_allele) || !all_acgt(alt)) m = Missing::Ambiguous;
            else if (len < 2 || len - r + static_cast<int64_t>(alt.size()) < 2) m = Missing::NoContext;
            const bool snv = r == 1 && alt.size() == 1;
            a.llr_missing = m != Missing::None ? m : (snv && opt_.llr ? Missing::None : Missing::NotApplicable);
            a.pll_missing = m != Missing::None ? m : (opt_.pll ? Missing::None : Missing::NotApplicable);
            need = need || a.has_llr() || a.has_pll();
        }
        if (need) by_contig[in.contig].emplace_back(in.pos0, v);
    }

    // 2. Plan the shared REF windows and the ALT haplotypes.
    std::vector<RefWin> wins;
    std::vector<AltJob> alts;
    for (auto& [contig, items] : by_contig) {
        std::sort(items.begin(), items.end());
        const int64_t len = ref_.length(contig);
        // Grid windows in contig order, each with the positions it owns (contiguous in the sorted items).
        struct Owned { int64_t beg, end; size_t first, last; };
        std::vector<Owned> plan;
        for (size_t j = 0; j < items.size(); ++j) {
            const Window gw = grid_window(items[j].first, len, opt_.window, grid_stride());
            if (!plan.empty() && plan.back().beg == gw.beg) plan.back().last = j + 1;
            else plan.push_back(Owned{gw.beg, gw.end, j, j + 1});
        }
        for (const Owned& pw : plan) {
            const size_t w = wins.size();
            wins.push_back(RefWin{contig, pw.beg, pw.end, ref_.fetch(contig, pw.beg, pw.end), 0, {}});
            for (size_t j = pw.first; j < pw.last; ++j) {
                const size_t v = items[j].second;
                const VariantInput& in = variants[v];
                VariantScore& vs = out[v];
                vs.win_beg = pw.beg; vs.win_end = pw.end;
                const int64_t r = static_cast<int64_t>(in.ref.size());
                for (size_t k = 0; k < in.alts.size(); ++k) {
                    const AlleleScore& a = vs.alleles[k];
                    if (a.has_llr())
                        wins[w].snvs.push_back(SnvItem{v, k, in.pos0 - pw.beg, base_index(in.ref[0]), base_index(in.alts[k][0])});
                    if (!a.has_pll()) continue;
                    size_t ww = w;
                    if (in.pos0 < pw.beg || in.pos0 + r > pw.end) { // REF allele does not fit: a window of its own
                        const int64_t L = std::min(len, std::max(opt_.window, r + 2));
                        const int64_t b = std::clamp(in.pos0 + r / 2 - L / 2, int64_t{0}, len - L);
                        ww = wins.size();
                        wins.push_back(RefWin{contig, b, b + L, ref_.fetch(contig, b, b + L), 0, {}});
                    }
                    const RefWin& rw = wins[ww];
                    const size_t off = static_cast<size_t>(in.pos0 - rw.beg);
                    std::string hap = rw.seq.substr(0, off) + in.alts[k] + rw.seq.substr(off + static_cast<size_t>(r));
                    alts.push_back(AltJob{v, k, ww, std::move(hap), 0});
                }
            }
        }
    }

    // 3. Run every sequence (both strands with rc), longest groups batched together, a few batches at a time.
    struct Task { const std::string* seq; const std::string* contig; bool rc; bool alt; size_t idx; };
    std::vector<Task> tasks;
    for (int s = 0; s < (opt_.rc ? 2 : 1); ++s) {
        for (size_t w = 0; w < wins.size(); ++w) tasks.push_back(Task{&wins[w].seq, &wins[w].contig, s == 1, false, w});
        for (size_t j = 0; j < alts.size(); ++j) tasks.push_back(Task{&alts[j].hap, &wins[alts[j].win].contig, s == 1, true, j});
    }
    std::stable_sort(tasks.begin(), tasks.end(), [](const Task& x, const Task& y) { return x.seq->size() < y.seq->size(); });
    const size_t group = static_cast<size_t>(runner_.batch()) * 4;
    for (size_t first = 0; first < tasks.size(); first += group) {
        const size_t n = std::min(group, tasks.size() - first);
        std::vector<Tokens> toks(n);
        std::vector<std::vector<int64_t>> ids(n);
        for (size_t j = 0; j < n; ++j) {
            toks[j] = tokens_of(*tasks[first + j].seq, tasks[first + j].rc, ref_.path(), *tasks[first + j].contig);
            ids[j] = toks[j].ids;
        }
        std::vector<WindowResult> res = runner_.run(ids, RunOptions{});
        for (size_t j = 0; j < n; ++j) {
            const Task& t = tasks[first + j];
            const double pll = pll_of(toks[j], res[j].log_probs);
            if (t.alt) { alts[t.idx].pll += pll; continue; }
            RefWin& w = wins[t.idx];
            w.pll += pll;
            const float* p = res[j].log_probs.data_ptr<float>();
            const int64_t L = static_cast<int64_t>(w.seq.size());
            for (SnvItem& s : w.snvs) {
                const float d = t.rc ? p[4 * (L - 1 - s.i) + (3 - s.a)] - p[4 * (L - 1 - s.i) + (3 - s.r)]
                                     : p[4 * s.i + s.a] - p[4 * s.i + s.r];
                s.sum += d;
            }
        }
    }

    // 4. Scores.
    const double strands = opt_.rc ? 2.0 : 1.0;
    for (const RefWin& w : wins)
        for (const SnvItem& s : w.snvs) out[s.var].alleles[s.allele].llr = static_cast<float>(s.sum / strands);
    for (const AltJob& a : alts)
        out[a.var].alleles[a.allele].pll = static_cast<float>((a.pll - wins[a.win].pll) / strands);
    return out;
}

void scan_region(const Reference& ref, Runner& runner, const std::string& contig, int64_t beg, int64_t end,
                 int64_t window, bool rc, const std::function<void(const BaseResult&)>& fn) {
    const int64_t len = ref.length(contig);
    if (len < 0) throw Error(ref.missing_contig_message(contig));
    if (window < 2) throw Error(fmt::format("--window must be at least 2, got {}", window));
    if (len < 2) return; // a one-base contig cannot be scored
    const std::vector<Window> plan = plan_grid(beg, end, len, window, std::max<int64_t>(1, window / 2));
    const size_t group = static_cast<size_t>(runner.batch()) * 2;
    for (size_t first = 0; first < plan.size(); first += group) {
        const size_t n = std::min(group, plan.size() - first);
        std::vector<std::string> seqs(n);
        std::vector<std::vector<int64_t>> ids;
        std::vector<Tokens> fwd(n);
        for (size_t j = 0; j < n; ++j) {
            seqs[j] = ref.fetch(contig, plan[first + j].beg, plan[first + j].end);
            fwd[j] = tokenize(seqs[j], ref.path(), contig, plan[first + j].beg + 1);
            ids.push_back(fwd[j].ids);
        }
        if (rc)
            for (size_t j = 0; j < n; ++j) ids.push_back(tokenize(reverse_complement(seqs[j]), ref.path(), contig).ids);
        std::vector<WindowResult> res = runner.run(ids, RunOptions{});
        for (size_t j = 0; j < n; ++j) {
            const Window& w = plan[first + j];
            const float* p = res[j].log_probs.data_ptr<float>();
            const float* q = rc ? res[n + j].log_probs.data_ptr<float>() : nullptr;
            const int64_t L = w.end - w.beg;
            BaseResult b;
            for (int64_t x = w.own_beg; x < w.own_end; ++x) {
                const int64_t i = x - w.beg;
                if (!fwd[j].scored[i]) continue;
                b.pos0 = x;
                b.ref = static_cast<int>(fwd[j].ids[i] - kIdA);
                for (int c = 0; c < 4; ++c)
                    b.lp[c] = rc ? static_cast<float>(std::log(0.5 * (std::exp(double(p[4 * i + c])) +
                                                                       std::exp(double(q[4 * (L - 1 - i) + 3 - c])))))
                                 : p[4 * i + c];
                fn(b);
            }
        }
    }
}

std::string janus_llr_header(int64_t W, int64_t S, const std::string& strand) {
    return fmt::format("##INFO=<ID=JANUS_LLR,Number=A,Type=Float,Description=\"JanusDNA zero-shot SNV score: ln p(ALT) - "
                       "ln p(REF) at the variant position, from one forward pass over the reference window of {} bp that "
                       "holds it most centrally among windows starting every {} bp from the contig start (clipped at contig "
                       "ends, never padded; the model never sees the base it predicts), so the score depends on the variant "
                       "alone; strand: {}. Missing for indels, MNVs, symbolic alleles, REF mismatches and contigs absent from "
                       "the reference\">", W, S, strand);
}

std::string janus_pll_header(int64_t W, const std::string& strand) {
    return fmt::format("##INFO=<ID=JANUS_PLL,Number=A,Type=Float,Description=\"JanusDNA pseudo-log-likelihood difference "
                       "PLL(ALT haplotype) - PLL(REF window), PLL = sum over A/C/G/T positions of ln p(base | all other "
                       "bases) in one pass; REF window = the {} bp window of JANUS_LLR's grid that holds the variant's first "
                       "base, ALT haplotype = the same window with REF replaced by ALT (identical flanks); N positions "
                       "excluded; strand: {}. Missing for symbolic alleles, alleles longer than --max-indel, REF mismatches "
                       "and contigs absent from the reference\">", W, strand);
}

} // namespace janusdna
