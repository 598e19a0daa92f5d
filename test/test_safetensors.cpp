// Tests for the safetensors reader/writer and AtomicFile (torch-free).
#include "janusdna/atomic_file.h"
#include "janusdna/error.h"
#include "janusdna/safetensors.h"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <csignal>
#include <vector>

#ifndef JANUSDNA_TEST_DATA
#define JANUSDNA_TEST_DATA "test/data"
#endif

namespace {

using namespace janusdna;
namespace fs = std::filesystem;

// ---------------------------------------------------------------- helpers

// A scratch directory removed with everything in it.
struct TempDir {
    std::string path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "janusdna_st_XXXXXX").string();
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return path + "/" + name; }
    size_t entries() const { return static_cast<size_t>(std::distance(fs::directory_iterator(path), {})); }
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(out.good());
}

std::string le64(uint64_t n) {
    std::string s(8, '\0');
    for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return s;
}

// A file from a raw header text and data section.
std::string make_file(const std::string& header, const std::string& data = std::string()) {
    return le64(header.size()) + header + data;
}

// The message of the janusdna::Error that f throws ("" if it throws none; other exceptions escape and fail).
template <class F> std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

#define CHECK_ERROR_CONTAINS(expr, substr)                                                                   \
    do {                                                                                                   \
        std::string msg_ = error_of([&] { (void)(expr); });                                                \
        INFO("message: " << msg_);                                                                         \
        CHECK(!msg_.empty());                                                                              \
        CHECK(msg_.find(substr) != std::string::npos);                                                     \
        CHECK(msg_.find('\n') == std::string::npos);                                                       \
    } while (0)

// Parses bytes as a file labelled "mem.safetensors".
SafetensorsFile parse(const std::string& bytes) { return SafetensorsFile::from_bytes(bytes, "mem.safetensors"); }

// A one-tensor file: "x" with the given entry JSON and data.
std::string one_tensor(const std::string& entry, const std::string& data) {
    return make_file("{\"x\":" + entry + "}", data);
}

template <class T> std::string bytes_of(const std::vector<T>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

// A small valid file whose last byte belongs to a tensor, so every truncation of it is invalid.
std::string sample_file() {
    SafetensorsWriter w;
    std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 1e30f, -1e-30f};
    std::vector<uint16_t> bf16 = {0x3f80, 0xc000, 0x7f80};
    std::vector<int64_t> i64 = {42};
    std::vector<uint8_t> u8 = {1, 2, 3, 4, 5};
    w.add("f32", DType::F32, {2, 3}, f32.data(), f32.size() * 4);
    w.add("bf16", DType::BF16, {3}, bf16.data(), bf16.size() * 2);
    w.add("scalar", DType::I64, {}, i64.data(), 8);
    w.add("empty", DType::F16, {0, 4}, nullptr, 0);
    w.add("u8", DType::U8, {5}, u8.data(), u8.size());
    w.set_metadata("format", "pt");
    return w.to_bytes();
}

// Reads every byte of every tensor (so ASan sees any out-of-bounds view) and converts the float ones.
double touch(const SafetensorsFile& f) {
    double sum = 0;
    for (const TensorView& t : f.tensors()) {
        const unsigned char* p = static_cast<const unsigned char*>(t.data);
        for (size_t i = 0; i < t.nbytes; ++i) sum += p[i];
        if (t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16 || t.dtype == DType::F64) {
            std::vector<float> out(static_cast<size_t>(t.numel()));
            convert_to_f32(t, out.data());
        }
        CHECK(f.find(t.name) == &t);
    }
    return sum;
}

// ---------------------------------------------------------------- dtypes

TEST_CASE("safetensors: dtype names, sizes and parsing") {
    const DType all[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                         DType::I32, DType::I16, DType::I8,  DType::U8,   DType::BOOL};
    const size_t sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1};
    for (size_t i = 0; i < 10; ++i) {
        CHECK(dtype_size(all[i]) == sizes[i]);
        CHECK(parse_dtype(dtype_name(all[i])) == all[i]);
    }
    CHECK(std::string(dtype_name(DType::BF16)) == "BF16");
    CHECK(std::string(dtype_name(DType::BOOL)) == "BOOL");
    CHECK(!parse_dtype("f32"));
    CHECK(!parse_dtype("F8_E4M3"));
    CHECK(!parse_dtype(""));
}

// ---------------------------------------------------------------- round trips

TEST_CASE("safetensors: write -> read round trip of several dtypes and shapes") {
    std::vector<double> f64 = {1.0, -2.5, 1e300, 4.0};
    std::vector<float> f32 = {1, 2, 3, 4, 5, 6};
    std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x7bff};
    std::vector<uint16_t> bf16 = {0x3f80, 0x4000, 0x8000, 0x7f80};
    std::vector<int64_t> scalar = {-7};
    std::vector<int16_t> i16 = {-1, 300};
    std::vector<int8_t> i8 = {-128, 0, 127};
    std::vector<uint8_t> u8 = {0, 255, 3, 4, 5, 6};
    std::vector<uint8_t> boolean = {1, 0};

    SafetensorsWriter w;
    w.add("f64", DType::F64, {4}, f64.data(), 32);
    w.add("a.f32", DType::F32, {2, 3}, f32.data(), 24);
    w.add("f16", DType::F16, {3}, f16.data(), 6);
    w.add("bf16", DType::BF16, {2, 1, 2}, bf16.data(), 8);
    w.add("scalar", DType::I64, {}, scalar.data(), 8);
    w.add("empty", DType::I32, {0, 5}, nullptr, 0);
    w.add("i16", DType::I16, {2}, i16.data(), 4);
    w.add("i8", DType::I8, {3}, i8.data(), 3);
    w.add("u8", DType::U8, {3, 1, 2}, u8.data(), 6);
    w.add("bool", DType::BOOL, {2}, boolean.data(), 2);
    w.set_metadata("format", "pt");
    w.set_metadata("janusdna_config", "{\"d_model\": 32}");

    TempDir dir;
    const std::string path = dir / "model.safetensors";
    w.write(path);
    CHECK(read_file(path) == w.to_bytes());
    CHECK(dir.entries() == 1); // no temp file left behind

    auto check = [&](const SafetensorsFile& f) {
        CHECK(f.metadata().size() == 2);
        CHECK(f.metadata().at("format") == "pt");
        CHECK(f.metadata().at("janusdna_config") == "{\"d_model\": 32}");
        REQUIRE(f.tensors().size() == 10);
        for (size_t i = 1; i < f.tensors().size(); ++i) CHECK(f.tensors()[i - 1].name < f.tensors()[i].name);
        CHECK(f.find("__metadata__") == nullptr);
        CHECK(f.find("missing") == nullptr);
        auto expect = [&](const std::string& name, DType dt, std::vector<int64_t> shape, const std::string& bytes) {
            INFO(name);
            const TensorView* t = f.find(name);
            REQUIRE(t != nullptr);
            CHECK(t->name == name);
            CHECK(t->dtype == dt);
            CHECK(t->shape == shape);
            CHECK(t->nbytes == bytes.size());
            CHECK(static_cast<size_t>(t->numel()) * dtype_size(dt) == bytes.size());
            CHECK(std::string(static_cast<const char*>(t->data), t->nbytes) == bytes);
        };
        expect("f64", DType::F64, {4}, bytes_of(f64));
        expect("a.f32", DType::F32, {2, 3}, bytes_of(f32));
        expect("f16", DType::F16, {3}, bytes_of(f16));
        expect("bf16", DType::BF16, {2, 1, 2}, bytes_of(bf16));
        expect("scalar", DType::I64, {}, bytes_of(scalar));
        expect("empty", DType::I32, {0, 5}, "");
        expect("i16", DType::I16, {2}, bytes_of(i16));
        expect("i8", DType::I8, {3}, bytes_of(i8));
        expect("u8", DType::U8, {3, 1, 2}, bytes_of(u8));
        expect("bool", DType::BOOL, {2}, bytes_of(boolean));
        CHECK(f.find("scalar")->numel() == 1);
        CHECK(f.find("empty")->numel() == 0);

        std::vector<float> out(4);
        convert_to_f32(*f.find("f64"), out.data());
        CHECK(out[0] == 1.0f);
        CHECK(out[1] == -2.5f);
        CHECK(std::isinf(out[2]));
        convert_to_f32(*f.find("f16"), out.data());
        CHECK(out[0] == 1.0f);
        CHECK(out[1] == -2.0f);
        CHECK(out[2] == 65504.0f);
        convert_to_f32(*f.find("bf16"), out.data());
        CHECK(out[0] == 1.0f);
        CHECK(out[1] == 2.0f);
        CHECK(std::signbit(out[2]));
        CHECK(std::isinf(out[3]));
        CHECK_ERROR_CONTAINS(convert_to_f32(*f.find("i16"), out.data()), "cannot convert I16 to F32");
    };

    SafetensorsFile mapped = SafetensorsFile::open(path);
    CHECK(mapped.path() == path);
    check(mapped);
    SafetensorsFile in_memory = SafetensorsFile::from_bytes(w.to_bytes(), "label");
    CHECK(in_memory.path() == "label");
    check(in_memory);

    // Views must survive moving the file object (small in-memory buffers would otherwise move with it).
    SafetensorsFile moved = std::move(in_memory);
    check(moved);
    SafetensorsFile assigned = SafetensorsFile::from_bytes(sample_file(), "other");
    assigned = std::move(mapped);
    check(assigned);

    // The data section starts 8-byte aligned in the file.
    uint64_t header_len = 0;
    std::memcpy(&header_len, w.to_bytes().data(), 8);
    CHECK(header_len % 8 == 0);
}

TEST_CASE("safetensors: release() drops a tensor's pages from memory, and its bytes read back the same") {
    // Tensors of many pages and of less than one, at unaligned offsets: release() may only drop the pages a tensor
    // covers whole, and the data must read back identically from the file afterwards.
    const long page = sysconf(_SC_PAGESIZE);
    std::mt19937 rng(7);
    std::vector<std::vector<float>> data;
    SafetensorsWriter w;
    for (int i = 0; i < 6; ++i) {
        data.emplace_back(static_cast<size_t>(i % 2 ? 3 : 1024 * page / 4 + i)); // 12 bytes, or 1,024 pages
        for (float& x : data.back()) x = std::uniform_real_distribution<float>(-1, 1)(rng);
        w.add("t" + std::to_string(i), DType::F32, {static_cast<int64_t>(data.back().size())}, data.back().data(),
              data.back().size() * 4);
    }
    TempDir dir;
    w.write(dir / "r.safetensors");
    SafetensorsFile f = SafetensorsFile::open(dir / "r.safetensors");
    auto rss_pages = [] { // this process's resident pages (/proc/self/statm, 2nd field)
        std::ifstream in("/proc/self/statm");
        long size = 0, rss = 0;
        in >> size >> rss;
        return rss;
    };
    for (int i = 0; i < 6; ++i) {
        const TensorView& t = *f.find("t" + std::to_string(i));
        REQUIRE(std::memcmp(t.data, data[i].data(), t.nbytes) == 0); // touches every page
        const long before = rss_pages();
        f.release(t);
        const long dropped = before - rss_pages();
        if (i % 2 == 0) CHECK(dropped >= 1000); // of the 1,023 whole pages
        else CHECK(dropped <= 0);               // a tensor inside one page keeps it: its neighbours share it
        CHECK(std::memcmp(t.data, data[i].data(), t.nbytes) == 0);   // read again from the file
    }
    // Bytes in memory (no mapping): a no-op.
    SafetensorsFile m = SafetensorsFile::from_bytes(w.to_bytes(), "mem");
    for (const TensorView& t : m.tensors()) m.release(t);
    CHECK(std::memcmp(m.find("t0")->data, data[0].data(), data[0].size() * 4) == 0);
}

TEST_CASE("safetensors: empty writer gives a valid empty file") {
    SafetensorsWriter w;
    std::string bytes = w.to_bytes();
    CHECK(bytes == le64(8) + "{}      ");
    SafetensorsFile f = parse(bytes);
    CHECK(f.tensors().empty());
    CHECK(f.metadata().empty());
}

TEST_CASE("safetensors: byte-exact known-good file") {
    // Hand-built: length 136 (132 bytes of JSON + 4 spaces), keys sorted, offsets relative to the data section.
    const std::string header = "{\"__metadata__\":{\"k\":\"v\"},"
                               "\"a\":{\"data_offsets\":[0,3],\"dtype\":\"U8\",\"shape\":[3]},"
                               "\"b\":{\"data_offsets\":[3,11],\"dtype\":\"F32\",\"shape\":[2]}}    ";
    REQUIRE(header.size() == 136);
    const std::string data("\x01\x02\x03" "\x00\x00\x80\x3f" "\x00\x00\x00\x40", 11);
    const std::string expected = std::string("\x88\0\0\0\0\0\0\0", 8) + header + data;

    SafetensorsWriter w;
    std::vector<float> b = {1.0f, 2.0f};
    std::vector<uint8_t> a = {1, 2, 3};
    w.add("b", DType::F32, {2}, b.data(), 8); // added out of order: the file is sorted anyway
    w.add("a", DType::U8, {3}, a.data(), 3);
    w.set_metadata("k", "v");
    CHECK(w.to_bytes() == expected);

    SafetensorsFile f = parse(expected);
    REQUIRE(f.tensors().size() == 2);
    CHECK(f.tensors()[0].name == "a");
    CHECK(f.tensors()[1].name == "b");
    CHECK(f.metadata().at("k") == "v");
    float out[2];
    convert_to_f32(*f.find("b"), out);
    CHECK(out[0] == 1.0f);
    CHECK(out[1] == 2.0f);
}

TEST_CASE("safetensors: reads a file in the reference writer's style") {
    // As Python's safetensors writes it: spaces after separators, __metadata__ first, unsorted keys, no padding
    // requirement on our side, and an odd offset (data need not be aligned).
    std::string data("\x07" "\x80\x3f" "\x00\xc0", 5);
    std::string header = "{\"__metadata__\": {\"format\": \"pt\"}, "
                         "\"z\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}, "
                         "\"y\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [1, 5]}}";
    SafetensorsFile f = parse(make_file(header, data));
    REQUIRE(f.tensors().size() == 2);
    CHECK(f.tensors()[0].name == "y");
    float out[2];
    convert_to_f32(*f.find("y"), out);
    CHECK(out[0] == 1.0f);
    CHECK(out[1] == -2.0f);
}

// ---------------------------------------------------------------- validation

TEST_CASE("safetensors: file-level errors") {
    TempDir dir;
    CHECK_ERROR_CONTAINS(SafetensorsFile::open(dir / "missing.safetensors"), "No such file or directory");
    CHECK_ERROR_CONTAINS(SafetensorsFile::open(dir / "missing.safetensors"), "missing.safetensors");
    CHECK_ERROR_CONTAINS(SafetensorsFile::open(dir.path), "not a regular file");
    write_file(dir / "empty", "");
    CHECK_ERROR_CONTAINS(SafetensorsFile::open(dir / "empty"), "empty file");
    CHECK_ERROR_CONTAINS(parse(""), "mem.safetensors: not a safetensors file (empty file)");
    CHECK_ERROR_CONTAINS(parse("abcde"), "file is only 5 bytes");
    CHECK_ERROR_CONTAINS(parse(le64(12345678901) + std::string(992, ' ')),
                         "mem.safetensors: not a safetensors file (header length 12345678901 exceeds file size 1000)");
    CHECK_ERROR_CONTAINS(parse(le64(UINT64_MAX) + "{}"), "exceeds file size 10");
    CHECK_ERROR_CONTAINS(parse(le64(3) + "{}"), "exceeds file size 10");

    // Header over 100 MB in a file large enough to hold it: a sparse file, so the test stays cheap.
    const std::string big = dir / "big";
    write_file(big, le64(100'000'001));
    REQUIRE(truncate(big.c_str(), 100'000'100) == 0);
    CHECK_ERROR_CONTAINS(SafetensorsFile::open(big), "header length 100000001 exceeds the 100 MB limit");
}

TEST_CASE("safetensors: header errors") {
    CHECK_ERROR_CONTAINS(parse(make_file("{\"a\":")), "header is not valid JSON");
    CHECK_ERROR_CONTAINS(parse(make_file("")), "header is not valid JSON");
    CHECK_ERROR_CONTAINS(parse(make_file("{}\n\x01garbage")), "header is not valid JSON");
    CHECK_ERROR_CONTAINS(parse(make_file("{\"a\":\"\xff\"}")), "header is not valid JSON");
    CHECK_ERROR_CONTAINS(parse(make_file("[1, 2]")), "header is not a JSON object");
    CHECK_ERROR_CONTAINS(parse(make_file("42")), "header is not a JSON object");
    CHECK_ERROR_CONTAINS(parse(make_file(std::string(200, '[') + std::string(200, ']'))), "nests deeper");
    CHECK_ERROR_CONTAINS(parse(make_file("{\"x\":1}")), "mem.safetensors: tensor 'x': entry is not a JSON object");
    CHECK_ERROR_CONTAINS(parse(make_file("{\"x\":[]}")), "entry is not a JSON object");
    CHECK_ERROR_CONTAINS(parse(make_file("{\"__metadata__\":[]}")), "__metadata__ is not a JSON object");
    CHECK_ERROR_CONTAINS(parse(make_file("{\"__metadata__\":{\"a\":\"b\",\"n\":1}}")),
                         "metadata value for key 'n' is not a string");
    CHECK_ERROR_CONTAINS(parse(make_file("{\"__metadata__\":{\"n\":null}}")), "is not a string");
    // A name with a control character stays on one line in the message.
    CHECK_ERROR_CONTAINS(parse(make_file("{\"a\\nb\":1}")), "tensor 'a?b'");
    // An unterminated megabyte string is not quoted whole in the message.
    std::string msg = error_of([] { parse(make_file("{\"" + std::string(1 << 20, 'a'))); });
    CHECK(msg.find("not valid JSON") != std::string::npos);
    CHECK(msg.size() < 1000);
}

TEST_CASE("safetensors: tensor entry errors") {
    const std::string d8(8, '\0');
    auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
        return "{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
    };
    // Sanity: the valid form parses.
    CHECK(parse(one_tensor(entry("\"F32\"", "[2]", "[0,8]"), d8)).find("x") != nullptr);

    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F8_E4M3\"", "[8]", "[0,8]"), d8)),
                         "mem.safetensors: tensor 'x': unknown dtype 'F8_E4M3'");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"f32\"", "[2]", "[0,8]"), d8)), "unknown dtype 'f32'");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("4", "[2]", "[0,8]"), d8)), "dtype missing or not a string");
    CHECK_ERROR_CONTAINS(parse(one_tensor("{\"shape\":[2],\"data_offsets\":[0,8]}", d8)), "dtype missing");

    for (const char* shape : {"[-2]", "[2.0]", "[\"2\"]", "[null]", "[[2]]", "[9223372036854775808]",
                              "[18446744073709551615]", "[1e400]"}) {
        INFO(shape);
        std::string msg = error_of([&] { parse(one_tensor(entry("\"F32\"", shape, "[0,8]"), d8)); });
        CHECK((msg.find("not a list of non-negative integers") != std::string::npos ||
               msg.find("not valid JSON") != std::string::npos)); // 1e400 does not even parse
    }
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "2", "[0,8]"), d8)), "shape missing or not a list");
    CHECK_ERROR_CONTAINS(parse(one_tensor("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}", d8)), "shape missing");

    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[2]", "[0]"), d8)), "not a list of two integers");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[2]", "[0,4,8]"), d8)), "not a list of two integers");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[2]", "{\"a\":1}"), d8)), "not a list of two integers");
    CHECK_ERROR_CONTAINS(parse(one_tensor("{\"dtype\":\"F32\",\"shape\":[2]}", d8)), "data_offsets missing");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[2]", "[0,-8]"), d8)), "are not two non-negative");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[2]", "[\"0\",\"8\"]"), d8)), "not two non-negative");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[2]", "[0.0,8.0]"), d8)), "not two non-negative");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[0]", "[8,0]"), d8)), "[8, 0] end before they begin");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[4]", "[0,16]"), d8)),
                         "point outside the 8-byte data section (truncated file?)");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[2]", "[0,18446744073709551615]"), d8)),
                         "truncated file?");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[3]", "[0,8]"), d8)),
                         "data_offsets [0, 8] hold 8 bytes, but F32 [3] needs 12");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F64\"", "[]", "[0,4]"), d8)), "needs 8");
    // numel * dtype_size overflows 64 bits; the wrapped value must not pass the size check.
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[4294967296,4294967296,16]", "[0,0]"), d8)),
                         "is too large");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"F32\"", "[4611686018427387904]", "[0,0]"), d8)), "is too large");
    CHECK_ERROR_CONTAINS(parse(one_tensor(entry("\"U8\"", "[9223372036854775807,2]", "[0,0]"), d8)),
                         "is too large");
    // A zero dimension makes an empty tensor whatever the other dimensions say.
    SafetensorsFile zero = parse(one_tensor(entry("\"F32\"", "[4611686018427387904,4611686018427387904,0]", "[8,8]"), d8));
    CHECK(zero.find("x")->numel() == 0);
    CHECK(zero.find("x")->nbytes == 0);

    // Overlapping ranges; touching ranges and empty tensors inside others are fine.
    const std::string d16(16, '\0');
    CHECK_ERROR_CONTAINS(parse(make_file("{\"a\":" + entry("\"F32\"", "[2]", "[0,8]") + ",\"b\":" +
                                         entry("\"F32\"", "[2]", "[4,12]") + "}", d16)),
                         "mem.safetensors: tensors 'a' and 'b' overlap");
    CHECK_ERROR_CONTAINS(parse(make_file("{\"a\":" + entry("\"F32\"", "[4]", "[0,16]") + ",\"b\":" +
                                         entry("\"U8\"", "[1]", "[15,16]") + "}", d16)),
                         "overlap");
    CHECK_ERROR_CONTAINS(parse(make_file("{\"a\":" + entry("\"F32\"", "[2]", "[0,8]") + ",\"b\":" +
                                         entry("\"F32\"", "[2]", "[0,8]") + "}", d16)),
                         "overlap");
    SafetensorsFile ok = parse(make_file("{\"a\":" + entry("\"F32\"", "[2]", "[0,8]") + ",\"b\":" +
                                         entry("\"F32\"", "[2]", "[8,16]") + ",\"c\":" +
                                         entry("\"F32\"", "[0]", "[4,4]") + "}", d16));
    CHECK(ok.tensors().size() == 3);
}

TEST_CASE("safetensors: every truncation of a valid file is an error, never a crash") {
    const std::string full = sample_file();
    REQUIRE(parse(full).tensors().size() == 5);
    TempDir dir;
    const std::string path = dir / "t.safetensors";
    for (size_t n = 0; n < full.size(); ++n) {
        INFO("length " << n);
        const std::string prefix = full.substr(0, n);
        CHECK(!error_of([&] { parse(prefix); }).empty());
        write_file(path, prefix);
        CHECK(!error_of([&] { SafetensorsFile::open(path); }).empty());
    }
    // Truncated inside the data section: the message says so.
    CHECK_ERROR_CONTAINS(parse(full.substr(0, full.size() - 1)), "truncated file?");
}

// Random JSON values of every type, with a bias toward the numbers that break size arithmetic.
nlohmann::json random_json(std::mt19937_64& rng, int depth) {
    auto pick = [&](uint64_t n) { return rng() % n; };
    switch (pick(depth > 2 ? 7 : 9)) {
    case 0: {
        static const int64_t ints[] = {0, 1, 2, 3, 4, 8, -1, -8, 255, 1 << 20, INT32_MAX, INT64_MAX, INT64_MIN};
        return ints[pick(std::size(ints))];
    }
    case 1: {
        static const uint64_t uints[] = {UINT64_MAX, uint64_t{1} << 63, uint64_t{1} << 62, uint64_t{1} << 32};
        return uints[pick(std::size(uints))];
    }
    case 2: return static_cast<int64_t>(rng());
    case 3: {
        static const double doubles[] = {0.5, -0.0, 1e300, -1e-300, 4.0, 3.5};
        return doubles[pick(std::size(doubles))];
    }
    case 4: {
        static const char* strings[] = {"F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "F8_E5M2", "", "x",
                                        "__metadata__", "dtype", "shape", "data_offsets"};
        return strings[pick(std::size(strings))];
    }
    case 5: return nullptr;
    case 6: return static_cast<bool>(pick(2));
    case 7: {
        nlohmann::json a = nlohmann::json::array();
        for (uint64_t i = pick(5); i > 0; --i) a.push_back(random_json(rng, depth + 1));
        return a;
    }
    default: {
        nlohmann::json o = nlohmann::json::object();
        for (uint64_t i = pick(4); i > 0; --i) o[random_json(rng, 3).dump()] = random_json(rng, depth + 1);
        return o;
    }
    }
}

// A tensor entry that is valid except, often, for one or more fields.
nlohmann::json random_entry(std::mt19937_64& rng, uint64_t data_size) {
    static const char* dtypes[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"};
    nlohmann::json e = nlohmann::json::object();
    e["dtype"] = dtypes[rng() % 10];
    nlohmann::json shape = nlohmann::json::array();
    for (uint64_t i = rng() % 4; i > 0; --i) shape.push_back(rng() % 5);
    e["shape"] = shape;
    uint64_t b = rng() % (data_size + 2), end = b + rng() % 16;
    e["data_offsets"] = {b, end};
    for (const char* key : {"dtype", "shape", "data_offsets"}) {
        if (rng() % 4 == 0) e[key] = random_json(rng, 1);
        if (rng() % 20 == 0) e.erase(key);
    }
    return e;
}

TEST_CASE("safetensors: fuzzed input only ever throws janusdna::Error") {
    std::mt19937_64 rng(20240531);
    const std::string valid = sample_file();
    uint64_t header_len = 0;
    std::memcpy(&header_len, valid.data(), 8);
    size_t parsed = 0, rejected = 0;

    auto attempt = [&](const std::string& bytes) {
        std::optional<SafetensorsFile> f;
        try {
            f.emplace(parse(bytes));
        } catch (const Error& e) {
            ++rejected;
            CHECK(std::string(e.what()).find('\n') == std::string::npos);
            return;
        }
        // Any other exception propagates and fails the test case; so does an Error from a file that parsed.
        ++parsed;
        touch(*f);
    };

    // 1. Mutations of a valid file, concentrated on the length field and the header.
    for (int iter = 0; iter < 3000; ++iter) {
        std::string b = valid;
        for (uint64_t k = 1 + rng() % 4; k > 0; --k) {
            // Positions within the length field + header (or what is left of the file after a truncation).
            const size_t hot = std::min<size_t>(8 + header_len, b.size());
            auto in_header = [&] { return static_cast<long>(8 + rng() % (hot - 8 + 1)); };
            switch (hot < 9 ? 4 + rng() % 2 : rng() % 6) {
            case 0: b[rng() % hot] ^= static_cast<char>(1u << (rng() % 8)); break; // bit flip
            case 1: b[rng() % hot] = static_cast<char>(rng()); break;             // byte replace
            case 2: b.insert(b.begin() + in_header(), static_cast<char>(rng())); break;
            case 3: b.erase(b.begin() + std::min<long>(in_header(), static_cast<long>(b.size()) - 1)); break;
            case 4: { // length field: off by a little or anything at all
                uint64_t n = rng() % 2 ? header_len + (rng() % 17) - 8 : rng();
                if (b.size() < 8) b.resize(8);
                b.replace(0, 8, le64(n));
                break;
            }
            default: b.resize(rng() % (b.size() + 1)); break; // truncation
            }
        }
        attempt(b);
    }

    // 2. Random headers: plausible entries with wrong types, huge and negative numbers.
    for (int iter = 0; iter < 3000; ++iter) {
        const uint64_t data_size = rng() % 64;
        nlohmann::json header = rng() % 10 == 0 ? random_json(rng, 0) : nlohmann::json::object();
        if (header.is_object()) {
            for (uint64_t i = rng() % 5; i > 0; --i) header["t" + std::to_string(i)] = random_entry(rng, data_size);
            if (rng() % 4 == 0) header["__metadata__"] = rng() % 2 ? random_json(rng, 1) : nlohmann::json{{"k", "v"}};
        }
        std::string data(data_size, '\0');
        for (char& c : data) c = static_cast<char>(rng());
        attempt(make_file(header.dump(), data));
    }
    CHECK(parsed > 100);   // the generators must exercise the success path too ...
    CHECK(rejected > 1000); // ... and the error paths
}

// ---------------------------------------------------------------- writer errors

TEST_CASE("safetensors: writer errors") {
    SafetensorsWriter w;
    float f[2] = {1, 2};
    w.add("a", DType::F32, {2}, f, 8);
    CHECK_ERROR_CONTAINS(w.add("a", DType::F32, {2}, f, 8), "tensor 'a': added twice");
    CHECK_ERROR_CONTAINS(w.add("b", DType::F32, {3}, f, 8), "8 bytes given, but F32 [3] needs 12");
    CHECK_ERROR_CONTAINS(w.add("c", DType::F32, {-1}, f, 8), "invalid shape [-1]");
    CHECK_ERROR_CONTAINS(w.add("d", DType::F32, {INT64_MAX, 4}, f, 8), "invalid shape");
    CHECK_ERROR_CONTAINS(w.add("__metadata__", DType::F32, {2}, f, 8), "reserved");
    CHECK_ERROR_CONTAINS(w.add("bad\xff", DType::F32, {2}, f, 8), "not valid UTF-8");
    CHECK_ERROR_CONTAINS(w.set_metadata("k", "\xc3"), "not valid UTF-8");
    // The failed calls left the writer usable and unchanged.
    SafetensorsFile r = parse(w.to_bytes());
    CHECK(r.tensors().size() == 1);

    TempDir dir;
    CHECK_ERROR_CONTAINS(w.write(dir / "no/such/dir.safetensors"), "No such file or directory");
}

// ---------------------------------------------------------------- float conversions

// A signalling NaN whose payload lies only in the low bits that half and bfloat16 drop.
float bits_nan_with_low_payload() {
    uint32_t u = 0x7f800001;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

TEST_CASE("safetensors: half and bfloat16 conversions") {
    const float inf = std::numeric_limits<float>::infinity();
    // Exact known values.
    CHECK(half_to_float(0x0000) == 0.0f);
    CHECK(std::signbit(half_to_float(0x8000)));
    CHECK(half_to_float(0x3c00) == 1.0f);
    CHECK(half_to_float(0xc000) == -2.0f);
    CHECK(half_to_float(0x3555) == 0.333251953125f);
    CHECK(half_to_float(0x7bff) == 65504.0f);
    CHECK(half_to_float(0x0400) == std::ldexp(1.0f, -14)); // smallest normal
    CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24)); // smallest subnormal
    CHECK(half_to_float(0x03ff) == std::ldexp(1023.0f, -24));
    CHECK(half_to_float(0x7c00) == inf);
    CHECK(half_to_float(0xfc00) == -inf);
    CHECK(std::isnan(half_to_float(0x7e00)));
    CHECK(std::isnan(half_to_float(0x7c01)));

    CHECK(float_to_half(1.0f) == 0x3c00);
    CHECK(float_to_half(-2.0f) == 0xc000);
    CHECK(float_to_half(65504.0f) == 0x7bff);
    CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);
    CHECK(float_to_half(-0.0f) == 0x8000);
    CHECK(float_to_half(inf) == 0x7c00);
    CHECK(float_to_half(-inf) == 0xfc00);
    CHECK(float_to_half(1e10f) == 0x7c00);
    CHECK((float_to_half(std::nanf("")) & 0x7c00) == 0x7c00);
    CHECK((float_to_half(std::nanf("")) & 0x03ff) != 0);
    CHECK((float_to_half(-std::nanf("")) & 0x8000) != 0);
    CHECK((float_to_half(bits_nan_with_low_payload()) & 0x03ff) != 0); // payload only in dropped bits

    // Ties round to even. Around 1.0 the half spacing is 2^-10.
    const float ulp = std::ldexp(1.0f, -10);
    CHECK(float_to_half(1.0f + ulp / 2) == 0x3c00);          // tie, 1.0 is even
    CHECK(float_to_half(1.0f + ulp + ulp / 2) == 0x3c02);    // tie, rounds up to even
    CHECK(float_to_half(1.0f + ulp / 2 + ulp / 64) == 0x3c01); // above the tie
    CHECK(float_to_half(65519.0f) == 0x7bff);                // below the overflow tie
    CHECK(float_to_half(65520.0f) == 0x7c00);                // tie with 65536: to even, inf
    CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);   // tie between 0 and the smallest subnormal
    CHECK(float_to_half(std::ldexp(1.5f, -24)) == 0x0002);   // tie 1.5 ulp: to even 2
    CHECK(float_to_half(std::ldexp(2.5f, -24)) == 0x0002);   // tie 2.5 ulp: to even 2
    CHECK(float_to_half(std::ldexp(1.0f, -25) * 1.01f) == 0x0001);
    CHECK(float_to_half(std::ldexp(1023.5f, -24)) == 0x0400); // subnormal rounds up into the smallest normal
    CHECK(float_to_half(std::ldexp(1.0f, -30)) == 0x0000);

    // Every finite half survives a round trip through float; NaNs stay NaN.
    for (uint32_t h = 0; h < 0x10000; ++h) {
        float f = half_to_float(static_cast<uint16_t>(h));
        if (std::isnan(f)) {
            CHECK(std::isnan(half_to_float(float_to_half(f))));
        } else if (float_to_half(f) != h) {
            FAIL("half round trip " << h);
        }
    }
    // float -> half agrees with exact rounding on a sweep (checked against the nearest neighbours).
    std::mt19937 rng(7);
    for (int i = 0; i < 100000; ++i) {
        float f = std::ldexp(std::uniform_real_distribution<float>(-1, 1)(rng), static_cast<int>(rng() % 44) - 28);
        uint16_t h = float_to_half(f);
        double err = std::fabs(double(half_to_float(h)) - f);
        for (int d : {-1, 1}) {
            uint16_t other = static_cast<uint16_t>(h + d);
            if ((other & 0x7c00) == 0x7c00) continue;
            if (std::signbit(half_to_float(other)) != std::signbit(half_to_float(h))) continue;
            if (std::fabs(double(half_to_float(other)) - f) < err) FAIL("not nearest: " << f);
        }
    }

    // bfloat16.
    CHECK(bf16_to_float(0x3f80) == 1.0f);
    CHECK(bf16_to_float(0xc000) == -2.0f);
    CHECK(bf16_to_float(0x7f80) == inf);
    CHECK(bf16_to_float(0xff80) == -inf);
    CHECK(std::isnan(bf16_to_float(0x7fc0)));
    CHECK(bf16_to_float(0x0001) == std::ldexp(1.0f, -133)); // bf16 subnormal
    CHECK(float_to_bf16(1.0f) == 0x3f80);
    CHECK(float_to_bf16(3.140625f) == 0x4049);
    CHECK(float_to_bf16(inf) == 0x7f80);
    CHECK(float_to_bf16(-inf) == 0xff80);
    CHECK(float_to_bf16(std::numeric_limits<float>::max()) == 0x7f80); // rounds up into inf
    CHECK(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
    CHECK(std::isnan(bf16_to_float(float_to_bf16(bits_nan_with_low_payload())))); // would truncate to inf
    // Ties to even: 1 + 2^-8 is halfway between 1 (even) and 1 + 2^-7.
    CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);
    CHECK(float_to_bf16(1.0f + std::ldexp(3.0f, -8)) == 0x3f82); // halfway 0x3f81 / 0x3f82: to even
    CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 0x3f81);
    for (uint32_t b = 0; b < 0x10000; ++b) {
        float f = bf16_to_float(static_cast<uint16_t>(b));
        if (!std::isnan(f) && float_to_bf16(f) != b) FAIL("bf16 round trip " << b);
    }
}

// ---------------------------------------------------------------- AtomicFile

mode_t test_umask() {
    mode_t m = umask(022);
    umask(m);
    return m;
}

TEST_CASE("atomic_file: commit creates the file, replacing the old one only at commit") {
    TempDir dir;
    const std::string path = dir / "out.txt";
    write_file(path, "old");
    {
        AtomicFile f(path);
        CHECK(f.path() == path);
        f.write("hello ");
        std::fprintf(f.stream(), "%d", 42);
        f.write(std::string_view("!\n"));
        f.write("ignored", 0);
        CHECK(read_file(path) == "old"); // the old file is intact until commit
        CHECK(dir.entries() == 2);       // old file + temp file, in the same directory
        f.commit();
        CHECK_ERROR_CONTAINS(f.commit(), "commit called twice");
        CHECK_ERROR_CONTAINS(f.write("x"), "write after commit");
    }
    CHECK(read_file(path) == "hello 42!\n");
    CHECK(dir.entries() == 1);
    struct stat st;
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == (0666 & ~test_umask()));
}

TEST_CASE("atomic_file: uncommitted file leaves nothing behind") {
    TempDir dir;
    {
        AtomicFile f(dir / "out.txt");
        f.write(std::string(100000, 'x'));
        CHECK(dir.entries() == 1);
    }
    CHECK(dir.entries() == 0);
    // Also when an exception unwinds past it.
    CHECK_THROWS_AS(([&] {
                        AtomicFile f(dir / "out.txt");
                        f.write("partial");
                        throw Error("failure mid-write");
                    }()),
                    Error);
    CHECK(dir.entries() == 0);
    // An existing file is left untouched.
    write_file(dir / "keep.txt", "keep");
    { AtomicFile f(dir / "keep.txt"); f.write("new"); }
    CHECK(read_file(dir / "keep.txt") == "keep");
    CHECK(dir.entries() == 1);
}

TEST_CASE("atomic_file: move") {
    TempDir dir;
    AtomicFile a(dir / "a.txt");
    a.write("a");
    AtomicFile b(std::move(a));
    b.write("b");
    AtomicFile c(dir / "c.txt");
    c = std::move(b); // c's own temp file is discarded
    CHECK(dir.entries() == 1);
    c.commit();
    CHECK(read_file(dir / "a.txt") == "ab");
    CHECK(dir.entries() == 1);
}

TEST_CASE("atomic_file: unwritable destinations") {
    TempDir dir;
    CHECK_ERROR_CONTAINS(AtomicFile(dir / "missing/out.txt"), "No such file or directory");
    CHECK_ERROR_CONTAINS(AtomicFile(dir / "missing/out.txt"), dir / "missing/out.txt");
    write_file(dir / "file", "x");
    CHECK_ERROR_CONTAINS(AtomicFile(dir / "file/out.txt"), "Not a directory");
    const std::string ro = dir / "ro";
    REQUIRE(mkdir(ro.c_str(), 0555) == 0);
    if (geteuid() != 0) {
        CHECK_ERROR_CONTAINS(AtomicFile(ro + "/out.txt"), "Permission denied");
    } else {
        // Root ignores directory permissions (and CI runs as root): try as the unprivileged user "nobody" in a
        // child process; the child reports through its exit status.
        REQUIRE(chmod(dir.path.c_str(), 0755) == 0);
        const pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
            try {
                AtomicFile f(ro + "/out.txt");
                _exit(1);
            } catch (const Error& e) {
                _exit(std::string(e.what()).find("Permission denied") != std::string::npos ? 0 : 2);
            }
        }
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0); // 1: created a file it had no right to; 2: another error; 3: no setuid
    }
    // The target is a directory: only rename() can find out, at commit; the temp file is cleaned up.
    REQUIRE(mkdir((dir / "sub").c_str(), 0755) == 0);
    {
        AtomicFile f(dir / "sub");
        f.write("x");
        CHECK_ERROR_CONTAINS(f.commit(), "Is a directory");
    }
    CHECK(dir.entries() == 3); // file, ro, sub: no temporary file left
}

// Runs body in a child process (it changes process-wide state: file size limit, fd 1) and returns its exit code.
template <class F> int in_child(F&& body) {
    std::fflush(nullptr); // or the child would flush our buffered output a second time
    pid_t pid = fork();
    if (pid == 0) { // never return into doctest from the child
        try {
            _exit(body());
        } catch (...) {
            _exit(4);
        }
    }
    REQUIRE(pid > 0); // only after the child branch: with -s the child would report it into its stdout too
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// 0 if body throws a janusdna::Error containing both substrings, 1 if another message, 2 if nothing thrown.
template <class F> int expect_error_code(F&& body, const std::string& a, const std::string& b) {
    try {
        body();
    } catch (const Error& e) {
        std::string m = e.what();
        return m.find(a) != std::string::npos && m.find(b) != std::string::npos ? 0 : 1;
    }
    return 2;
}

TEST_CASE("atomic_file: write errors surface at write() or commit()") {
    // A file size limit makes write(2) fail with EFBIG like a full disk would with ENOSPC, on the real
    // temp-file path and with no test hook in the library.
    TempDir dir;
    const std::string path = dir / "big.bin";
    auto limited = [&](rlim_t limit, size_t bytes) {
        return in_child([&] {
            std::signal(SIGXFSZ, SIG_IGN);
            struct rlimit rl = {limit, RLIM_INFINITY};
            if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return 3;
            return expect_error_code(
                [&] {
                    AtomicFile f(path);
                    f.write(std::string(bytes, 'x'));
                    f.commit();
                },
                path, "File too large");
        });
    };
    CHECK(limited(4096, 1 << 20) == 0); // large write: fails in write()
    CHECK(dir.entries() == 0);
    CHECK(limited(0, 100) == 0); // small write sits in the stdio buffer: fails at commit's flush
    CHECK(dir.entries() == 0);

    // Same through SafetensorsWriter::write.
    int code = in_child([&] {
        std::signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1000, RLIM_INFINITY};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return 3;
        std::vector<float> v(10000, 1.0f);
        SafetensorsWriter w;
        w.add("v", DType::F32, {10000}, v.data(), v.size() * 4);
        return expect_error_code([&] { w.write(path); }, path, "File too large");
    });
    CHECK(code == 0);
    CHECK(dir.entries() == 0);
}

TEST_CASE("atomic_file: standard output") {
    // "-" writes to stdout; a full device (/dev/full as fd 1) is reported at commit().
    int code = in_child([] {
        int fd = open("/dev/full", O_WRONLY);
        if (fd < 0 || dup2(fd, 1) < 0) return 3;
        return expect_error_code(
            [] {
                AtomicFile f("-");
                f.write("some output\n");
                f.commit();
            },
            "standard output", "No space left on device");
    });
    CHECK(code == 0);
    // And a working stdout (redirected to a file) gets the bytes.
    TempDir dir;
    const std::string path = dir / "stdout.txt";
    code = in_child([&] {
        int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0) return 3;
        try {
            AtomicFile f("-");
            if (f.stream() != stdout) return 2;
            f.write("to stdout\n");
            f.commit();
        } catch (const Error&) {
            return 1;
        }
        return 0;
    });
    CHECK(code == 0);
    CHECK(read_file(path) == "to stdout\n");
}

// ---------------------------------------------------------------- the real fixture

TEST_CASE("safetensors: reads the tiny-midattn fixture") {
    SafetensorsFile f = SafetensorsFile::open(std::string(JANUSDNA_TEST_DATA) + "/tiny-midattn.model.safetensors");
    REQUIRE(f.metadata().count("janusdna_config") == 1);
    CHECK(nlohmann::json::parse(f.metadata().at("janusdna_config")).is_object());
    const TensorView* embed = f.find("model.embed_tokens.weight");
    REQUIRE(embed != nullptr);
    CHECK(embed->dtype == DType::F32);
    CHECK(embed->shape == std::vector<int64_t>{16, 32});
    CHECK(embed->nbytes == 16 * 32 * 4);
    const TensorView* head = f.find("lm_head.weight");
    REQUIRE(head != nullptr);
    CHECK(head->dtype == DType::F32);
    CHECK(head->shape == std::vector<int64_t>{16, 32});
    std::vector<float> w(512);
    convert_to_f32(*embed, w.data());
    for (float x : w) CHECK(std::isfinite(x));
    CHECK(f.tensors().size() > 10);
    touch(f);
}

} // namespace
