// FASTA input through htslib: streaming (BGZF reads plain, gzip and bgzip alike) and random access (faidx).
#include "janusdna/fasta.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <fmt/format.h>
#include <htslib/bgzf.h>
#include <htslib/faidx.h>
#include <htslib/kstring.h>

#include "janusdna/error.h"

namespace janusdna {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

bool file_exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

// Opens path (or stdin for "-") with BGZF, which transparently reads plain, gzip and bgzip files.
// Throws Error with strerror when that fails, and refuses a directory (BGZF would open it and fail later
// with a misleading read error).
BGZF* open_bgzf(const std::string& path, const std::string& display_name) {
    if (path != "-") {
        struct stat st;
        if (stat(path.c_str(), &st) != 0)
            throw Error(fmt::format("cannot open {}: {}", display_name, std::strerror(errno)));
        if (S_ISDIR(st.st_mode)) throw Error(fmt::format("cannot open {}: is a directory", display_name));
    }
    errno = 0;
    BGZF* file = bgzf_open(path.c_str(), "r");
    if (!file)
        throw Error(fmt::format("cannot open {}: {}", display_name,
                                errno ? std::strerror(errno) : "not a readable file"));
    return file;
}

// Reads one line (without '\n') into out; returns false at the end of the file. Throws Error naming the
// file when the read or the decompression fails, which is how a truncated gzip stream shows up.
bool read_bgzf_line(BGZF* file, const std::string& display_name, std::string& out) {
    kstring_t line = KS_INITIALIZE;
    const int n = bgzf_getline(file, '\n', &line);
    if (n >= 0) out.assign(line.s, line.l);
    ks_free(&line);
    if (n >= 0) return true;
    if (n == -1) return false;
    // htslib flags an early end of a gzip stream as an I/O error with errno unset, so only a plain file's
    // failure is reported as a read error.
    if (!file->is_compressed) throw Error(fmt::format("{}: read error: {}", display_name, std::strerror(errno)));
    throw Error(fmt::format("{}: truncated or corrupt compressed file", display_name));
}

// A bgzip file cut at a block boundary decompresses without error; only the missing end-of-file block
// tells. bgzf_check_EOF returns 0 exactly then (1 = present, 2 = cannot seek, e.g. stdin).
void check_bgzf_eof(BGZF* file, const std::string& display_name) {
    if (file->is_compressed && !file->is_gzip && bgzf_check_EOF(file) == 0)
        throw Error(fmt::format("{}: truncated or corrupt compressed file (no bgzip end-of-file marker)",
                                display_name));
}

} // namespace

// ---------------------------------------------------------------------------------------------------------
// FastaReader

FastaReader::FastaReader(const std::string& path) : display_name_(path == "-" ? "stdin" : path) {
    file_ = open_bgzf(path, display_name_);
    try {
        check_bgzf_eof(file_, display_name_);
    } catch (...) {
        bgzf_close(file_);
        throw;
    }
}

FastaReader::~FastaReader() {
    if (file_) bgzf_close(file_);
}

FastaReader::FastaReader(FastaReader&& other) noexcept
    : display_name_(std::move(other.display_name_)), file_(std::exchange(other.file_, nullptr)),
      line_(std::move(other.line_)), line_number_(other.line_number_), started_(other.started_),
      have_header_(other.have_header_) {}

FastaReader& FastaReader::operator=(FastaReader&& other) noexcept {
    if (this != &other) {
        if (file_) bgzf_close(file_);
        display_name_ = std::move(other.display_name_);
        file_ = std::exchange(other.file_, nullptr);
        line_ = std::move(other.line_);
        line_number_ = other.line_number_;
        started_ = other.started_;
        have_header_ = other.have_header_;
    }
    return *this;
}

bool FastaReader::read_line() {
    if (!read_bgzf_line(file_, display_name_, line_)) return false;
    ++line_number_;
    return true;
}

bool FastaReader::next(FastaRecord& rec) {
    if (!started_) {
        // The first non-blank line must be a header: this is what rejects binary files, BAM, FASTQ, ...
        started_ = true;
        bool found = false;
        while (read_line()) {
            size_t first = 0;
            while (first < line_.size() && is_space(line_[first])) ++first;
            if (first == line_.size()) continue;
            if (line_[first] != '>')
                throw Error(fmt::format("{}: not a FASTA file (line {} does not start with '>')", display_name_,
                                        line_number_));
            line_.erase(0, first);
            found = true;
            break;
        }
        if (!found) throw Error(fmt::format("{}: no FASTA records", display_name_));
        have_header_ = true;
    }
    if (!have_header_) return false;

    // Header: ">name comment", possibly with a Windows '\r' at the end.
    FastaRecord out;
    out.line = line_number_;
    size_t pos = 1;
    while (pos < line_.size() && !is_space(line_[pos])) ++pos;
    out.name = line_.substr(1, pos - 1);
    while (pos < line_.size() && is_space(line_[pos])) ++pos;
    out.comment = line_.substr(pos);
    while (!out.comment.empty() && is_space(out.comment.back())) out.comment.pop_back();
    if (out.name.empty())
        throw Error(fmt::format("{}:{}: FASTA header with an empty name", display_name_, out.line));

    // Sequence lines up to the next header or the end of the file.
    have_header_ = false;
    while (read_line()) {
        if (!line_.empty() && line_[0] == '>') {
            have_header_ = true;
            break;
        }
        for (char c : line_)
            if (!is_space(c)) out.seq.push_back(c);
    }
    rec = std::move(out);
    return true;
}

// ---------------------------------------------------------------------------------------------------------
// Reference

namespace {

// Checks what htslib cannot explain well on its own before it indexes or loads path: that the file
// exists, is FASTA, and is bgzip rather than plain gzip (faidx needs bgzip's blocks for random access).
// Returns whether the file is (bgzip) compressed.
bool probe_fasta(const std::string& path) {
    BGZF* file = open_bgzf(path, path);
    const bool compressed = file->is_compressed;
    const bool gzip = file->is_gzip;
    std::string line;
    bool found = false, fasta = false;
    try {
        while (read_bgzf_line(file, path, line)) {
            size_t first = 0;
            while (first < line.size() && is_space(line[first])) ++first;
            if (first == line.size()) continue;
            found = true;
            fasta = line[first] == '>';
            break;
        }
    } catch (...) {
        bgzf_close(file);
        throw;
    }
    bgzf_close(file);
    if (!found) throw Error(fmt::format("{}: no FASTA records", path));
    if (!fasta) throw Error(fmt::format("{}: not a FASTA file (first line does not start with '>')", path));
    if (gzip)
        throw Error(fmt::format("cannot index {}: compressed with gzip, not bgzip: recompress with bgzip "
                                "(zcat {} | bgzip > NEW.fa.gz)",
                                path, path));
    return compressed;
}

std::string directory_of(const std::string& path) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

} // namespace

Reference Reference::open(const std::string& path, WarnFn warn) {
    const bool compressed = probe_fasta(path);
    const std::string fai = path + ".fai";
    const std::string gzi = path + ".gzi";
    const bool need_fai = !file_exists(fai);
    const bool need_gzi = compressed && !file_exists(gzi);
    if (need_fai || need_gzi) {
        // Building it ourselves (rather than leaving it to fai_load3) lets us warn first and give a reason.
        const std::string dir = directory_of(path);
        if (access(dir.c_str(), W_OK) != 0)
            throw Error(fmt::format("cannot index {}: no {} and cannot write one in {}: {}", path,
                                    need_fai ? fai : gzi, dir, std::strerror(errno)));
        if (warn) warn(compressed ? fmt::format("building index {} and {}", fai, gzi)
                                  : fmt::format("building index {}", fai));
        if (fai_build3(path.c_str(), nullptr, nullptr) != 0)
            throw Error(fmt::format("cannot index {}: htslib could not build {} (are the lines of a record of "
                                    "unequal length, or a contig name duplicated?)",
                                    path, fai));
    }
    Reference ref;
    ref.path_ = path;
    ref.index_ = fai_load3(path.c_str(), nullptr, nullptr, FAI_CREATE);
    if (!ref.index_)
        throw Error(fmt::format("cannot load the index of {} ({}{}); delete it to rebuild it", path, fai,
                                compressed ? " or " + gzi : ""));
    const int n = faidx_nseq(ref.index_);
    ref.names_.reserve(n);
    for (int i = 0; i < n; ++i) {
        std::string name = faidx_iseq(ref.index_, i);
        // htslib 1.16 reports lengths as int; a contig over 2^31 bases would come back negative.
        const int64_t len = faidx_seq_len(ref.index_, name.c_str());
        if (len < 0)
            throw Error(fmt::format("{}: contig \"{}\" is too long for this htslib (over 2^31 bases)", path, name));
        ref.lengths_.emplace(name, len);
        ref.names_.push_back(std::move(name));
    }
    return ref;
}

Reference::~Reference() {
    if (index_) fai_destroy(index_);
}

Reference::Reference(Reference&& other) noexcept
    : path_(std::move(other.path_)), index_(std::exchange(other.index_, nullptr)),
      names_(std::move(other.names_)), lengths_(std::move(other.lengths_)) {}

Reference& Reference::operator=(Reference&& other) noexcept {
    if (this != &other) {
        if (index_) fai_destroy(index_);
        path_ = std::move(other.path_);
        index_ = std::exchange(other.index_, nullptr);
        names_ = std::move(other.names_);
        lengths_ = std::move(other.lengths_);
    }
    return *this;
}

int64_t Reference::length(const std::string& contig) const {
    const auto it = lengths_.find(contig);
    return it == lengths_.end() ? -1 : it->second;
}

bool Reference::has(const std::string& contig) const { return lengths_.count(contig) != 0; }

std::string Reference::fetch(const std::string& contig, int64_t beg0, int64_t end0) const {
    const int64_t len = length(contig);
    if (len < 0) throw Error(missing_contig_message(contig));
    if (beg0 < 0 || end0 > len || beg0 > end0)
        throw Error(fmt::format("{}: interval [{}, {}) is outside contig \"{}\" ({} bp)", path_, beg0, end0, contig,
                                len));
    if (beg0 == end0) return {};
    hts_pos_t got = 0;
    // faidx takes a 0-based inclusive end.
    char* seq = faidx_fetch_seq64(index_, contig.c_str(), beg0, end0 - 1, &got);
    if (!seq || got != end0 - beg0) {
        free(seq);
        throw Error(fmt::format("{}: cannot read {}:{}-{} (file truncated or changed since its index was built?)",
                                path_, contig, beg0 + 1, end0));
    }
    std::string out(seq, static_cast<size_t>(got));
    free(seq);
    return out;
}

std::string Reference::missing_contig_message(const std::string& contig) const {
    std::string have;
    for (size_t i = 0; i < names_.size() && i < 5; ++i) have += (i ? ", " : "") + names_[i];
    if (names_.size() > 5) have += fmt::format(", ... ({} contigs)", names_.size());
    std::string message = fmt::format("contig \"{}\" not in {} (it has: {})", contig, path_, have);

    // The usual cause is a naming convention (UCSC "chr20" vs Ensembl "20"): offer the matching name.
    std::string suggestion;
    bool prefix = false;
    if (contig.compare(0, 3, "chr") == 0 && has(contig.substr(3))) {
        suggestion = contig.substr(3);
        prefix = true;
    } else if (has("chr" + contig)) {
        suggestion = "chr" + contig;
        prefix = true;
    } else if (contig == "chrM" && has("MT")) {
        suggestion = "MT";
    } else if (contig == "MT" && has("chrM")) {
        suggestion = "chrM";
    } else {
        for (const auto& name : names_) {
            if (name.size() == contig.size() &&
                std::equal(name.begin(), name.end(), contig.begin(), [](char a, char b) {
                    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
                })) {
                suggestion = name;
                break;
            }
        }
    }
    if (!suggestion.empty()) {
        message += fmt::format("; did you mean \"{}\"?", suggestion);
        message += prefix ? " (add or remove the \"chr\" prefix, e.g. with --chr-prefix or a rename map)"
                          : " (rename the contigs, e.g. with a rename map)";
    }
    return message;
}

} // namespace janusdna
