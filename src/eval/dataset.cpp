// Labelled-sequence datasets: the file formats and directory layouts benchmarks are distributed in, the class
// table, and the seeded, stratified validation split and k-fold partitions.
#include "janusdna/dataset.h"
#include "janusdna/strings.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>
#include <htslib/bgzf.h>
#include <htslib/kstring.h>

#include "janusdna/delimited.h"
#include "janusdna/error.h"
#include "janusdna/regions.h"
#include "janusdna/tokenizer.h"

namespace janusdna {
namespace {

namespace fs = std::filesystem;

// Upper-cases seq in place and checks that it holds only A, C, G, T, N. In sequences cut from a reference the IUPAC
// ambiguity codes become N (the reference is not the user's to fix; the tokenizer treats them as N anyway).
// Throws Error "WHERE: invalid character 'X' at position P of WHAT (expected A, C, G, T or N)".
void clean_sequence(std::string& seq, const std::string& where, std::string_view what, bool from_reference) {
    for (size_t i = 0; i < seq.size(); ++i) {
        char c = seq[i];
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        switch (c) {
        case 'A': case 'C': case 'G': case 'T': case 'N': seq[i] = c; continue;
        case 'R': case 'Y': case 'S': case 'W': case 'K': case 'M': case 'B': case 'D': case 'H': case 'V':
            if (from_reference) {
                seq[i] = 'N';
                continue;
            }
            break;
        default: break;
        }
        throw Error(fmt::format("{}: invalid character {} at position {} of {} (expected A, C, G, T or N)", where,
                                describe_byte(static_cast<unsigned char>(seq[i])), i + 1, what));
    }
}

// Parses a non-negative integer made of digits only. Returns false when it is not one or overflows.
bool parse_count(std::string_view text, int64_t& value) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) return false;
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    return result.ec == std::errc() && result.ptr == text.data() + text.size();
}

// ---------------------------------------------------------------------------------------------------------
// File formats

enum class Format { csv, tsv, fasta, bed };

const char* format_name(Format format) {
    switch (format) {
    case Format::csv: return "CSV";
    case Format::tsv: return "TSV";
    case Format::fasta: return "FASTA";
    case Format::bed: return "BED";
    }
    return "?";
}

// The reference, opened on first use and shared by every file of one load.
class ReferenceCache {
public:
    explicit ReferenceCache(const DatasetOptions& options) : options_(options) {}
    const ContigMatcher& contigs() const { return options_.contigs; }
    // needed_by names the input in the error when no reference was given.
    const Reference& get(const std::string& needed_by) {
        if (!reference_) {
            if (options_.reference.empty())
                throw Error(fmt::format("{}: gives coordinates, not sequences: a reference FASTA to cut the sequences "
                                        "from is needed, and none was given",
                                        needed_by));
            reference_.emplace(Reference::open(options_.reference, options_.warn));
        }
        return *reference_;
    }
    bool opened() const { return reference_.has_value(); }

private:
    const DatasetOptions& options_;
    std::optional<Reference> reference_;
};

// Cuts [beg, end) of contig (named as the file names it, matched by `contigs`) from the reference,
// reverse-complemented for strand '-', upper-cased, IUPAC codes as N. Throws Error "WHERE: ..." for a missing contig
// or an interval past the contig end.
std::string cut_sequence(const Reference& ref, const ContigMatcher& contigs, const std::string& input_contig,
                         int64_t beg, int64_t end, char strand, const std::string& where) {
    const std::string contig = contigs.to_reference(input_contig, ref);
    const int64_t len = ref.length(contig);
    if (len < 0) throw Error(fmt::format("{}: {}", where, ref.missing_contig_message(contig)));
    if (end > len)
        throw Error(fmt::format("{}: interval {}:{}-{} extends past the end of contig \"{}\" ({} bp) in {}", where,
                                contig, beg + 1, end, contig, len, ref.path()));
    std::string seq = ref.fetch(contig, beg, end);
    if (strand == '-') seq = reverse_complement(seq);
    clean_sequence(seq, where, "the sequence cut from the reference", true);
    return seq;
}

Format format_of(const std::string& path) {
    std::string base = fs::path(path).filename().string();
    for (const char* gz : {".gz", ".bgz", ".gzip"})
        if (ends_with(base, gz)) {
            base.erase(base.size() - std::strlen(gz));
            break;
        }
    std::string ext = fs::path(base).extension().string();
    for (char& c : ext)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (ext == ".csv") return Format::csv;
    if (ext == ".tsv" || ext == ".txt") return Format::tsv;
    if (ext == ".fa" || ext == ".fasta" || ext == ".fna" || ext == ".fas") return Format::fasta;
    if (ext == ".bed") return Format::bed;
    // Otherwise look at the first non-blank line.
    LineReader lines(path);
    std::string line;
    while (lines.next(line)) {
        if (is_blank(line)) continue;
        if (line[0] == '>') return Format::fasta;
        if (line.find('\t') != std::string::npos) return Format::tsv;
        if (line.find(',') != std::string::npos) return Format::csv;
        break;
    }
    throw Error(fmt::format("{}: cannot tell the format (expected .csv, .tsv, .txt, .fa/.fasta/.fna or .bed, "
                            "optionally .gz, or content starting with '>' (FASTA) or a header with tabs or commas)",
                            path));
}

void read_delimited(const std::string& path, char delimiter, const DatasetOptions& options,
                    std::vector<Example>& examples, std::vector<std::string>& labels) {
    DelimitedReader reader(path, delimiter);
    const size_t seq_col = reader.column(options.seq_column);
    const size_t label_col = reader.column(options.label_column);
    const std::string seq_what = fmt::format("the sequence (column '{}')", options.seq_column);
    std::vector<std::string> fields;
    while (reader.next(fields)) {
        Example ex;
        ex.where = reader.where();
        ex.seq = std::move(fields[seq_col]);
        if (ex.seq.empty()) throw Error(fmt::format("{}: empty sequence (column '{}')", ex.where, options.seq_column));
        clean_sequence(ex.seq, ex.where, seq_what, false);
        if (fields[label_col].empty())
            throw Error(fmt::format("{}: empty label (column '{}')", ex.where, options.label_column));
        labels.push_back(std::move(fields[label_col]));
        examples.push_back(std::move(ex));
    }
    if (examples.empty()) throw Error(fmt::format("{}: no examples (the file has only a header line)", path));
}

// The label of a FASTA record: VALUE of "KEY=VALUE" in the comment, else its last whitespace-separated word.
std::string fasta_label(const FastaRecord& rec, const std::string& key, const std::string& where) {
    std::vector<std::string_view> words;
    std::string_view rest(rec.comment);
    while (!rest.empty()) {
        const size_t start = rest.find_first_not_of(" \t;");
        if (start == std::string_view::npos) break;
        rest.remove_prefix(start);
        const size_t end = std::min(rest.find_first_of(" \t;"), rest.size());
        words.push_back(rest.substr(0, end));
        rest.remove_prefix(end);
    }
    const std::string prefix = key + "=";
    for (std::string_view word : words)
        if (word.substr(0, prefix.size()) == prefix) {
            if (word.size() == prefix.size())
                throw Error(fmt::format("{}: record \"{}\": empty label ({})", where, rec.name, word));
            return std::string(word.substr(prefix.size()));
        }
    if (words.empty())
        throw Error(fmt::format("{}: record \"{}\" has no label (expected \"{}X\" or the label as the last word of the "
                                "header line)",
                                where, rec.name, prefix));
    // A last word "other=..." means the key is wrong rather than that the label contains '='.
    const std::string_view last = words.back();
    if (last.find('=') != std::string_view::npos)
        throw Error(fmt::format("{}: record \"{}\" has no \"{}\" in its header (last word: '{}')", where, rec.name,
                                prefix, last));
    return std::string(last);
}

void read_fasta(const std::string& path, const DatasetOptions& options, std::vector<Example>& examples,
                std::vector<std::string>& labels) {
    FastaReader reader(path);
    FastaRecord rec;
    while (reader.next(rec)) {
        Example ex;
        ex.where = fmt::format("{}:{}", reader.display_name(), rec.line);
        labels.push_back(fasta_label(rec, options.label_column, ex.where));
        if (rec.seq.empty()) throw Error(fmt::format("{}: record \"{}\": empty sequence", ex.where, rec.name));
        ex.seq = std::move(rec.seq);
        clean_sequence(ex.seq, ex.where, fmt::format("record \"{}\"", rec.name), false);
        examples.push_back(std::move(ex));
    }
}

// The 1-based BED column holding the label: options.label_column as a number, or 4 for the default "label".
size_t bed_label_column(const std::string& path, const DatasetOptions& options) {
    if (options.label_column.empty() || options.label_column == "label") return 4;
    int64_t column = 0;
    if (!parse_count(options.label_column, column) || column < 1)
        throw Error(fmt::format("{}: the label column of a BED file is a 1-based column number, not '{}'", path,
                                options.label_column));
    return static_cast<size_t>(column);
}

void read_bed(const std::string& path, const DatasetOptions& options, ReferenceCache& references,
              std::vector<Example>& examples, std::vector<std::string>& labels) {
    const size_t label_column = bed_label_column(path, options);
    // BedReader parses and checks the coordinates and the strand; a second reader of the same file, kept on the
    // same line, gives the raw columns for the label.
    BedReader bed(path);
    LineReader raw(path);
    const Reference& ref = references.get(path);
    Region region;
    std::string line;
    while (bed.next(region)) {
        while (raw.line_number() < bed.line_number())
            if (!raw.next(line)) throw Error(fmt::format("{}: changed while being read", path));
        Example ex;
        ex.where = fmt::format("{}:{}", bed.display_name(), bed.line_number());
        size_t column = 1, start = 0;
        std::string_view label;
        bool found = false;
        for (;;) {
            const size_t tab = line.find('\t', start);
            if (column == label_column) {
                label = trim(std::string_view(line).substr(start, tab == std::string::npos ? std::string::npos
                                                                                             : tab - start));
                found = true;
                break;
            }
            if (tab == std::string::npos) break;
            start = tab + 1;
            ++column;
        }
        if (!found)
            throw Error(fmt::format("{}: no label column {} (the line has {} columns)", ex.where, label_column,
                                    column));
        if (label.empty()) throw Error(fmt::format("{}: empty label (column {})", ex.where, label_column));
        ex.seq = cut_sequence(ref, options.contigs, region.contig, region.beg, region.end, region.strand, ex.where);
        labels.emplace_back(label);
        examples.push_back(std::move(ex));
    }
    if (examples.empty()) throw Error(fmt::format("{}: no regions", path));
}

// Reads path in whatever format it has; labels are left at -1. Returns the format.
Format read_any(const std::string& path, const DatasetOptions& options, ReferenceCache& references,
                std::vector<Example>& examples, std::vector<std::string>& labels) {
    examples.clear();
    labels.clear();
    const Format format = format_of(path);
    switch (format) {
    case Format::csv: read_delimited(path, ',', options, examples, labels); break;
    case Format::tsv: read_delimited(path, '\t', options, examples, labels); break;
    case Format::fasta: read_fasta(path, options, examples, labels); break;
    case Format::bed: read_bed(path, options, references, examples, labels); break;
    }
    return format;
}

// ---------------------------------------------------------------------------------------------------------
// GenomicBenchmarks directories

// Natural order: runs of digits compare by value ("2.txt" < "10.txt"), the rest byte by byte.
bool natural_less(const std::string& a, const std::string& b) {
    size_t i = 0, j = 0;
    while (i < a.size() && j < b.size()) {
        const bool da = a[i] >= '0' && a[i] <= '9', db = b[j] >= '0' && b[j] <= '9';
        if (da && db) {
            size_t ie = i, je = j;
            while (ie < a.size() && a[ie] >= '0' && a[ie] <= '9') ++ie;
            while (je < b.size() && b[je] >= '0' && b[je] <= '9') ++je;
            size_t is = i, js = j;
            while (is + 1 < ie && a[is] == '0') ++is;
            while (js + 1 < je && b[js] == '0') ++js;
            const std::string_view na(a.data() + is, ie - is), nb(b.data() + js, je - js);
            if (na.size() != nb.size()) return na.size() < nb.size();
            if (na != nb) return na < nb;
            i = ie;
            j = je;
        } else {
            if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
            ++i;
            ++j;
        }
    }
    if ((a.size() - i) != (b.size() - j)) return a.size() - i < b.size() - j;
    return a < b;
}

struct DirEntries {
    std::vector<std::string> dirs, files;  // names, natural order, hidden ones left out
};

DirEntries list_dir(const std::string& dir) {
    DirEntries out;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) throw Error(fmt::format("cannot read directory {}: {}", dir, ec.message()));
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        if (ec) throw Error(fmt::format("cannot read directory {}: {}", dir, ec.message()));
        const std::string name = it->path().filename().string();
        if (name.empty() || name[0] == '.') continue;
        std::error_code type_ec;
        if (it->is_directory(type_ec))
            out.dirs.push_back(name);
        else
            out.files.push_back(name);
    }
    std::sort(out.dirs.begin(), out.dirs.end(), natural_less);
    std::sort(out.files.begin(), out.files.end(), natural_less);
    return out;
}

// One GenomicBenchmarks sequence file: the whole file is one sequence (line breaks and blanks are dropped).
Example read_sequence_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw Error(fmt::format("{}: read error", path));
    Example ex;
    ex.where = path + ":1";
    int64_t line = 1;
    size_t start = 0;  // offset of the current line, for messages
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n') {
            ++line;
            start = i + 1;
            continue;
        }
        if (c == '\r' || c == ' ' || c == '\t') continue;
        const char upper = c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
        if (upper != 'A' && upper != 'C' && upper != 'G' && upper != 'T' && upper != 'N')
            throw Error(fmt::format("{}:{}: invalid character {} at position {} of the sequence (column {} of the "
                                    "line; expected A, C, G, T or N)",
                                    path, line, describe_byte(static_cast<unsigned char>(c)), ex.seq.size() + 1,
                                    i - start + 1));
        ex.seq += upper;
    }
    if (ex.seq.empty()) throw Error(fmt::format("{}:1: empty sequence", path));
    return ex;
}

// train/CLASS/*.txt (or test/...): one example per file, labelled CLASS.
void read_gb_sequence_split(const std::string& dir, std::vector<Example>& examples, std::vector<std::string>& labels) {
    const DirEntries classes = list_dir(dir);
    if (classes.dirs.empty()) throw Error(fmt::format("{}: no class directories (expected {}/CLASS/*.txt)", dir, dir));
    for (const std::string& cls : classes.dirs) {
        const std::string class_dir = dir + "/" + cls;
        size_t count = 0;
        for (const std::string& file : list_dir(class_dir).files) {
            if (!ends_with(file, ".txt")) continue;
            examples.push_back(read_sequence_file(class_dir + "/" + file));
            labels.push_back(cls);
            ++count;
        }
        if (count == 0) throw Error(fmt::format("{}: no .txt sequence files", class_dir));
    }
}

// train/CLASS.csv[.gz] with columns id,region,start,end,strand (0-based half-open), cut from the reference.
void read_gb_coordinate_split(const std::string& dir, ReferenceCache& references, std::vector<Example>& examples,
                              std::vector<std::string>& labels) {
    const DirEntries entries = list_dir(dir);
    std::map<std::string, std::string> class_files;  // class -> file name
    std::vector<std::string> order;
    for (const std::string& file : entries.files) {
        std::string cls;
        if (ends_with(file, ".csv.gz"))
            cls = file.substr(0, file.size() - 7);
        else if (ends_with(file, ".csv"))
            cls = file.substr(0, file.size() - 4);
        else
            continue;
        const auto [it, inserted] = class_files.emplace(cls, file);
        if (!inserted)
            throw Error(fmt::format("{}: both {} and {} give class '{}'; keep one", dir, it->second, file, cls));
        order.push_back(cls);
    }
    if (order.empty()) throw Error(fmt::format("{}: no class files (expected {}/CLASS.csv.gz)", dir, dir));
    std::sort(order.begin(), order.end(), natural_less);
    for (const std::string& cls : order) {
        const std::string path = dir + "/" + class_files[cls];
        DelimitedReader reader(path, ',');
        const size_t region_col = reader.column("region");
        const size_t start_col = reader.column("start");
        const size_t end_col = reader.column("end");
        const std::optional<size_t> strand_col = reader.find_column("strand");
        const Reference& ref = references.get(path);
        std::vector<std::string> fields;
        size_t count = 0;
        while (reader.next(fields)) {
            Example ex;
            ex.where = reader.where();
            int64_t beg = 0, end = 0;
            if (fields[region_col].empty()) throw Error(fmt::format("{}: empty region (contig name)", ex.where));
            if (!parse_count(fields[start_col], beg))
                throw Error(fmt::format("{}: start '{}' is not a non-negative integer", ex.where, fields[start_col]));
            if (!parse_count(fields[end_col], end))
                throw Error(fmt::format("{}: end '{}' is not a non-negative integer", ex.where, fields[end_col]));
            if (end <= beg)
                throw Error(fmt::format("{}: end {} is not after start {} (0-based, half-open)", ex.where, end, beg));
            char strand = '+';
            if (strand_col) {
                const std::string& s = fields[*strand_col];
                if (s != "+" && s != "-" && s != ".")
                    throw Error(fmt::format("{}: strand must be '+', '-' or '.', not '{}'", ex.where, s));
                strand = s[0];
            }
            ex.seq = cut_sequence(ref, references.contigs(), fields[region_col], beg, end, strand, ex.where);
            examples.push_back(std::move(ex));
            labels.push_back(cls);
            ++count;
        }
        if (count == 0) throw Error(fmt::format("{}: no examples (the file has only a header line)", path));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Classes

// Distinct labels, sorted numerically when all are integers, else byte-wise.
std::vector<std::string> derive_classes(const std::vector<std::string>& labels) {
    std::set<std::string> distinct(labels.begin(), labels.end());
    std::vector<std::string> classes(distinct.begin(), distinct.end());
    std::vector<std::pair<long long, std::string>> numeric;
    for (const std::string& c : classes) {
        long long value = 0;
        const auto result = std::from_chars(c.data(), c.data() + c.size(), value);
        if (result.ec != std::errc() || result.ptr != c.data() + c.size()) return classes;
        numeric.emplace_back(value, c);
    }
    std::sort(numeric.begin(), numeric.end());
    for (size_t i = 0; i < numeric.size(); ++i) classes[i] = numeric[i].second;
    return classes;
}

// Sets each example's label id from its raw label. from_train: the classes were derived from the training split.
void assign_labels(std::vector<Example>& examples, const std::vector<std::string>& labels,
                   const std::vector<std::string>& classes, bool from_train) {
    std::unordered_map<std::string, int> ids;
    for (size_t i = 0; i < classes.size(); ++i) ids.emplace(classes[i], static_cast<int>(i));
    for (size_t i = 0; i < examples.size(); ++i) {
        const auto it = ids.find(labels[i]);
        if (it == ids.end())
            throw Error(fmt::format("{}: label '{}' {} (classes: {})", examples[i].where, labels[i],
                                    from_train ? "does not occur in the training split" : "is not one of the classes",
                                    join_list(classes)));
        examples[i].label = it->second;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Splits

// A uniform integer in [0, n) from rng by rejection, the same on every platform (std::uniform_int_distribution's
// algorithm is left to the standard library).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
    const uint64_t max = std::numeric_limits<uint64_t>::max();
    const uint64_t limit = max - max % n;  // a multiple of n
    uint64_t x;
    do {
        x = rng();
    } while (x >= limit);
    return x % n;
}

// Fisher-Yates shuffle driven by rng.
void shuffle(std::vector<size_t>& items, std::mt19937_64& rng) {
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[uniform_below(rng, i)]);
}

// Indices of the examples of each class id, in order. Throws when an example has no class id.
std::vector<std::vector<size_t>> indices_by_class(const std::vector<Example>& examples, const char* caller) {
    std::vector<std::vector<size_t>> by_class;
    for (size_t i = 0; i < examples.size(); ++i) {
        const int label = examples[i].label;
        if (label < 0) throw Error(fmt::format("{}: {}: example has no class id", caller, examples[i].where));
        if (static_cast<size_t>(label) >= by_class.size()) by_class.resize(static_cast<size_t>(label) + 1);
        by_class[static_cast<size_t>(label)].push_back(i);
    }
    return by_class;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------
// Public API

std::vector<Example> read_labelled(const std::string& path, const DatasetOptions& options,
                                   std::vector<std::string>& label_names_out) {
    ReferenceCache references(options);
    std::vector<Example> examples;
    read_any(path, options, references, examples, label_names_out);
    if (!options.classes.empty()) assign_labels(examples, label_names_out, options.classes, false);
    return examples;
}

std::vector<std::string> sequences_of(const std::vector<Example>& examples) {
    std::vector<std::string> out;
    out.reserve(examples.size());
    for (const auto& e : examples) out.push_back(e.seq);
    return out;
}

std::vector<int> labels_of(const std::vector<Example>& examples) {
    std::vector<int> out;
    out.reserve(examples.size());
    for (const auto& e : examples) out.push_back(e.label);
    return out;
}

Dataset load_dataset(const std::string& data, const std::string& valid_path, const std::string& test_path,
                     const DatasetOptions& options) {
    ReferenceCache references(options);
    Dataset dataset;
    std::vector<std::string> train_labels, valid_labels, test_labels;
    std::string train_source = data;  // what the training split is named by in messages
    std::string layout;               // for the description
    std::string valid_name = "valid";

    std::error_code ec;
    if (!fs::exists(data, ec))
        throw Error(fmt::format("cannot open {}: {}", data, ec ? ec.message() : std::strerror(ENOENT)));
    if (fs::is_directory(data, ec)) {
        // GUE / Nucleotide Transformer: train.csv, dev.csv, test.csv.
        const std::vector<std::vector<std::string>> stems = {{"train"}, {"dev", "valid", "validation"}, {"test"}};
        std::vector<std::string> found(3);
        for (size_t s = 0; s < 3; ++s)
            for (const std::string& stem : stems[s])
                for (const char* ext : {".csv", ".csv.gz", ".tsv", ".tsv.gz"}) {
                    const std::string name = stem + ext;
                    if (!fs::is_regular_file(data + "/" + name, ec)) continue;
                    if (!found[s].empty())
                        throw Error(fmt::format("{}: both {} and {} exist; keep one", data, found[s], name));
                    found[s] = name;
                }
        const bool gb_train = fs::is_directory(data + "/train", ec), gb_test = fs::is_directory(data + "/test", ec);
        if (!found[0].empty() || !found[1].empty() || !found[2].empty()) {
            layout = "GUE CSV directory";
            if (found[0].empty() && options.classes.empty())
                throw Error(fmt::format("{}: no train.csv (found {}); the classes come from the training split, so "
                                        "give them explicitly to read only the other splits",
                                        data, found[1].empty() ? found[2] : found[1]));
            if (!found[0].empty()) {
                train_source = data + "/" + found[0];
                read_any(train_source, options, references, dataset.train, train_labels);
            }
            if (!found[1].empty()) {
                valid_name = found[1].substr(0, found[1].find('.'));
                read_any(data + "/" + found[1], options, references, dataset.valid, valid_labels);
            }
            if (!found[2].empty()) read_any(data + "/" + found[2], options, references, dataset.test, test_labels);
        } else if (gb_train || gb_test) {
            // GenomicBenchmarks: sequence files per class, or per-class coordinate files.
            const DirEntries probe = list_dir(data + (gb_train ? "/train" : "/test"));
            const bool sequences = !probe.dirs.empty();
            layout = sequences ? "GenomicBenchmarks sequence directory" : "GenomicBenchmarks coordinate directory";
            if (!gb_train && options.classes.empty())
                throw Error(fmt::format("{}: no train directory; the classes come from the training split, so give "
                                        "them explicitly to read only the test split",
                                        data));
            for (const bool train : {true, false}) {
                if (!(train ? gb_train : gb_test)) continue;
                const std::string dir = data + (train ? "/train" : "/test");
                auto& examples = train ? dataset.train : dataset.test;
                auto& labels = train ? train_labels : test_labels;
                if (sequences)
                    read_gb_sequence_split(dir, examples, labels);
                else
                    read_gb_coordinate_split(dir, references, examples, labels);
                if (train) train_source = dir;
            }
        } else {
            throw Error(fmt::format("{}: not a known dataset layout; looked for train.csv, dev.csv, test.csv (GUE, "
                                    "Nucleotide Transformer; also valid/validation, .tsv, .gz), and train/ and test/ "
                                    "directories holding CLASS/*.txt or CLASS.csv.gz (GenomicBenchmarks)",
                                    data));
        }
    } else {
        const Format format = read_any(data, options, references, dataset.train, train_labels);
        layout = fmt::format("{} file", format_name(format));
    }

    std::vector<std::string> extra;
    if (!valid_path.empty()) {
        const Format format = read_any(valid_path, options, references, dataset.valid, valid_labels);
        extra.push_back(fmt::format("valid from {} file {}", format_name(format), valid_path));
        valid_name = "valid";
    }
    if (!test_path.empty()) {
        const Format format = read_any(test_path, options, references, dataset.test, test_labels);
        extra.push_back(fmt::format("test from {} file {}", format_name(format), test_path));
    }

    // Classes: given, or derived from the training split; then label ids for every split.
    const bool given = !options.classes.empty();
    if (given) {
        const std::set<std::string> distinct(options.classes.begin(), options.classes.end());
        if (distinct.size() != options.classes.size())
            throw Error(fmt::format("the given classes repeat a name ({})", join_list(options.classes)));
        dataset.classes = options.classes;
    } else {
        dataset.classes = derive_classes(train_labels);
    }
    if (!dataset.train.empty()) {
        const std::set<std::string> present(train_labels.begin(), train_labels.end());
        if (present.size() < 2)
            throw Error(fmt::format("{}: the training split has only one class ('{}' in all {} examples); "
                                    "classification needs at least two",
                                    train_source, *present.begin(), dataset.train.size()));
    }
    assign_labels(dataset.train, train_labels, dataset.classes, false);
    assign_labels(dataset.valid, valid_labels, dataset.classes, !given);
    assign_labels(dataset.test, test_labels, dataset.classes, !given);

    std::string counts = fmt::format("train {}", dataset.train.size());
    if (!dataset.valid.empty()) counts += fmt::format(", {} {}", valid_name, dataset.valid.size());
    if (!dataset.test.empty()) counts += fmt::format(", test {}", dataset.test.size());
    dataset.description = fmt::format("{} {} ({})", layout, data, counts);
    for (const std::string& e : extra) dataset.description += "; " + e;
    if (references.opened()) dataset.description += fmt::format("; sequences cut from {}", options.reference);
    dataset.description += fmt::format("; classes {}", join_list(dataset.classes));
    return dataset;
}

void split_valid_fraction(Dataset& dataset, double fraction, uint64_t seed) {
    if (!dataset.valid.empty())
        throw Error(fmt::format("cannot split a validation fraction off the training split: the dataset already has "
                                "a validation split ({} examples)",
                                dataset.valid.size()));
    if (!(fraction > 0.0 && fraction < 1.0))
        throw Error(fmt::format("validation fraction {} is not between 0 and 1", fraction));
    const std::vector<std::vector<size_t>> by_class = indices_by_class(dataset.train, "validation split");
    const size_t n = dataset.train.size();

    // Quotas by largest remainders: floor(fraction * n_c) each, then one more for the classes with the largest
    // fractional parts until the total is round(fraction * n); every class keeps at least one training example.
    const int64_t target = std::llround(fraction * static_cast<double>(n));
    std::vector<size_t> quota(by_class.size());
    std::vector<std::pair<double, size_t>> remainders;  // (-remainder, class) so that sorting puts the largest first
    int64_t assigned = 0;
    for (size_t c = 0; c < by_class.size(); ++c) {
        const double exact = fraction * static_cast<double>(by_class[c].size());
        quota[c] = static_cast<size_t>(std::floor(exact));
        assigned += static_cast<int64_t>(quota[c]);
        if (quota[c] + 1 < by_class[c].size()) remainders.emplace_back(-(exact - std::floor(exact)), c);
    }
    std::sort(remainders.begin(), remainders.end());
    for (size_t i = 0; i < remainders.size() && assigned < target; ++i, ++assigned) ++quota[remainders[i].second];
    if (assigned == 0)
        throw Error(fmt::format("a validation fraction of {} of {} training examples leaves no validation example",
                                fraction, n));

    std::mt19937_64 rng(seed);
    std::vector<bool> to_valid(n, false);
    for (size_t c = 0; c < by_class.size(); ++c) {
        std::vector<size_t> order = by_class[c];
        shuffle(order, rng);
        for (size_t i = 0; i < quota[c]; ++i) to_valid[order[i]] = true;
    }
    std::vector<Example> train;
    train.reserve(n - static_cast<size_t>(assigned));
    dataset.valid.reserve(static_cast<size_t>(assigned));
    for (size_t i = 0; i < n; ++i) (to_valid[i] ? dataset.valid : train).push_back(std::move(dataset.train[i]));
    dataset.train = std::move(train);
}

std::vector<std::pair<std::vector<Example>, std::vector<Example>>> kfold(const std::vector<Example>& train, int k,
                                                                       uint64_t seed) {
    if (k < 2) throw Error(fmt::format("k-fold cross-validation needs k >= 2, not {}", k));
    if (static_cast<size_t>(k) > train.size())
        throw Error(fmt::format("{}-fold cross-validation needs at least {} training examples, not {}", k, k,
                                train.size()));
    const std::vector<std::vector<size_t>> by_class = indices_by_class(train, "k-fold split");
    std::mt19937_64 rng(seed);
    std::vector<int> fold_of(train.size(), 0);
    size_t turn = 0;
    for (const auto& members : by_class) {
        std::vector<size_t> order = members;
        shuffle(order, rng);
        for (size_t i : order) fold_of[i] = static_cast<int>(turn++ % static_cast<size_t>(k));
    }
    std::vector<std::pair<std::vector<Example>, std::vector<Example>>> folds(static_cast<size_t>(k));
    for (size_t i = 0; i < train.size(); ++i)
        for (int f = 0; f < k; ++f) {
            auto& fold = folds[static_cast<size_t>(f)];
            (fold_of[i] == f ? fold.second : fold.first).push_back(train[i]);
        }
    return folds;
}

std::vector<int64_t> class_counts(const std::vector<Example>& examples, size_t n_classes) {
    std::vector<int64_t> counts(n_classes, 0);
    for (const Example& ex : examples) {
        if (ex.label < 0 || static_cast<size_t>(ex.label) >= n_classes)
            throw Error(fmt::format("{}: class id {} is not in 0..{}", ex.where, ex.label,
                                    static_cast<int64_t>(n_classes) - 1));
        ++counts[static_cast<size_t>(ex.label)];
    }
    return counts;
}

} // namespace janusdna
