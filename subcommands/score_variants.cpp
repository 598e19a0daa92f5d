// janusdna score-variants: zero-shot variant effect scores (JANUS_LLR, JANUS_PLL) for the records of a VCF/BCF.
// Records are read in chunks; the variants of a chunk are scored together (positions sorted per contig so that
// nearby variants share passes), then the chunk is written in input order with only the new INFO tags added.
#include "common.h"

#include "janusdna/annotate.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/model_file.h"
#include "janusdna/regions.h"
#include "janusdna/runner.h"
#include "janusdna/variant_scoring.h"
#include "janusdna/vcf_io.h"

#include <fmt/format.h>
#include <htslib/hts.h>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

using namespace janusdna;

namespace {

// The reference: -f, else $JANUSDNA_REF, else the VCF header's ##reference= (a path or file:// URL, relative to
// the VCF's directory).
std::string find_reference(const cli::ReferenceOptions& o, const std::string& vcf, bcf_hdr_t* hdr) {
    if (o.given()) return o.path();
    if (const char* env = std::getenv("JANUSDNA_REF"); env && *env) return env;
    if (bcf_hrec_t* h = bcf_hdr_get_hrec(hdr, BCF_HL_GEN, "reference", nullptr, nullptr); h && h->value) {
        std::string r = h->value;
        if (r.rfind("file://", 0) == 0) r = r.substr(7);
        if (r.find("://") != std::string::npos)
            throw Error(fmt::format("{}: ##reference={} is not a local file; give the reference with -f FASTA", vcf, h->value));
        const size_t slash = vcf.rfind('/');
        if (!r.empty() && r[0] != '/' && vcf != "-" && slash != std::string::npos) r = vcf.substr(0, slash + 1) + r;
        struct stat st;
        if (stat(r.c_str(), &st) != 0)
            throw Error(fmt::format("{}: the header's ##reference={} names {}, which does not exist; give the reference with -f FASTA",
                                    vcf, h->value, r));
        return r;
    }
    throw Error(fmt::format("{}: no reference: give -f FASTA, set $JANUSDNA_REF, or add a ##reference= header line", vcf));
}

} // namespace

int main_score_variants(int argc, char** argv) {
    CLI::App app{"Zero-shot variant effect scores from JanusDNA for every record of a VCF/BCF file: JANUS_LLR for "
                 "SNVs (one pass per window, shared by all SNVs in it) and JANUS_PLL for every allele.", "score-variants"};
    std::string in_path, out_path = "-", out_type;
    int64_t window = cli::kWindowUnset, flank = -1, max_indel = 50, batch = 16, chunk = 10000;
    bool rc = false, write_index = false, no_version = false, no_pll = false;
    cli::CommonOptions common;
    cli::ModelOptions model;
    cli::ReferenceOptions reference;
    cli::RegionOptions where;
    app.add_option("input", in_path, "VCF, bgzipped VCF or BCF; - for stdin [default: stdin when it is not a terminal]")->group("Input");
    cli::add_reference_options(app, reference, false);
    cli::add_model_options(app, model);
    cli::add_region_options(app, where, "only records with POS in these regions:");
    app.add_option("-o,--output", out_path, "output file, - for stdout")->group("Output");
    cli::add_output_type_option(app, out_type, {"v", "z", "b", "u", "t"}, "v VCF, z bgzipped VCF, b BCF, u uncompressed "
                                "BCF, t bgzipped CHROM POS REF ALT JANUS_LLR JANUS_PLL table [default: from the -o suffix, else v]");
    app.add_flag("-W,--write-index", write_index, "write OUT.csi (VCF/BCF) or OUT.tbi (table); needs sorted input")->group("Output");
    app.add_flag("--no-version", no_version, "do not add ##janusdnaVersion/##janusdnaCommand header lines")->group("Output");
    cli::add_window_option(app, window, false, "Scoring");
    app.add_option("--flank", flank, "bases of context wanted on each side of a scored position: windows start every "
                   "window - 2 flank bp from each contig's start [default: window/4]")->group("Scoring");
    app.add_option("--max-indel", max_indel, "alleles (REF or ALT) longer than this are not scored")->group("Scoring");
    app.add_flag("--rc", rc, "average each score with the one from the reverse-complement strand (2x passes)")->group("Scoring");
    app.add_flag("--no-pll", no_pll, "skip JANUS_PLL (then only SNVs are scored, and only shared passes are made)")->group("Scoring");
    app.add_option("--batch", batch, "windows per forward pass")->group("Scoring");
    app.add_option("--chunk", chunk, "records held in memory at once")->group("Scoring");
    cli::add_common_options(app, common);
    app.footer("\nScores (natural log; definitions also written into the ##INFO header lines):\n"
               "  JANUS_LLR  SNVs: ln p(ALT) - ln p(REF) at the position, from the reference window's single pass.\n"
               "  JANUS_PLL  every allele: PLL(ALT haplotype window) - PLL(REF window), windows sharing flanks.\n"
               "  '.' = not scored: symbolic alleles, longer than --max-indel, REF mismatch (flag JANUS_REF_MISMATCH),\n"
               "  contig missing from the reference. See man janusdna-score-variants.\n\n"
               "Examples:\n  janusdna score-variants -f hg19.fa -o scored.vcf.gz -W in.vcf.gz\n"
               "  bcftools view -Ou in.bcf | janusdna score-variants -f ref.fa - -Ob -o scored.bcf\n"
               "  janusdna score-variants -f ref.fa -O t -W -o scores.tsv.gz in.vcf.gz\n");
    if (int rc_ = cli::parse(app, argc, argv); rc_ >= 0) return rc_;

    return cli::guarded("score-variants", [&]() -> int {
        cli::apply_common_options(common);
        cli::check_writable_dir(out_path);  // before any work, so that none is lost at the end
        auto warn = cli::warner("score-variants", common);
        if (batch < 1) throw Error(fmt::format("--batch must be at least 1, got {}", batch));
        if (chunk < 1) throw Error(fmt::format("--chunk must be at least 1, got {}", chunk));
        const VcfOutType type = vcf_out_type(out_type, out_path);
        if (in_path.empty()) {
            if (isatty(STDIN_FILENO)) throw Error("no input VCF given (name a file, or - for standard input)");
            in_path = "-";
        }
        VcfReader in(in_path, warn);
        bcf_hdr_t* hdr = in.header();
        const std::string fasta = find_reference(reference, in_path, hdr);
        Reference ref = Reference::open(fasta, warn);
        const ContigMatcher contigs = reference.contigs();
        LoadedModel m = cli::open_model(model, common, "score-variants");
        require_language_model(m);
        window = cli::resolve_window(window, m, false, warn);
        Runner runner(*m.model, batch);
        ScoreOptions so;
        so.window = window; so.flank = flank; so.max_indel = max_indel; so.rc = rc; so.pll = !no_pll;
        VariantScorer scorer(ref, runner, so);
        const std::vector<Region> regions = where.collect(ref, contigs, warn);
        const bool filter = where.given();
        auto add_info = [&](const char* id, const std::string& line) {
            if (bcf_hdr_get_hrec(hdr, BCF_HL_INFO, "ID", id, nullptr)) {
                warn(fmt::format("the input already declares INFO/{}; its values are replaced", id));
                return;
            }
            if (bcf_hdr_append(hdr, line.c_str()) < 0) throw Error(fmt::format("cannot add INFO/{} to the header", id));
        };
        const std::string strand = rc ? "mean of forward and reverse complement" : "forward";
        add_info("JANUS_LLR", janus_llr_header(window, scorer.grid_stride(), strand));
        add_info("JANUS_PLL", janus_pll_header(window, strand));
        add_info("JANUS_REF_MISMATCH", "##INFO=<ID=JANUS_REF_MISMATCH,Number=0,Type=Flag,Description=\"REF differs from "
                 "the reference FASTA at this position; the record is not scored\">");
        if (!no_version) {
            bcf_hdr_append(hdr, ("##janusdnaVersion=" JANUSDNA_VERSION "+htslib-" + std::string(hts_version())).c_str());
            bcf_hdr_append(hdr, ("##janusdnaCommand=" + cli::command_line(argc, argv)).c_str());
            bcf_hdr_append(hdr, fmt::format("##janusdnaModel={} (md5 {}); reference {}; window {}; flank {}; max-indel {}; strand {}",
                                            m.path, m.md5, fasta, window, flank < 0 ? window / 4 : flank,
                                            max_indel, rc ? "both" : "forward").c_str());
        }
        if (bcf_hdr_sync(hdr) < 0) throw Error("cannot update the VCF header");

        AnnotateOptions ao;
        ao.out_path = out_path; ao.type = type; ao.write_index = write_index; ao.chunk = chunk;
        ao.regions = regions; ao.filter = filter;
        cli::Progress progress("score-variants", "records", 0, common.progress);
        const AnnotateSummary sum = annotate_vcf(in, ref, contigs, scorer, ao, [&](int64_t n) { progress.add(n); });
        progress.finish();

        if (sum.mismatch_records)
            warn(fmt::format("{} record{} with REF not matching {} (flagged JANUS_REF_MISMATCH, not scored), e.g. {}",
                             sum.mismatch_records, sum.mismatch_records == 1 ? "" : "s", fasta, fmt::join(sum.mismatch_examples, "; ")));
        for (const auto& [c, n] : sum.missing_contigs)
            warn(fmt::format("{} record{} not scored: {}", n, n == 1 ? "" : "s", ref.missing_contig_message(c)));
        if (common.verbosity > 0) {
            std::string miss;
            for (size_t r = 0; r < sum.missing.size(); ++r)
                if (sum.missing[r]) miss += fmt::format("{}{} {}", miss.empty() ? "" : ", ", sum.missing[r], missing_name(static_cast<Missing>(r)));
            fmt::print(stderr, "janusdna score-variants: {}, {}: {} scored ({} JANUS_LLR, {} JANUS_PLL), {} not scored{}; {} "
                               "(window {}, batch {}{})\n", cli::plural(sum.records, "record"), cli::plural(sum.alleles, "ALT allele"),
                       sum.scored, sum.llr, sum.pll, sum.alleles - sum.scored, miss.empty() ? "" : " (" + miss + ")",
                       cli::plural(runner.passes(), "forward pass", "forward passes"), window, batch, rc ? ", both strands" : "");
        }
        return 0;
    });
}
