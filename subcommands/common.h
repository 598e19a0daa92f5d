// Pieces every subcommand shares: option parsing conventions, error reporting, progress.
#pragma once
#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "janusdna/error.h"
#include "janusdna/model_file.h"
#include "janusdna/regions.h"

namespace janusdna::cli {

// The generic options, declared once so they look the same everywhere.
struct CommonOptions {
    int threads = 0;        // 0 = all cores
    int verbosity = 1;
    bool progress = false;  // force the progress bar even when stderr is not a terminal
};
void add_common_options(CLI::App& app, CommonOptions& o);
// Applies --threads; call after parsing.
void apply_common_options(const CommonOptions& o);

// -m/--model: a model file, else $JANUSDNA_MODEL, else the bundled model.
struct ModelOptions {
    std::string path;
};
void add_model_options(CLI::App& app, ModelOptions& o, const std::string& group = "Input");
// Loads the model; at -v 2 says which file (and its MD5) was loaded.
LoadedModel open_model(const ModelOptions& o, const CommonOptions& common, const std::string& cmd);

// The reference FASTA, the same in every subcommand that reads one: -f/--fasta-ref, or a positional argument where
// samtools takes one; --chr-prefix and --rename-chrs match the input's contig names to the reference's.
struct ReferenceOptions {
    std::string fasta, positional;
    bool chr_prefix = false;
    std::string rename_chrs;
    // The reference path. Throws when none is given, or -f and the positional name two different files.
    std::string path() const;
    bool given() const { return !fasta.empty() || !positional.empty(); }
    ContigMatcher contigs() const { return ContigMatcher(chr_prefix, rename_chrs); }
};
// positional: also take the reference as the positional argument "reference" (it is then required unless
// positional_required is false).
void add_reference_options(CLI::App& app, ReferenceOptions& o, bool positional, const std::string& group = "Input");

// -r/--region (repeatable, comma lists) and -R/--regions-file (BED, - for stdin).
struct RegionOptions {
    std::vector<std::string> regions;
    std::string regions_file;
    bool given() const { return !regions.empty() || !regions_file.empty(); }
    std::vector<Region> collect(const Reference& ref, const ContigMatcher& contigs, WarnFn warn, bool sorted_bed = false) const {
        return collect_regions(regions, regions_file, ref, contigs, std::move(warn), sorted_bed);
    }
};
void add_region_options(CLI::App& app, RegionOptions& o, const std::string& what, const std::string& group = "Input");

// --window, one meaning everywhere: a length in bp (at least kMinWindow), or 0 for one pass over each region or
// record where that is offered; unset = the model's training length.
constexpr int64_t kWindowUnset = INT64_MIN;
constexpr int64_t kMinWindow = 16;
void add_window_option(CLI::App& app, int64_t& window, bool one_pass, const std::string& group);
// The window to use. Throws for a negative window, one below kMinWindow, or 0 where one_pass is false; warns when
// it is far below the model's recorded training length.
int64_t resolve_window(int64_t window, const LoadedModel& m, bool one_pass, const WarnFn& warn);

// -O/--output-type, one vocabulary in every subcommand: v text (VCF, bedGraph, BED, TSV), z bgzipped text, b BCF,
// u uncompressed BCF, t bgzipped CHROM POS REF ALT score table, bw bigWig, npy, safetensors. Format names are
// accepted for the letters (vcf, bedgraph, bed, tsv, text = v; vcf.gz, bedgraph.gz = z; bcf = b; bigwig = bw).
// `accepted` lists the canonical names the subcommand writes; after parsing, out_type holds the canonical name.
void add_output_type_option(CLI::App& app, std::string& out_type, const std::vector<std::string>& accepted,
                            const std::string& help);

// Parses argv. Returns -1 to go on, else the exit status to return at once (0 after --help, 1 after a usage
// error or when no argument at all was given: the usage then goes to stderr, as samtools does).
int parse(CLI::App& app, int argc, char** argv);

// Runs a subcommand body; janusdna::Error and other exceptions become "janusdna CMD: message" and status 1.
int guarded(const std::string& cmd, const std::function<int()>& body);

// "janusdna CMD arg ..." for provenance headers.
std::string command_line(int argc, char** argv);

// Throws Error when the directory `path` would be written in does not exist or is not writable: checked before
// long work starts, so that it is not lost at the end.
void check_writable_dir(const std::string& path);

// "1 record", "2 records": a count with its noun, plural unless n == 1.
inline std::string plural(int64_t n, const std::string& noun, const std::string& nouns = "") {
    return std::to_string(n) + " " + (n == 1 ? noun : nouns.empty() ? noun + "s" : nouns);
}

// Information for -v 2: "janusdna CMD: ..." on stderr.
void info(const std::string& cmd, const CommonOptions& o, const std::string& message);

// Warnings: "janusdna CMD: warning: ..." on stderr.
void warn(const std::string& cmd, const std::string& message);
// A warning callback for the library that honours -v 0 (errors only).
std::function<void(const std::string&)> warner(const std::string& cmd, const CommonOptions& o);

// A one-line progress display on stderr, drawn only on a terminal (or when forced); throttled to ~4 Hz.
class Progress {
public:
    Progress(std::string what, std::string unit, int64_t total, bool force);
    void add(int64_t n);
    void finish();
    ~Progress();
private:
    void draw(bool final);
    std::string what_, unit_;
    int64_t total_, done_ = 0;
    bool enabled_, finished_ = false;
    std::chrono::steady_clock::time_point start_, last_;
};

} // namespace janusdna::cli
