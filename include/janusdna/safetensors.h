// Reader and writer for the safetensors format (https://github.com/huggingface/safetensors), torch-free.
//
// Layout: 8-byte little-endian header length N, N bytes of JSON header, then the data section. The header maps
// each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data section)
// and may hold "__metadata__": an object of string -> string.
//
// The reader validates everything it is given and throws janusdna::Error naming the file (and tensor) on any
// defect: weight files come from users, so no input may crash it or make it read outside the buffer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace janusdna {

class AtomicFile;

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// The safetensors spelling: "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL".
const char* dtype_name(DType dtype);
// Bytes per element.
size_t dtype_size(DType dtype);
// Inverse of dtype_name; nullopt for anything else (including dtypes the format has but we do not support).
std::optional<DType> parse_dtype(std::string_view name);

// One tensor inside a SafetensorsFile; `data` points into the file's buffer and lives as long as the file.
// The data is only as aligned as the file makes it (the header is padded to 8 bytes, offsets are the
// writer's choice): read it with memcpy or check alignment before casting.
struct TensorView {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape; // empty for a 0-d scalar
    const void* data;
    size_t nbytes; // == numel() * dtype_size(dtype), checked by the reader
    int64_t numel() const;
};

// A read-only safetensors file, memory-mapped (or held in memory for from_bytes). Move-only.
class SafetensorsFile {
public:
    // Maps and validates `path`; throws janusdna::Error on any problem.
    static SafetensorsFile open(const std::string& path);
    // Same validation over an in-memory buffer; `label` stands in for the file name in errors and path().
    static SafetensorsFile from_bytes(std::string bytes, std::string label);

    SafetensorsFile(SafetensorsFile&&) noexcept;
    SafetensorsFile& operator=(SafetensorsFile&&) noexcept;
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;
    ~SafetensorsFile();

    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::vector<TensorView>& tensors() const { return tensors_; } // sorted by name
    const TensorView* find(const std::string& name) const;               // nullptr if absent
    const std::string& path() const { return path_; }
    // The tensor's bytes leave the resident set (MappedFile::release) once the caller has copied them out.
    void release(const TensorView& t) const;

private:
    struct Storage; // the mapping or the in-memory bytes (defined in the .cpp)

    SafetensorsFile() = default;
    void parse(); // fills metadata_ and tensors_ from storage_

    std::string path_;
    std::unique_ptr<Storage> storage_; // heap-held so views stay valid when the file object moves
    std::map<std::string, std::string> metadata_;
    std::vector<TensorView> tensors_;
};

// Builds a safetensors file in memory. Tensors are written sorted by name, data packed in that order.
class SafetensorsWriter {
public:
    // Copies the bytes. Throws janusdna::Error on a duplicate or reserved name, a negative dimension, or
    // nbytes != numel(shape) * dtype_size(dtype).
    void add(std::string name, DType dtype, std::vector<int64_t> shape, const void* data, size_t nbytes);
    // The same without the copy: `data` must stay valid until the file is written (large conversions).
    void add_view(std::string name, DType dtype, std::vector<int64_t> shape, const void* data, size_t nbytes);
    void set_metadata(std::string key, std::string value);
    // Writes the file atomically (AtomicFile: temp file + rename; "-" is stdout).
    void write(const std::string& path) const;
    // Writes into an open AtomicFile without committing it (the caller checks the result first).
    void write(AtomicFile& file) const;
    std::string to_bytes() const;

private:
    struct Entry {
        DType dtype;
        std::vector<int64_t> shape;
        std::string bytes;       // the copy (add)
        std::string_view view;   // the caller's data (add_view)
        bool owned;
        std::string_view data() const { return owned ? std::string_view(bytes) : view; }
    };
    void add_entry(std::string name, DType dtype, std::vector<int64_t> shape, const void* data, size_t nbytes, bool copy);
    // The 8-byte length prefix plus the padded JSON header.
    std::string header_bytes() const;

    std::map<std::string, Entry> tensors_; // std::map: name order is the file order
    std::map<std::string, std::string> metadata_;
};

// Converts a F32, F16, BF16 or F64 tensor to float32 into out[0 .. numel()); throws janusdna::Error
// for other dtypes. Handles unaligned data.
void convert_to_f32(const TensorView& tensor, float* out);

// IEEE 754 binary16 <-> binary32. float_to_half rounds to nearest even; overflow gives inf, NaN stays NaN.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
// bfloat16 <-> binary32. float_to_bf16 rounds to nearest even; NaN stays NaN (quieted).
float bf16_to_float(uint16_t b);
uint16_t float_to_bf16(float f);

} // namespace janusdna
