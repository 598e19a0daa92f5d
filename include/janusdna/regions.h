// Regions of a reference: parsing "chr20:1,000-2,000" strings and reading BED files.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "janusdna/fasta.h"

namespace janusdna {

class LineReader; // delimited.h

// An interval of one contig, 0-based half-open: bases beg .. end-1.
struct Region {
    std::string contig;
    int64_t beg = 0;
    int64_t end = 0;
    std::string name;  // label for output: BED column 4, or "contig:beg+1-end"
    char strand = '+'; // '+', '-' (read the reverse complement) or '.' (unknown; treated as '+')
    // The input's own name for the contig when --chr-prefix or --rename-chrs matched it to the reference's
    // (chr20 for the reference's 20); empty when they are the same. Outputs name the contig as the input does.
    std::string input_contig;
    const std::string& output_contig() const { return input_contig.empty() ? contig : input_contig; }
};

// Parses a 1-based inclusive region string with htslib's hts_parse_region, names looked up in ref:
// "chr20" (whole contig), "chr20:1000-2000", "chr20:1,000-2,000", "chr20:1000" (1000 to the end),
// "chr20:-2000" (1 to 2000), "{HLA-DRB1*12:17}:1-100" (braces quote a name that contains colons).
// Returns the 0-based half-open Region, named "contig:beg+1-end" after clipping, strand '+'.
// An end past the contig end is clipped to it after warn("region TEXT extends past the end of contig
// (N bp); clipped"). Throws Error for a contig ref lacks (ref.missing_contig_message), mismatched braces,
// an ambiguous name, unparsable coordinates, an empty region (start > end) or one starting past the end.
// htslib itself may also log the parse failure to stderr (controlled by hts_verbose).
Region parse_region(const std::string& text, const Reference& ref, WarnFn warn = {});

// Matches contig names of an input (regions, BED, VCF) to a reference's: an exact name first; then the rename
// map (bcftools --rename-chrs: "OLD NEW" per line, whitespace-separated); then, with chr_prefix, the name with a
// "chr" prefix added or removed (20 <-> chr20, chrM <-> MT, also after renaming).
class ContigMatcher {
public:
    ContigMatcher() = default;
    // Reads the rename map when rename_file is not empty. Throws Error "FILE:LINE: ..." for a line without two
    // names or an OLD named twice, and "FILE: ..." when it cannot be read.
    ContigMatcher(bool chr_prefix, const std::string& rename_file);
    // The reference's name for `name`, or `name` itself when nothing matches (the caller reports it missing).
    std::string to_reference(const std::string& name, const Reference& ref) const;
    bool renames() const { return chr_prefix_ || !map_.empty(); }

private:
    bool chr_prefix_ = false;
    std::vector<std::pair<std::string, std::string>> map_;  // sorted by OLD
};

// Splits one -r value into regions: commas separate regions (20:1-5,20:9-12 or 20,21), except that a comma after a
// digit of a coordinate, followed by digits with no colon that do not name a contig of ref, is a thousands separator
// (20:1,000,000-2,000,000), as htslib reads it.
std::vector<std::string> split_region_list(const std::string& text, const Reference& ref);

// parse_region after matching the contig name with `contigs` (the returned Region names the reference's contig).
Region parse_region(const std::string& text, const Reference& ref, const ContigMatcher& contigs, WarnFn warn);

// Renames r.contig to the reference's name for it (ContigMatcher::to_reference), keeping the input's in
// r.input_contig when they differ.
void match_contig(Region& r, const Reference& ref, const ContigMatcher& contigs);

// The regions of -r TEXT... (each a comma-separated list) and of the BED file bed_path ("" for none, "-" for
// stdin), in that order, checked against ref with contig names matched by `contigs`. Errors name the region
// text or the BED file and line; a BED file without regions is an error, as every empty input is (README).
// sorted_bed: the BED must be sorted (contigs contiguous, starts non-decreasing), as bedtools' -sorted mode expects.
std::vector<Region> collect_regions(const std::vector<std::string>& texts, const std::string& bed_path,
                                    const Reference& ref, const ContigMatcher& contigs, WarnFn warn,
                                    bool sorted_bed = false);

// Checks a region (e.g. from BED) against ref. where ("regions.bed:12") prefixes the messages.
// A region extending past the contig end is clipped in place after warn("WHERE: region ... extends past
// the end of contig (N bp); clipped"). Throws Error "WHERE: " + ref.missing_contig_message(...) for a
// missing contig and "WHERE: region ... starts past the end of contig" when nothing is left after clipping.
void check_region(Region& region, const Reference& ref, const std::string& where, WarnFn warn = {});

// Reads regions from a BED file (plain, gzip or bgzip; "-" = stdin), one line at a time. No reference is
// needed: check each region with check_region() when one is at hand.
// BED3+ layout, tab-separated: contig, start (0-based), end (exclusive), optional name (column 4, default
// "contig:start+1-end"), score (column 5, ignored), strand (column 6: '+', '-' or '.'). Blank lines and
// lines starting with '#', "track" or "browser" are skipped; a trailing '\r' is ignored.
class BedReader {
public:
    // Opens path. Throws Error naming the file when it cannot be opened (strerror) or is a directory.
    explicit BedReader(const std::string& path);
    ~BedReader();
    BedReader(BedReader&&) noexcept;
    BedReader& operator=(BedReader&&) noexcept;
    BedReader(const BedReader&) = delete;
    BedReader& operator=(const BedReader&) = delete;

    // Reads the next region into region; returns false at the end of the file.
    // Throws Error "FILE:LINE: ..." for fewer than 3 columns, a start or end that is not a non-negative
    // integer, end < start, end == start (empty interval), or a strand other than '+', '-', '.';
    // and "FILE: ..." for a truncated or corrupt compressed file or a read error.
    bool next(Region& region);

    // The file name as it appears in messages ("stdin" for "-").
    const std::string& display_name() const;
    // 1-based number of the line the last region came from (0 before the first); for messages like
    // check_region's where = display_name() + ":" + std::to_string(line_number()).
    int64_t line_number() const;

private:
    std::unique_ptr<LineReader> lines_;
};

} // namespace janusdna
