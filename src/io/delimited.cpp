// Generic text-table readers; see include/janusdna/delimited.h.
#include "janusdna/delimited.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "janusdna/error.h"
#include "janusdna/strings.h"

namespace janusdna {

LineReader::LineReader(const std::string& path) : name_(path == "-" ? "stdin" : path) {
    if (path != "-") {
        struct stat st;
        if (stat(path.c_str(), &st) != 0) throw Error(fmt::format("cannot open {}: {}", name_, std::strerror(errno)));
        // BGZF opens a directory and then fails with a misleading read error.
        if (S_ISDIR(st.st_mode)) throw Error(fmt::format("cannot open {}: is a directory", name_));
    }
    errno = 0;
    file_ = bgzf_open(path.c_str(), "r");
    if (!file_)
        throw Error(fmt::format("cannot open {}: {}", name_, errno ? std::strerror(errno) : "not a readable file"));
    // A bgzip file cut at a block boundary decompresses cleanly; only the missing end-of-file block tells
    // (bgzf_check_EOF: 0 = missing, 1 = present, 2 = cannot seek, e.g. stdin).
    if (file_->is_compressed && !file_->is_gzip && bgzf_check_EOF(file_) == 0) {
        bgzf_close(file_);
        throw Error(fmt::format("{}: truncated or corrupt compressed file (no bgzip end-of-file marker)", name_));
    }
}

LineReader::~LineReader() {
    ks_free(&buffer_);
    if (file_) bgzf_close(file_);
}

bool LineReader::next(std::string& line) {
    const int n = bgzf_getline(file_, '\n', &buffer_);
    if (n < 0) {
        if (n == -1) return false;
        // htslib flags an early end of a gzip stream as an I/O error with errno unset.
        if (!file_->is_compressed) throw Error(fmt::format("{}: read error: {}", name_, std::strerror(errno)));
        throw Error(fmt::format("{}: truncated or corrupt compressed file", name_));
    }
    ++line_number_;
    line.assign(buffer_.s, buffer_.l);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_number_ == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);
    return true;
}

DelimitedReader::DelimitedReader(const std::string& path, char delimiter) : lines_(path), delimiter_(delimiter) {
    if (!read_record(header_))
        throw Error(fmt::format("{}: empty file (expected a header line naming the columns)", lines_.name()));
    header_line_ = record_line_;
}

size_t DelimitedReader::column(const std::string& name) const {
    const auto it = std::find(header_.begin(), header_.end(), name);
    if (it != header_.end()) return static_cast<size_t>(it - header_.begin());
    std::string hint;
    const char other = delimiter_ == '\t' ? ',' : '\t';
    if (header_.size() == 1 && header_[0].find(other) != std::string::npos)
        hint = delimiter_ == '\t' ? "; the header has commas: is the file comma-separated (.csv)?"
                                  : "; the header has tabs: is the file tab-separated (.tsv)?";
    throw Error(fmt::format("{}:{}: no column '{}' (columns: {}){}", lines_.name(), header_line_, name,
                            join_list(header_), hint));
}

std::optional<size_t> DelimitedReader::find_column(const std::string& name) const {
    const auto it = std::find(header_.begin(), header_.end(), name);
    if (it == header_.end()) return std::nullopt;
    return static_cast<size_t>(it - header_.begin());
}

bool DelimitedReader::next(std::vector<std::string>& fields) {
    if (!read_record(fields)) return false;
    if (fields.size() != header_.size())
        throw Error(fmt::format("{}:{}: expected {} {}-separated fields as in the header, found {}", lines_.name(),
                                record_line_, header_.size(), delimiter_ == '\t' ? "tab" : "comma",
                                fields.size()));
    return true;
}

std::string DelimitedReader::where() const { return fmt::format("{}:{}", lines_.name(), record_line_); }

bool DelimitedReader::read_record(std::vector<std::string>& fields) {
    std::string line;
    do {
        if (!lines_.next(line)) return false;
    } while (is_blank(line));
    record_line_ = lines_.line_number();
    fields.clear();
    size_t i = 0;
    for (;;) {
        while (i < line.size() && is_pad(line[i])) ++i;
        std::string field;
        if (i < line.size() && line[i] == '"') {
            ++i;
            for (;;) {
                if (i >= line.size()) {
                    // A line break inside a quoted field belongs to the field.
                    if (!lines_.next(line))
                        throw Error(fmt::format("{}:{}: unterminated quoted field (no closing '\"' before the "
                                                "end of the file)",
                                                lines_.name(), record_line_));
                    field += '\n';
                    i = 0;
                    continue;
                }
                const char c = line[i++];
                if (c != '"') {
                    field += c;
                } else if (i < line.size() && line[i] == '"') {
                    field += '"';
                    ++i;
                } else {
                    break;
                }
            }
            while (i < line.size() && is_pad(line[i])) ++i;
            if (i < line.size() && line[i] != delimiter_)
                throw Error(fmt::format("{}:{}: unexpected character {} after a closing quote (a quote inside "
                                        "a quoted field is written \"\")",
                                        lines_.name(), lines_.line_number(),
                                        describe_byte(static_cast<unsigned char>(line[i]))));
        } else {
            size_t end = line.find(delimiter_, i);
            if (end == std::string::npos) end = line.size();
            field = std::string(trim(std::string_view(line).substr(i, end - i), delimiter_ == '\t' ? " " : " \t"));
            i = end;
        }
        fields.push_back(std::move(field));
        if (i >= line.size()) break;
        ++i;  // the delimiter
    }
    return true;
}

} // namespace janusdna
