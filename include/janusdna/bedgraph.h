// Per-base scalar tracks: bedGraph (plain, or bgzipped with a tabix index) and bigWig (through libBigWig when the
// build found it: JANUSDNA_HAVE_BIGWIG). Written under a temporary name and renamed into place at commit().
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace janusdna {

enum class TrackFormat { BedGraph, BedGraphGz, BigWig };

// -O value (bedgraph or v, bedgraph.gz or z, bigwig or bw) or, when empty, the suffix of path: .bw/.bigwig -> BigWig,
// .gz/.bgz -> BedGraphGz, "" (a prefix for several tracks) -> BedGraphGz, anything else ("-", .bedgraph, .bed, no
// suffix) -> BedGraph (text). Throws Error for an unknown value.
TrackFormat track_format(const std::string& opt, const std::string& path);
bool bigwig_supported();

class TrackWriter {
public:
    // contigs/lengths: the reference's (bigWig needs them in its header). comment: '#' lines written at the top of
    // a bedGraph ("" for none). write_index: a bgzipped bedGraph to a file also gets PATH.tbi (an error for other
    // formats or "-", as -W is). "-" streams (bedGraph only).
    TrackWriter(const std::string& path, TrackFormat format, const std::vector<std::string>& contigs,
                const std::vector<int64_t>& lengths, const std::string& comment, bool write_index = false);
    ~TrackWriter();
    TrackWriter(const TrackWriter&) = delete;
    TrackWriter& operator=(const TrackWriter&) = delete;
    // One base [pos0, pos0+1) with its value. Calls must be sorted (contig by contig, increasing positions).
    void add(const std::string& contig, int64_t pos0, float value);
    void commit();

    struct Impl;
private:
    std::unique_ptr<Impl> impl_;
};

} // namespace janusdna
