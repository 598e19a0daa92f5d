// NumPy .npy files (format version 1.0): a streaming writer of 2-D float arrays and a reader for tests and tools.
//
// Layout: "\x93NUMPY", version 1.0, a little-endian uint16 header length, then a Python-dict header
// {'descr': '<f4', 'fortran_order': False, 'shape': (R, C), } padded with spaces to a multiple of 64 bytes and
// ended by '\n', then the data in C order. numpy.load reads these files directly.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "janusdna/atomic_file.h"

namespace janusdna {

enum class NpyType { F32, F16, U8 };

// Writes an [R, C] array row by row through an AtomicFile; R need not be known in advance: the header reserves
// room for any row count and is rewritten with the final count at commit(). Nothing appears under `path` until
// commit() succeeds (a destroyed, uncommitted writer removes its temporary file). "-" (stdout) is refused: the
// header must be rewritten.
class NpyWriter {
public:
    // vector: write shape (R,) instead of (R, cols) (cols must then be 1).
    // Throws Error when path is "-", cols < 1, or the temporary file cannot be created.
    NpyWriter(const std::string& path, NpyType type, int64_t cols, bool vector = false);
    // Appends n rows of cols values each (converted to the file's type: float16 rounds to nearest even,
    // uint8 truncates). Throws Error naming the file on a write error.
    void append(const float* rows, int64_t n);
    // Appends n single bytes (only for a U8 writer with cols == 1 or n multiple of cols).
    void append_bytes(const uint8_t* data, int64_t n);
    // Rewrites the header with the final row count, then flushes, syncs and renames into place.
    void commit();
    int64_t rows() const { return rows_; }
    const std::string& path() const { return file_.path(); }

private:
    std::string header(int64_t rows) const;
    AtomicFile file_;
    NpyType type_;
    int64_t cols_, rows_ = 0;
    bool vector_;
    std::vector<uint16_t> half_;
};

// An .npy file read back: shape (any rank), values converted to float32.
struct NpyArray {
    std::string descr;            // "<f4", "<f2", "|u1", ...
    std::vector<int64_t> shape;
    std::vector<float> data;      // C order
};

// Reads a little-endian float32, float16 or uint8 .npy file (version 1.0 or 2.0, C order). Throws Error naming
// the file for anything else or a truncated file.
NpyArray read_npy(const std::string& path);

} // namespace janusdna
