// The score-variants pipeline; see include/janusdna/annotate.h.
#include "janusdna/annotate.h"

#include "janusdna/error.h"

#include <cmath>
#include <fmt/format.h>
#include <memory>
#include <set>

namespace janusdna {

AnnotateSummary annotate_vcf(VcfReader& in, const Reference& ref, const ContigMatcher& contigs, VariantScorer& scorer,
                             const AnnotateOptions& o, const std::function<void(int64_t)>& on_records) {
    bcf_hdr_t* hdr = in.header();
    std::unique_ptr<VcfOutput> out;  // opened after the first chunk: htslib may add contigs undeclared in the header
    int header_contigs = 0;          // contigs in the header when it was written
    int64_t read = 0;                // records read so far
    AnnotateSummary sum;
    std::vector<bcf1_t*> recs;
    std::vector<VariantInput> vin;
    std::vector<float> llr, pll;
    auto flush = [&] {
        if (!out) {
            out = std::make_unique<VcfOutput>(o.out_path, o.type, hdr, o.write_index);
            header_contigs = hdr->n[BCF_DT_CTG];
        }
        std::vector<VariantScore> scores = scorer.score(vin);
        for (size_t i = 0; i < recs.size(); ++i) {
            bcf1_t* rec = recs[i];
            const VariantScore& s = scores[i];
            const int n_alt = rec->n_allele - 1;
            llr.assign(n_alt, 0); pll.assign(n_alt, 0);
            ++sum.records;
            if (s.ref_mismatch) {
                ++sum.mismatch_records;
                if (sum.mismatch_examples.size() < 3) {
                    const int64_t len = ref.length(vin[i].contig);
                    const int64_t e = std::min<int64_t>(len, vin[i].pos0 + static_cast<int64_t>(vin[i].ref.size()));
                    sum.mismatch_examples.push_back(fmt::format("{}:{} REF {} (reference: {})", bcf_hdr_id2name(hdr, rec->rid),
                        rec->pos + 1, vin[i].ref, vin[i].pos0 >= 0 && vin[i].pos0 < e ? ref.fetch(vin[i].contig, vin[i].pos0, e) : "past the end"));
                }
            }
            if (s.missing_contig) { ++sum.contig_records; ++sum.missing_contigs[vin[i].contig]; }
            for (int k = 0; k < n_alt; ++k) {
                const AlleleScore& a = s.alleles[k];
                ++sum.alleles;
                if (a.has_llr()) { llr[k] = a.llr; ++sum.llr; } else bcf_float_set_missing(llr[k]);
                if (a.has_pll()) { pll[k] = a.pll; ++sum.pll; } else bcf_float_set_missing(pll[k]);
                if (a.has_llr() || a.has_pll()) ++sum.scored;
                else ++sum.missing[static_cast<size_t>(a.pll_missing != Missing::NotApplicable ? a.pll_missing : a.llr_missing)];
            }
            if (o.type == VcfOutType::Table) {
                for (int k = 0; k < n_alt; ++k)
                    out->write_row(bcf_hdr_id2name(hdr, rec->rid), rec->pos + 1, rec->d.allele[0], rec->d.allele[k + 1],
                                   {s.alleles[k].has_llr() ? s.alleles[k].llr : NAN, s.alleles[k].has_pll() ? s.alleles[k].pll : NAN});
            } else {
                if (n_alt > 0) {
                    if (bcf_update_info_float(hdr, rec, "JANUS_LLR", llr.data(), n_alt) < 0 ||
                        bcf_update_info_float(hdr, rec, "JANUS_PLL", pll.data(), n_alt) < 0)
                        throw Error(fmt::format("cannot add scores to the record at {}:{}", bcf_hdr_id2name(hdr, rec->rid), rec->pos + 1));
                }
                if (s.ref_mismatch) bcf_update_info_flag(hdr, rec, "JANUS_REF_MISMATCH", nullptr, 1);
                out->write(rec);
            }
        }
        if (on_records) on_records(static_cast<int64_t>(recs.size()));
        for (bcf1_t* r : recs) bcf_destroy(r);
        recs.clear(); vin.clear();
    };
    int prev_rid = -1;
    int64_t prev_pos = -1;
    std::set<int> done_rids;
    auto unsorted = [&](bcf1_t* rec, const char* what) {
        const std::string name = bcf_hdr_id2name(hdr, rec->rid);
        const int64_t pos = rec->pos + 1;
        bcf_destroy(rec);
        throw Error(fmt::format("{}: record {} ({}:{}) is not sorted by {}{}; -W needs sorted input (bcftools sort)",
                                in.display_name(), read, name, pos, what,
                                std::string(what) == "position" ? fmt::format(" (after {}:{})", name, prev_pos + 1) : ""));
    };
    try {
        while (true) {
            bcf1_t* rec = bcf_init();
            if (!in.next(rec)) { bcf_destroy(rec); break; }
            ++read;
            // A contig the header does not declare, first met after the header was written: a BCF would refer to
            // a contig its header lacks. Refuse rather than write a broken file.
            if (out && hdr->n[BCF_DT_CTG] != header_contigs && (o.type == VcfOutType::Bcf || o.type == VcfOutType::BcfRaw)) {
                const std::string name = bcf_hdr_id2name(hdr, rec->rid);
                bcf_destroy(rec);
                throw Error(fmt::format("{}: record {}: contig \"{}\" is not declared in the header and first appears "
                                        "after the header was written (after the first chunk of {} records); BCF output needs every contig "
                                        "declared: add ##contig=<ID={}> (bcftools reheader) or write VCF", in.display_name(),
                                        read, name, o.chunk, name));
            }
            // -W needs sorted records: say so at the first one out of order, not after all the scoring.
            if (o.write_index) {
                if (rec->rid == prev_rid && rec->pos < prev_pos) unsorted(rec, "position");
                if (rec->rid != prev_rid) {
                    if (!done_rids.insert(rec->rid).second) unsorted(rec, "contig");
                    prev_rid = rec->rid;
                }
                prev_pos = rec->pos;
            }
            VariantInput v;
            v.contig = contigs.to_reference(bcf_hdr_id2name(hdr, rec->rid), ref);
            v.pos0 = rec->pos;
            if (o.filter) {
                bool keep = false;
                for (const Region& r : o.regions) keep = keep || (r.contig == v.contig && v.pos0 >= r.beg && v.pos0 < r.end);
                if (!keep) { bcf_destroy(rec); continue; }
            }
            v.ref = rec->d.allele[0];
            for (int k = 1; k < rec->n_allele; ++k) v.alts.emplace_back(rec->d.allele[k]);
            recs.push_back(rec);
            vin.push_back(std::move(v));
            if (static_cast<int64_t>(recs.size()) >= o.chunk) flush();
        }
        flush();
    } catch (...) {
        for (bcf1_t* r : recs) bcf_destroy(r);
        throw;
    }
    if (sum.records > 0 && sum.contig_records == sum.records) {
        std::string names;
        for (const auto& [c, n] : sum.missing_contigs) names += (names.empty() ? "" : "; ") + ref.missing_contig_message(c);
        throw Error(fmt::format("{}: no record could be scored: {}", in.display_name(), names));
    }
    out->commit();
    return sum;
}

} // namespace janusdna
