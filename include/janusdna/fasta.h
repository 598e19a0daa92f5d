// FASTA input through htslib: a streaming reader of every record, and random access through faidx.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "janusdna/error.h"

// htslib's opaque types, so that users of this header need not include htslib.
struct BGZF;
struct faidx_t;

namespace janusdna {

// One FASTA record as read from the file.
struct FastaRecord {
    std::string name;     // header text up to the first space or tab
    std::string comment;  // rest of the header line, without leading whitespace ("" if none)
    std::string seq;      // sequence lines joined, all whitespace (including '\r') removed, case kept as is
    int64_t line = 0;     // 1-based line number of the '>' header line, for error messages
};

// Reads every record of a FASTA file in order, holding one record in memory at a time.
// The file may be plain, gzip or bgzip compressed; "-" reads stdin. Sequence characters are not checked
// here (tokenize() does that, naming the record and position); an empty sequence is returned as such and
// the caller decides whether that is an error.
class FastaReader {
public:
    // Opens path. Throws Error naming the file when it cannot be opened (with strerror), is a directory,
    // or is a bgzip file without its end-of-file marker (truncated).
    explicit FastaReader(const std::string& path);
    ~FastaReader();
    FastaReader(FastaReader&&) noexcept;
    FastaReader& operator=(FastaReader&&) noexcept;
    FastaReader(const FastaReader&) = delete;
    FastaReader& operator=(const FastaReader&) = delete;

    // Reads the next record into rec; returns false at the end of the file (rec is then unchanged).
    // Throws Error naming the file (and the line where one applies) when the file holds no record at all
    // ("no FASTA records"), does not start with '>' ("not a FASTA file"), a header has an empty name,
    // or the compressed stream is truncated or corrupt, or a read fails.
    bool next(FastaRecord& rec);

    // The file name as it appears in messages ("stdin" for "-").
    const std::string& display_name() const { return display_name_; }

private:
    // Reads one line into line_ (without '\n'); false at EOF; throws on a read/decompression error.
    bool read_line();

    std::string display_name_;
    BGZF* file_ = nullptr;
    std::string line_;
    int64_t line_number_ = 0;
    bool started_ = false;         // whether the first header has been looked for
    bool have_header_ = false;     // line_ holds a '>' header not yet returned
};

// Random access to an indexed FASTA file (plain, or bgzip with .fai and .gzi) through htslib's faidx.
// Not thread-safe: htslib's faidx_t keeps one file position and cache, so call fetch() from one thread at a
// time (give each thread its own Reference if several must read).
class Reference {
public:
    // Opens path and its index path.fai (and path.gzi when bgzipped) with fai_load3(FAI_CREATE).
    // A missing index is built next to the file, after warn("building index PATH.fai"), as samtools does.
    // Throws Error naming the file when it does not exist (strerror), is empty or not FASTA, is compressed
    // with gzip rather than bgzip ("recompress with bgzip"), or the index cannot be built or loaded
    // (unwritable directory, lines of unequal length within a record, ...).
    static Reference open(const std::string& path, WarnFn warn = {});

    ~Reference();
    Reference(Reference&&) noexcept;
    Reference& operator=(Reference&&) noexcept;
    Reference(const Reference&) = delete;
    Reference& operator=(const Reference&) = delete;

    // Returns the length of contig, or -1 when the reference has no such contig.
    int64_t length(const std::string& contig) const;
    // Returns whether the reference has a contig of exactly this name.
    bool has(const std::string& contig) const;
    // Returns the contig names in file order.
    const std::vector<std::string>& contigs() const { return names_; }
    // Returns the FASTA path as given to open().
    const std::string& path() const { return path_; }

    // Returns bases [beg0, end0) (0-based, half-open) of contig, case as in the file ("" when beg0 == end0).
    // Throws Error when the contig is missing (with missing_contig_message), the interval is out of
    // [0, length] or reversed, or htslib cannot read it (file changed or truncated since it was indexed).
    std::string fetch(const std::string& contig, int64_t beg0, int64_t end0) const;

    // Returns the message for a contig name the reference lacks, e.g.
    //   contig "chr20" not in ref.fa (it has: 20, 21, X); did you mean "20"? (add or remove the "chr"
    //   prefix, e.g. with --chr-prefix or a rename map)
    // It names up to 5 existing contigs and suggests a name that differs only by a "chr" prefix,
    // chrM <-> MT, or letter case.
    std::string missing_contig_message(const std::string& contig) const;

private:
    Reference() = default;

    std::string path_;
    faidx_t* index_ = nullptr;
    std::vector<std::string> names_;
    std::unordered_map<std::string, int64_t> lengths_;
};

} // namespace janusdna
