// Per-base tracks; see include/janusdna/tracks.h.
#include "janusdna/tracks.h"

#include "janusdna/error.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <map>
#include <memory>

namespace janusdna {

const std::vector<std::string>& track_names() {
    static const std::vector<std::string> names = {"pref", "entropy", "pA", "pC", "pG", "pT", "llr_mean", "llr_min"};
    return names;
}

std::vector<int> parse_track_list(const std::string& list) {
    const std::vector<std::string>& names = track_names();
    std::vector<int> which;
    size_t s = 0;
    while (true) {
        const size_t c = list.find(',', s);
        const std::string t = list.substr(s, c == std::string::npos ? std::string::npos : c - s);
        if (t == "all") {
            for (int i = 0; i < static_cast<int>(names.size()); ++i) which.push_back(i);
        } else {
            auto it = std::find(names.begin(), names.end(), t);
            if (it == names.end()) throw Error(fmt::format("unknown track \"{}\" (use {} or all)", t, fmt::join(names, ", ")));
            which.push_back(static_cast<int>(it - names.begin()));
        }
        if (c == std::string::npos) break;
        s = c + 1;
    }
    return which;
}

float track_value(int which, const BaseResult& b) {
    switch (which) {
        case 0: return std::exp(b.lp[b.ref]);
        case 1: {
            double h = 0;
            for (int c = 0; c < 4; ++c) { const double p = std::exp(double(b.lp[c])); if (p > 0) h -= p * std::log2(p); }
            return static_cast<float>(h);
        }
        case 2: case 3: case 4: case 5: return std::exp(b.lp[which - 2]);
        case 6: case 7: {
            float mean = 0, mn = INFINITY;
            for (int c = 0; c < 4; ++c) {
                if (c == b.ref) continue;
                const float d = b.lp[c] - b.lp[b.ref];
                mean += d / 3.0f;
                mn = std::min(mn, d);
            }
            return which == 6 ? mean : mn;
        }
    }
    throw Error(fmt::format("no track number {}", which));
}

std::vector<Region> merge_regions(std::vector<Region> regions, const Reference& ref) {
    std::map<std::string, size_t> order;
    for (size_t i = 0; i < ref.contigs().size(); ++i) order[ref.contigs()[i]] = i;
    std::sort(regions.begin(), regions.end(), [&](const Region& a, const Region& b) {
        return std::make_pair(order[a.contig], a.beg) < std::make_pair(order[b.contig], b.beg);
    });
    std::vector<Region> merged;
    for (const Region& r : regions) {
        if (!merged.empty() && merged.back().contig == r.contig && r.beg <= merged.back().end) merged.back().end = std::max(merged.back().end, r.end);
        else merged.push_back(r);
    }
    return merged;
}

int64_t write_tracks(const Reference& ref, Runner& runner, const std::vector<Region>& regions, int64_t window, bool rc,
                     const std::vector<int>& which, const TrackOutput& out, const std::function<void(int64_t)>& on_bases) {
    const std::vector<std::string>& names = track_names();
    if (which.size() > 1 && out.path == "-") throw Error("several tracks need -o PREFIX (files PREFIX.NAME.bedgraph.gz or .bw)");
    std::vector<int64_t> lens;
    for (const std::string& c : ref.contigs()) lens.push_back(ref.length(c));
    std::vector<std::unique_ptr<TrackWriter>> writers;
    for (int w : which) {
        const std::string suffix = out.format == TrackFormat::BigWig ? ".bw" : out.format == TrackFormat::BedGraph ? ".bedgraph" : ".bedgraph.gz";
        const std::string path = which.size() == 1 ? out.path : out.path + "." + names[w] + suffix;
        const std::string comment = out.provenance.empty() ? "" : fmt::format("# {} track: {}\n", names[w], out.provenance);
        writers.push_back(std::make_unique<TrackWriter>(path, out.format, ref.contigs(), lens, comment, out.write_index));
    }
    int64_t bases = 0;
    for (const Region& r : regions)
        scan_region(ref, runner, r.contig, r.beg, r.end, window, rc, [&](const BaseResult& b) {
            ++bases;
            for (size_t i = 0; i < which.size(); ++i) writers[i]->add(r.contig, b.pos0, track_value(which[i], b));
            if ((bases & 1023) == 0 && on_bases) on_bases(1024);
        });
    for (auto& w : writers) w->commit();
    return bases;
}

} // namespace janusdna
