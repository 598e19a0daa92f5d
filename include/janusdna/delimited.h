// Generic readers of text tables: lines of a plain, gzip or bgzip file, and CSV (RFC 4180 quoting) or TSV records
// under a header row. They know nothing of what the columns mean (dataset.h does).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <htslib/bgzf.h>
#include <htslib/kstring.h>

namespace janusdna {

// Reads a text file line by line through BGZF (plain, gzip or bgzip; "-" = standard input, named "stdin" in
// messages), without '\n', a trailing '\r' and, on the first line, a UTF-8 byte-order mark. Throws Error naming the
// file when it cannot be opened, is a directory, or is a bgzip file without its end-of-file block (cut short).
class LineReader {
public:
    explicit LineReader(const std::string& path);
    ~LineReader();
    LineReader(const LineReader&) = delete;
    LineReader& operator=(const LineReader&) = delete;

    // Reads the next line into line; returns false at the end of the file. Throws Error on a read error or a
    // truncated or corrupt compressed stream.
    bool next(std::string& line);
    int64_t line_number() const { return line_number_; }
    const std::string& name() const { return name_; }

private:
    std::string name_;
    BGZF* file_ = nullptr;
    kstring_t buffer_ = KS_INITIALIZE;
    int64_t line_number_ = 0;
};

// A CSV (RFC 4180 quoting, line breaks inside quotes allowed) or TSV file with a header row. Blank lines are
// skipped; unquoted fields are trimmed of surrounding blanks; every record must have as many fields as the header.
class DelimitedReader {
public:
    // Throws Error "FILE: empty file ..." when there is no header line.
    DelimitedReader(const std::string& path, char delimiter);

    // The index of the column named name; throws Error "FILE:LINE: no column 'name' (columns: ...)", with a hint
    // when the header looks separated by the other delimiter.
    size_t column(const std::string& name) const;
    std::optional<size_t> find_column(const std::string& name) const;

    // Reads the next record; false at the end of the file. Throws Error "FILE:LINE: ..." for a field count that
    // differs from the header's or a quoting error.
    bool next(std::vector<std::string>& fields);

    // "FILE:LINE" of the first line of the last record.
    std::string where() const;
    const std::string& name() const { return lines_.name(); }

private:
    bool is_pad(char c) const { return c == ' ' || (c == '\t' && delimiter_ != '\t'); }
    bool read_record(std::vector<std::string>& fields);

    LineReader lines_;
    char delimiter_;
    std::vector<std::string> header_;
    int64_t header_line_ = 1;
    int64_t record_line_ = 0;
};

} // namespace janusdna
