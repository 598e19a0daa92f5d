#include "janusdna/safetensors.h"

#include "janusdna/atomic_file.h"
#include "janusdna/error.h"
#include "janusdna/mapped_file.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>
#include <utility>

// Tensor bytes are handed over in host order and safetensors is little-endian; we only build for such hosts.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace janusdna {

using json = nlohmann::json;

namespace {

// Same limit as the reference implementation: a larger header is an attack or garbage, not a model.
constexpr uint64_t max_header_bytes = 100'000'000;
// Real headers nest 3 deep (root -> entry -> shape); a limit keeps "[[[[..." from eating gigabytes.
constexpr int max_json_depth = 64;

// Names and parser messages come from the file: keep control characters out so messages stay one line, and cap
// the length (nlohmann quotes the whole offending token, which may be megabytes long).
std::string printable(std::string_view s) {
    constexpr size_t max_len = 200;
    std::string out(s.substr(0, max_len));
    if (s.size() > max_len) out += "...";
    for (char& c : out) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
    return out;
}

std::string shape_string(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// A JSON value as a non-negative integer; nullopt for floats, negatives, strings, ...
std::optional<uint64_t> as_nonneg_int(const json& v) {
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer()) {
        int64_t i = v.get<int64_t>();
        if (i >= 0) return static_cast<uint64_t>(i);
    }
    return std::nullopt;
}

// Element count and byte count of a shape, or nullopt when either overflows int64 (sizes come from the
// file, so numel * dtype_size must not wrap and pass the size check by accident).
std::optional<std::pair<uint64_t, uint64_t>> checked_size(const std::vector<int64_t>& shape, DType dtype) {
    uint64_t numel = 1;
    // A zero dimension makes the tensor empty however large the others are; checking it first keeps
    // [2^62, 2^62, 0] from being rejected as an overflow.
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return std::make_pair(uint64_t{0}, uint64_t{0});
    for (int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) return std::nullopt;
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, uint64_t{dtype_size(dtype)}, &nbytes)) return std::nullopt;
    constexpr uint64_t limit = std::numeric_limits<int64_t>::max();
    if (numel > limit || nbytes > limit) return std::nullopt;
    return std::make_pair(numel, nbytes);
}

// nlohmann's dump throws on invalid UTF-8; checking at add() time names the culprit.
void check_utf8(const std::string& s, const char* what) {
    try {
        (void)json(s).dump();
    } catch (const std::exception&) {
        throw Error(fmt::format("safetensors writer: {} '{}' is not valid UTF-8", what, printable(s)));
    }
}

} // namespace

// ---------------------------------------------------------------- dtypes

const char* dtype_name(DType dtype) {
    switch (dtype) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
    }
    return "?";
}

size_t dtype_size(DType dtype) {
    switch (dtype) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: case DType::BOOL: return 1;
    }
    return 1;
}

std::optional<DType> parse_dtype(std::string_view name) {
    for (DType d : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I16, DType::I8,
                    DType::U8, DType::BOOL}) {
        if (name == dtype_name(d)) return d;
    }
    return std::nullopt;
}

int64_t TensorView::numel() const {
    // As in checked_size: any zero dimension means no elements, even if the others would overflow.
    if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(n, d, &n))
            throw Error(fmt::format("tensor '{}': invalid shape {}", printable(name), shape_string(shape)));
    }
    return n;
}

// ---------------------------------------------------------------- reader

struct SafetensorsFile::Storage {
    MappedFile file;
};

SafetensorsFile::SafetensorsFile(SafetensorsFile&&) noexcept = default;
SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&&) noexcept = default;
SafetensorsFile::~SafetensorsFile() = default;

SafetensorsFile SafetensorsFile::open(const std::string& path) {
    SafetensorsFile file;
    file.path_ = path;
    file.storage_ = std::make_unique<Storage>(Storage{MappedFile::open(path)});
    file.parse();
    return file;
}

SafetensorsFile SafetensorsFile::from_bytes(std::string bytes, std::string label) {
    SafetensorsFile file;
    file.path_ = std::move(label);
    file.storage_ = std::make_unique<Storage>(Storage{MappedFile::from_bytes(std::move(bytes))});
    file.parse();
    return file;
}

void SafetensorsFile::release(const TensorView& t) const { storage_->file.release(t.data, t.nbytes); }

const TensorView* SafetensorsFile::find(const std::string& name) const {
    auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                               [](const TensorView& t, const std::string& n) { return t.name < n; });
    return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

void SafetensorsFile::parse() {
    const char* base = storage_->file.bytes().data();
    const uint64_t size = storage_->file.bytes().size();
    auto not_safetensors = [&](const std::string& why) {
        return Error(fmt::format("{}: not a safetensors file ({})", path_, why));
    };

    if (size == 0) throw not_safetensors("empty file");
    if (size < 8) throw not_safetensors(fmt::format("file is only {} bytes, too short for the header length", size));
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(base[i]);
    // Compared as "> size - 8", not "8 + header_len > size", which could wrap.
    if (header_len > size - 8)
        throw not_safetensors(fmt::format("header length {} exceeds file size {}", header_len, size));
    if (header_len > max_header_bytes)
        throw not_safetensors(fmt::format("header length {} exceeds the 100 MB limit", header_len));

    const char* header_begin = base + 8;
    const char* data_begin = header_begin + header_len;
    const uint64_t data_size = size - 8 - header_len;

    json header;
    try {
        auto limit_depth = [&](int depth, json::parse_event_t event, json&) {
            if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
                depth > max_json_depth)
                throw not_safetensors(fmt::format("header nests deeper than {} levels", max_json_depth));
            return true;
        };
        header = json::parse(header_begin, data_begin, limit_depth);
    } catch (const Error&) {
        throw; // the depth limit
    } catch (const std::exception& e) {
        // Any parser exception (caught as std::exception: under some include orders nlohmann's exception type
        // is not the one this file names).
        throw not_safetensors(std::string("header is not valid JSON: ") + printable(e.what()));
    }
    if (!header.is_object()) throw not_safetensors("header is not a JSON object");

    struct Range {
        uint64_t begin, end;
        std::string name;
    };
    std::vector<Range> ranges;
    for (const auto& [key, value] : header.items()) {
        if (key == "__metadata__") { // metadata, not a tensor
            if (!value.is_object()) throw Error(fmt::format("{}: __metadata__ is not a JSON object", path_));
            for (const auto& [mkey, mvalue] : value.items()) {
                if (!mvalue.is_string())
                    throw Error(fmt::format("{}: metadata value for key '{}' is not a string", path_, printable(mkey)));
                metadata_[mkey] = mvalue.get<std::string>();
            }
            continue;
        }
        auto bad = [&](const std::string& why) {
            return Error(fmt::format("{}: tensor '{}': {}", path_, printable(key), why));
        };
        if (!value.is_object()) throw bad("entry is not a JSON object");

        auto dtype_it = value.find("dtype");
        if (dtype_it == value.end() || !dtype_it->is_string()) throw bad("dtype missing or not a string");
        std::optional<DType> dtype = parse_dtype(dtype_it->get_ref<const std::string&>());
        if (!dtype) throw bad(fmt::format("unknown dtype '{}'", printable(dtype_it->get_ref<const std::string&>())));

        auto shape_it = value.find("shape");
        if (shape_it == value.end() || !shape_it->is_array()) throw bad("shape missing or not a list");
        std::vector<int64_t> shape;
        for (const json& d : *shape_it) {
            std::optional<uint64_t> v = as_nonneg_int(d);
            if (!v || *v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                throw bad(fmt::format("shape {} is not a list of non-negative integers", printable(shape_it->dump())));
            shape.push_back(static_cast<int64_t>(*v));
        }

        auto offsets_it = value.find("data_offsets");
        if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2)
            throw bad("data_offsets missing or not a list of two integers");
        std::optional<uint64_t> begin = as_nonneg_int((*offsets_it)[0]), end = as_nonneg_int((*offsets_it)[1]);
        if (!begin || !end) throw bad(fmt::format("data_offsets {} are not two non-negative integers",
                                                  printable(offsets_it->dump())));
        if (*begin > *end) throw bad(fmt::format("data_offsets [{}, {}] end before they begin", *begin, *end));
        if (*end > data_size)
            throw bad(fmt::format("data_offsets [{}, {}] point outside the {}-byte data section (truncated file?)",
                                  *begin, *end, data_size));

        auto sizes = checked_size(shape, *dtype);
        if (!sizes) throw bad(fmt::format("shape {} is too large", shape_string(shape)));
        if (sizes->second != *end - *begin)
            throw bad(fmt::format("data_offsets [{}, {}] hold {} bytes, but {} {} needs {}", *begin, *end,
                                  *end - *begin, dtype_name(*dtype), shape_string(shape), sizes->second));

        TensorView view;
        view.name = key;
        view.dtype = *dtype;
        view.shape = std::move(shape);
        view.data = data_begin + *begin;
        view.nbytes = static_cast<size_t>(*end - *begin);
        tensors_.push_back(std::move(view));
        if (*end > *begin) ranges.push_back({*begin, *end, key}); // empty tensors overlap nothing
    }

    // Overlapping tensors would alias each other's memory: a corrupt or malicious file.
    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
    for (size_t i = 1; i < ranges.size(); ++i) {
        if (ranges[i].begin < ranges[i - 1].end)
            throw Error(fmt::format("{}: tensors '{}' and '{}' overlap", path_, printable(ranges[i - 1].name),
                                    printable(ranges[i].name)));
    }
    std::sort(tensors_.begin(), tensors_.end(),
              [](const TensorView& a, const TensorView& b) { return a.name < b.name; });
}

// ---------------------------------------------------------------- writer

void SafetensorsWriter::add(std::string name, DType dtype, std::vector<int64_t> shape, const void* data,
                            size_t nbytes) {
    add_entry(std::move(name), dtype, std::move(shape), data, nbytes, /*copy=*/true);
}

void SafetensorsWriter::add_view(std::string name, DType dtype, std::vector<int64_t> shape, const void* data,
                                 size_t nbytes) {
    add_entry(std::move(name), dtype, std::move(shape), data, nbytes, /*copy=*/false);
}

void SafetensorsWriter::add_entry(std::string name, DType dtype, std::vector<int64_t> shape, const void* data,
                                  size_t nbytes, bool copy) {
    auto bad = [&](const std::string& why) {
        return Error(fmt::format("safetensors writer: tensor '{}': {}", printable(name), why));
    };
    if (name == "__metadata__") throw bad("name is reserved for metadata");
    check_utf8(name, "tensor name");
    if (tensors_.count(name)) throw bad("added twice");
    auto sizes = checked_size(shape, dtype);
    if (!sizes) throw bad(fmt::format("invalid shape {}", shape_string(shape)));
    if (sizes->second != nbytes)
        throw bad(fmt::format("{} bytes given, but {} {} needs {}", nbytes, dtype_name(dtype), shape_string(shape),
                              sizes->second));
    Entry entry{dtype, std::move(shape), std::string(), std::string_view(), copy};
    if (copy && nbytes > 0) entry.bytes.assign(static_cast<const char*>(data), nbytes);
    if (!copy) entry.view = std::string_view(static_cast<const char*>(data), nbytes);
    tensors_.emplace(std::move(name), std::move(entry));
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
    check_utf8(key, "metadata key");
    check_utf8(value, "metadata value");
    metadata_[std::move(key)] = std::move(value);
}

std::string SafetensorsWriter::header_bytes() const {
    json header = json::object(); // an std::map: keys come out sorted, "__metadata__" among them
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    uint64_t offset = 0;
    for (const auto& [name, entry] : tensors_) {
        uint64_t end = offset + entry.data().size();
        json item = json::object();
        item["dtype"] = dtype_name(entry.dtype);
        item["shape"] = entry.shape;
        item["data_offsets"] = json::array({offset, end});
        header[name] = std::move(item);
        offset = end;
    }
    std::string text = header.dump();
    // Padding the header to 8 bytes keeps the data section 8-byte aligned in the file (and in an mmap).
    text.append((8 - text.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    uint64_t n = text.size();
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return out + text;
}

std::string SafetensorsWriter::to_bytes() const {
    std::string out = header_bytes();
    for (const auto& [name, entry] : tensors_) out += entry.data();
    return out;
}

void SafetensorsWriter::write(const std::string& path) const {
    // Streams tensor by tensor instead of going through to_bytes(): no second copy of a large model.
    AtomicFile file(path);
    write(file);
    file.commit();
}

void SafetensorsWriter::write(AtomicFile& file) const {
    file.write(header_bytes());
    for (const auto& [name, entry] : tensors_) file.write(entry.data());
}

// ---------------------------------------------------------------- conversions

namespace {

uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

float bits_float(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

} // namespace

float half_to_float(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        // Zero or subnormal: mant * 2^-24 is exact in float.
        float mag = std::ldexp(static_cast<float>(mant), -24);
        return sign ? -mag : mag;
    }
    if (exp == 31) return bits_float(sign | 0x7f800000 | (mant << 13)); // inf, or NaN with its payload
    return bits_float(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

uint16_t float_to_half(float f) {
    uint32_t x = float_bits(f);
    uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
    x &= 0x7fffffff;
    if (x >= 0x7f800000) { // inf or NaN; NaN keeps the top payload bits and is forced quiet
        if (x == 0x7f800000) return sign | 0x7c00;
        return static_cast<uint16_t>(sign | 0x7e00 | ((x >> 13) & 0x3ff));
    }
    // 65520 is halfway between the largest half (65504) and 65536; the tie goes to the even neighbour, inf.
    if (x >= 0x477ff000) return sign | 0x7c00;
    if (x < 0x38800000) { // below 2^-14: a half subnormal (or zero), in units of 2^-24
        uint32_t e = x >> 23;
        if (e < 102) return sign; // below 2^-25: rounds to zero (2^-25 itself is a tie, to even zero)
        uint32_t m = (x & 0x7fffff) | 0x800000; // value = m * 2^(e - 150)
        uint32_t shift = 126 - e;              // 14 ... 24
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) ++q; // may carry into the smallest normal: still correct
        return static_cast<uint16_t>(sign | q);
    }
    // Normal: rebias the exponent, round the 13 dropped bits to nearest even; a mantissa carry bumps the exponent.
    x -= (127u - 15u) << 23;
    x += 0xfff + ((x >> 13) & 1);
    return static_cast<uint16_t>(sign | (x >> 13));
}

float bf16_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

uint16_t float_to_bf16(float f) {
    uint32_t x = float_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 0x40); // NaN: keep it NaN, quiet
    x += 0x7fff + ((x >> 16) & 1); // round to nearest even; overflow rolls into inf as it should
    return static_cast<uint16_t>(x >> 16);
}

void convert_to_f32(const TensorView& tensor, float* out) {
    const size_t n = static_cast<size_t>(tensor.numel());
    // A hand-made view could disagree with itself; reading nbytes for numel elements must stay in bounds.
    if (n * dtype_size(tensor.dtype) != tensor.nbytes)
        throw Error(fmt::format("tensor '{}': {} bytes do not match shape {}", printable(tensor.name), tensor.nbytes,
                                shape_string(tensor.shape)));
    const char* p = static_cast<const char*>(tensor.data);
    // memcpy per element: file data need not be aligned for the dtype.
    switch (tensor.dtype) {
    case DType::F32:
        if (n > 0) std::memcpy(out, p, n * 4);
        return;
    case DType::F16:
        for (size_t i = 0; i < n; ++i) {
            uint16_t h;
            std::memcpy(&h, p + 2 * i, 2);
            out[i] = half_to_float(h);
        }
        return;
    case DType::BF16:
        for (size_t i = 0; i < n; ++i) {
            uint16_t b;
            std::memcpy(&b, p + 2 * i, 2);
            out[i] = bf16_to_float(b);
        }
        return;
    case DType::F64:
        for (size_t i = 0; i < n; ++i) {
            double d;
            std::memcpy(&d, p + 8 * i, 8);
            out[i] = static_cast<float>(d);
        }
        return;
    default:
        throw Error(fmt::format("tensor '{}': cannot convert {} to F32", printable(tensor.name),
                                dtype_name(tensor.dtype)));
    }
}

} // namespace janusdna
