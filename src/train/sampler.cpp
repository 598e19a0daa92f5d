// Training intervals (read from BED files or region strings, held-out parts subtracted) and deterministic training
// windows from them.
#include "janusdna/error.h"
#include "janusdna/regions.h"
#include "janusdna/tokenizer.h"
#include "janusdna/splitmix.h"
#include "janusdna/train.h"

#include <algorithm>
#include <fmt/format.h>
#include <unistd.h>

namespace janusdna {

namespace {

double n_fraction(const std::vector<uint8_t>& scored) {
    int64_t n = 0;
    for (uint8_t s : scored) n += !s;
    return scored.empty() ? 1.0 : static_cast<double>(n) / scored.size();
}

} // namespace

std::vector<Interval> subtract_intervals(const std::vector<Interval>& intervals, const std::vector<Interval>& holes) {
    std::vector<Interval> out;
    for (const Interval& iv : intervals) {
        std::vector<Interval> pieces{iv};
        for (const Interval& h : holes) {
            if (h.contig != iv.contig) continue;
            std::vector<Interval> next;
            for (const Interval& p : pieces) {
                if (h.end <= p.beg || h.beg >= p.end) { next.push_back(p); continue; }
                if (h.beg > p.beg) next.push_back({p.contig, p.beg, h.beg, p.split});
                if (h.end < p.end) next.push_back({p.contig, h.end, p.end, p.split});
            }
            pieces.swap(next);
        }
        out.insert(out.end(), pieces.begin(), pieces.end());
    }
    std::sort(out.begin(), out.end(), [](const Interval& a, const Interval& b) {
        return a.contig != b.contig ? a.contig < b.contig : a.beg < b.beg;
    });
    return out;
}

std::vector<Interval> read_intervals(const std::string& spec, const Reference& ref, const std::string& split,
                                     WarnFn warn, const ContigMatcher& contigs) {
    std::vector<Interval> out;
    if (access(spec.c_str(), R_OK) == 0 || spec == "-") {
        BedReader bed(spec);
        Region r;
        while (bed.next(r)) {
            match_contig(r, ref, contigs);
            check_region(r, ref, fmt::format("{}:{}", bed.display_name(), bed.line_number()), warn);
            // The reference's interval file says train/valid/test in its 4th column.
            std::string s = split;
            if (split.empty()) s = (r.name == "valid" || r.name == "test" || r.name == "train") ? r.name : "train";
            out.push_back({r.contig, r.beg, r.end, s});
        }
    } else {
        Region r = parse_region(spec, ref, contigs, warn);
        out.push_back({r.contig, r.beg, r.end, split.empty() ? "train" : split});
    }
    return out;
}

WindowSampler::WindowSampler(const Reference& ref, std::vector<Interval> intervals, int64_t seq_len, uint64_t seed,
                             double max_n_fraction, bool rc_aug)
    : ref_(ref), seq_len_(seq_len), seed_(seed), max_n_fraction_(max_n_fraction), rc_aug_(rc_aug) {
    if (seq_len < 2) throw Error(fmt::format("--seq-len must be at least 2, got {}", seq_len));
    int64_t total = 0;
    for (auto& iv : intervals) {
        const int64_t starts = iv.end - iv.beg - seq_len + 1;
        if (starts <= 0) continue;
        intervals_.push_back(iv);
        total += starts;
        cumulative_.push_back(total);
    }
    if (intervals_.empty())
        throw Error(fmt::format("no training interval of {} holds a whole window of --seq-len {} bases", ref.path(), seq_len));
}

std::vector<int64_t> WindowSampler::sample(int64_t step, int64_t index) const {
    for (uint64_t attempt = 0; attempt < 1000; ++attempt) {
        const uint64_t r = splitmix64(splitmix64(splitmix64(seed_ ^ 0x6a09e667f3bcc908ULL) ^ static_cast<uint64_t>(step)) ^
                               (static_cast<uint64_t>(index) << 20) ^ attempt);
        const int64_t pick = static_cast<int64_t>(r % static_cast<uint64_t>(cumulative_.back()));
        const size_t i = std::upper_bound(cumulative_.begin(), cumulative_.end(), pick) - cumulative_.begin();
        const int64_t offset = pick - (i == 0 ? 0 : cumulative_[i - 1]);
        const Interval& iv = intervals_[i];
        std::string seq = ref_.fetch(iv.contig, iv.beg + offset, iv.beg + offset + seq_len_);
        if (rc_aug_ && (splitmix64(r) & 1)) seq = reverse_complement(seq);
        Tokens t = tokenize(seq, ref_.path(), iv.contig, iv.beg + offset + 1);
        if (n_fraction(t.scored) <= max_n_fraction_) return t.ids;
    }
    throw Error(fmt::format("{}: no window of {} bases with at most {:.0f}% N found in 1000 draws", ref_.path(), seq_len_,
                            100 * max_n_fraction_));
}

std::vector<std::vector<int64_t>> fixed_windows(const Reference& ref, const std::vector<Interval>& intervals,
                                                int64_t seq_len, int64_t max_windows, double max_n_fraction) {
    std::vector<std::vector<int64_t>> out;
    for (const Interval& iv : intervals) {
        for (int64_t b = iv.beg; b + seq_len <= iv.end && static_cast<int64_t>(out.size()) < max_windows; b += seq_len) {
            Tokens t = tokenize(ref.fetch(iv.contig, b, b + seq_len), ref.path(), iv.contig, b + 1);
            if (n_fraction(t.scored) <= max_n_fraction) out.push_back(std::move(t.ids));
        }
    }
    return out;
}

} // namespace janusdna
