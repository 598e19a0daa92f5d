// Per-base tracks over regions of a reference (what janusdna track writes): p(REF), entropy, p(A..T) and the mean
// and minimum SNV LLR, from the contig-grid scan of variant_scoring.h, as bedGraph or bigWig.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "janusdna/bedgraph.h"
#include "janusdna/fasta.h"
#include "janusdna/regions.h"
#include "janusdna/runner.h"
#include "janusdna/variant_scoring.h"
#include "janusdna/vcf_io.h"

namespace janusdna {

// The track names, in their fixed order: pref, entropy, pA, pC, pG, pT, llr_mean, llr_min.
const std::vector<std::string>& track_names();
// "pref,entropy" or "all" as indices into track_names(); throws Error naming an unknown track.
std::vector<int> parse_track_list(const std::string& list);
// The value of track `which` at one base.
float track_value(int which, const BaseResult& b);

// The reference's contigs as the outputs name them: the regions' input names (Region::input_contig) where contig
// names were matched, else the reference's own. Throws Error when one contig is asked for under two names.
std::vector<std::string> output_contigs(const Reference& ref, const std::vector<Region>& regions);

// Regions sorted in the reference's contig order, overlapping and adjacent ones merged: each base once, in order.
std::vector<Region> merge_regions(std::vector<Region> regions, const Reference& ref);

struct TrackOutput {
    std::string path = "-";   // the file with one track, else a prefix: PREFIX.NAME.bedgraph[.gz] or .bw
    TrackFormat format = TrackFormat::BedGraph;
    std::string provenance;   // "" for none, else written into each file's comment line
    bool write_index = false; // PATH.tbi for each bgzipped bedGraph (-W)
};

// Writes the tracks `which` over `regions` (merged, as merge_regions returns them) and commits the files; returns
// the number of bases written. on_bases(n) reports progress. Throws Error, leaving no file, on any failure.
int64_t write_tracks(const Reference& ref, Runner& runner, const std::vector<Region>& regions, int64_t window, bool rc,
                     const std::vector<int>& which, const TrackOutput& out,
                     const std::function<void(int64_t)>& on_bases = {});

struct SnvOutput {
    std::string path = "-";
    VcfOutType type = VcfOutType::Vcf;
    bool write_index = false;
    std::vector<std::string> header_lines;  // "##..." lines added after the contigs and INFO/JANUS_LLR
};
struct SnvSummary {
    int64_t bases = 0, snvs = 0;
};

// In-silico saturation mutagenesis: every SNV of each A/C/G/T base of `regions` (merged) with its JANUS_LLR, the
// same value score-variants gives at its default flank, as VCF/BCF records (REF upper case) or table rows; the
// contigs named as output_contigs names them. Commits the file; throws Error, leaving none, on any failure.
SnvSummary write_all_snvs(const Reference& ref, Runner& runner, const std::vector<Region>& regions, int64_t window,
                          bool rc, const SnvOutput& out, const std::function<void(int64_t)>& on_bases = {});

} // namespace janusdna
