// Output sinks for the Embedder (embed.h): text for bedtools pipelines, NPY with a row-aligned BED and JSON
// metadata, safetensors keyed by region. Every file goes through AtomicFile; a sink with several files writes
// them all to temporary names and renames them only in finish(), after the last row, so a failed job leaves
// no file that looks complete.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "janusdna/atomic_file.h"
#include "janusdna/embed.h"
#include "janusdna/npy.h"
#include "janusdna/safetensors.h"

namespace janusdna {

// Pooled, text: "chrom start end name d0 ... d{H-1}" per region (0-based half-open, tab-separated; NaN as "nan").
class PooledTextSink : public EmbedSink {
public:
    PooledTextSink(const std::string& path, int64_t hidden);
    void pooled(const Region& r, const float* mean, int64_t length, int64_t n_scored) override;
    void finish() override;
private:
    AtomicFile out_;
    int64_t hidden_;
};

// Per base, text: "chrom pos base d0 ... d{H-1}", pos 1-based; base is the base fed to the model in output
// orientation (A/C/G/T, N for N and IUPAC codes: those positions are unscored).
class PerBaseTsvSink : public EmbedSink {
public:
    PerBaseTsvSink(const std::string& path, int64_t hidden);
    void rows(const Region& r, int64_t first, const float* rows, const int64_t* ids, int64_t n) override;
    void finish() override;
private:
    AtomicFile out_;
    int64_t hidden_;
};

// Writes PREFIX.json (metadata plus "rows" and "regions" counts) in finish().
class NpySinkBase : public EmbedSink {
protected:
    NpySinkBase(const std::string& prefix, nlohmann::json metadata);
    std::string prefix_;
    nlohmann::json metadata_;
    AtomicFile bed_, json_;
    int64_t regions_ = 0;
};

// Pooled, NPY: PREFIX.npy [N, H], PREFIX.bed (BED6: chrom start end name 0 strand), row i = line i.
class PooledNpySink : public NpySinkBase {
public:
    PooledNpySink(const std::string& prefix, NpyType type, int64_t hidden, nlohmann::json metadata);
    void pooled(const Region& r, const float* mean, int64_t length, int64_t n_scored) override;
    void finish() override;
private:
    NpyWriter npy_;
};

// Per base, NPY: PREFIX.npy [sum of lengths, H], PREFIX.scored.npy [sum of lengths] uint8 (1 = A/C/G/T, 0 = N
// or IUPAC code), PREFIX.bed (chrom start end name 0 strand first_row end_row: rows [first_row, end_row)).
class PerBaseNpySink : public NpySinkBase {
public:
    PerBaseNpySink(const std::string& prefix, NpyType type, int64_t hidden, nlohmann::json metadata);
    void begin(const Region& r, int64_t length) override;
    void rows(const Region& r, int64_t first, const float* rows, const int64_t* ids, int64_t n) override;
    void end(const Region& r, int64_t length, int64_t n_scored) override;
    void finish() override;
private:
    NpyWriter npy_, scored_;
    int64_t region_first_row_ = 0;
};

// Per base, safetensors: one [L, H] tensor per region keyed by its name (BED column 4, else chrom:beg-end), plus
// "KEY.scored" [L] uint8. The file is assembled in memory (the format puts every shape before the data): use NPY
// for outputs larger than memory. Throws Error on a duplicate key.
class PerBaseSafetensorsSink : public EmbedSink {
public:
    PerBaseSafetensorsSink(const std::string& path, DType type, int64_t hidden, std::map<std::string, std::string> metadata);
    void begin(const Region& r, int64_t length) override;
    void rows(const Region& r, int64_t first, const float* rows, const int64_t* ids, int64_t n) override;
    void end(const Region& r, int64_t length, int64_t n_scored) override;
    void finish() override;
private:
    std::string path_;
    DType type_;
    int64_t hidden_;
    SafetensorsWriter writer_;
    std::set<std::string> keys_;
    std::vector<float> buf_;
    std::vector<uint8_t> scored_;
};

// Text of one BED6 line (no newline) for a region: chrom start end name 0 strand ('.' shown as '+').
std::string bed6(const Region& r);

} // namespace janusdna
