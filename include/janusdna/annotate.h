// The read -> score -> write pipeline of score-variants: every record of a VCF/BCF passed through, in input order,
// with JANUS_LLR / JANUS_PLL (and JANUS_REF_MISMATCH) added, or a table of scores.
#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "janusdna/fasta.h"
#include "janusdna/regions.h"
#include "janusdna/variant_scoring.h"
#include "janusdna/vcf_io.h"

namespace janusdna {

struct AnnotateOptions {
    std::string out_path = "-";
    VcfOutType type = VcfOutType::Vcf;
    bool write_index = false;     // refuse unsorted input at its first unsorted record
    int64_t chunk = 10000;        // records scored together (and held in memory)
    std::vector<Region> regions;  // with filter: only records whose POS lies in one of them
    bool filter = false;
};

struct AnnotateSummary {
    int64_t records = 0, alleles = 0, scored = 0, llr = 0, pll = 0, mismatch_records = 0, contig_records = 0;
    std::array<int64_t, static_cast<size_t>(Missing::kCount)> missing{};  // alleles not scored, by reason
    std::vector<std::string> mismatch_examples;                             // up to 3 "chr:pos REF x (reference: y)"
    std::map<std::string, int64_t> missing_contigs;                        // records per contig the reference lacks
};

// Reads every record of `in` (whose header already declares the INFO tags), scores each chunk with `scorer`
// (contig names matched to ref by `contigs`; records keep their own names) and writes the records in input order
// to o.out_path, committed at the end. on_records(n) is called after each chunk. Throws Error, leaving no output
// file, for a malformed record, a record out of order with write_index, a contig a BCF header lacks after the
// header was written, and input of which no record could be scored because its contig is missing.
AnnotateSummary annotate_vcf(VcfReader& in, const Reference& ref, const ContigMatcher& contigs, VariantScorer& scorer,
                             const AnnotateOptions& o, const std::function<void(int64_t)>& on_records = {});

} // namespace janusdna
