// Unit tests for the torch-free input layer: tokenizer, FASTA (streaming and faidx), regions, BED and the
// window planner.
#include <doctest/doctest.h>

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <htslib/hts_log.h>

#include "janusdna/delimited.h"
#include "tempdir.h"
#include "janusdna/error.h"
#include "janusdna/fasta.h"
#include "janusdna/regions.h"
#include "janusdna/tokenizer.h"
#include "janusdna/window_plan.h"

using namespace janusdna;

namespace {

const std::string kData = std::string(JANUSDNA_TEST_DATA) + "/io";

using test::TempDir;

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    REQUIRE(out.good());
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

using test::error_of;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::vector<FastaRecord> read_all(const std::string& path) {
    FastaReader reader(path);
    std::vector<FastaRecord> records;
    FastaRecord rec;
    while (reader.next(rec)) records.push_back(rec);
    return records;
}

std::vector<Region> read_bed(const std::string& path) {
    BedReader reader(path);
    std::vector<Region> regions;
    Region region;
    while (reader.next(region)) regions.push_back(region);
    return regions;
}

// Silences htslib's own stderr logging while tests provoke the errors it logs.
struct QuietHtslib {
    enum htsLogLevel saved = hts_get_log_level();
    QuietHtslib() { hts_set_log_level(HTS_LOG_OFF); }
    ~QuietHtslib() { hts_set_log_level(saved); }
};

// Collects warnings so tests can check them.
struct Warnings {
    std::vector<std::string> messages;
    WarnFn fn() {
        return [this](const std::string& m) { messages.push_back(m); };
    }
};

} // namespace

// ---------------------------------------------------------------------------------------------------------
// Tokenizer

TEST_CASE("tokenize: bases in either case, N and every IUPAC code") {
    const Tokens t = tokenize("ACGTacgt", "x.fa", "r");
    CHECK(t.ids == std::vector<int64_t>{7, 8, 9, 10, 7, 8, 9, 10});
    CHECK(t.scored == std::vector<uint8_t>(8, 1));

    const std::string ambiguous = "NRYSWKMBDHVnryswkmbdhv";
    const Tokens a = tokenize(ambiguous, "x.fa", "r");
    CHECK(a.ids == std::vector<int64_t>(ambiguous.size(), kPadId));
    CHECK(a.scored == std::vector<uint8_t>(ambiguous.size(), 0));

    CHECK(tokenize("", "x.fa", "r").ids.empty());

    // Exactly the 8 bases and 22 ambiguity bytes are accepted; everything else is an error.
    int accepted = 0;
    for (int c = 0; c < 256; ++c) {
        const std::string one(1, static_cast<char>(c));
        if (error_of([&] { tokenize(one, "x.fa", "r"); }) == "(no error)") ++accepted;
    }
    CHECK(accepted == 30);
}

TEST_CASE("tokenize: error names the source, record, 1-based position and character") {
    CHECK(error_of([] { tokenize("ACGTACGTACG5", "in.fa", "chr1"); }) ==
          "in.fa: record \"chr1\": invalid character '5' at position 12");
    // first_pos: the slice starts at base 100 of the record.
    CHECK(error_of([] { tokenize("AC-", "in.fa", "chr1", 100); }) ==
          "in.fa: record \"chr1\": invalid character '-' at position 102");
    CHECK(error_of([] { tokenize("A\x01", "in.fa", "chr1"); }) ==
          "in.fa: record \"chr1\": invalid character '\\x01' at position 2");
    CHECK(error_of([] { tokenize("\xff", "in.fa", "r"); }) == "in.fa: record \"r\": invalid character '\\xFF' at position 1");
    CHECK(contains(error_of([] { tokenize("AU", "in.fa", "r"); }), "'U' at position 2"));
    CHECK(contains(error_of([] { tokenize("A C", "in.fa", "r"); }), "' ' at position 2"));
}

TEST_CASE("base_of_id and reverse_complement") {
    const std::string bases = "ACGT";
    for (char b : bases) CHECK(base_of_id(tokenize(std::string(1, b), "x", "r").ids[0]) == b);
    CHECK(base_of_id(kPadId) == 'N');
    CHECK(base_of_id(11) == 'N');
    CHECK(base_of_id(0) == 'N');

    CHECK(reverse_complement("") == "");
    CHECK(reverse_complement("AACGTt") == "aACGTT");
    CHECK(reverse_complement("ACGTRYKMBVDHSWN") == "NWSDHBVKMRYACGT");
    CHECK(reverse_complement("acgtrykmbvdhswn") == "nwsdhbvkmryacgt");
    CHECK(reverse_complement("A-5") == "5-T");  // other bytes kept, for the tokenizer to report
    // An involution on every byte.
    std::string all;
    for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
    CHECK(reverse_complement(reverse_complement(all)) == all);
    // Ids of the reverse complement are the complemented ids reversed (7<->10, 8<->9).
    const Tokens fwd = tokenize("ACCGTN", "x", "r");
    const Tokens rev = tokenize(reverse_complement("ACCGTN"), "x", "r");
    for (size_t i = 0; i < fwd.ids.size(); ++i) {
        const int64_t id = fwd.ids[fwd.ids.size() - 1 - i];
        CHECK(rev.ids[i] == (id == kPadId ? kPadId : 17 - id));
    }
}

// ---------------------------------------------------------------------------------------------------------
// FastaReader

TEST_CASE("FastaReader: plain, bgzip and gzip give the same records") {
    const auto plain = read_all(kData + "/ref.fa");
    REQUIRE(plain.size() == 3);
    CHECK(plain[0].name == "20");
    CHECK(plain[0].comment == "GRCh37 chr20:1000001-1002000");
    CHECK(plain[0].seq.size() == 2000);
    CHECK(plain[0].line == 1);
    CHECK(plain[0].seq.substr(0, 10) == "TGGGAGAGAA");
    CHECK(plain[1].name == "HLA-DRB1*12:17");
    CHECK(plain[1].comment == "");
    CHECK(plain[1].seq.size() == 130);
    CHECK(plain[1].line == 36);
    CHECK(plain[2].name == "MT");
    CHECK(plain[2].comment == "mitochondrion");
    CHECK(plain[2].seq.size() == 75);
    for (const auto& path : {kData + "/ref.fa.gz", kData + "/ref.gzip.fa.gz"}) {
        const auto other = read_all(path);
        REQUIRE(other.size() == plain.size());
        for (size_t i = 0; i < plain.size(); ++i) {
            CHECK(other[i].name == plain[i].name);
            CHECK(other[i].comment == plain[i].comment);
            CHECK(other[i].seq == plain[i].seq);
            CHECK(other[i].line == plain[i].line);
        }
    }
}

TEST_CASE("FastaReader: wrapped lines, CRLF, blank lines, empty records, spaces") {
    TempDir dir;
    const std::string path = dir.file("multi.fa");
    write_file(path, "\n>a  first record \r\nAC\r\nGt\r\n\r\n>b\r\n>c\tx y\nNN N\n acg\n\n>d\nT");
    const auto recs = read_all(path);
    REQUIRE(recs.size() == 4);
    CHECK(recs[0].name == "a");
    CHECK(recs[0].comment == "first record");
    CHECK(recs[0].seq == "ACGt");
    CHECK(recs[0].line == 2);
    CHECK(recs[1].name == "b");
    CHECK(recs[1].seq == "");  // allowed: the caller reports it
    CHECK(recs[1].line == 6);
    CHECK(recs[2].name == "c");
    CHECK(recs[2].comment == "x y");
    CHECK(recs[2].seq == "NNNacg");
    CHECK(recs[3].seq == "T");  // no final newline
    CHECK(recs[3].line == 11);

    // next() keeps returning false at the end.
    FastaReader reader(path);
    FastaRecord rec;
    int n = 0;
    while (reader.next(rec)) ++n;
    CHECK(n == 4);
    CHECK_FALSE(reader.next(rec));
    CHECK(rec.name == "d");
}

TEST_CASE("FastaReader: errors name the file") {
    QuietHtslib quiet;
    TempDir dir;
    const auto fails = [](const std::string& path) { return error_of([&] { read_all(path); }); };

    CHECK(fails(dir.file("missing.fa")) == "cannot open " + dir.file("missing.fa") + ": No such file or directory");
    CHECK(fails(dir.path) == "cannot open " + dir.path + ": is a directory");

    write_file(dir.file("empty.fa"), "");
    CHECK(fails(dir.file("empty.fa")) == dir.file("empty.fa") + ": no FASTA records");
    write_file(dir.file("blank.fa"), "\n  \n\t\n");
    CHECK(fails(dir.file("blank.fa")) == dir.file("blank.fa") + ": no FASTA records");

    write_file(dir.file("binary.fa"), std::string("\x7f" "ELF\x02\x01\x00\x00\xff\xfe", 10));
    CHECK(fails(dir.file("binary.fa")) == dir.file("binary.fa") + ": not a FASTA file (line 1 does not start with '>')");
    write_file(dir.file("reads.fq"), "\n@r1\nACGT\n+\nIIII\n");
    CHECK(fails(dir.file("reads.fq")) == dir.file("reads.fq") + ": not a FASTA file (line 2 does not start with '>')");

    write_file(dir.file("noname.fa"), ">a\nAC\n> b\nGT\n");
    CHECK(fails(dir.file("noname.fa")) == dir.file("noname.fa") + ":3: FASTA header with an empty name");

    // Truncated compressed streams: gzip cut in the middle, bgzip cut inside a block, and bgzip cut exactly
    // at a block boundary (only the missing end-of-file marker shows that).
    const std::string gzip = read_file(kData + "/ref.gzip.fa.gz");
    write_file(dir.file("cut.fa.gz"), gzip.substr(0, gzip.size() / 2));
    CHECK(fails(dir.file("cut.fa.gz")) == dir.file("cut.fa.gz") + ": truncated or corrupt compressed file");
    write_file(dir.file("cut-tail.fa.gz"), gzip.substr(0, gzip.size() - 4));
    CHECK(fails(dir.file("cut-tail.fa.gz")) == dir.file("cut-tail.fa.gz") + ": truncated or corrupt compressed file");
    const std::string bgzf = read_file(kData + "/ref.fa.gz");
    write_file(dir.file("cut.bgz.fa.gz"), bgzf.substr(0, bgzf.size() / 2));
    CHECK(contains(fails(dir.file("cut.bgz.fa.gz")), ": truncated or corrupt compressed file"));
    write_file(dir.file("noeof.fa.gz"), bgzf.substr(0, bgzf.size() - 28));
    CHECK(fails(dir.file("noeof.fa.gz")) ==
          dir.file("noeof.fa.gz") + ": truncated or corrupt compressed file (no bgzip end-of-file marker)");
    // A corrupt byte inside the deflate data.
    std::string corrupt = gzip;
    corrupt[corrupt.size() / 2] ^= 0x55;
    write_file(dir.file("corrupt.fa.gz"), corrupt);
    CHECK(contains(fails(dir.file("corrupt.fa.gz")), "truncated or corrupt compressed file"));
}

// ---------------------------------------------------------------------------------------------------------
// Reference

TEST_CASE("Reference: plain and bgzipped, fetch equals the streamed sequence") {
    const auto records = read_all(kData + "/ref.fa");
    for (const auto& path : {kData + "/ref.fa", kData + "/ref.fa.gz"}) {
        Warnings warnings;
        const Reference ref = Reference::open(path, warnings.fn());
        CHECK(warnings.messages.empty());  // indexes are committed
        CHECK(ref.path() == path);
        CHECK(ref.contigs() == std::vector<std::string>{"20", "HLA-DRB1*12:17", "MT"});
        CHECK(ref.length("20") == 2000);
        CHECK(ref.length("MT") == 75);
        CHECK(ref.length("chr20") == -1);
        CHECK(ref.has("HLA-DRB1*12:17"));
        CHECK_FALSE(ref.has("HLA"));
        std::mt19937_64 rng(1);
        for (const auto& rec : records) {
            const int64_t len = static_cast<int64_t>(rec.seq.size());
            CHECK(ref.fetch(rec.name, 0, len) == rec.seq);
            CHECK(ref.fetch(rec.name, len, len) == "");
            for (int i = 0; i < 50; ++i) {
                int64_t a = static_cast<int64_t>(rng() % (len + 1)), b = static_cast<int64_t>(rng() % (len + 1));
                if (a > b) std::swap(a, b);
                CHECK(ref.fetch(rec.name, a, b) == rec.seq.substr(a, b - a));
            }
        }
        CHECK(ref.fetch("HLA-DRB1*12:17", 0, 130) == records[1].seq);  // case kept

        CHECK(contains(error_of([&] { ref.fetch("chr20", 0, 1); }), "contig \"chr20\" not in " + path));
        CHECK(error_of([&] { ref.fetch("20", 10, 2001); }) == path + ": interval [10, 2001) is outside contig \"20\" (2000 bp)");
        CHECK(contains(error_of([&] { ref.fetch("20", -1, 5); }), "is outside contig"));
        CHECK(contains(error_of([&] { ref.fetch("20", 6, 5); }), "is outside contig"));
    }
}

TEST_CASE("Reference: builds a missing index with a warning") {
    TempDir dir;
    const std::string plain = dir.file("ref.fa");
    write_file(plain, read_file(kData + "/ref.fa"));
    Warnings warnings;
    {
        const Reference ref = Reference::open(plain, warnings.fn());
        CHECK(ref.fetch("MT", 0, 75) == read_all(plain)[2].seq);
    }
    CHECK(warnings.messages == std::vector<std::string>{"building index " + plain + ".fai"});
    CHECK(read_file(plain + ".fai") == read_file(kData + "/ref.fa.fai"));
    Reference::open(plain, warnings.fn());
    CHECK(warnings.messages.size() == 1);  // no rebuild

    const std::string bgzf = dir.file("ref.fa.gz");
    write_file(bgzf, read_file(kData + "/ref.fa.gz"));
    warnings.messages.clear();
    Reference ref = Reference::open(bgzf, warnings.fn());
    CHECK(warnings.messages == std::vector<std::string>{"building index " + bgzf + ".fai and " + bgzf + ".gzi"});
    CHECK(std::filesystem::exists(bgzf + ".gzi"));
    CHECK(ref.fetch("20", 1000, 1010) == read_all(plain)[0].seq.substr(1000, 10));

    // Moving keeps the index usable.
    Reference moved = std::move(ref);
    CHECK(moved.length("20") == 2000);
    CHECK(moved.fetch("20", 0, 3) == "TGG");
}

TEST_CASE("Reference: errors") {
    QuietHtslib quiet;
    TempDir dir;
    CHECK(error_of([&] { Reference::open(dir.file("none.fa")); }) ==
          "cannot open " + dir.file("none.fa") + ": No such file or directory");

    const std::string gzip = dir.file("ref.fa.gz");
    write_file(gzip, read_file(kData + "/ref.gzip.fa.gz"));
    CHECK(contains(error_of([&] { Reference::open(gzip); }),
                   "cannot index " + gzip + ": compressed with gzip, not bgzip: recompress with bgzip"));

    write_file(dir.file("empty.fa"), "");
    CHECK(error_of([&] { Reference::open(dir.file("empty.fa")); }) == dir.file("empty.fa") + ": no FASTA records");
    write_file(dir.file("x.bed"), "20\t1\t2\n");
    CHECK(contains(error_of([&] { Reference::open(dir.file("x.bed")); }), ": not a FASTA file"));

    // Lines of unequal length inside a record cannot be indexed (htslib also logs why on stderr).
    write_file(dir.file("ragged.fa"), ">a\nACGT\nAC\nACGT\n");
    CHECK(contains(error_of([&] { Reference::open(dir.file("ragged.fa")); }), "cannot index " + dir.file("ragged.fa")));
}

TEST_CASE("Reference: missing contig message") {
    const Reference ref = Reference::open(kData + "/ref.fa");
    const std::string path = kData + "/ref.fa";
    CHECK(ref.missing_contig_message("chr20") ==
          "contig \"chr20\" not in " + path +
              " (it has: 20, HLA-DRB1*12:17, MT); did you mean \"20\"? (add or remove the \"chr\" prefix, e.g. "
              "with --chr-prefix or a rename map)");
    CHECK(contains(ref.missing_contig_message("chrM"), "did you mean \"MT\"? (rename the contigs"));
    CHECK(contains(ref.missing_contig_message("mt"), "did you mean \"MT\"?"));
    CHECK(ref.missing_contig_message("chrX") == "contig \"chrX\" not in " + path + " (it has: 20, HLA-DRB1*12:17, MT)");

    TempDir dir;
    std::string many;
    for (const char* name : {"chr1", "chr2", "chr3", "chr4", "chr5", "chr6", "chrM"}) many += std::string(">") + name + "\nACGT\n";
    write_file(dir.file("many.fa"), many);
    const Reference big = Reference::open(dir.file("many.fa"));
    CHECK(big.missing_contig_message("1") == "contig \"1\" not in " + dir.file("many.fa") +
                                                 " (it has: chr1, chr2, chr3, chr4, chr5, ... (7 contigs)); did you "
                                                 "mean \"chr1\"? (add or remove the \"chr\" prefix, e.g. with "
                                                 "--chr-prefix or a rename map)");
    CHECK(contains(big.missing_contig_message("MT"), "did you mean \"chrM\"?"));
}

// ---------------------------------------------------------------------------------------------------------
// parse_region and check_region

TEST_CASE("parse_region: all forms") {
    const Reference ref = Reference::open(kData + "/ref.fa");
    Warnings warnings;
    const auto parse = [&](const std::string& text) { return parse_region(text, ref, warnings.fn()); };

    Region r = parse("20");
    CHECK(r.contig == "20");
    CHECK(r.beg == 0);
    CHECK(r.end == 2000);
    CHECK(r.name == "20:1-2000");
    CHECK(r.strand == '+');

    r = parse("20:1000-2000");
    CHECK((r.beg == 999 && r.end == 2000));
    r = parse("20:1,000-1,500");
    CHECK((r.beg == 999 && r.end == 1500));
    CHECK(r.name == "20:1000-1500");
    r = parse("20:5-5");
    CHECK((r.beg == 4 && r.end == 5));
    r = parse("20:100");  // samtools: to the end of the contig
    CHECK((r.beg == 99 && r.end == 2000));
    r = parse("20:-100");
    CHECK((r.beg == 0 && r.end == 100));

    r = parse("{HLA-DRB1*12:17}:1-100");
    CHECK(r.contig == "HLA-DRB1*12:17");
    CHECK((r.beg == 0 && r.end == 100));
    r = parse("HLA-DRB1*12:17:11-20");  // no braces needed when unambiguous
    CHECK(r.contig == "HLA-DRB1*12:17");
    CHECK((r.beg == 10 && r.end == 20));
    r = parse("HLA-DRB1*12:17");
    CHECK((r.contig == "HLA-DRB1*12:17" && r.beg == 0 && r.end == 130));
    CHECK(warnings.messages.empty());

    r = parse("20:1900-2,500");
    CHECK((r.beg == 1899 && r.end == 2000));
    CHECK(warnings.messages == std::vector<std::string>{"region 20:1900-2,500 extends past the end of contig (2000 bp); clipped"});
    parse_region("MT:70-80", ref);  // no warn callback: fine
}

TEST_CASE("parse_region: errors") {
    QuietHtslib quiet;
    const Reference ref = Reference::open(kData + "/ref.fa");
    const auto fails = [&](const std::string& text) { return error_of([&] { parse_region(text, ref, {}); }); };
    CHECK(fails("20:200-100") == "invalid region \"20:200-100\": empty (start 200 is after end 100)");
    CHECK(fails("20:2001-2100") == "invalid region \"20:2001-2100\": starts past the end of contig \"20\" (2000 bp)");
    CHECK(fails("chr20:1-10") == "invalid region \"chr20:1-10\": " + ref.missing_contig_message("chr20"));
    CHECK(fails("chrX") == "invalid region \"chrX\": " + ref.missing_contig_message("chrX"));
    CHECK(contains(fails("20:abc"), "cannot parse the coordinates"));
    CHECK(contains(fails("20:1-2x"), "cannot parse the coordinates"));
    CHECK(contains(fails("20:-5-10"), "cannot parse the coordinates"));
    CHECK(fails("{20:1-5") == "invalid region \"{20:1-5\": mismatched braces");
    CHECK(fails("20:0-100") == "invalid region \"20:0-100\": positions are 1-based, start must be >= 1");
    CHECK(contains(fails(""), "invalid region \"\""));

    TempDir dir;
    write_file(dir.file("amb.fa"), ">a\nACGT\n>a:1-2\nACGT\n");
    const Reference amb = Reference::open(dir.file("amb.fa"));
    CHECK(contains(error_of([&] { parse_region("a:1-2", amb); }), "ambiguous"));
    CHECK(parse_region("{a:1-2}", amb).contig == "a:1-2");
    CHECK(parse_region("{a}:1-2", amb).end == 2);
}

TEST_CASE("check_region") {
    const Reference ref = Reference::open(kData + "/ref.fa");
    Warnings warnings;
    Region r{"20", 10, 20, "x", '-'};
    check_region(r, ref, "a.bed:1", warnings.fn());
    CHECK((r.beg == 10 && r.end == 20));
    r = Region{"20", 1990, 2100, "x", '+'};
    check_region(r, ref, "a.bed:2", warnings.fn());
    CHECK(r.end == 2000);
    CHECK(warnings.messages ==
          std::vector<std::string>{"a.bed:2: region 20:1991-2100 extends past the end of contig (2000 bp); clipped"});
    r = Region{"chr20", 0, 5, "x", '+'};
    CHECK(error_of([&] { check_region(r, ref, "a.bed:3", {}); }) == "a.bed:3: " + ref.missing_contig_message("chr20"));
    r = Region{"MT", 75, 80, "x", '+'};
    CHECK(error_of([&] { check_region(r, ref, "a.bed:4", {}); }) ==
          "a.bed:4: region MT:76-80 starts past the end of contig (75 bp)");
}

// ---------------------------------------------------------------------------------------------------------
// BedReader

TEST_CASE("BedReader: plain and gzipped") {
    for (const auto& path : {kData + "/regions.bed", kData + "/regions.bed.gz"}) {
        BedReader reader(path);
        std::vector<Region> regions;
        std::vector<int64_t> lines;
        Region region;
        while (reader.next(region)) {
            regions.push_back(region);
            lines.push_back(reader.line_number());
        }
        REQUIRE(regions.size() == 4);
        CHECK(lines == std::vector<int64_t>{3, 5, 7, 8});
        CHECK((regions[0].contig == "20" && regions[0].beg == 0 && regions[0].end == 100));
        CHECK(regions[0].name == "20:1-100");
        CHECK(regions[0].strand == '+');
        CHECK((regions[1].beg == 100 && regions[1].end == 250 && regions[1].name == "promoter"));
        CHECK(regions[1].strand == '-');
        CHECK((regions[2].name == "past_end" && regions[2].strand == '.' && regions[2].end == 2100));
        CHECK((regions[3].contig == "MT" && regions[3].name == "mt" && regions[3].strand == '+'));

        const Reference ref = Reference::open(kData + "/ref.fa");
        Warnings warnings;
        check_region(regions[2], ref, reader.display_name() + ":7", warnings.fn());
        CHECK(regions[2].end == 2000);
        CHECK(warnings.messages.size() == 1);
        CHECK(contains(warnings.messages[0], path + ":7: region 20:1991-2100 extends past the end"));
    }
}

TEST_CASE("BedReader: errors name FILE:LINE") {
    QuietHtslib quiet;
    TempDir dir;
    const std::string path = dir.file("bad.bed");
    const auto fails = [&](const std::string& bad_line) {
        write_file(path, "# header\n20\t0\t10\n" + bad_line + "\n");
        return error_of([&] { read_bed(path); });
    };
    const std::string at = path + ":3: ";
    CHECK(fails("20\t5") == at + "expected at least 3 tab-separated columns (contig, start, end), found 2");
    CHECK(fails("20 5 10") == at + "expected at least 3 tab-separated columns (contig, start, end), found 1 "
                                   "(columns must be separated by tabs, not spaces)");
    CHECK(fails("20\tx\t10") == at + "start 'x' is not a non-negative integer");
    CHECK(fails("20\t1.5\t10") == at + "start '1.5' is not a non-negative integer");
    CHECK(fails("20\t\t10") == at + "start '' is not a non-negative integer");
    CHECK(fails("20\t5\t1e3") == at + "end '1e3' is not a non-negative integer");
    CHECK(fails("20\t-5\t10") == at + "negative start -5");
    CHECK(fails("20\t5\t-10") == at + "negative end -10");
    CHECK(fails("20\t5\t99999999999999999999") == at + "end 99999999999999999999 is too large");
    CHECK(fails("20\t10\t5") == at + "end 5 is before start 10");
    CHECK(fails("20\t10\t10") == at + "empty interval (start = end = 10; BED is 0-based, half-open)");
    CHECK(fails("20\t1\t5\tn\t0\t*") == at + "strand must be '+', '-' or '.', not '*'");
    CHECK(fails("20\t1\t5\tn\t0\t") == at + "strand must be '+', '-' or '.', not ''");
    CHECK(fails("\t1\t5") == at + "empty contig name");

    CHECK(error_of([&] { BedReader reader(dir.file("none.bed")); }) ==
          "cannot open " + dir.file("none.bed") + ": No such file or directory");
    const std::string gz = read_file(kData + "/regions.bed.gz");
    write_file(dir.file("cut.bed.gz"), gz.substr(0, gz.size() - 6));
    CHECK(error_of([&] { read_bed(dir.file("cut.bed.gz")); }) == dir.file("cut.bed.gz") + ": truncated or corrupt compressed file");

    write_file(dir.file("empty.bed"), "");
    CHECK(read_bed(dir.file("empty.bed")).empty());
}

// ---------------------------------------------------------------------------------------------------------
// Window planner

namespace {

// Checks every invariant of plan_windows, with the ownership rule checked by brute force over an
// independently generated list of candidate windows.
void check_plan(int64_t beg, int64_t end, int64_t contig_len, int64_t window, int64_t stride, int64_t flank) {
    CAPTURE(beg);
    CAPTURE(end);
    CAPTURE(contig_len);
    CAPTURE(window);
    CAPTURE(stride);
    CAPTURE(flank);
    const auto plan = plan_windows(beg, end, contig_len, window, stride, flank);
    REQUIRE(!plan.empty());
    const int64_t ext_beg = std::max<int64_t>(0, beg - flank);
    const int64_t ext_end = flank >= contig_len - end ? contig_len : end + flank;

    if (window == 0 || ext_end - ext_beg <= window) {
        REQUIRE(plan.size() == 1);
        CHECK(plan[0].beg == ext_beg);
        CHECK(plan[0].end == ext_end);
        CHECK(plan[0].own_beg == beg);
        CHECK(plan[0].own_end == end);
        return;
    }

    // Candidates: ext_beg + k*S while they end before ext_end, then one ending exactly at ext_end.
    const int64_t s = stride ? stride : std::max<int64_t>(1, window / 2);
    std::vector<int64_t> starts;
    for (int64_t k = 0; ext_beg + k * s + window < ext_end; ++k) starts.push_back(ext_beg + k * s);
    starts.push_back(ext_end - window);
    // Together they cover the extended interval.
    for (int64_t x = ext_beg; x < ext_end; ++x) {
        bool covered = false;
        for (int64_t b : starts) covered = covered || (b <= x && x < b + window);
        REQUIRE(covered);
    }

    int64_t expected_own_beg = beg;
    for (size_t i = 0; i < plan.size(); ++i) {
        const Window& w = plan[i];
        CHECK(w.end - w.beg == window);
        CHECK(w.beg >= 0);
        CHECK(w.end <= contig_len);
        CHECK(std::find(starts.begin(), starts.end(), w.beg) != starts.end());
        if (i > 0) CHECK(w.beg > plan[i - 1].beg);
        CHECK(w.own_beg == expected_own_beg);  // contiguous, in order
        CHECK(w.own_beg < w.own_end);
        CHECK(w.beg <= w.own_beg);
        CHECK(w.own_end <= w.end);
        expected_own_beg = w.own_end;
    }
    CHECK(expected_own_beg == end);

    // Most central rule, ties to the earlier window.
    size_t k = 0;
    for (int64_t x = beg; x < end; ++x) {
        while (x >= plan[k].own_end) ++k;
        int64_t best_start = -1, best = -1;
        for (int64_t b : starts) {
            if (x < b || x >= b + window) continue;
            const int64_t centrality = std::min(x - b, b + window - 1 - x);
            if (centrality > best) {
                best = centrality;
                best_start = b;
            }
        }
        REQUIRE(plan[k].beg == best_start);
    }
}

} // namespace

TEST_CASE("plan_windows: edge cases") {
    // One base.
    check_plan(5, 6, 10, 4, 0, 0);
    check_plan(5, 6, 10, 4, 2, 100);
    CHECK(plan_windows(5, 6, 10, 4, 0, 0).size() == 1);
    // Region = whole short contig, contig shorter than the window.
    const auto whole = plan_windows(0, 7, 7, 100, 0, 50);
    REQUIRE(whole.size() == 1);
    CHECK((whole[0].beg == 0 && whole[0].end == 7 && whole[0].own_beg == 0 && whole[0].own_end == 7));
    // W = 0: one pass with flanks, clipped at the contig ends.
    const auto one = plan_windows(100, 200, 250, 0, 0, 80);
    REQUIRE(one.size() == 1);
    CHECK((one[0].beg == 20 && one[0].end == 250 && one[0].own_beg == 100 && one[0].own_end == 200));
    // W = 1: every base its own window, flank-only windows dropped.
    const auto single = plan_windows(3, 8, 10, 1, 0, 2);
    REQUIRE(single.size() == 5);
    for (size_t i = 0; i < single.size(); ++i)
        CHECK((single[i].beg == 3 + static_cast<int64_t>(i) && single[i].end == single[i].beg + 1 &&
               single[i].own_beg == single[i].beg && single[i].own_end == single[i].end));
    // A worked example: W=10, S=5 over [0, 22): starts 0, 5, 10, 12. Base 7 is 2 bases from an edge in both
    // [0, 10) and [5, 15): the tie goes to the earlier window, so ownership changes at 8, 13 and 16.
    const auto tiled = plan_windows(0, 22, 22, 10, 5, 0);
    REQUIRE(tiled.size() == 4);
    CHECK((tiled[0].beg == 0 && tiled[0].own_beg == 0 && tiled[0].own_end == 8));
    CHECK((tiled[1].beg == 5 && tiled[1].own_end == 13));
    CHECK((tiled[2].beg == 10 && tiled[2].own_end == 16));
    CHECK((tiled[3].beg == 12 && tiled[3].end == 22 && tiled[3].own_end == 22));
    // Regions at the contig start and end.
    check_plan(0, 30, 100, 16, 0, 10);
    check_plan(70, 100, 100, 16, 0, 10);
    check_plan(0, 100, 100, 16, 16, 0);
    check_plan(0, 100, 100, 16, 1, 0);
    // A huge flank does not overflow.
    check_plan(10, 20, 50, 8, 4, INT64_MAX);
    // A chromosome-sized region is cheap (windows, not bases, are enumerated): starts 0, 65536, ... below
    // 250e6 - 131072 (3813 of them) plus the one shifted back to end at 250e6.
    CHECK(plan_windows(0, 250'000'000, 250'000'000, 131072, 0, 0).size() == 3814);
}

TEST_CASE("plan_windows: invalid arguments") {
    CHECK(contains(error_of([] { plan_windows(5, 5, 10, 4, 0, 0); }), "empty region"));
    CHECK(contains(error_of([] { plan_windows(6, 5, 10, 4, 0, 0); }), "empty region"));
    CHECK(contains(error_of([] { plan_windows(-1, 5, 10, 4, 0, 0); }), "outside the contig"));
    CHECK(contains(error_of([] { plan_windows(0, 11, 10, 4, 0, 0); }), "outside the contig"));
    CHECK(contains(error_of([] { plan_windows(0, 5, 10, -1, 0, 0); }), "negative window"));
    CHECK(contains(error_of([] { plan_windows(0, 5, 10, 4, -1, 0); }), "negative stride"));
    CHECK(contains(error_of([] { plan_windows(0, 5, 10, 4, 0, -1); }), "negative flank"));
    CHECK(contains(error_of([] { plan_windows(0, 5, 10, 4, 5, 0); }), "stride 5 is larger than the window 4"));
    CHECK_NOTHROW(plan_windows(0, 5, 10, 0, 7, 0));  // W = 0 ignores the stride
}

TEST_CASE("plan_windows: random invariants") {
    std::mt19937_64 rng(12345);
    const auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
    for (int iter = 0; iter < 20000; ++iter) {
        const int64_t contig_len = uniform(1, iter % 10 == 0 ? 2000 : 200);
        const int64_t beg = uniform(0, contig_len - 1);
        const int64_t end = uniform(beg + 1, std::min(contig_len, beg + uniform(1, contig_len)));
        const int64_t window = uniform(0, 3) == 0 ? uniform(0, 3) : uniform(0, 80);
        const int64_t stride = window == 0 ? uniform(0, 5) : uniform(0, window);
        const int64_t flank = uniform(0, 3) == 0 ? 0 : uniform(0, 100);
        check_plan(beg, end, contig_len, window, stride, flank);
    }
}

TEST_CASE("plan_grid: the contig's windows, whatever the region") {
    // Worked example: W=10, S=5 on a 22 bp contig: starts 0, 5, 10, 12 as plan_windows over the whole contig.
    const auto g = plan_grid(9, 14, 22, 10, 5);
    REQUIRE(g.size() == 2);
    CHECK((g[0].beg == 5 && g[0].end == 15 && g[0].own_beg == 9 && g[0].own_end == 13));
    CHECK((g[1].beg == 10 && g[1].end == 20 && g[1].own_beg == 13 && g[1].own_end == 14));
    const Window w = grid_window(20, 22, 10, 5);
    CHECK((w.beg == 12 && w.end == 22 && w.own_beg == 16 && w.own_end == 22));
    // Contig shorter than the window: one window over it all.
    const auto small = plan_grid(3, 4, 7, 100, 50);
    REQUIRE(small.size() == 1);
    CHECK((small[0].beg == 0 && small[0].end == 7 && small[0].own_beg == 3 && small[0].own_end == 4));
    // A few bases deep in a chromosome-sized contig: windows, not bases, are enumerated.
    const auto deep = plan_grid(200'000'000, 200'000'010, 250'000'000, 1024, 768);
    REQUIRE(deep.size() == 1);
    CHECK(deep[0].beg % 768 == 0);

    CHECK(contains(error_of([] { plan_grid(5, 5, 10, 4, 2); }), "empty region"));
    CHECK(contains(error_of([] { plan_grid(0, 11, 10, 4, 2); }), "outside the contig"));
    CHECK(contains(error_of([] { plan_grid(0, 5, 10, 1, 1); }), "at least 2"));
    CHECK(contains(error_of([] { plan_grid(0, 5, 10, 4, 0); }), "stride must be positive"));
    CHECK(contains(error_of([] { plan_grid(0, 5, 10, 4, 5); }), "stride 5 is larger than the window 4"));
    CHECK(contains(error_of([] { grid_window(10, 10, 4, 2); }), "outside the contig"));

    // Random: the grid over [beg, end) is plan_windows over the whole contig restricted to [beg, end), and
    // grid_window gives each base's owner.
    std::mt19937_64 rng(777);
    const auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
    for (int iter = 0; iter < 5000; ++iter) {
        const int64_t len = uniform(1, iter % 10 == 0 ? 3000 : 300);
        const int64_t W = uniform(2, 120), S = uniform(1, W);
        const int64_t beg = uniform(0, len - 1), end = uniform(beg + 1, len);
        CAPTURE(len); CAPTURE(W); CAPTURE(S); CAPTURE(beg); CAPTURE(end);
        const auto whole = plan_windows(0, len, len, W, S, 0);
        const auto part = plan_grid(beg, end, len, W, S);
        std::vector<Window> want;
        for (Window x : whole) {
            x.own_beg = std::max(x.own_beg, beg);
            x.own_end = std::min(x.own_end, end);
            if (x.own_beg < x.own_end) want.push_back(x);
        }
        REQUIRE(part.size() == want.size());
        for (size_t i = 0; i < want.size(); ++i)
            CHECK((part[i].beg == want[i].beg && part[i].end == want[i].end && part[i].own_beg == want[i].own_beg &&
                   part[i].own_end == want[i].own_end));
        const int64_t x = uniform(0, len - 1);
        const Window o = grid_window(x, len, W, S);
        CHECK((o.beg <= x && x < o.end && o.own_beg <= x && x < o.own_end));
        // Every owned base has at least floor((L - S) / 2) bases of context on each side, or the contig end.
        const int64_t L = std::min(W, len), c = std::max<int64_t>(0, (L - S) / 2);
        CHECK((x - o.beg >= c || o.beg == 0));
        CHECK((o.end - 1 - x >= c || o.end == len));
    }
}

// ---------------------------------------------------------------------------------------------------------
// Region lists and contig matching (the -r, --chr-prefix and --rename-chrs every subcommand shares)

TEST_CASE("split_region_list: commas separate regions, except inside a coordinate") {
    const Reference ref = Reference::open(kData + "/ref.fa");  // contigs 20, HLA-DRB1*12:17, MT
    using V = std::vector<std::string>;
    CHECK(split_region_list("20:1-5,20:9-12", ref) == V{"20:1-5", "20:9-12"});
    CHECK(split_region_list("20,MT", ref) == V{"20", "MT"});
    CHECK(split_region_list("20:1,000-1,500", ref) == V{"20:1,000-1,500"});
    CHECK(split_region_list("20:1,000-1,500,MT:2-3", ref) == V{"20:1,000-1,500", "MT:2-3"});
    CHECK(split_region_list("20:1-100,20", ref) == V{"20:1-100", "20"});  // "20" names a contig: a region
    CHECK(split_region_list("20:1-100,200", ref) == V{"20:1-100,200"});  // "200" does not: digits of the end
    CHECK(error_of([&] { split_region_list("20:1-5,,20:9-12", ref); }).find("empty region") != std::string::npos);
    // Every piece parses, and the list equals the regions given one by one.
    const std::vector<Region> a = collect_regions({"20:1-5,20:9-12"}, "", ref, ContigMatcher(), {});
    const std::vector<Region> b = collect_regions({"20:1-5", "20:9-12"}, "", ref, ContigMatcher(), {});
    REQUIRE(a.size() == 2);
    CHECK((a[0].beg == b[0].beg && a[0].end == b[0].end && a[1].beg == b[1].beg && a[1].end == b[1].end));
}

TEST_CASE("ContigMatcher: exact, rename map, then the chr prefix") {
    const Reference ref = Reference::open(kData + "/ref.fa");
    TempDir dir;
    const std::string map = dir.path + "/map.txt";
    std::ofstream(map) << "# comment\nchrTwenty 20\nmito\tchrM\n";
    const ContigMatcher none, chr(true, ""), renamed(false, map), both(true, map);
    CHECK(none.to_reference("chr20", ref) == "chr20");  // unmatched: the name itself, reported missing later
    CHECK(chr.to_reference("chr20", ref) == "20");
    CHECK(chr.to_reference("chrM", ref) == "MT");
    CHECK(chr.to_reference("20", ref) == "20");
    CHECK(renamed.to_reference("chrTwenty", ref) == "20");
    CHECK(renamed.to_reference("mito", ref) == "mito");   // renamed to chrM, which the reference lacks
    CHECK(both.to_reference("mito", ref) == "MT");        // chrM, then the prefix rule
    CHECK(parse_region("chr20:11-20", ref, chr, {}).contig == "20");
    CHECK(parse_region("chr20:11-20", ref, chr, {}).beg == 10);
    std::ofstream(map) << "chr20\n";
    CHECK(error_of([&] { ContigMatcher(false, map); }).find("map.txt:1: expected two names") != std::string::npos);
    std::ofstream(map) << "a 20\na MT\n";
    CHECK(error_of([&] { ContigMatcher(false, map); }).find("renamed twice") != std::string::npos);
}

TEST_CASE("DelimitedReader: RFC 4180 quoting, trimming, blank lines; errors name FILE:LINE") {
    TempDir dir;
    const std::string csv = dir.file("t.csv");
    write_file(csv, "\xEF\xBB\xBFid, seq ,label\r\n"
                    "1, ACGT ,\"a,b\"\r\n"
                    "\n"
                    "2,\"GG\nCC\",\"say \"\"hi\"\"\"\n");
    DelimitedReader r(csv, ',');
    CHECK(r.column("seq") == 1);
    CHECK(!r.find_column("strand"));
    std::vector<std::string> f;
    REQUIRE(r.next(f));
    CHECK(f == std::vector<std::string>{"1", "ACGT", "a,b"});
    CHECK(r.where() == csv + ":2");
    REQUIRE(r.next(f));
    CHECK(f == std::vector<std::string>{"2", "GG\nCC", "say \"hi\""});
    CHECK(r.where() == csv + ":4");  // the record's first line; it spans lines 4-5
    CHECK(!r.next(f));
    CHECK(error_of([&] { r.column("sequence"); }) == csv + ":1: no column 'sequence' (columns: id, seq, label)");

    const std::string tsv = dir.file("t.tsv");
    write_file(tsv, "a,b\n1,2\n");
    CHECK(error_of([&] { DelimitedReader(tsv, '\t').column("a"); }) ==
          tsv + ":1: no column 'a' (columns: a,b); the header has commas: is the file comma-separated (.csv)?");
    const std::string ragged = dir.file("r.csv");
    write_file(ragged, "a,b\n1,2\n3\n");
    DelimitedReader rr(ragged, ',');
    CHECK(rr.next(f));
    CHECK(error_of([&] { rr.next(f); }) == ragged + ":3: expected 2 comma-separated fields as in the header, found 1");
    const std::string open_quote = dir.file("q.csv");
    write_file(open_quote, "a\n\"x\n");
    DelimitedReader rq(open_quote, ',');
    CHECK(error_of([&] { rq.next(f); }) ==
          open_quote + ":2: unterminated quoted field (no closing '\"' before the end of the file)");
    write_file(dir.file("empty.csv"), "\n \n");
    CHECK(error_of([&] { DelimitedReader(dir.file("empty.csv"), ','); }) ==
          dir.file("empty.csv") + ": empty file (expected a header line naming the columns)");
}
