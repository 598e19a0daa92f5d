#include "common.h"

#include "janusdna/error.h"
#include "janusdna/runtime.h"

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

void check_writable_dir(const std::string& path) {
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    struct stat st;
    if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        throw Error(fmt::format("{}: output directory {} does not exist", path, dir));
    if (access(dir.c_str(), W_OK) != 0) throw Error(fmt::format("{}: output directory {} is not writable", path, dir));
}

void apply_common_options(const CommonOptions& o) {
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
