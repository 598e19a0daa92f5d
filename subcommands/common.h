// Pieces every subcommand shares: option parsing conventions, error reporting, progress.
#pragma once
#include <CLI/CLI.hpp>
#include <chrono>
#include <functional>
#include <string>

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
