// Regions of a reference: region strings (through htslib's parser) and BED files.
#include "janusdna/regions.h"

#include <cerrno>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <cstring>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <htslib/hts.h>

#include "janusdna/delimited.h"
#include "janusdna/error.h"
#include "janusdna/strings.h"

namespace janusdna {
namespace {

std::string default_name(const Region& region) {
    return fmt::format("{}:{}-{}", region.output_contig(), region.beg + 1, region.end);
}

// What hts_parse_region asked about. htslib tries the whole string first, then the part before the last
// colon (also after a match, to detect ambiguity), so on success the contig is the last name found, and
// on failure the last name looked up is the one to report.
struct NameLookup {
    const Reference* ref = nullptr;
    std::string last_name;
    std::string found_name;
    bool last_found = false;
    bool asked = false;
};

int lookup_name(void* data, const char* name) {
    auto* lookup = static_cast<NameLookup*>(data);
    lookup->asked = true;
    lookup->last_name = name;
    lookup->last_found = lookup->ref->has(name);
    if (lookup->last_found) lookup->found_name = name;
    // htslib only needs an id >= 0 for a known name; the name itself is recovered from last_name.
    return lookup->last_found ? 0 : -1;
}

} // namespace

Region parse_region(const std::string& text, const Reference& ref, WarnFn warn) {
    NameLookup lookup;
    lookup.ref = &ref;
    int tid = -1;
    hts_pos_t beg = -1, end = -1;
    const char* parsed =
        hts_parse_region(text.c_str(), &tid, &beg, &end, lookup_name, &lookup, HTS_PARSE_THOUSANDS_SEP);
    if (!parsed) {
        if (tid < 0) {
            if (!lookup.asked) throw Error(fmt::format("invalid region \"{}\": mismatched braces", text));
            if (lookup.last_found)
                throw Error(fmt::format("invalid region \"{}\": ambiguous, both it and its part before the last "
                                        "colon are contig names; quote the name with braces, e.g. {{{}}}",
                                        text, text));
            throw Error(fmt::format("invalid region \"{}\": {}", text, ref.missing_contig_message(lookup.last_name)));
        }
        if (beg >= 0 && end >= 0 && beg >= end)
            throw Error(fmt::format("invalid region \"{}\": empty (start {} is after end {})", text, beg + 1, end));
        throw Error(fmt::format("invalid region \"{}\": cannot parse the coordinates (expected CONTIG, "
                                "CONTIG:START-END or CONTIG:START, 1-based)",
                                text));
    }
    // htslib reads "chr20:0-100" as start 0 (0-based -1) instead of rejecting it.
    if (beg < 0) throw Error(fmt::format("invalid region \"{}\": positions are 1-based, start must be >= 1", text));

    Region region;
    region.contig = lookup.found_name;
    region.beg = beg;
    region.end = end;
    const int64_t len = ref.length(region.contig);
    if (region.beg >= len)
        throw Error(fmt::format("invalid region \"{}\": starts past the end of contig \"{}\" ({} bp)", text,
                                region.contig, len));
    if (region.end > len) {
        // htslib's "to the end" (chr20, chr20:100) is HTS_POS_MAX: clip that silently, warn for a real end.
        if (region.end != HTS_POS_MAX && warn)
            warn(fmt::format("region {} extends past the end of contig ({} bp); clipped", text, len));
        region.end = len;
    }
    region.name = default_name(region);
    return region;
}

void check_region(Region& region, const Reference& ref, const std::string& where, WarnFn warn) {
    const int64_t len = ref.length(region.contig);
    if (len < 0) throw Error(fmt::format("{}: {}", where, ref.missing_contig_message(region.contig)));
    if (region.beg >= len)
        throw Error(fmt::format("{}: region {}:{}-{} starts past the end of contig ({} bp)", where, region.contig,
                                region.beg + 1, region.end, len));
    if (region.end > len) {
        if (warn)
            warn(fmt::format("{}: region {}:{}-{} extends past the end of contig ({} bp); clipped", where,
                             region.contig, region.beg + 1, region.end, len));
        region.end = len;
    }
}

// ---------------------------------------------------------------------------------------------------------
// BedReader

BedReader::BedReader(const std::string& path) : lines_(std::make_unique<LineReader>(path)) {}
BedReader::~BedReader() = default;
BedReader::BedReader(BedReader&&) noexcept = default;
BedReader& BedReader::operator=(BedReader&&) noexcept = default;
const std::string& BedReader::display_name() const { return lines_->name(); }
int64_t BedReader::line_number() const { return lines_->line_number(); }

namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// Parses a BED coordinate: digits only (no sign, no commas, no exponent), as the format requires.
// Returns an error text, or "" on success.
std::string parse_coordinate(std::string_view field, const char* what, int64_t& value) {
    if (!field.empty() && field[0] == '-' && field.size() > 1 &&
        field.find_first_not_of("0123456789", 1) == std::string_view::npos)
        return fmt::format("negative {} {}", what, field);
    if (field.empty() || field.find_first_not_of("0123456789") != std::string_view::npos)
        return fmt::format("{} '{}' is not a non-negative integer", what, field);
    const auto result = std::from_chars(field.data(), field.data() + field.size(), value);
    if (result.ec != std::errc()) return fmt::format("{} {} is too large", what, field);
    return {};
}

} // namespace

bool BedReader::next(Region& region) {
    std::string line;
    do {
        if (!lines_->next(line)) return false;
    } while (is_blank(line) || line[0] == '#' || starts_with(line, "track") || starts_with(line, "browser"));

    const std::string where = fmt::format("{}:{}", display_name(), line_number());
    std::vector<std::string_view> fields;
    std::string_view rest(line);
    for (;;) {
        const size_t tab = rest.find('\t');
        fields.push_back(rest.substr(0, tab));
        if (tab == std::string_view::npos) break;
        rest.remove_prefix(tab + 1);
    }
    if (fields.size() < 3) {
        const bool spaces = line.find(' ') != std::string::npos;
        throw Error(fmt::format("{}: expected at least 3 tab-separated columns (contig, start, end), found {}{}",
                                where, fields.size(), spaces ? " (columns must be separated by tabs, not spaces)" : ""));
    }
    if (fields[0].empty()) throw Error(fmt::format("{}: empty contig name", where));

    Region out;
    out.contig = std::string(fields[0]);
    std::string problem = parse_coordinate(fields[1], "start", out.beg);
    if (problem.empty()) problem = parse_coordinate(fields[2], "end", out.end);
    if (!problem.empty()) throw Error(fmt::format("{}: {}", where, problem));
    if (out.end < out.beg) throw Error(fmt::format("{}: end {} is before start {}", where, out.end, out.beg));
    if (out.end == out.beg)
        throw Error(fmt::format("{}: empty interval (start = end = {}; BED is 0-based, half-open)", where, out.beg));
    out.name = fields.size() >= 4 && !fields[3].empty() ? std::string(fields[3]) : default_name(out);
    if (fields.size() >= 6) {
        const std::string_view strand = fields[5];
        if (strand != "+" && strand != "-" && strand != ".")
            throw Error(fmt::format("{}: strand must be '+', '-' or '.', not '{}'", where, strand));
        out.strand = strand[0];
    }
    region = std::move(out);
    return true;
}

// ---------------------------------------------------------------------------------------------------------------
ContigMatcher::ContigMatcher(bool chr_prefix, const std::string& rename_file) : chr_prefix_(chr_prefix) {
    if (rename_file.empty()) return;
    std::ifstream in(rename_file);
    if (!in) throw Error(fmt::format("{}: cannot open the rename map: {}", rename_file, std::strerror(errno)));
    std::string line;
    int64_t n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        std::istringstream fields(line);
        std::string from, to, extra;
        if (!(fields >> from >> to) || (fields >> extra))
            throw Error(fmt::format("{}:{}: expected two names, OLD NEW, separated by white space", rename_file, n));
        map_.emplace_back(from, to);
    }
    if (in.bad()) throw Error(fmt::format("{}: read error", rename_file));
    std::sort(map_.begin(), map_.end());
    for (size_t i = 1; i < map_.size(); ++i)
        if (map_[i].first == map_[i - 1].first)
            throw Error(fmt::format("{}: contig \"{}\" is renamed twice", rename_file, map_[i].first));
}

std::string ContigMatcher::to_reference(const std::string& name, const Reference& ref) const {
    if (ref.has(name)) return name;
    std::string renamed = name;
    auto it = std::lower_bound(map_.begin(), map_.end(), std::make_pair(name, std::string()));
    if (it != map_.end() && it->first == name) {
        renamed = it->second;
        if (ref.has(renamed)) return renamed;
    }
    if (chr_prefix_) {
        const std::string toggled = renamed == "chrM" ? "MT" : renamed == "MT" ? "chrM"
                                  : renamed.compare(0, 3, "chr") == 0 ? renamed.substr(3) : "chr" + renamed;
        if (ref.has(toggled)) return toggled;
    }
    return name;
}

std::vector<std::string> split_region_list(const std::string& text, const Reference& ref) {
    std::vector<std::string> pieces;
    size_t start = 0;
    while (true) {
        const size_t comma = text.find(',', start);
        pieces.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    // Digits after a piece that ends in a digit of a coordinate, with no colon and not naming a contig: a
    // thousands separator, as htslib reads them.
    auto thousands = [&](const std::string& prev, const std::string& next) {
        if (prev.empty() || !std::isdigit(static_cast<unsigned char>(prev.back())) || prev.find(':') == std::string::npos) return false;
        if (next.empty() || !std::isdigit(static_cast<unsigned char>(next[0]))) return false;
        return next.find(':') == std::string::npos && !ref.has(next);
    };
    std::vector<std::string> out;
    for (const std::string& p : pieces) {
        if (!out.empty() && thousands(out.back(), p)) out.back() += "," + p;
        else out.push_back(p);
    }
    for (const std::string& r : out)
        if (r.empty()) throw Error(fmt::format("invalid region list \"{}\": empty region", text));
    return out;
}

Region parse_region(const std::string& text, const Reference& ref, const ContigMatcher& contigs, WarnFn warn) {
    if (!contigs.renames() || text.empty() || text.front() == '{') return parse_region(text, ref, warn);
    // The contig is the whole text, or the part before the last colon when coordinates follow it.
    std::string contig = text, rest;
    const size_t colon = text.rfind(':');
    if (!ref.has(text) && colon != std::string::npos &&
        text.find_first_not_of("0123456789,-", colon + 1) == std::string::npos) {
        contig = text.substr(0, colon);
        rest = text.substr(colon);
    }
    const std::string mapped = contigs.to_reference(contig, ref);
    if (mapped == contig) return parse_region(text, ref, warn);
    Region r = parse_region(mapped.find(':') == std::string::npos ? mapped + rest : "{" + mapped + "}" + rest, ref, warn);
    r.input_contig = contig;
    r.name = default_name(r);
    return r;
}

void match_contig(Region& r, const Reference& ref, const ContigMatcher& contigs) {
    const std::string mapped = contigs.to_reference(r.contig, ref);
    if (mapped == r.contig) return;
    r.input_contig = r.contig;
    r.contig = mapped;
}

std::vector<Region> collect_regions(const std::vector<std::string>& texts, const std::string& bed_path,
                                    const Reference& ref, const ContigMatcher& contigs, WarnFn warn, bool sorted_bed) {
    std::vector<Region> regions;
    for (const std::string& t : texts)
        for (const std::string& one : split_region_list(t, ref)) regions.push_back(parse_region(one, ref, contigs, warn));
    if (!bed_path.empty()) {
        BedReader bed(bed_path);
        Region r;
        size_t n = 0;
        std::set<std::string> done_contigs;
        std::string prev_contig;
        int64_t prev_beg = -1;
        while (bed.next(r)) {
            const std::string where = bed.display_name() + ":" + std::to_string(bed.line_number());
            if (sorted_bed && r.contig == prev_contig && r.beg < prev_beg)
                throw Error(fmt::format("{}: BED is not sorted ({} {} after {} {}); sort it with `sort -k1,1 -k2,2n` or "
                                        "`bedtools sort`", where, r.contig, r.beg, prev_contig, prev_beg));
            if (sorted_bed && r.contig != prev_contig) {
                if (done_contigs.count(r.contig))
                    throw Error(fmt::format("{}: BED is not sorted (contig {} appears again after {}); sort it with "
                                            "`sort -k1,1 -k2,2n` or `bedtools sort`", where, r.contig, prev_contig));
                if (!prev_contig.empty()) done_contigs.insert(prev_contig);
                prev_contig = r.contig;
            }
            prev_beg = r.beg;
            match_contig(r, ref, contigs);
            check_region(r, ref, where, warn);
            regions.push_back(r);
            ++n;
        }
        if (n == 0) throw Error(fmt::format("{}: no regions in the BED file", bed.display_name()));
    }
    return regions;
}

} // namespace janusdna
