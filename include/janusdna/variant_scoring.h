// Zero-shot variant effect scores from JanusDNA: one forward pass over a reference window gives, at every position
// t, log p(base at t | all other bases of the window) (the logits at t never see the base at t). Knows nothing of
// VCF: the caller hands in (contig, position, REF, ALTs) and gets scores with reasons for the missing ones.
//
// Definitions (also in the VCF header and man/janusdna-score-variants.1):
// - JANUS_LLR (SNVs only) = log p(ALT at t) - log p(REF at t), natural log, from the pass over the REF window
//   [B, E) of the contig grid that owns t (grid_window in window_plan.h: windows of length min(window, contig
//   length) at starts 0, S, 2S, ... with S = max(1, window - 2 flank), the last one ending at the contig end; t is
//   owned by the window where it is most central, so it has at least `flank` bases on each side unless the contig
//   ends first). The window, hence the score, depends on t, the reference, the model and the options only: not
//   on the other records, their order, the batch or a split of the file. Every SNV owned by a window shares its pass.
// - PLL(h) of a window sequence h = sum over its positions t with h_t in {A,C,G,T} of log p(h_t | h without t),
//   one pass. N/IUPAC positions ([PAD]) are excluded from the sum.
// - JANUS_PLL (every scorable allele, SNVs included) = PLL(ALT haplotype) - PLL(REF window), where for a REF
//   allele occupying [p, p+r) and ALT string a, REF window = ref[B, E) (the same window as for LLR) and ALT
//   haplotype = ref[B, p) + a + ref[p+r, E): both share the left flank ref[B, p) and right flank ref[p+r, E)
//   exactly; the ALT window is |a| - r bases longer or shorter. When [p, p+r) does not fit in [B, E) (a REF
//   allele longer than the window's flank), a window of length min(contig length, max(window, r+2)) centred on
//   the allele is used instead. Equivalent indel representations give the same haplotypes, hence the same score.
// - rc: each score is the mean of the forward-strand score and the same score computed on the reverse
//   complement of both windows.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "janusdna/fasta.h"
#include "janusdna/runner.h"

namespace janusdna {

// Why a score is missing. NotApplicable (LLR of a non-SNV) is not a failure.
enum class Missing : uint8_t {
    None = 0,
    NotApplicable,   // JANUS_LLR of an indel/MNV/complex allele
    MissingContig,   // the contig is not in the reference
    RefMismatch,     // REF differs from the reference (case-insensitive), or runs past the contig end
    Symbolic,        // <DEL>, <NON_REF>, '*', breakends, '.', empty
    TooLong,         // REF or ALT longer than max_indel
    Ambiguous,       // REF or ALT holds a base other than A/C/G/T (N, IUPAC)
    NoContext,       // the window would have fewer than 2 bases (contig of 1 base, deletion of nearly all of it)
    kCount
};
const char* missing_name(Missing m);  // "missing contig", "REF mismatch", ...

struct VariantInput {
    std::string contig;          // reference contig name (after any renaming)
    int64_t pos0 = 0;            // 0-based position of REF's first base
    std::string ref;
    std::vector<std::string> alts;
};

struct AlleleScore {
    float llr = 0, pll = 0;
    Missing llr_missing = Missing::None, pll_missing = Missing::None;
    bool has_llr() const { return llr_missing == Missing::None; }
    bool has_pll() const { return pll_missing == Missing::None; }
};

struct VariantScore {
    bool missing_contig = false;
    bool ref_mismatch = false;
    std::vector<AlleleScore> alleles;   // one per ALT, in order
    int64_t win_beg = -1, win_end = -1; // the shared REF window used (for tests and diagnostics); -1 when none
};

struct ScoreOptions {
    int64_t window = 1024;   // model window length (W)
    int64_t flank = -1;      // bases of context wanted on each side of an owned position; -1 = window / 4
    int64_t max_indel = 50;  // alleles longer than this get no score
    bool rc = false;         // average with the reverse-complement strand
    bool llr = true, pll = true;
};

// Scores batches of variants. Not thread-safe (the Reference is not).
class VariantScorer {
public:
    VariantScorer(const Reference& ref, Runner& runner, ScoreOptions opt);
    // Scores the variants (any order, any contigs; positions are sorted internally per contig so that variants
    // close to each other share passes). The result is parallel to `variants`.
    std::vector<VariantScore> score(const std::vector<VariantInput>& variants);
    const ScoreOptions& options() const { return opt_; }
    // The grid's stride: max(1, window - 2 flank).
    int64_t grid_stride() const { return std::max<int64_t>(1, opt_.window - 2 * opt_.flank); }

private:
    const Reference& ref_;
    Runner& runner_;
    ScoreOptions opt_;
};

// Per-base model output over a region, for tracks and saturation mutagenesis.
struct BaseResult {
    int64_t pos0;        // 0-based contig position
    int ref;             // 0..3 (A,C,G,T) of the reference base
    float lp[4];         // log p(A), log p(C), log p(G), log p(T) at pos0 (mean of both strands with rc)
};

// Runs the model over [beg, end) of contig with the windows of the contig grid plan_grid(beg, end, len, window,
// max(1, window/2)) (each base reported from the grid window where it is most central, so a base's values do not
// depend on the region asked for, and equal score-variants' with the default flank) and calls `fn` for every base that
// is A/C/G/T in the reference, in order; N/IUPAC bases are skipped. Memory: a few batches of windows at once.
// With rc, lp = log of the mean of both strands' probabilities (so they still sum to 1).
void scan_region(const Reference& ref, Runner& runner, const std::string& contig, int64_t beg, int64_t end,
                 int64_t window, bool rc, const std::function<void(const BaseResult&)>& fn);

// The ##INFO header lines of the scores, the same for score-variants and track --all-snvs: window W, grid stride
// S, and how the strands were combined (strand: "forward", "mean of forward and reverse complement", ...).
std::string janus_llr_header(int64_t window, int64_t stride, const std::string& strand);
std::string janus_pll_header(int64_t window, const std::string& strand);

} // namespace janusdna
