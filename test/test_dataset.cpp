// Unit tests for the labelled-sequence datasets: every file format and directory layout, the class table, the
// messages for malformed input (each names file and line), and the seeded, stratified splits.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "tempdir.h"
#include "janusdna/dataset.h"
#include "janusdna/error.h"
#include "janusdna/tokenizer.h"

using namespace janusdna;

namespace {

const std::string kEval = std::string(JANUSDNA_TEST_DATA) + "/eval";

using test::TempDir;

using test::error_of;

// The message of reading one file with read_labelled.
std::string read_error(const std::string& path, const DatasetOptions& options = {}) {
    return error_of([&] {
        std::vector<std::string> labels;
        read_labelled(path, options, labels);
    });
}

std::vector<std::string> wheres_of(const std::vector<Example>& examples) {
    std::vector<std::string> out;
    for (const auto& ex : examples) out.push_back(ex.where);
    return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ref.fa contig 20 (GRCh37 chr20:47,914,124-47,916,123) bases [100, 130) and its reverse complement.
const std::string kRef100to130 = "CTAAGGCACATGCCTCAGCCTGGCTGCCTC";
const std::string kRef100to130Minus = "GAGGCAGCCAGGCTGAGGCATGTGCCTTAG";

// A labelled set made in memory: class c has sizes[c] examples, interleaved, where = "mem:INDEX".
std::vector<Example> make_examples(const std::vector<int>& sizes) {
    std::vector<Example> out;
    std::vector<int> left = sizes;
    for (bool any = true; any;) {
        any = false;
        for (size_t c = 0; c < left.size(); ++c)
            if (left[c] > 0) {
                --left[c];
                any = true;
                Example ex;
                ex.seq = "ACGT";
                ex.label = static_cast<int>(c);
                ex.where = "mem:" + std::to_string(out.size());
                out.push_back(ex);
            }
    }
    return out;
}

} // namespace

// ---------------------------------------------------------------------------------------------------------
// Formats

TEST_CASE("dataset: GUE CSV directory (train, dev, test) with classes 0 and 1") {
    const Dataset d = load_dataset(kEval + "/gue", "", "", {});
    CHECK(d.classes == std::vector<std::string>{"0", "1"});
    CHECK(d.train.size() == 8);
    CHECK(d.valid.size() == 3);
    CHECK(d.test.size() == 2);
    CHECK(d.train[0].seq == "ACGTACGTAA");
    CHECK(d.train[0].where == kEval + "/gue/train.csv:2");
    CHECK(labels_of(d.train) == std::vector<int>{0, 1, 0, 1, 0, 1, 0, 1});
    CHECK(labels_of(d.valid) == std::vector<int>{0, 1, 1});
    CHECK(labels_of(d.test) == std::vector<int>{1, 0});
    CHECK(d.description == "GUE CSV directory " + kEval + "/gue (train 8, dev 3, test 2); classes 0, 1");
    CHECK(class_counts(d.train, 2) == std::vector<int64_t>{4, 4});
}

TEST_CASE("dataset: a fixed class order replaces the derived one") {
    DatasetOptions options;
    options.classes = {"1", "0"};
    const Dataset d = load_dataset(kEval + "/gue", "", "", options);
    CHECK(d.classes == std::vector<std::string>{"1", "0"});
    CHECK(labels_of(d.test) == std::vector<int>{0, 1});
    // read_labelled assigns ids only when the classes are given.
    std::vector<std::string> raw;
    CHECK(labels_of(read_labelled(kEval + "/gue/test.csv", options, raw)) == std::vector<int>{0, 1});
    CHECK(raw == std::vector<std::string>{"1", "0"});
    CHECK(labels_of(read_labelled(kEval + "/gue/test.csv", {}, raw)) == std::vector<int>{-1, -1});

    options.classes = {"0", "2"};
    CHECK(error_of([&] { load_dataset(kEval + "/gue", "", "", options); }) ==
          kEval + "/gue/train.csv:3: label '1' is not one of the classes (classes: 0, 2)");
    options.classes = {"0", "1", "0"};
    CHECK(contains(error_of([&] { load_dataset(kEval + "/gue", "", "", options); }), "repeat"));
}

TEST_CASE("dataset: CSV with RFC 4180 quoting, CRLF, a byte-order mark and blank lines") {
    std::vector<std::string> raw;
    const auto examples = read_labelled(kEval + "/quoted.csv", {}, raw);
    CHECK(sequences_of(examples) == std::vector<std::string>{"ACGTN", "ACGT", "GGCC", "TTAA"});
    CHECK(raw == std::vector<std::string>{"pos", "neg", "pos", "neg"});
    CHECK(wheres_of(examples) == std::vector<std::string>{kEval + "/quoted.csv:2", kEval + "/quoted.csv:3",
                                                          kEval + "/quoted.csv:5", kEval + "/quoted.csv:6"});
    const Dataset d = load_dataset(kEval + "/quoted.csv", "", "", {});
    CHECK(d.classes == std::vector<std::string>{"neg", "pos"});
    CHECK(labels_of(d.train) == std::vector<int>{1, 0, 1, 0});
    CHECK(d.description == "CSV file " + kEval + "/quoted.csv (train 4); classes neg, pos");
}

TEST_CASE("dataset: TSV, plain and gzip; integer labels sort numerically") {
    for (const std::string name : {"labels.tsv", "labels.tsv.gz"}) {
        CAPTURE(name);
        const Dataset d = load_dataset(kEval + "/" + name, "", "", {});
        CHECK(d.classes == std::vector<std::string>{"0", "1", "2", "10"});
        CHECK(labels_of(d.train) == std::vector<int>{2, 3, 0, 1, 3});
        CHECK(sequences_of(d.train) == std::vector<std::string>{"ACGT", "CCCC", "GGGG", "TTTT", "ACGN"});
        CHECK(d.train[4].where == kEval + "/" + name + ":6");
    }
    // Columns by name, in any order.
    DatasetOptions options;
    options.seq_column = "id";
    CHECK(read_error(kEval + "/labels.tsv", options) ==
          kEval + "/labels.tsv:2: invalid character 'x' at position 1 of the sequence (column 'id') (expected A, C, "
                  "G, T or N)");
}

TEST_CASE("dataset: FASTA labels from label=X or the last word, plain and bgzip") {
    for (const std::string name : {"labels.fa", "labels.fa.gz"}) {
        CAPTURE(name);
        std::vector<std::string> raw;
        const auto examples = read_labelled(kEval + "/" + name, {}, raw);
        CHECK(sequences_of(examples) == std::vector<std::string>{"ACGTACGTACGT", "ACGTNN", "GGGG"});
        CHECK(raw == std::vector<std::string>{"promoter", "enhancer", "enhancer"});
        CHECK(wheres_of(examples) == std::vector<std::string>{kEval + "/" + name + ":1", kEval + "/" + name + ":4",
                                                              kEval + "/" + name + ":6"});
    }
    const Dataset d = load_dataset(kEval + "/labels.fa", "", "", {});
    CHECK(d.classes == std::vector<std::string>{"enhancer", "promoter"});
    CHECK(labels_of(d.train) == std::vector<int>{1, 0, 0});
}

TEST_CASE("dataset: BED cut from the reference, '-' reverse-complemented, plain and gzip") {
    DatasetOptions options;
    options.reference = kEval + "/ref.fa";
    for (const std::string name : {"regions.bed", "regions.bed.gz"}) {
        CAPTURE(name);
        std::vector<std::string> raw;
        const auto examples = read_labelled(kEval + "/" + name, options, raw);
        REQUIRE(examples.size() == 4);
        CHECK(examples[0].seq.size() == 500);
        // GenomicBenchmarks human_enhancers_cohn train_positive_15, lifted to GRCh37: the same bases.
        CHECK(examples[0].seq.substr(0, 30) == "TCAATGCTCCTGGGAGCGTGAACTGCATTA");
        CHECK(examples[0].seq.substr(470) == "CCACAACAGTTGCAGGAAGTTGCCAAATGC");
        CHECK(examples[1].seq == kRef100to130Minus);
        CHECK(examples[1].seq == reverse_complement(kRef100to130));
        CHECK(examples[2].seq == "AACCGGTT");
        CHECK(examples[3].seq == "ACGTNNNNNN");  // acgtRYKMNN: lower case upper-cased, IUPAC codes as N
        CHECK(raw == std::vector<std::string>{"positive", "negative", "negative", "positive"});
        CHECK(examples[0].where == kEval + "/" + name + ":2");
        CHECK(examples[3].where == kEval + "/" + name + ":5");
    }
    options.label_column = "7";
    std::vector<std::string> raw;
    read_labelled(kEval + "/regions.bed", options, raw);
    CHECK(raw == std::vector<std::string>{"1", "0", "0", "1"});

    const Dataset d = load_dataset(kEval + "/regions.bed", "", "", options);
    CHECK(d.description ==
          "BED file " + kEval + "/regions.bed (train 4); sequences cut from " + kEval + "/ref.fa; classes 0, 1");
}

TEST_CASE("dataset: GenomicBenchmarks directory of per-class sequence files") {
    const Dataset d = load_dataset(kEval + "/gb-seq", "", "", {});
    CHECK(d.classes == std::vector<std::string>{"negative", "positive"});
    // Natural file order: 1.txt, 2.txt, 10.txt; line breaks and '\r' dropped; upper-cased.
    CHECK(sequences_of(d.train) ==
          std::vector<std::string>{"AAAACCCC", "AAAAGGGG", "AAAATTTT", "CCCCAAAA", "CCCCGGGG"});
    CHECK(labels_of(d.train) == std::vector<int>{0, 0, 0, 1, 1});
    CHECK(sequences_of(d.test) == std::vector<std::string>{"GGGGAAAA", "TTTTAAAA"});
    CHECK(labels_of(d.test) == std::vector<int>{0, 1});
    CHECK(d.valid.empty());
    CHECK(d.train[2].where == kEval + "/gb-seq/train/negative/10.txt:1");
    CHECK(d.description == "GenomicBenchmarks sequence directory " + kEval +
                               "/gb-seq (train 5, test 2); classes negative, positive");
}

TEST_CASE("dataset: GenomicBenchmarks directory of per-class coordinate files") {
    DatasetOptions options;
    options.reference = kEval + "/ref.fa";
    const Dataset d = load_dataset(kEval + "/gb-coord", "", "", options);
    CHECK(d.classes == std::vector<std::string>{"negative", "positive"});
    REQUIRE(d.train.size() == 4);
    CHECK(d.train[0].seq == kRef100to130Minus);
    CHECK(d.train[1].seq == "AACCGGTT");
    CHECK(d.train[2].seq.substr(0, 30) == "TCAATGCTCCTGGGAGCGTGAACTGCATTA");
    CHECK(d.train[3].seq == "ACGTNNNNNN");
    CHECK(labels_of(d.train) == std::vector<int>{0, 0, 1, 1});
    CHECK(sequences_of(d.test) == std::vector<std::string>{"TTTGTATTTTTAGTAGAGAC", "CGTGGTGGCTTACACCTAGA"});
    CHECK(d.train[0].where == kEval + "/gb-coord/train/negative.csv.gz:2");

    CHECK(error_of([&] { load_dataset(kEval + "/gb-coord", "", "", {}); }) ==
          kEval + "/gb-coord/train/negative.csv.gz: gives coordinates, not sequences: a reference FASTA to cut the "
                  "sequences from is needed, and none was given");
}

TEST_CASE("dataset: a single file with separate validation and test files") {
    const Dataset d =
        load_dataset(kEval + "/gue/train.csv", kEval + "/gue/dev.csv", kEval + "/gue/test.csv", {});
    CHECK(d.train.size() == 8);
    CHECK(d.valid.size() == 3);
    CHECK(d.test.size() == 2);
    CHECK(d.description == "CSV file " + kEval + "/gue/train.csv (train 8, valid 3, test 2); valid from CSV file " +
                               kEval + "/gue/dev.csv; test from CSV file " + kEval + "/gue/test.csv; classes 0, 1");
    // Mixed formats: the FASTA labels must be classes of the CSV training split.
    CHECK(error_of([&] { load_dataset(kEval + "/gue/train.csv", "", kEval + "/labels.fa", {}); }) ==
          kEval + "/labels.fa:1: label 'promoter' does not occur in the training split (classes: 0, 1)");
}

TEST_CASE("dataset: format from the content when the extension says nothing") {
    TempDir tmp;
    const std::string fasta = tmp.write("seqs.data", ">a x\nACGT\n>b y\nGGGG\n");
    const std::string tsv = tmp.write("table.data", "sequence\tlabel\nACGT\tx\nGG\ty\n");
    const std::string csv = tmp.write("table2.data", "sequence,label\nACGT,x\nGG,y\n");
    std::vector<std::string> raw;
    CHECK(read_labelled(fasta, {}, raw).size() == 2);
    CHECK(raw == std::vector<std::string>{"x", "y"});
    CHECK(read_labelled(tsv, {}, raw).size() == 2);
    CHECK(read_labelled(csv, {}, raw).size() == 2);
    const std::string neither = tmp.write("what.data", "ACGT\n");
    CHECK(contains(read_error(neither), neither + ": cannot tell the format"));
}

// ---------------------------------------------------------------------------------------------------------
// Malformed input: each message names the file and the line

TEST_CASE("dataset errors: CSV/TSV") {
    TempDir tmp;
    std::string f = tmp.write("nocol.csv", "id,label,name\nx,1,y\n");
    CHECK(read_error(f) == f + ":1: no column 'sequence' (columns: id, label, name)");
    f = tmp.write("commas.tsv", "sequence,label\nACGT,1\n");
    CHECK(read_error(f) == f + ":1: no column 'sequence' (columns: sequence,label); the header has commas: is the "
                               "file comma-separated (.csv)?");
    f = tmp.write("count.csv", "sequence,label\nACGT,1\nACGT,1,2\n");
    CHECK(read_error(f) == f + ":3: expected 2 comma-separated fields as in the header, found 3");
    f = tmp.write("count.tsv", "sequence\tlabel\nACGT\n");
    CHECK(read_error(f) == f + ":2: expected 2 tab-separated fields as in the header, found 1");
    f = tmp.write("emptyseq.csv", "sequence,label\n,1\n");
    CHECK(read_error(f) == f + ":2: empty sequence (column 'sequence')");
    f = tmp.write("emptylabel.csv", "sequence,label\nACGT,1\r\nACGT, \r\n");
    CHECK(read_error(f) == f + ":3: empty label (column 'label')");
    f = tmp.write("badchar.csv", "sequence,label\nACGT,1\nACGU,0\n");
    CHECK(read_error(f) == f + ":3: invalid character 'U' at position 4 of the sequence (column 'sequence') "
                               "(expected A, C, G, T or N)");
    f = tmp.write("iupac.csv", "sequence,label\nACRT,1\n");
    CHECK(read_error(f) == f + ":2: invalid character 'R' at position 3 of the sequence (column 'sequence') "
                               "(expected A, C, G, T or N)");
    f = tmp.write("control.csv", "sequence,label\nAC\x01T,1\n");
    CHECK(contains(read_error(f), f + ":2: invalid character '\\x01' at position 3"));
    f = tmp.write("header-only.csv", "sequence,label\n");
    CHECK(read_error(f) == f + ": no examples (the file has only a header line)");
    f = tmp.write("empty.csv", "");
    CHECK(read_error(f) == f + ": empty file (expected a header line naming the columns)");
    f = tmp.write("unterminated.csv", "sequence,label\nACGT,1\n\"ACGT,1\nACGT,0\n");
    CHECK(read_error(f) == f + ":3: unterminated quoted field (no closing '\"' before the end of the file)");
    f = tmp.write("afterquote.csv", "sequence,label\n\"AC\"GT,1\n");
    CHECK(contains(read_error(f), f + ":2: unexpected character 'G' after a closing quote"));
    f = tmp.write("missing.csv.gz", "");
    std::filesystem::remove(f);
    CHECK(contains(read_error(f), "cannot open " + f + ": No such file"));
}

TEST_CASE("dataset errors: FASTA") {
    TempDir tmp;
    std::string f = tmp.write("nolabel.fa", ">a label=1\nACGT\n>b\nACGT\n");
    CHECK(read_error(f) == f + ":3: record \"b\" has no label (expected \"label=X\" or the label as the last word "
                               "of the header line)");
    f = tmp.write("wrongkey.fa", ">a class=1\nACGT\n");
    CHECK(read_error(f) == f + ":1: record \"a\" has no \"label=\" in its header (last word: 'class=1')");
    f = tmp.write("emptylabel.fa", ">a label= x\nACGT\n");
    CHECK(read_error(f) == f + ":1: record \"a\": empty label (label=)");
    f = tmp.write("emptyseq.fa", ">a 1\nACGT\n>b 0\n>c 1\nA\n");
    CHECK(read_error(f) == f + ":3: record \"b\": empty sequence");
    f = tmp.write("badchar.fa", ">a 1\nACGT\nAC-T\n");
    CHECK(read_error(f) == f + ":1: invalid character '-' at position 7 of record \"a\" (expected A, C, G, T or N)");
    DatasetOptions options;
    options.label_column = "class";
    f = tmp.write("key.fa", ">a class=x other\nACGT\n");
    std::vector<std::string> raw;
    read_labelled(f, options, raw);
    CHECK(raw == std::vector<std::string>{"x"});
}

TEST_CASE("dataset errors: BED") {
    TempDir tmp;
    DatasetOptions options;
    options.reference = kEval + "/ref.fa";
    std::string f = tmp.write("contig.bed", "20\t0\t10\ta\nchr20\t0\t10\tb\n");
    const std::string contig = read_error(f, options);
    CHECK(contains(contig, f + ":2: contig \"chr20\" not in " + kEval + "/ref.fa"));
    CHECK(contains(contig, "did you mean \"20\""));
    f = tmp.write("range.bed", "tiny\t0\t10\ta\ntiny\t20\t27\tb\n");
    CHECK(read_error(f, options) == f + ":2: interval tiny:21-27 extends past the end of contig \"tiny\" (26 bp) in " +
                                        kEval + "/ref.fa");
    f = tmp.write("past.bed", "tiny\t30\t40\ta\n");
    CHECK(contains(read_error(f, options), f + ":1: interval tiny:31-40 extends past the end"));
    f = tmp.write("nolabel.bed", "tiny\t0\t10\ta\ntiny\t0\t10\n");
    CHECK(read_error(f, options) == f + ":2: no label column 4 (the line has 3 columns)");
    f = tmp.write("emptylabel.bed", "tiny\t0\t10\t\t0\t+\n");
    CHECK(read_error(f, options) == f + ":1: empty label (column 4)");
    f = tmp.write("coords.bed", "tiny\t10\t5\ta\n");
    CHECK(contains(read_error(f, options), f + ":1: end 5 is before start 10"));
    f = tmp.write("strand.bed", "tiny\t0\t5\ta\t0\tx\n");
    CHECK(contains(read_error(f, options), f + ":1: strand must be"));
    f = tmp.write("comments.bed", "# only a comment\n");
    CHECK(read_error(f, options) == f + ": no regions");
    f = tmp.write("ok.bed", "tiny\t0\t5\ta\n");
    CHECK(read_error(f) == f + ": gives coordinates, not sequences: a reference FASTA to cut the sequences from is "
                               "needed, and none was given");
    options.label_column = "name";
    CHECK(read_error(f, options) == f + ": the label column of a BED file is a 1-based column number, not 'name'");
}

TEST_CASE("dataset errors: classes across splits") {
    TempDir tmp;
    const std::string train = tmp.write("d/train.csv", "sequence,label\nACGT,0\nACGT,1\n");
    const std::string dev = tmp.write("d/dev.csv", "sequence,label\nACGT,0\n");
    const std::string test = tmp.write("d/test.csv", "sequence,label\nACGT,1\nACGT,0\nACGT,2\n");
    CHECK(error_of([&] { load_dataset(tmp.path + "/d", "", "", {}); }) ==
          test + ":4: label '2' does not occur in the training split (classes: 0, 1)");
    const std::string one = tmp.write("one.csv", "sequence,label\nACGT,1\nACGT,1\n");
    CHECK(error_of([&] { load_dataset(one, "", "", {}); }) ==
          one + ": the training split has only one class ('1' in all 2 examples); classification needs at least two");
    const std::string empty_dev = tmp.write("e/dev.csv", "sequence,label\n");
    tmp.write("e/train.csv", "sequence,label\nACGT,0\nACGT,1\n");
    CHECK(error_of([&] { load_dataset(tmp.path + "/e", "", "", {}); }) ==
          empty_dev + ": no examples (the file has only a header line)");
    (void)train;
    (void)dev;
}

TEST_CASE("dataset errors: directory layouts") {
    TempDir tmp;
    tmp.write("none/readme.txt", "hello\n");
    const std::string message = error_of([&] { load_dataset(tmp.path + "/none", "", "", {}); });
    CHECK(contains(message, tmp.path + "/none: not a known dataset layout; looked for train.csv, dev.csv, test.csv"));
    CHECK(contains(message, "CLASS/*.txt or CLASS.csv.gz (GenomicBenchmarks)"));

    tmp.write("notrain/dev.csv", "sequence,label\nACGT,0\n");
    tmp.write("notrain/test.csv", "sequence,label\nACGT,1\n");
    CHECK(error_of([&] { load_dataset(tmp.path + "/notrain", "", "", {}); }) ==
          tmp.path + "/notrain: no train.csv (found dev.csv); the classes come from the training split, so give them "
                     "explicitly to read only the other splits");
    DatasetOptions options;
    options.classes = {"0", "1"};
    const Dataset eval_only = load_dataset(tmp.path + "/notrain", "", "", options);
    CHECK(eval_only.train.empty());
    CHECK(labels_of(eval_only.valid) == std::vector<int>{0});
    CHECK(labels_of(eval_only.test) == std::vector<int>{1});

    tmp.write("both/train.csv", "sequence,label\nACGT,0\nACGT,1\n");
    tmp.write("both/dev.csv", "sequence,label\nACGT,0\n");
    tmp.write("both/valid.csv", "sequence,label\nACGT,0\n");
    CHECK(error_of([&] { load_dataset(tmp.path + "/both", "", "", {}); }) ==
          tmp.path + "/both: both dev.csv and valid.csv exist; keep one");

    CHECK(contains(error_of([&] { load_dataset(tmp.path + "/absent", "", "", {}); }),
                   "cannot open " + tmp.path + "/absent: No such file"));

    const std::string bad = tmp.write("gb/train/pos/1.txt", "ACGT\nACXT\n");
    tmp.write("gb/train/neg/1.txt", "ACGT");
    CHECK(error_of([&] { load_dataset(tmp.path + "/gb", "", "", {}); }) ==
          bad + ":2: invalid character 'X' at position 7 of the sequence (column 3 of the line; expected A, C, G, T "
                "or N)");
    const std::string empty = tmp.write("gb2/train/pos/1.txt", "\n");
    tmp.write("gb2/train/neg/1.txt", "ACGT");
    CHECK(error_of([&] { load_dataset(tmp.path + "/gb2", "", "", {}); }) == empty + ":1: empty sequence");
    tmp.write("gb3/train/pos/notes.md", "x");
    tmp.write("gb3/train/neg/1.txt", "ACGT");
    CHECK(error_of([&] { load_dataset(tmp.path + "/gb3", "", "", {}); }) ==
          tmp.path + "/gb3/train/pos: no .txt sequence files");

    options = {};
    options.reference = kEval + "/ref.fa";
    const std::string strand = tmp.write("gc/train/a.csv", "id,region,start,end,strand\n0,tiny,0,5,x\n");
    tmp.write("gc/train/b.csv", "id,region,start,end,strand\n0,tiny,0,5,+\n");
    CHECK(error_of([&] { load_dataset(tmp.path + "/gc", "", "", options); }) ==
          strand + ":2: strand must be '+', '-' or '.', not 'x'");
    const std::string range = tmp.write("gd/train/a.csv", "id,region,start,end,strand\n0,tiny,0,5,+\n0,tiny,20,30,+\n");
    tmp.write("gd/train/b.csv", "id,region,start,end,strand\n0,tiny,0,5,+\n");
    CHECK(error_of([&] { load_dataset(tmp.path + "/gd", "", "", options); }) ==
          range + ":3: interval tiny:21-30 extends past the end of contig \"tiny\" (26 bp) in " + kEval + "/ref.fa");
    const std::string contig = tmp.write("ge/train/a.csv", "id,region,start,end,strand\n0,chr20,0,5,+\n");
    tmp.write("ge/train/b.csv", "id,region,start,end,strand\n0,tiny,0,5,+\n");
    CHECK(contains(error_of([&] { load_dataset(tmp.path + "/ge", "", "", options); }),
                   contig + ":2: contig \"chr20\" not in"));
    const std::string start = tmp.write("gf/train/a.csv", "id,region,start,end,strand\n0,tiny,-1,5,+\n");
    tmp.write("gf/train/b.csv", "id,region,start,end,strand\n0,tiny,0,5,+\n");
    CHECK(error_of([&] { load_dataset(tmp.path + "/gf", "", "", options); }) ==
          start + ":2: start '-1' is not a non-negative integer");
}

// ---------------------------------------------------------------------------------------------------------
// Splits

TEST_CASE("split_valid_fraction: stratified, deterministic, file order kept") {
    Dataset d;
    d.classes = {"a", "b", "c"};
    d.train = make_examples({50, 30, 20});
    Dataset first = d;
    split_valid_fraction(first, 0.2, 42);
    CHECK(first.train.size() == 80);
    CHECK(first.valid.size() == 20);
    CHECK(class_counts(first.valid, 3) == std::vector<int64_t>{10, 6, 4});
    CHECK(class_counts(first.train, 3) == std::vector<int64_t>{40, 24, 16});
    // Both parts keep the order of the original training split, and together they are it.
    auto index = [](const Example& ex) { return std::stoi(ex.where.substr(4)); };
    for (const auto* part : {&first.train, &first.valid})
        CHECK(std::is_sorted(part->begin(), part->end(),
                             [&](const Example& a, const Example& b) { return index(a) < index(b); }));
    std::set<std::string> all;
    for (const auto& ex : first.train) all.insert(ex.where);
    for (const auto& ex : first.valid) all.insert(ex.where);
    CHECK(all.size() == 100);

    Dataset again = d;
    split_valid_fraction(again, 0.2, 42);
    CHECK(wheres_of(again.valid) == wheres_of(first.valid));
    Dataset other = d;
    split_valid_fraction(other, 0.2, 43);
    CHECK(wheres_of(other.valid) != wheres_of(first.valid));
    CHECK(class_counts(other.valid, 3) == std::vector<int64_t>{10, 6, 4});

    // The draw for a seed is the same with every standard library (the shuffle is written out, not std::shuffle);
    // these values were also reproduced by an independent Python implementation of mt19937_64 and the shuffle.
    const std::vector<std::string> drawn = wheres_of(first.valid);
    CHECK(std::vector<std::string>(drawn.begin(), drawn.begin() + 6) ==
          std::vector<std::string>{"mem:8", "mem:9", "mem:13", "mem:14", "mem:16", "mem:24"});
}

TEST_CASE("split_valid_fraction: largest remainders, every class keeps a training example, errors") {
    Dataset d;
    d.classes = {"a", "b", "c"};
    d.train = make_examples({5, 5, 5});
    split_valid_fraction(d, 0.5, 1);  // round(7.5) = 8: quotas 2.5 each -> 3, 3, 2
    CHECK(class_counts(d.valid, 3) == std::vector<int64_t>{3, 3, 2});

    Dataset small;
    small.classes = {"a", "b"};
    small.train = make_examples({1, 9});
    split_valid_fraction(small, 0.5, 1);  // class a's only example stays in train
    CHECK(class_counts(small.train, 2) == std::vector<int64_t>{1, 4});
    CHECK(class_counts(small.valid, 2) == std::vector<int64_t>{0, 5});

    CHECK(error_of([&] { split_valid_fraction(small, 0.1, 1); }) ==
          "cannot split a validation fraction off the training split: the dataset already has a validation split (5 "
          "examples)");
    Dataset e;
    e.train = make_examples({50, 50});
    CHECK(error_of([&] { split_valid_fraction(e, 0.0, 1); }) == "validation fraction 0 is not between 0 and 1");
    CHECK(error_of([&] { split_valid_fraction(e, 1.0, 1); }) == "validation fraction 1 is not between 0 and 1");
    CHECK(error_of([&] { split_valid_fraction(e, 0.001, 1); }) ==
          "a validation fraction of 0.001 of 100 training examples leaves no validation example");
    e.train[3].label = -1;
    CHECK(error_of([&] { split_valid_fraction(e, 0.1, 1); }) == "validation split: mem:3: example has no class id");
}

TEST_CASE("kfold: stratified folds partition the training split") {
    const std::vector<Example> train = make_examples({50, 30, 20});
    const auto folds = kfold(train, 5, 7);
    REQUIRE(folds.size() == 5);
    std::multiset<std::string> held_union;
    for (const auto& [fold_train, held] : folds) {
        CHECK(held.size() == 20);
        CHECK(fold_train.size() == 80);
        CHECK(class_counts(held, 3) == std::vector<int64_t>{10, 6, 4});
        // The two parts of a fold are disjoint and together are the training split.
        std::set<std::string> parts;
        for (const auto& ex : fold_train) parts.insert(ex.where);
        for (const auto& ex : held) parts.insert(ex.where);
        CHECK(parts.size() == 100);
        for (const auto& ex : held) held_union.insert(ex.where);
    }
    // Held-out parts are disjoint and their union is train.
    CHECK(held_union.size() == 100);
    CHECK(std::set<std::string>(held_union.begin(), held_union.end()).size() == 100);

    const auto again = kfold(train, 5, 7);
    const auto other = kfold(train, 5, 8);
    bool differs = false;
    for (size_t f = 0; f < 5; ++f) {
        CHECK(wheres_of(again[f].second) == wheres_of(folds[f].second));
        differs = differs || wheres_of(other[f].second) != wheres_of(folds[f].second);
    }
    CHECK(differs);

    // Uneven sizes: fold sizes differ by at most one.
    const auto uneven = kfold(make_examples({7, 4}), 3, 1);
    std::vector<size_t> sizes;
    for (const auto& fold : uneven) sizes.push_back(fold.second.size());
    std::sort(sizes.begin(), sizes.end());
    CHECK(sizes == std::vector<size_t>{3, 4, 4});
}

TEST_CASE("kfold: errors") {
    const std::vector<Example> train = make_examples({3, 3});
    CHECK(error_of([&] { kfold(train, 1, 0); }) == "k-fold cross-validation needs k >= 2, not 1");
    CHECK(error_of([&] { kfold(train, 7, 0); }) == "7-fold cross-validation needs at least 7 training examples, not 6");
    std::vector<Example> unlabelled = train;
    unlabelled[2].label = -1;
    CHECK(error_of([&] { kfold(unlabelled, 2, 0); }) == "k-fold split: mem:2: example has no class id");
    CHECK(contains(error_of([&] { class_counts(train, 1); }), "mem:1: class id 1 is not in 0..0"));
}
