// Labelled-sequence datasets for `janusdna finetune` and `janusdna evaluate` (benchmark classification), read in
// the layouts they are distributed in: GUE / Nucleotide-Transformer CSV directories, GenomicBenchmarks directories
// (sequence files or coordinate files plus a reference), and single CSV, TSV, FASTA or BED files.
// Library code: every failure throws janusdna::Error whose message names the file and line.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "janusdna/regions.h"
#include "janusdna/fasta.h"  // WarnFn

namespace janusdna {

// One labelled sequence.
struct Example {
    std::string seq;    // upper-case A, C, G, T, N only; never empty
    int label = -1;     // index into Dataset::classes; -1 until the classes are known (read_labelled without classes)
    std::string where;  // "FILE:LINE" of the record it came from, for messages
};

// A classification dataset: classes plus the three splits (any of valid and test may be empty).
struct Dataset {
    std::vector<std::string> classes;       // class names; the index is the label id
    std::vector<Example> train, valid, test;
    std::string description;                // e.g. "GUE CSV directory /x (train 4904, dev 613, test 613)"
};

struct DatasetOptions {
    // FASTA (plain, or bgzipped with .fai/.gzi; a missing .fai is built) for the formats that give coordinates
    // rather than sequences: BED files and GenomicBenchmarks coordinate CSVs. Unused otherwise.
    std::string reference;
    // The coordinate files' contig names -> the reference's (--chr-prefix, --rename-chrs).
    ContigMatcher contigs;
    // CSV/TSV: the columns holding the sequence and the label, by header name.
    // FASTA: label_column is the KEY of "KEY=VALUE" in the header comment ("label=X").
    // BED: label_column is a 1-based column number; the default "label" means column 4 (the BED name column).
    std::string seq_column = "sequence";
    std::string label_column = "label";
    // A fixed class order (e.g. the classes a fine-tuned model was trained with). When empty, the classes are
    // the distinct labels of the training split, sorted numerically when all are integers, else as strings.
    std::vector<std::string> classes;
    // Receives one-line warnings ("building index ref.fa.fai"); may be empty.
    WarnFn warn;
};

// Reads one labelled file. The format comes from the extension, after removing .gz/.bgz (files may be plain,
// gzip or bgzip compressed in every format):
//   .csv                 comma-separated with a header row; RFC 4180 double-quoted fields ("" for a quote,
//                        quoted commas and line breaks); columns options.seq_column and options.label_column
//   .tsv, .txt           the same, tab-separated
//   .fa .fasta .fna .fas FASTA; the label is VALUE of "label=VALUE" in the header comment (KEY = label_column),
//                        else the last whitespace-separated word of the comment
//   .bed                 contig, start, end (0-based, half-open), the label column (4 unless label_column is a
//                        number), strand from column 6 when present; sequences are cut from options.reference
//                        and reverse-complemented on the '-' strand
// Any other extension: a first line starting with '>' means FASTA, else a tab in it TSV, else a comma CSV.
// '\r\n' line endings and a UTF-8 byte-order mark are accepted; blank lines are skipped; fields are trimmed of
// surrounding spaces. Sequences are upper-cased; a character other than A/C/G/T/N (either case) is an error,
// except in sequences cut from the reference, where IUPAC ambiguity codes (R Y S W K M B D H V) become N.
// Returns the examples in file order with label = index in options.classes when those are given (an unknown
// label is then an error), else -1. label_names_out is replaced by the raw label strings, parallel to the result.
// Throws Error "FILE:LINE: ..." for: a missing header column (listing the columns), a row whose field count
// differs from the header's, an unterminated quoted field, an empty sequence or label, an invalid sequence
// character (naming it and its 1-based position), a FASTA record without a label, a BED contig missing from the
// reference or an interval past its end, a BED label column the line lacks; "FILE: ..." for a file that cannot be
// opened, has no examples, or a format that cannot be told; and when a BED file is given without a reference.
std::vector<Example> read_labelled(const std::string& path, const DatasetOptions& options,
                                   std::vector<std::string>& label_names_out);

// The sequences and the labels of a split, in order, as the classifiers and baselines take them.
std::vector<std::string> sequences_of(const std::vector<Example>& examples);
std::vector<int> labels_of(const std::vector<Example>& examples);

// Loads a dataset. data may be
//  - a directory with train.csv, dev.csv and test.csv (GUE, Nucleotide Transformer; dev is the validation split;
//    also accepted: valid.csv or validation.csv for dev, .tsv instead of .csv, and .gz on any of them);
//    dev and test may be absent; train may be absent only when options.classes is given (evaluation only);
//  - a GenomicBenchmarks directory: train/CLASS/*.txt and test/CLASS/*.txt, one sequence per file (as
//    genomic_benchmarks.download_dataset writes them; files are read in natural name order: 2.txt before 10.txt),
//    or the interval-list form train/CLASS.csv[.gz] and test/CLASS.csv[.gz] with columns id,region,start,end,strand
//    (0-based half-open, '-' = reverse complement) cut from options.reference; CLASS is the label, test optional;
//  - a single labelled file (read_labelled): the training split.
// valid_path and test_path, when not empty, are read with read_labelled and replace the directory's splits.
// Class ids: options.classes when given, else derived from the training split (see DatasetOptions::classes).
// Throws Error (naming FILE:LINE) for a validation/test label the training split lacks ("label 'x' does not occur
// in the training split (classes: a, b)"), a label outside options.classes, a training split with fewer than two
// classes, an empty split file, and a directory that matches no known layout (listing what was looked for).
Dataset load_dataset(const std::string& data, const std::string& valid_path, const std::string& test_path,
                     const DatasetOptions& options);

// Moves a stratified, seeded random fraction of dataset.train into dataset.valid, for datasets distributed without
// a validation split. Per class, the examples to move are drawn with a Fisher-Yates shuffle driven by
// std::mt19937_64(seed) (no std::shuffle or std::uniform_int_distribution, whose results differ between standard
// libraries), so the result is the same on every platform. The class quotas sum to round(fraction * train size)
// (largest remainders), and every class keeps at least one training example. Both splits keep file order.
// Only for a dataset whose validation split is empty: throws Error when dataset.valid is not empty, when fraction
// is not in (0, 1), when an example has no class id, or when the fraction leaves no validation example.
void split_valid_fraction(Dataset& dataset, double fraction, uint64_t seed);

// Stratified k-fold cross-validation of train: returns k pairs (training part, held-out part). Each class's
// examples are shuffled (as in split_valid_fraction) and dealt to the folds in turn, continuing the turn across
// classes, so fold sizes differ by at most one and every class is spread as evenly as possible. The held-out parts
// are disjoint and together are train; each part keeps the order of train. A class with fewer than k examples is
// missing from some held-out parts. Throws Error when k < 2, k > train.size() or an example has no class id.
std::vector<std::pair<std::vector<Example>, std::vector<Example>>> kfold(const std::vector<Example>& train, int k,
                                                                       uint64_t seed);

// Number of examples of each class id 0..n_classes-1 (for summaries). Throws Error for a label out of range.
std::vector<int64_t> class_counts(const std::vector<Example>& examples, size_t n_classes);

} // namespace janusdna
