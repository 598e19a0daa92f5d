// janusdna embed: embeddings of genomic regions, per base or pooled, as text for bedtools, NPY or safetensors.
#include "common.h"

#include "janusdna/embed.h"
#include "janusdna/strings.h"
#include "janusdna/embed_writers.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/model_file.h"
#include "janusdna/regions.h"

#include <fmt/format.h>
#include <optional>
#include <set>

using namespace janusdna;

int main_embed(int argc, char** argv) {
    CLI::App app{"Embeddings of genomic regions: per base or pooled per region, as BED-like text for bedtools "
                 "pipelines, NPY or safetensors.", "embed"};
    std::string out_path = "-", out_type, records_path, pool, dtype;
    int64_t window = cli::kWindowUnset, stride = 0, flank = -1, batch = 8;
    bool rc = false;
    cli::CommonOptions common;
    cli::ModelOptions model;
    cli::ReferenceOptions reference;
    cli::RegionOptions where;
    cli::add_reference_options(app, reference, true);
    cli::add_region_options(app, where, "regions (BED: column 4 name, column 6 strand; sorted)");
    app.add_option("--records", records_path, "embed each record of this FASTA whole (no index needed), - for stdin")->group("Input");
    cli::add_model_options(app, model);
    app.add_option("-o,--output", out_path, "output file (NPY: prefix), - for stdout")->group("Output");
    cli::add_output_type_option(app, out_type, {"v", "npy", "safetensors"}, "v text (BED pooled, TSV per base), npy or "
                                "safetensors [default: from the -o suffix, else v]");
    app.add_option("--pool", pool, "mean (one vector per region) or none (per base) [default: mean with -R or "
                   "--records, else none]")->check(CLI::IsMember({"mean", "none"}))->group("Output");
    app.add_option("--dtype", dtype, "f16 or f32 for NPY/safetensors [default: f16 per base, f32 pooled]")
        ->check(CLI::IsMember({"f16", "f32"}))->group("Output");
    cli::add_window_option(app, window, true, "Context");
    app.add_option("--stride", stride, "distance between tiled windows; per base, windows lie on a grid anchored at "
                   "each contig's start, so a base's row does not depend on the region [default: 3W/4]")->group("Context");
    app.add_option("--flank", flank, "--window 0 or pooled: context bases added on each side of the region and dropped "
                   "after the pass [default: W/8]")->group("Context");
    app.add_flag("--rc", rc, "average forward and reverse-complement embeddings position by position")->group("Context");
    app.add_option("--batch", batch, "windows per forward pass")->group("General");
    cli::add_common_options(app, common);
    app.footer(
        "\nOutput: pooled text: chrom start end name d0 .. d{H-1} (0-based, BED-compatible). Per-base tsv: chrom pos\n"
        "base d0 ..., pos 1-based. -O npy -o PREFIX: PREFIX.npy, row-aligned PREFIX.bed, PREFIX.json (per base also\n"
        "PREFIX.scored.npy). -O safetensors -o FILE: one [L,H] tensor per region keyed by name, plus NAME.scored.\n"
        "N and IUPAC codes are fed as [PAD]: excluded from means (a region of only N gets NaN), marked unscored per base.\n"
        "Strand '-' (BED column 6) embeds the reverse complement; its rows are in that orientation.\n\n"
        "Examples:\n  janusdna embed -r chr20:1-100000 -O npy -o chr20 ref.fa\n"
        "  bedtools makewindows -g genome.txt -w 1000 | janusdna embed -R - ref.fa > windows.bed\n"
        "  janusdna embed --records seqs.fa -O npy -o seqs\n");
    if (int rc_parse = cli::parse(app, argc, argv); rc_parse >= 0) return rc_parse;

    return cli::guarded("embed", [&] {
        cli::apply_common_options(common);
        cli::check_writable_dir(out_path);  // before any work, so that none is lost at the end
        WarnFn warn = cli::warner("embed", common);
        const bool records = !records_path.empty();
        if (records && (reference.given() || where.given()))
            throw Error("--records takes the sequences from its FASTA: give no reference, -r or -R with it");
        if (!records && !reference.given()) throw Error("no reference FASTA given (or use --records FILE)");
        if (!where.regions.empty() && !where.regions_file.empty()) throw Error("give regions with -r or with -R, not both");
        const std::string ref_path = records ? "" : reference.path();
        const std::string& bed_path = where.regions_file;

        const Pooling pooling = pool.empty() ? ((records || !bed_path.empty()) ? Pooling::Mean : Pooling::None)
                                             : (pool == "mean" ? Pooling::Mean : Pooling::None);
        if (out_type.empty())
            out_type = ends_with(out_path, ".npy") ? "npy" : ends_with(out_path, ".safetensors") ? "safetensors" : "v";
        if (pooling == Pooling::Mean && out_type == "safetensors")
            throw Error("safetensors output holds per-base arrays: use --pool none, or -O npy for pooled vectors");
        if ((out_type == "npy" || out_type == "safetensors") && out_path == "-")
            throw Error(fmt::format("{} output needs a file name: -o {}", out_type, out_type == "npy" ? "PREFIX" : "FILE.safetensors"));
        const bool f16 = dtype.empty() ? pooling == Pooling::None : dtype == "f16";

        LoadedModel m = cli::open_model(model, common, "embed");
        const int64_t train_len = default_window(m.metadata);
        EmbedOptions opt;
        opt.window = cli::resolve_window(window, m, true, warn);
        opt.stride = stride;
        opt.flank = flank < 0 ? default_flank(opt.window, train_len) : flank;
        opt.batch = batch;
        opt.rc = rc;
        opt.pool = pooling;

        // Regions first, all checked, before any output file is opened.
        std::optional<Reference> ref;
        std::vector<Region> regions;
        if (!records) {
            ref.emplace(Reference::open(ref_path, warn));
            const ContigMatcher contigs = reference.contigs();
            regions = where.collect(*ref, contigs, warn, true);
            if (!where.given())
                for (const auto& c : ref->contigs()) regions.push_back(Region{c, 0, ref->length(c), c, '+'});
            if (regions.empty()) throw Error(fmt::format("{}: no regions to embed", bed_path.empty() ? ref_path : bed_path));
        }
        int64_t total = 0;
        for (const auto& r : regions) total += r.end - r.beg;

        const int64_t H = m.config.hidden_size;
        nlohmann::json meta = {
            {"janusdna_version", JANUSDNA_VERSION},
            {"command", cli::command_line(argc, argv)},
            {"model", m.path},
            {"model_md5", m.md5},
            {"reference", records ? records_path : ref_path},
            {"input", records ? "records" : (!bed_path.empty() ? "bed" : (!where.regions.empty() ? "regions" : "contigs"))},
            {"hidden_size", H},
            {"window", opt.window},
            {"stride", opt.window > 0 ? (opt.stride > 0 ? opt.stride : default_stride(opt.window)) : 0},
            {"flank", opt.window > 0 && pooling == Pooling::None ? 0 : opt.flank},
            {"tiling", opt.window == 0 ? "one pass over the region and its flanks"
                       : pooling == Pooling::None ? "windows on a grid anchored at the contig start (per-base rows depend on position only)"
                                                  : "windows over the region and its flanks"},
            {"pooling", pooling == Pooling::Mean ? "mean over A/C/G/T positions (N/IUPAC excluded; NaN if none)" : "none"},
            {"strand", "BED strand '-' embeds the reverse complement (rows in that orientation); '+' and '.' the forward strand"},
            {"rc_average", rc},
            {"dtype", f16 ? "float16" : "float32"},
        };
        std::unique_ptr<EmbedSink> sink;
        std::string prefix = ends_with(out_path, ".npy") ? out_path.substr(0, out_path.size() - 4) : out_path;
        if (out_type == "v" && pooling == Pooling::Mean) sink = std::make_unique<PooledTextSink>(out_path, H);
        else if (out_type == "v") sink = std::make_unique<PerBaseTsvSink>(out_path, H);
        else if (out_type == "npy" && pooling == Pooling::Mean)
            sink = std::make_unique<PooledNpySink>(prefix, f16 ? NpyType::F16 : NpyType::F32, H, meta);
        else if (out_type == "npy") sink = std::make_unique<PerBaseNpySink>(prefix, f16 ? NpyType::F16 : NpyType::F32, H, meta);
        else {
            std::map<std::string, std::string> st_meta;
            for (auto& [k, v] : meta.items())  // one janusdna_ prefix: janusdna_version, janusdna_model, ...
                st_meta[k.rfind("janusdna_", 0) == 0 ? k : "janusdna_" + k] = v.is_string() ? v.get<std::string>() : v.dump();
            sink = std::make_unique<PerBaseSafetensorsSink>(out_path, f16 ? DType::F16 : DType::F32, H, st_meta);
        }

        Embedder embedder(*m.model, opt, *sink, warn);
        cli::Progress progress("embed", "bases", total, common.progress);
        embedder.on_bases = [&](int64_t n) { progress.add(n); };
        if (records) {
            FastaReader reader(records_path);
            FastaRecord rec;
            std::set<std::string> seen;
            while (reader.next(rec)) {
                if (!seen.insert(rec.name).second)
                    throw Error(fmt::format("{}: record \"{}\" appears twice", reader.display_name(), rec.name));
                embedder.add_sequence(rec.name, std::move(rec.seq), reader.display_name());
            }
        } else {
            for (const auto& r : regions) embedder.add(*ref, r);
        }
        embedder.finish();
        progress.finish();
        return 0;
    });
}
