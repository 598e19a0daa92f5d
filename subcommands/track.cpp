// janusdna track: per-base tracks (p(REF), entropy, p(A..T), mean/min SNV LLR) over regions as bedGraph or bigWig,
// and in-silico saturation mutagenesis (--all-snvs: every SNV of the regions with its JANUS_LLR).
#include "common.h"

#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/model_file.h"
#include "janusdna/regions.h"
#include "janusdna/runner.h"
#include "janusdna/tracks.h"
#include "janusdna/vcf_io.h"

#include <fmt/format.h>
#include <htslib/hts.h>

using namespace janusdna;


int main_track(int argc, char** argv) {
    CLI::App app{"Per-base JanusDNA tracks over regions of a reference (bedGraph or bigWig), or every possible SNV of "
                 "the regions with its JANUS_LLR (--all-snvs, in-silico saturation mutagenesis).", "track"};
    std::string out_path = "-", out_type, track_opt = "pref";
    int64_t window = cli::kWindowUnset, batch = 16;
    bool rc = false, all_snvs = false, write_index = false, no_version = false;
    cli::CommonOptions common;
    cli::ModelOptions model;
    cli::ReferenceOptions reference;
    cli::RegionOptions where;
    cli::add_reference_options(app, reference, true);
    cli::add_model_options(app, model);
    cli::add_region_options(app, where, "regions");
    app.add_option("-t,--track", track_opt, "comma-separated tracks: pref, entropy, pA, pC, pG, pT, llr_mean, llr_min, "
                   "or all. With one track -o is the file; with several, -o is a prefix: PREFIX.NAME.bedgraph.gz "
                   "(or .bw)")->group("Output");
    app.add_option("-o,--output", out_path, "output file (or prefix, see -t); - for stdout")->group("Output");
    cli::add_output_type_option(app, out_type, {"v", "z", "bw", "b", "u", "t"}, "tracks: v bedGraph text, z bgzipped "
                                "bedGraph (-W: + .tbi), bw bigWig; --all-snvs: v, z, b, u (VCF/BCF) or t (bgzipped table) "
                                "[default: from the -o suffix]");
    app.add_flag("--all-snvs", all_snvs, "write every SNV of the regions (3 per A/C/G/T base) with JANUS_LLR instead of tracks")->group("Output");
    app.add_flag("-W,--write-index", write_index, "write the index: OUT.tbi for bgzipped bedGraph, .csi/.tbi with --all-snvs")->group("Output");
    app.add_flag("--no-version", no_version, "do not write janusdna version/command header lines")->group("Output");
    cli::add_window_option(app, window, false, "Scoring");
    app.add_flag("--rc", rc, "average the probabilities of both strands (2x passes)")->group("Scoring");
    app.add_option("--batch", batch, "windows per forward pass")->group("Scoring");
    cli::add_common_options(app, common);
    app.footer("\nTracks (one value per A/C/G/T base; N/IUPAC bases are absent, not 0):\n"
               "  pref      p(reference base)           entropy   -sum p log2 p over A,C,G,T (bits, 0..2)\n"
               "  pA..pT    p(base)                     llr_mean, llr_min  mean, minimum of ln p(ALT)-ln p(REF)\n"
               "                                                            over the 3 possible SNVs\n"
               "Each base is predicted from the window where it is most central among windows starting every W/2 bp from\n"
               "the contig start, so its values do not depend on the region asked for, and --all-snvs gives\n"
               "score-variants' JANUS_LLR (default --flank).\n\n"
               "Examples:\n  janusdna track -r 20:1-100000 -o pref.bedgraph.gz ref.fa\n"
               "  janusdna track -R genes.bed -t all -O bigwig -o tracks ref.fa      # tracks.pref.bw, ...\n"
               "  janusdna track --all-snvs -r 20:1000-2000 -O z -W -o snvs.vcf.gz ref.fa\n");
    if (int rc_ = cli::parse(app, argc, argv); rc_ >= 0) return rc_;

    return cli::guarded("track", [&]() -> int {
        cli::apply_common_options(common);
        cli::check_writable_dir(out_path);  // before any work, so that none is lost at the end
        auto warn = cli::warner("track", common);
        if (batch < 1) throw Error(fmt::format("--batch must be at least 1, got {}", batch));
        if (!where.given()) throw Error("no regions: give -r REGION or -R BED");
        const std::string fasta = reference.path();
        Reference ref = Reference::open(fasta, warn);
        const std::vector<Region> merged = merge_regions(where.collect(ref, reference.contigs(), warn), ref);  // sorted, each base once
        LoadedModel m = cli::open_model(model, common, "track");
        require_language_model(m);
        window = cli::resolve_window(window, m, false, warn);
        Runner runner(*m.model, batch);
        const std::string provenance = no_version ? "" : fmt::format("janusdna {} ({}); model {} (md5 {}); window {}; strand {}",
            JANUSDNA_VERSION, cli::command_line(argc, argv), m.path, m.md5, window, rc ? "both" : "forward");
        cli::Progress progress("track", "bases", 0, common.progress);

        if (all_snvs) {
            SnvOutput so;
            so.path = out_path;
            so.type = vcf_out_type(out_type, out_path);
            so.write_index = write_index;
            if (!no_version)
                so.header_lines = {"##janusdnaVersion=" JANUSDNA_VERSION "+htslib-" + std::string(hts_version()),
                                   "##janusdnaCommand=" + cli::command_line(argc, argv), "##janusdnaModel=" + provenance};
            so.header_lines.push_back("##reference=" + fasta);
            const SnvSummary sum = write_all_snvs(ref, runner, merged, window, rc, so, [&](int64_t n) { progress.add(n); });
            progress.finish();
            if (common.verbosity > 0)
                fmt::print(stderr, "janusdna track: {} scored, {} written; {} (window {}, batch {})\n", cli::plural(sum.bases, "base"),
                           cli::plural(sum.snvs, "SNV"), cli::plural(runner.passes(), "forward pass", "forward passes"), window, batch);
            return 0;
        }

        const std::vector<int> which = parse_track_list(track_opt);
        TrackOutput to;
        to.path = out_path;
        to.format = track_format(out_type, which.size() == 1 ? out_path : "");
        to.provenance = provenance;
        to.write_index = write_index;
        const int64_t bases = write_tracks(ref, runner, merged, window, rc, which, to, [&](int64_t n) { progress.add(n); });
        progress.finish();
        if (common.verbosity > 0)
            fmt::print(stderr, "janusdna track: {} scored in {}, {}; {} (window {}, batch {})\n", cli::plural(bases, "base"),
                       cli::plural(static_cast<int64_t>(merged.size()), "region"), cli::plural(static_cast<int64_t>(which.size()), "track"),
                       cli::plural(runner.passes(), "forward pass", "forward passes"), window, batch);
        return 0;
    });
}
