#include "janusdna/embed_writers.h"
#include "janusdna/error.h"
#include "janusdna/tokenizer.h"

#include <cmath>
#include <fmt/format.h>

namespace janusdna {

namespace {
void append_values(fmt::memory_buffer& buf, const float* v, int64_t n) {
    for (int64_t d = 0; d < n; ++d) {
        if (std::isnan(v[d])) fmt::format_to(std::back_inserter(buf), "\tnan");
        else fmt::format_to(std::back_inserter(buf), "\t{:.6g}", v[d]);
    }
    buf.push_back('\n');
}
} // namespace

std::string bed6(const Region& r) {
    return fmt::format("{}\t{}\t{}\t{}\t0\t{}", r.output_contig(), r.beg, r.end, r.name, r.strand == '-' ? '-' : '+');
}

PooledTextSink::PooledTextSink(const std::string& path, int64_t hidden) : out_(path), hidden_(hidden) {}

void PooledTextSink::pooled(const Region& r, const float* mean, int64_t, int64_t) {
    fmt::memory_buffer buf;
    fmt::format_to(std::back_inserter(buf), "{}\t{}\t{}\t{}", r.output_contig(), r.beg, r.end, r.name);
    append_values(buf, mean, hidden_);
    out_.write(std::string_view(buf.data(), buf.size()));
}

void PooledTextSink::finish() { out_.commit(); }

PerBaseTsvSink::PerBaseTsvSink(const std::string& path, int64_t hidden) : out_(path), hidden_(hidden) {}

void PerBaseTsvSink::rows(const Region& r, int64_t first, const float* rows, const int64_t* ids, int64_t n) {
    fmt::memory_buffer buf;
    for (int64_t t = 0; t < n; ++t) {
        const int64_t i = first + t;                                    // row within the region
        const int64_t pos = r.strand == '-' ? r.end - i : r.beg + i + 1; // 1-based contig position
        fmt::format_to(std::back_inserter(buf), "{}\t{}\t{}", r.output_contig(), pos, base_of_id(ids[t]));
        append_values(buf, rows + t * hidden_, hidden_);
        if (buf.size() > (1 << 16)) { out_.write(std::string_view(buf.data(), buf.size())); buf.clear(); }
    }
    out_.write(std::string_view(buf.data(), buf.size()));
}

void PerBaseTsvSink::finish() { out_.commit(); }

NpySinkBase::NpySinkBase(const std::string& prefix, nlohmann::json metadata)
    : prefix_(prefix), metadata_(std::move(metadata)), bed_(prefix + ".bed"), json_(prefix + ".json") {}

PooledNpySink::PooledNpySink(const std::string& prefix, NpyType type, int64_t hidden, nlohmann::json metadata)
    : NpySinkBase(prefix, std::move(metadata)), npy_(prefix + ".npy", type, hidden) {}

void PooledNpySink::pooled(const Region& r, const float* mean, int64_t, int64_t) {
    npy_.append(mean, 1);
    bed_.write(bed6(r) + "\n");
    ++regions_;
}

void PooledNpySink::finish() {
    metadata_["rows"] = npy_.rows();
    metadata_["regions"] = regions_;
    json_.write(metadata_.dump(2) + "\n");
    npy_.commit();
    bed_.commit();
    json_.commit();
}

PerBaseNpySink::PerBaseNpySink(const std::string& prefix, NpyType type, int64_t hidden, nlohmann::json metadata)
    : NpySinkBase(prefix, std::move(metadata)), npy_(prefix + ".npy", type, hidden),
      scored_(prefix + ".scored.npy", NpyType::U8, 1, true) {}

void PerBaseNpySink::begin(const Region&, int64_t) { region_first_row_ = npy_.rows(); }

void PerBaseNpySink::rows(const Region&, int64_t, const float* rows, const int64_t* ids, int64_t n) {
    npy_.append(rows, n);
    std::vector<uint8_t> s(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) s[t] = ids[t] != kPadId;
    scored_.append_bytes(s.data(), n);
}

void PerBaseNpySink::end(const Region& r, int64_t, int64_t) {
    bed_.write(fmt::format("{}\t{}\t{}\n", bed6(r), region_first_row_, npy_.rows()));
    ++regions_;
}

void PerBaseNpySink::finish() {
    metadata_["rows"] = npy_.rows();
    metadata_["regions"] = regions_;
    json_.write(metadata_.dump(2) + "\n");
    npy_.commit();
    scored_.commit();
    bed_.commit();
    json_.commit();
}

PerBaseSafetensorsSink::PerBaseSafetensorsSink(const std::string& path, DType type, int64_t hidden,
                                               std::map<std::string, std::string> metadata)
    : path_(path), type_(type), hidden_(hidden) {
    if (path == "-") throw Error("safetensors output needs a file name: -o FILE.safetensors");
    for (auto& [k, v] : metadata) writer_.set_metadata(k, v);
}

void PerBaseSafetensorsSink::begin(const Region& r, int64_t length) {
    if (!keys_.insert(r.name).second || !keys_.insert(r.name + ".scored").second)
        throw Error(fmt::format("{}: two regions are named \"{}\"; safetensors keys must be unique (name them in BED "
                                "column 4)", path_, r.name));
    buf_.clear();
    buf_.reserve(static_cast<size_t>(length * hidden_));
    scored_.clear();
}

void PerBaseSafetensorsSink::rows(const Region&, int64_t, const float* rows, const int64_t* ids, int64_t n) {
    buf_.insert(buf_.end(), rows, rows + n * hidden_);
    for (int64_t t = 0; t < n; ++t) scored_.push_back(ids[t] != kPadId);
}

void PerBaseSafetensorsSink::end(const Region& r, int64_t length, int64_t) {
    if (type_ == DType::F16) {
        std::vector<uint16_t> h(buf_.size());
        for (size_t i = 0; i < buf_.size(); ++i) h[i] = float_to_half(buf_[i]);
        writer_.add(r.name, DType::F16, {length, hidden_}, h.data(), h.size() * 2);
    } else {
        writer_.add(r.name, DType::F32, {length, hidden_}, buf_.data(), buf_.size() * 4);
    }
    writer_.add(r.name + ".scored", DType::U8, {length}, scored_.data(), scored_.size());
    std::vector<float>().swap(buf_);
}

void PerBaseSafetensorsSink::finish() { writer_.write(path_); }

} // namespace janusdna
