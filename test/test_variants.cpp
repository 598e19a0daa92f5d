// Variant scoring (JANUS_LLR, JANUS_PLL), region scans and track writers, checked against independent forward passes.
#include <doctest/doctest.h>

#include "helpers.h"
#include "janusdna/bedgraph.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/heads.h"
#include "janusdna/model_file.h"
#include "janusdna/runner.h"
#include "janusdna/tokenizer.h"
#include "janusdna/variant_scoring.h"
#include "janusdna/window_plan.h"

#include <cmath>
#include <cstdio>
#include <unistd.h>

#ifdef JANUSDNA_HAVE_BIGWIG
#define NOCURL 1
extern "C" {
#include <bigWig.h>
}
#endif

using namespace janusdna;

namespace {

LoadedModel& fixture() {
    static LoadedModel m = load_model(test::data("tiny-midattn.model.safetensors"));
    return m;
}
const Reference& reference() {
    static Reference r = Reference::open(test::data("variants/ref.fa"));
    return r;
}

// log p over A,C,G,T [L, 4] of seq from a direct forward pass (as `predict` computes it).
torch::Tensor predict_log_probs(const std::string& seq) {
    c10::InferenceMode guard;
    Tokens tok = tokenize(seq, "test", "seq");
    const int64_t L = static_cast<int64_t>(tok.ids.size());
    torch::Tensor ids = torch::from_blob(tok.ids.data(), {1, L}, torch::kLong).clone();
    return base_log_probs(fixture().model->forward(ids).logits[0]).contiguous();
}

// PLL: sum over A/C/G/T positions of log p(x_t | rest), computed independently of the library.
double pll(const std::string& seq) {
    torch::Tensor lp = predict_log_probs(seq);
    const float* p = lp.data_ptr<float>();
    double s = 0;
    for (size_t t = 0; t < seq.size(); ++t)
        if (int b = base_index(seq[t]); b >= 0) s += p[4 * t + b];
    return s;
}

VariantInput var(int64_t pos1, const std::string& ref, std::vector<std::string> alts, const std::string& contig = "20") {
    return VariantInput{contig, pos1 - 1, ref, std::move(alts)};
}
std::string refseq(int64_t pos1, int64_t n) { return reference().fetch("20", pos1 - 1, pos1 - 1 + n); }
std::string other(const std::string& b, int k = 0) {
    std::string out;
    for (char c : std::string("ACGT")) if (c != std::toupper(b[0])) out += c;
    return std::string(1, out[k]);
}

} // namespace

TEST_CASE("JANUS_LLR equals the log-probability difference of a direct pass over the same window (exact)") {
    Runner runner(*fixture().model, 1);
    ScoreOptions o; o.window = 128;
    VariantScorer scorer(reference(), runner, o);
    const int64_t len = reference().length("20");
    std::vector<VariantInput> v = {var(5000, refseq(5000, 1), {other(refseq(5000, 1)), other(refseq(5000, 1), 2)}),
                                   var(5010, refseq(5010, 1), {other(refseq(5010, 1), 1)}),
                                   var(1, refseq(1, 1), {other(refseq(1, 1))}),
                                   var(len, refseq(len, 1), {other(refseq(len, 1))}),
                                   var(40000, refseq(40000, 1), {other(refseq(40000, 1))})};
    std::vector<VariantScore> s = scorer.score(v);
    REQUIRE(s.size() == v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        CAPTURE(i);
        REQUIRE(s[i].win_beg >= 0);
        CHECK(s[i].win_end - s[i].win_beg == 128);
        CHECK(s[i].win_beg <= v[i].pos0);
        CHECK(v[i].pos0 < s[i].win_end);
        torch::Tensor lp = predict_log_probs(reference().fetch("20", s[i].win_beg, s[i].win_end));
        const float* p = lp.data_ptr<float>();
        const int64_t t = v[i].pos0 - s[i].win_beg;
        for (size_t k = 0; k < v[i].alts.size(); ++k) {
            REQUIRE(s[i].alleles[k].has_llr());
            const float want = p[4 * t + base_index(v[i].alts[k][0])] - p[4 * t + base_index(v[i].ref[0])];
            CHECK(s[i].alleles[k].llr == want);
        }
    }
    // 5000 and 5010 share a window (and a pass); the contig ends are scored from windows clipped there.
    CHECK(s[0].win_beg == s[1].win_beg);
    CHECK(s[2].win_beg == 0);
    CHECK(s[3].win_end == len);
}

TEST_CASE("JANUS_PLL equals PLL(ALT haplotype) - PLL(REF window) computed independently") {
    Runner runner(*fixture().model, 4);
    ScoreOptions o; o.window = 96;
    VariantScorer scorer(reference(), runner, o);
    const std::string r3 = refseq(6000, 3);
    std::vector<VariantInput> v = {var(6000, r3, {r3.substr(0, 1), r3 + "AC", "A" + r3.substr(1)}),  // del, ins, SNV-like MNV
                                   var(7500, refseq(7500, 2), {"CG"}),                                // MNV
                                   var(8000, refseq(8000, 1), {other(refseq(8000, 1))})};             // SNV
    std::vector<VariantScore> s = scorer.score(v);
    for (size_t i = 0; i < v.size(); ++i) {
        const std::string win = reference().fetch("20", s[i].win_beg, s[i].win_end);
        const size_t off = static_cast<size_t>(v[i].pos0 - s[i].win_beg);
        const double ref_pll = pll(win);
        for (size_t k = 0; k < v[i].alts.size(); ++k) {
            CAPTURE(i); CAPTURE(k);
            const std::string hap = win.substr(0, off) + v[i].alts[k] + win.substr(off + v[i].ref.size());
            const double want = pll(hap) - ref_pll;
            REQUIRE(s[i].alleles[k].has_pll());
            CHECK(std::abs(s[i].alleles[k].pll - want) <= 1e-4 * std::max(1.0, std::abs(want)));
            CHECK(s[i].alleles[k].has_llr() == (v[i].ref.size() == 1 && v[i].alts[k].size() == 1));
        }
    }
    // Equivalent representations of one deletion (left- and right-aligned) give the same haplotype and score
    // when they fall in the same window.
    const std::string seq = refseq(9000, 40);
    for (size_t j = 1; j + 1 < seq.size(); ++j)
        if (seq[j] == seq[j + 1]) {
            std::vector<VariantInput> w = {var(9000 + j - 1, seq.substr(j - 1, 2), {seq.substr(j - 1, 1)}),
                                           var(9000 + j, seq.substr(j, 2), {seq.substr(j, 1)})};
            std::vector<VariantScore> t = scorer.score(w);
            REQUIRE(t[0].win_beg == t[1].win_beg); // the two positions were chosen to share a window
            CHECK(t[0].alleles[0].pll == doctest::Approx(t[1].alleles[0].pll).epsilon(1e-6));
            break;
        }
}

TEST_CASE("--rc averages with the reverse-complement strand") {
    Runner runner(*fixture().model, 2);
    ScoreOptions o; o.window = 64; o.rc = true;
    VariantScorer scorer(reference(), runner, o);
    const std::string b = refseq(3000, 1), a = other(b);
    VariantScore s = scorer.score({var(3000, b, {a})})[0];
    const std::string win = reference().fetch("20", s.win_beg, s.win_end);
    const int64_t t = 2999 - s.win_beg, L = s.win_end - s.win_beg;
    torch::Tensor f = predict_log_probs(win), r = predict_log_probs(reverse_complement(win));
    const float* pf = f.data_ptr<float>();
    const float* pr = r.data_ptr<float>();
    const double fwd = pf[4 * t + base_index(a[0])] - pf[4 * t + base_index(b[0])];
    const double rev = pr[4 * (L - 1 - t) + 3 - base_index(a[0])] - pr[4 * (L - 1 - t) + 3 - base_index(b[0])];
    CHECK(s.alleles[0].llr == doctest::Approx((fwd + rev) / 2).epsilon(1e-6));
    std::string hap = win; hap[t] = a[0];
    const double want = (pll(hap) - pll(win) + pll(reverse_complement(hap)) - pll(reverse_complement(win))) / 2;
    CHECK(std::abs(s.alleles[0].pll - want) <= 1e-4 * std::max(1.0, std::abs(want)));
}

TEST_CASE("unscorable variants get reasons; passes grow with the span, not with the number of variants") {
    Runner runner(*fixture().model, 64);
    ScoreOptions o; o.window = 128; o.max_indel = 10; o.pll = false;
    VariantScorer scorer(reference(), runner, o);
    const std::string b = refseq(5000, 1);
    std::vector<VariantInput> v = {var(5000, b, {"<DEL>", "*", "N", b + "[20:100[", other(b)}),
                                   var(5000, other(b), {b}),                       // REF mismatch
                                   var(100, "A", {"G"}, "chr20"),                  // missing contig
                                   var(5000, b, {b + "ACGTACGTACGT"}),            // longer than max_indel
                                   var(reference().length("20"), refseq(reference().length("20"), 1) + "A", {"A"})}; // REF past the end
    std::vector<VariantScore> s = scorer.score(v);
    CHECK(s[0].alleles[0].pll_missing == Missing::Symbolic);
    CHECK(s[0].alleles[1].pll_missing == Missing::Symbolic);
    CHECK(s[0].alleles[2].llr_missing == Missing::Ambiguous);
    CHECK(s[0].alleles[3].pll_missing == Missing::Symbolic);
    CHECK(s[0].alleles[4].has_llr());
    CHECK(s[1].ref_mismatch);
    CHECK(s[1].alleles[0].llr_missing == Missing::RefMismatch);
    CHECK(s[2].missing_contig);
    CHECK(s[2].alleles[0].llr_missing == Missing::MissingContig);
    CHECK(s[3].alleles[0].llr_missing == Missing::TooLong);
    CHECK(s[4].ref_mismatch);
    CHECK(runner.passes() == 1);

    // 60 SNVs within the 64 bp that one grid window owns ([20000, 20064) for W 128, stride 64), given unsorted:
    // one window, one pass, same scores as sorted.
    std::vector<VariantInput> many, sorted;
    for (int64_t i = 0; i < 60; ++i) sorted.push_back(var(20001 + i, refseq(20001 + i, 1), {other(refseq(20001 + i, 1))}));
    for (int64_t i = 0; i < 60; ++i) many.push_back(sorted[(i * 37) % 60]);
    const int64_t before = runner.passes();
    std::vector<VariantScore> a = scorer.score(many), c = scorer.score(sorted);
    CHECK(runner.passes() - before == 2);
    for (int64_t i = 0; i < 60; ++i) CHECK(a[i].alleles[0].llr == c[(i * 37) % 60].alleles[0].llr);
}

TEST_CASE("scores depend on the variant only: whole, subsets, shuffled, --batch 1 and region scans agree") {
    const int64_t len = reference().length("20");
    // SNVs and indels, some close enough to share windows, one at each contig end.
    std::vector<VariantInput> v;
    uint64_t state = 12345;
    const auto next = [&](int64_t n) { state = state * 6364136223846793005ULL + 1442695040888963407ULL; return static_cast<int64_t>((state >> 33) % n); };
    for (int i = 0; i < 60; ++i) {
        const int64_t pos1 = i == 0 ? 1 : i == 1 ? len - 3 : 2 + next(len - 8);
        const std::string r = refseq(pos1, 1);
        if (base_index(r[0]) < 0) continue;
        switch (i % 4) {
            case 0: case 1: v.push_back(var(pos1, r, {other(r), other(r, 1)})); break;
            case 2: v.push_back(var(pos1, refseq(pos1, 3), {r})); break;                        // 2 bp deletion
            case 3: v.push_back(var(pos1, r, {r + std::string("ACGTTG").substr(0, 1 + i % 5)})); break; // insertion
        }
    }
    for (bool rc : {false, true}) {
        CAPTURE(rc);
        ScoreOptions o; o.window = 128; o.rc = rc;
        Runner r16(*fixture().model, 16), r1(*fixture().model, 1);
        VariantScorer whole(reference(), r16, o), single(reference(), r1, o);
        const std::vector<VariantScore> want = whole.score(v);
        const auto same = [&](const VariantScore& got, const VariantScore& w) {
            REQUIRE(got.alleles.size() == w.alleles.size());
            CHECK(got.win_beg == w.win_beg);
            for (size_t k = 0; k < w.alleles.size(); ++k) {
                CHECK(got.alleles[k].has_llr() == w.alleles[k].has_llr());
                REQUIRE(got.alleles[k].has_pll() == w.alleles[k].has_pll());
                // Bit for bit: a window's output does not depend on the windows batched with it.
                if (w.alleles[k].has_llr()) CHECK(got.alleles[k].llr == w.alleles[k].llr);
                CHECK(got.alleles[k].pll == w.alleles[k].pll);
            }
        };
        for (size_t third = 0; third < 3; ++third) {  // interleaved thirds, in reverse order, one at a time
            std::vector<VariantInput> part;
            std::vector<size_t> idx;
            for (size_t i = v.size(); i-- > 0;)
                if (i % 3 == third) { part.push_back(v[i]); idx.push_back(i); }
            const std::vector<VariantScore> got = whole.score(part);
            for (size_t j = 0; j < part.size(); ++j) { CAPTURE(idx[j]); same(got[j], want[idx[j]]); }
        }
        const std::vector<VariantScore> one = single.score(v);
        for (size_t i = 0; i < v.size(); ++i) { CAPTURE(i); same(one[i], want[i]); }
        // An SNV's LLR is the difference of the track's log-probabilities at its base (default flank = stride W/2).
        Runner rs(*fixture().model, 4);
        for (size_t i = 0; i < v.size(); i += 4) {
            if (!want[i].alleles[0].has_llr()) continue;
            const int64_t p = v[i].pos0;
            int seen = 0;
            scan_region(reference(), rs, "20", p, p + 1, 128, rc, [&](const BaseResult& b) {
                ++seen;
                const float llr = b.lp[base_index(v[i].alts[0][0])] - b.lp[b.ref];
                CAPTURE(p);
                // With rc the track averages probabilities, the score log-ratios: compare the forward strand only.
                if (!rc) CHECK(llr == want[i].alleles[0].llr);
            });
            CHECK(seen == 1);
        }
    }
}

TEST_CASE("scan_region: a base's values do not depend on the region or the batch") {
    Runner r8(*fixture().model, 8), r1(*fixture().model, 1);
    std::vector<BaseResult> whole;
    scan_region(reference(), r8, "20", 999, 3000, 128, true, [&](const BaseResult& b) { whole.push_back(b); });
    for (auto [beg, end] : {std::pair<int64_t, int64_t>{999, 1002}, {1500, 1501}, {2017, 2999}}) {
        size_t k = 0;
        scan_region(reference(), r1, "20", beg, end, 128, true, [&](const BaseResult& b) {
            const BaseResult& w = whole[static_cast<size_t>(b.pos0 - 999)];
            REQUIRE(w.pos0 == b.pos0);
            for (int c = 0; c < 4; ++c) CHECK(b.lp[c] == w.lp[c]);
            ++k;
        });
        CHECK(k == static_cast<size_t>(end - beg));
    }
}

TEST_CASE("scan_region reports predict's probabilities from the window where each base is most central") {
    Runner runner(*fixture().model, 1);  // batch 1: the same arithmetic as a single predict pass, so equality is exact
    const int64_t beg = 1000, end = 1300, W = 128, len = reference().length("20");
    std::vector<BaseResult> got;
    scan_region(reference(), runner, "20", beg, end, W, false, [&](const BaseResult& b) { got.push_back(b); });
    REQUIRE(got.size() == static_cast<size_t>(end - beg));  // no N in this slice
    size_t k = 0;
    for (const Window& w : plan_grid(beg, end, len, W, W / 2)) {
        torch::Tensor lp = predict_log_probs(reference().fetch("20", w.beg, w.end));
        const float* p = lp.data_ptr<float>();
        for (int64_t x = w.own_beg; x < w.own_end; ++x, ++k) {
            REQUIRE(got[k].pos0 == x);
            for (int c = 0; c < 4; ++c) CHECK(got[k].lp[c] == p[4 * (x - w.beg) + c]);
        }
    }
    // N bases are absent.
    got.clear();
    const std::string s = "ACGTNNNNACGTACGTAGCTAGCATCGATCGACTNACGT";
    char path[] = "/tmp/janusdna-test-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    const std::string fa = ">n\n" + s + "\n";
    REQUIRE(write(fd, fa.data(), fa.size()) == static_cast<ssize_t>(fa.size()));
    close(fd);
    {
        Reference nref = Reference::open(path);
        scan_region(nref, runner, "n", 0, static_cast<int64_t>(s.size()), 16, false, [&](const BaseResult& b) { got.push_back(b); });
    }
    CHECK(got.size() == s.size() - 5);
    for (const BaseResult& b : got) CHECK(s[b.pos0] != 'N');
    std::remove(path);
    std::remove((std::string(path) + ".fai").c_str());
}

#ifdef JANUSDNA_HAVE_BIGWIG
TEST_CASE("bigWig track values read back through libBigWig equal predict probabilities") {
    Runner runner(*fixture().model, 1);
    const int64_t beg = 2000, end = 2200, W = 64;
    char dir[] = "/tmp/janusdna-bw-XXXXXX";
    REQUIRE(mkdtemp(dir));
    const std::string path = std::string(dir) + "/pref.bw";
    std::vector<BaseResult> got;
    {
        std::vector<int64_t> lens;
        for (const auto& c : reference().contigs()) lens.push_back(reference().length(c));
        TrackWriter w(path, TrackFormat::BigWig, reference().contigs(), lens, "");
        scan_region(reference(), runner, "20", beg, end, W, false, [&](const BaseResult& b) {
            got.push_back(b);
            w.add("20", b.pos0, std::exp(b.lp[b.ref]));
        });
        w.commit();
    }
    bigWigFile_t* bw = bwOpen(path.c_str(), nullptr, "r");
    REQUIRE(bw);
    bwOverlappingIntervals_t* iv = bwGetValues(bw, "20", beg, end, 1);
    REQUIRE(iv);
    REQUIRE(iv->l == static_cast<uint32_t>(end - beg));
    size_t k = 0;
    for (const Window& w : plan_grid(beg, end, reference().length("20"), W, W / 2)) {
        torch::Tensor lp = predict_log_probs(reference().fetch("20", w.beg, w.end));
        const float* p = lp.data_ptr<float>();
        for (int64_t x = w.own_beg; x < w.own_end; ++x, ++k) {
            const int rb = base_index(reference().fetch("20", x, x + 1)[0]);
            CHECK(iv->value[x - beg] == std::exp(p[4 * (x - w.beg) + rb]));
        }
    }
    bwDestroyOverlappingIntervals(iv);
    bwClose(bw);
    std::remove(path.c_str());
    rmdir(dir);
}
#endif
