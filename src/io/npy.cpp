#include "janusdna/npy.h"
#include "janusdna/error.h"
#include "janusdna/safetensors.h"

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

namespace janusdna {

namespace {
// Header of a version 1.0 file; 128 bytes leave room for any 64-bit row count with a typical column count.
constexpr size_t kHeaderBytes = 128;

const char* descr_of(NpyType t) {
    switch (t) {
    case NpyType::F32: return "<f4";
    case NpyType::F16: return "<f2";
    case NpyType::U8: return "|u1";
    }
    return "";
}
} // namespace

NpyWriter::NpyWriter(const std::string& path, NpyType type, int64_t cols, bool vector)
    : file_(path == "-" ? throw Error("NPY output needs a file name, not standard output") : path), type_(type), cols_(cols),
      vector_(vector) {
    if (cols < 1 || (vector && cols != 1)) throw Error(fmt::format("{}: bad NPY column count {}", path, cols));
    file_.write(header(0));
}

std::string NpyWriter::header(int64_t rows) const {
    std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr_of(type_),
                                   vector_ ? fmt::format("{},", rows) : fmt::format("{}, {}", rows, cols_));
    const size_t used = 10 + dict.size() + 1; // magic(6) + version(2) + length(2) + dict + '\n'
    if (used > kHeaderBytes) throw Error(fmt::format("{}: NPY header too long", file_.path()));
    dict.append(kHeaderBytes - used, ' ');
    dict.push_back('\n');
    std::string h("\x93NUMPY\x01\x00", 8);
    const uint16_t len = static_cast<uint16_t>(dict.size());
    h.push_back(static_cast<char>(len & 0xff));
    h.push_back(static_cast<char>(len >> 8));
    return h + dict;
}

void NpyWriter::append(const float* data, int64_t n) {
    const size_t count = static_cast<size_t>(n * cols_);
    switch (type_) {
    case NpyType::F32: file_.write(data, count * sizeof(float)); break;
    case NpyType::F16:
        half_.resize(count);
        for (size_t i = 0; i < count; ++i) half_[i] = float_to_half(data[i]);
        file_.write(half_.data(), count * sizeof(uint16_t));
        break;
    case NpyType::U8: {
        std::string bytes(count, '\0');
        for (size_t i = 0; i < count; ++i) bytes[i] = static_cast<char>(static_cast<uint8_t>(data[i]));
        file_.write(bytes);
        break;
    }
    }
    rows_ += n;
}

void NpyWriter::append_bytes(const uint8_t* data, int64_t n) {
    if (type_ != NpyType::U8 || n % cols_ != 0) throw Error(fmt::format("{}: append_bytes needs a uint8 array", file_.path()));
    file_.write(data, static_cast<size_t>(n));
    rows_ += n / cols_;
}

void NpyWriter::commit() {
    const std::string h = header(rows_);
    FILE* f = file_.stream();
    if (std::fflush(f) != 0 || std::fseek(f, 0, SEEK_SET) != 0)
        throw Error(fmt::format("error writing {}: {}", file_.path(), std::strerror(errno)));
    file_.write(h);
    if (std::fflush(f) != 0 || std::fseek(f, 0, SEEK_END) != 0)
        throw Error(fmt::format("error writing {}: {}", file_.path(), std::strerror(errno)));
    file_.commit();
}

NpyArray read_npy(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(fmt::format("{}: {}", path, std::strerror(errno)));
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto bad = [&](const std::string& why) { return Error(fmt::format("{}: not a readable NPY file: {}", path, why)); };
    if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw bad("no NPY magic");
    const int major = static_cast<uint8_t>(bytes[6]);
    size_t hlen, start;
    if (major == 1) {
        hlen = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
        start = 10;
    } else if (major == 2 || major == 3) {
        if (bytes.size() < 12) throw bad("truncated header");
        hlen = 0;
        for (int i = 3; i >= 0; --i) hlen = (hlen << 8) | static_cast<uint8_t>(bytes[8 + i]);
        start = 12;
    } else {
        throw bad(fmt::format("version {}", major));
    }
    if (bytes.size() < start + hlen) throw bad("truncated header");
    const std::string dict = bytes.substr(start, hlen);
    NpyArray a;
    auto field = [&](const std::string& key) -> std::string {
        size_t k = dict.find("'" + key + "'");
        if (k == std::string::npos) throw bad("no " + key);
        size_t colon = dict.find(':', k);
        if (colon == std::string::npos) throw bad("bad " + key);
        return dict.substr(colon + 1);
    };
    std::string d = field("descr");
    size_t q1 = d.find('\''), q2 = d.find('\'', q1 + 1);
    if (q1 == std::string::npos || q2 == std::string::npos) throw bad("bad descr");
    a.descr = d.substr(q1 + 1, q2 - q1 - 1);
    std::string fo = field("fortran_order");
    if (fo.find("False") != 0 && fo.find(" False") != 0) throw bad("Fortran order");
    std::string sh = field("shape");
    size_t p1 = sh.find('('), p2 = sh.find(')');
    if (p1 == std::string::npos || p2 == std::string::npos) throw bad("bad shape");
    std::stringstream ss(sh.substr(p1 + 1, p2 - p1 - 1));
    std::string item;
    int64_t numel = 1;
    while (std::getline(ss, item, ',')) {
        if (item.find_first_not_of(' ') == std::string::npos) continue;
        a.shape.push_back(std::stoll(item));
        numel *= a.shape.back();
    }
    size_t esize;
    if (a.descr == "<f4") esize = 4;
    else if (a.descr == "<f2") esize = 2;
    else if (a.descr == "|u1" || a.descr == "<u1") esize = 1;
    else throw bad("unsupported dtype " + a.descr);
    const size_t off = start + hlen;
    if (bytes.size() != off + static_cast<size_t>(numel) * esize) throw bad("data size does not match the shape");
    a.data.resize(static_cast<size_t>(numel));
    const char* p = bytes.data() + off;
    for (int64_t i = 0; i < numel; ++i) {
        if (esize == 4) std::memcpy(&a.data[i], p + 4 * i, 4);
        else if (esize == 2) { uint16_t h; std::memcpy(&h, p + 2 * i, 2); a.data[i] = half_to_float(h); }
        else a.data[i] = static_cast<uint8_t>(p[i]);
    }
    return a;
}

} // namespace janusdna
