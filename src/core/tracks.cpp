// Per-base tracks; see include/janusdna/tracks.h.
#include "janusdna/tracks.h"

#include "janusdna/error.h"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <htslib/vcf.h>

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

std::vector<std::string> output_contigs(const Reference& ref, const std::vector<Region>& regions) {
    std::map<std::string, std::string> named;  // reference name -> the input's
    for (const Region& r : regions) {
        auto [it, fresh] = named.emplace(r.contig, r.output_contig());
        if (!fresh && it->second != r.output_contig())
            throw Error(fmt::format("contig {} is asked for as both {} and {}; name it one way", r.contig, it->second,
                                    r.output_contig()));
    }
    std::vector<std::string> out;
    for (const std::string& c : ref.contigs()) out.push_back(named.count(c) ? named.at(c) : c);
    return out;
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
    const std::vector<std::string> contigs = output_contigs(ref, regions);
    std::vector<std::unique_ptr<TrackWriter>> writers;
    for (int w : which) {
        const std::string suffix = out.format == TrackFormat::BigWig ? ".bw" : out.format == TrackFormat::BedGraph ? ".bedgraph" : ".bedgraph.gz";
        const std::string path = which.size() == 1 ? out.path : out.path + "." + names[w] + suffix;
        const std::string comment = out.provenance.empty() ? "" : fmt::format("# {} track: {}\n", names[w], out.provenance);
        writers.push_back(std::make_unique<TrackWriter>(path, out.format, contigs, lens, comment, out.write_index));
    }
    int64_t bases = 0;
    for (const Region& r : regions)
        scan_region(ref, runner, r.contig, r.beg, r.end, window, rc, [&](const BaseResult& b) {
            ++bases;
            for (size_t i = 0; i < which.size(); ++i) writers[i]->add(r.output_contig(), b.pos0, track_value(which[i], b));
            if ((bases & 1023) == 0 && on_bases) on_bases(1024);
        });
    for (auto& w : writers) w->commit();
    return bases;
}

SnvSummary write_all_snvs(const Reference& ref, Runner& runner, const std::vector<Region>& regions, int64_t window,
                          bool rc, const SnvOutput& out, const std::function<void(int64_t)>& on_bases) {
    const std::vector<std::string> contigs = output_contigs(ref, regions);
    bcf_hdr_t* hdr = bcf_hdr_init("w");
    std::unique_ptr<bcf_hdr_t, void (*)(bcf_hdr_t*)> hdr_guard(hdr, bcf_hdr_destroy);
    for (size_t i = 0; i < contigs.size(); ++i)
        bcf_hdr_append(hdr, fmt::format("##contig=<ID={},length={}>", contigs[i], ref.length(ref.contigs()[i])).c_str());
    bcf_hdr_append(hdr, janus_llr_header(window, std::max<int64_t>(1, window / 2),
                                         rc ? "mean of both strands' probabilities" : "forward").c_str());
    for (const std::string& line : out.header_lines) bcf_hdr_append(hdr, line.c_str());
    if (bcf_hdr_sync(hdr) < 0) throw Error("cannot build the VCF header");
    VcfOutput vcf(out.path, out.type, hdr, out.write_index, {"JANUS_LLR"});
    bcf1_t* rec = bcf_init();
    std::unique_ptr<bcf1_t, void (*)(bcf1_t*)> rec_guard(rec, bcf_destroy);
    const char* acgt = "ACGT";
    SnvSummary sum;
    for (const Region& r : regions) {
        const std::string& chrom = r.output_contig();
        const int rid = bcf_hdr_name2id(hdr, chrom.c_str());
        scan_region(ref, runner, r.contig, r.beg, r.end, window, rc, [&](const BaseResult& b) {
            ++sum.bases;
            for (int c = 0; c < 4; ++c) {
                if (c == b.ref) continue;
                const float llr = b.lp[c] - b.lp[b.ref];
                ++sum.snvs;
                if (out.type == VcfOutType::Table) {
                    vcf.write_row(chrom, b.pos0 + 1, std::string(1, acgt[b.ref]), std::string(1, acgt[c]), {llr});
                    continue;
                }
                bcf_clear(rec);
                rec->rid = rid;
                rec->pos = b.pos0;
                const char alleles[4] = {acgt[b.ref], ',', acgt[c], 0};
                bcf_update_alleles_str(hdr, rec, alleles);
                bcf_update_info_float(hdr, rec, "JANUS_LLR", &llr, 1);
                vcf.write(rec);
            }
            if ((sum.bases & 1023) == 0 && on_bases) on_bases(1024);
        });
    }
    vcf.commit();
    return sum;
}

} // namespace janusdna
