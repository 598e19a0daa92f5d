#include "common.h"

#include "janusdna/error.h"
#include "janusdna/runtime.h"

#include <algorithm>
#include <cstdio>
#include <htslib/hts.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace janusdna::cli {

void add_common_options(CLI::App& app, CommonOptions& o) {
    app.add_option("-@,--threads", o.threads, "compute threads (0 = all cores)")->group("General");
    app.add_option("-v,--verbosity", o.verbosity, "0 = errors only, 1 = warnings, 2 = information")->group("General");
    app.add_flag("--progress", o.progress, "show progress even when stderr is not a terminal")->group("General");
}

void add_model_options(CLI::App& app, ModelOptions& o, const std::string& group) {
    app.add_option("-m,--model", o.path, "model file [default: $JANUSDNA_MODEL or the bundled model]")->group(group);
}

LoadedModel open_model(const ModelOptions& o, const CommonOptions& common, const std::string& cmd) {
    LoadedModel m = load_model(resolve_model_path(o.path));
    if (common.verbosity >= 2)
        info(cmd, common, fmt::format("model {} (md5 {}, hidden size {}, {} layers); {} compute thread{}", m.path,
                                      m.md5, m.config.hidden_size, m.config.num_hidden_layers, compute_threads(),
                                      compute_threads() == 1 ? "" : "s"));
    return m;
}

void add_reference_options(CLI::App& app, ReferenceOptions& o, bool positional, const std::string& group) {
    if (positional)
        app.add_option("reference", o.positional, "reference FASTA (plain or bgzipped; .fai built if missing); or -f")->group(group);
    app.add_option("-f,--fasta-ref", o.fasta, "reference FASTA (plain or bgzipped; .fai built if missing)")->group(group);
    app.add_flag("--chr-prefix", o.chr_prefix, "match contig names that differ by a \"chr\" prefix (20 <-> chr20)")->group(group);
    app.add_option("--rename-chrs", o.rename_chrs, "rename input contigs to the reference's: a file of OLD NEW lines")->group(group);
}

std::string ReferenceOptions::path() const {
    if (!fasta.empty() && !positional.empty() && fasta != positional)
        throw Error(fmt::format("two references given: -f {} and {}; give one", fasta, positional));
    if (fasta.empty() && positional.empty()) throw Error("no reference FASTA given: name it (or use -f FILE)");
    return fasta.empty() ? positional : fasta;
}

void add_region_options(CLI::App& app, RegionOptions& o, const std::string& what, const std::string& group) {
    app.add_option("-r,--region,--regions", o.regions, what + " chr:beg-end, 1-based inclusive; repeatable, or comma-separated")->group(group);
    app.add_option("-R,--regions-file", o.regions_file, what + " from a BED file (0-based), - for stdin")->group(group);
}

void add_window_option(CLI::App& app, int64_t& window, bool one_pass, const std::string& group) {
    app.add_option("--window", window, std::string("window length in bp (at least 16)") +
                   (one_pass ? "; 0 = one pass over each region or record" : "") +
                   " [default: the model's training length, 1024 if unknown]")->group(group);
}

int64_t resolve_window(int64_t window, const LoadedModel& m, bool one_pass, const WarnFn& warn) {
    const int64_t trained = default_window(m.metadata);
    if (window == kWindowUnset) return trained;
    if (window < 0) throw Error(fmt::format("--window must be a length in bp, got {}", window));
    if (window == 0 && !one_pass)
        throw Error(fmt::format("--window 0 (one pass over each region) is not offered here; give a length of at least {} bp", kMinWindow));
    if (window > 0 && window < kMinWindow)
        throw Error(fmt::format("--window {} is too short: at least {} bp are needed", window, kMinWindow));
    if (window > 0 && m.metadata.count("janusdna_train_seq_len") && window * 16 < trained && warn)
        warn(fmt::format("--window {} is far below the model's training length ({} bp): bases see little context, "
                         "and scores differ from those at the training length", window, trained));
    return window;
}

void check_writable_dir(const std::string& path) {
    if (path.empty() || path == "-") return;
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw Error(fmt::format("{}: output directory {} does not exist", path, dir));
    if (access(dir.c_str(), W_OK) != 0) throw Error(fmt::format("{}: output directory {} is not writable", path, dir));
}

void apply_common_options(const CommonOptions& o) {
    if (o.threads < 0) throw Error(fmt::format("-@/--threads must be 0 (all cores) or more, got {}", o.threads));
    if (o.verbosity < 0 || o.verbosity > 2) throw Error(fmt::format("-v/--verbosity must be 0, 1 or 2, got {}", o.verbosity));
    set_compute_threads(o.threads);
    if (o.verbosity >= 2) hts_set_log_level(HTS_LOG_WARNING);
}

namespace {
// Records every option's current value as the default shown by --help (options are declared before parse, so
// option_defaults() would come too late), and makes every repeatable option take one value per occurrence, so that
// `-r REGION ref.fa` leaves ref.fa to the positional argument (`-r A -r B` gives two); option groups are sub-apps
// and are walked too. Flags show no default.
void prepare_options(CLI::App& app) {
    for (CLI::Option* opt : app.get_options()) {
        if (opt->get_type_size() == 0 || opt->get_positional()) continue;
        opt->capture_default_str();
        if (opt->get_expected_max() > 1) opt->allow_extra_args(false);
    }
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) prepare_options(*sub);
}
} // namespace

void add_output_type_option(CLI::App& app, std::string& out_type, const std::vector<std::string>& accepted,
                            const std::string& help) {
    static const std::vector<std::pair<std::string, std::string>> kAliases = {
        {"vcf", "v"}, {"bedgraph", "v"}, {"bed", "v"}, {"tsv", "v"}, {"text", "v"}, {"vcf.gz", "z"},
        {"bedgraph.gz", "z"}, {"bcf", "b"}, {"bigwig", "bw"}};
    app.add_option("-O,--output-type", out_type, help)
        ->transform([accepted](std::string v) {
            for (const auto& [alias, name] : kAliases)
                if (v == alias) v = name;
            if (std::find(accepted.begin(), accepted.end(), v) == accepted.end())
                throw CLI::ValidationError(fmt::format("{} is not an output type of this command (one of {})", v,
                                                       fmt::join(accepted, ", ")));
            return v;
        }, "", "OUTPUT TYPE")
        ->group("Output");
}

int parse(CLI::App& app, int argc, char** argv) {
    prepare_options(app);
    if (argc <= 1) {
        std::fputs(app.help().c_str(), stderr);
        return 1;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        std::fputs(app.help().c_str(), stdout);
        return 0;
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "janusdna %s: %s\n", app.get_name().c_str(), e.what());
        std::fprintf(stderr, "Try 'janusdna %s --help' for more information.\n", app.get_name().c_str());
        return 1;
    }
    return -1;
}

int guarded(const std::string& cmd, const std::function<int()>& body) {
    try {
        int rc = body();
        if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
            std::fprintf(stderr, "janusdna %s: error writing to standard output: %s\n", cmd.c_str(), std::strerror(errno));
            return 1;
        }
        return rc;
    } catch (const janusdna::Error& e) {
        std::fprintf(stderr, "janusdna %s: %s\n", cmd.c_str(), e.what());
    } catch (const c10::Error& e) {
        std::fprintf(stderr, "janusdna %s: internal error: %s\n", cmd.c_str(), e.what_without_backtrace());
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "janusdna %s: out of memory (try a smaller --batch or --window)\n", cmd.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "janusdna %s: %s\n", cmd.c_str(), e.what());
    }
    return 1;
}

std::string command_line(int argc, char** argv) {
    std::string s = "janusdna";
    for (int i = 0; i < argc; ++i) s += std::string(" ") + argv[i];
    return s;
}

void info(const std::string& cmd, const CommonOptions& o, const std::string& message) {
    if (o.verbosity >= 2) std::fprintf(stderr, "janusdna %s: %s\n", cmd.c_str(), message.c_str());
}

void warn(const std::string& cmd, const std::string& message) {
    std::fprintf(stderr, "janusdna %s: warning: %s\n", cmd.c_str(), message.c_str());
}

std::function<void(const std::string&)> warner(const std::string& cmd, const CommonOptions& o) {
    const bool quiet = o.verbosity <= 0;
    return [cmd, quiet](const std::string& m) { if (!quiet) warn(cmd, m); };
}

Progress::Progress(std::string what, std::string unit, int64_t total, bool force)
    : what_(std::move(what)), unit_(std::move(unit)), total_(total), enabled_(force || isatty(STDERR_FILENO)),
      start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::add(int64_t n) {
    done_ += n;
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ > std::chrono::milliseconds(250)) {
        last_ = now;
        draw(false);
    }
}

void Progress::draw(bool final) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = secs > 0 ? done_ / secs : 0;
    std::string line = fmt::format("\r{}: {} {}", what_, done_, unit_);
    if (total_ > 0) {
        line += fmt::format(" of {} ({:.1f}%)", total_, 100.0 * done_ / total_);
        if (rate > 0 && !final) line += fmt::format(", ETA {:.0f} s", (total_ - done_) / rate);
    }
    line += fmt::format(", {:.0f} {}/s   ", rate, unit_);
    std::fputs(line.c_str(), stderr);
    if (final) std::fputc('\n', stderr);
}

void Progress::finish() {
    if (enabled_ && !finished_) draw(true);
    finished_ = true;
}

Progress::~Progress() { finish(); }

} // namespace janusdna::cli
