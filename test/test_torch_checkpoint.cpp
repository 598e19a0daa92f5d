// Tests of the torch-free checkpoint readers: the restricted unpickler, the zip reader and torch.save archives,
// with a seeded fuzz test. Built twice: in janusdna_tests, and with ASan + UBSan in janusdna_sanitized_tests.
#include "janusdna/error.h"
#include "janusdna/pickle.h"
#include "janusdna/torch_checkpoint.h"
#include "janusdna/zip_archive.h"

#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include "tempdir.h"

using namespace janusdna;
using pickle::Kind;

namespace {

std::string unhex(const std::string& h) {
    std::string out;
    for (size_t i = 0; i + 1 < h.size(); i += 2) out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
    return out;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::string test_data(const std::string& name) { return std::string(JANUSDNA_TEST_DATA) + "/" + name; }

pickle::Pickle load(const std::string& bytes, const std::set<std::string>& allowed = pickle::default_allowed_globals()) {
    return pickle::Pickle::load(bytes, "t.pkl", allowed);
}

// pickle.dumps({'a': [1, 2.5, 'x', True, None], 'b': (1, -2, 300, 70000, 2**40, -2**40), 'c': b'\x00\xff',
//               'u': 'h\u00e9\u4e2d'}, protocol=P), from CPython 3.11.
const char* const kSample[][2] = {
    {"0", "286470300a56610a70310a286c70320a49310a6146322e350a6156780a70330a614930310a614e617356620a70340a2849310a492d"
          "320a493330300a4937303030300a4c313039393531313632373737364c0a4c2d313039393531313632373737364c0a7470350a7356"
          "630a70360a635f636f646563730a656e636f64650a70370a28565c7530303030ff0a70380a566c6174696e310a70390a747031300a"
          "527031310a7356750a7031320a5668e95c75346532640a7031330a732e"},
    {"2", "80027d71002858010000006171015d7102284b014740040000000000005801000000787103884e655801000000627104284b014afe"
          "ffffff4d2c014a701101008a060000000000018a060000000000ff7471055801000000637106635f636f646563730a656e636f6465"
          "0a7107580300000000c3bf710858060000006c6174696e31710986710a52710b580100000075710c580600000068c3a9e4b8ad710d"
          "752e"},
    {"4", "8004955a000000000000007d94288c0161945d94284b014740040000000000008c017894884e658c016294284b014afeffffff4d2c"
          "014a701101008a060000000000018a060000000000ff74948c016394430200ff948c0175948c0668c3a9e4b8ad94752e"},
    {"5", "8005955a000000000000007d94288c0161945d94284b014740040000000000008c017894884e658c016294284b014afeffffff4d2c"
          "014a701101008a060000000000018a060000000000ff74948c016394430200ff948c0175948c0668c3a9e4b8ad94752e"},
};

} // namespace

TEST_CASE("pickle: the same data in protocols 0, 2, 4 and 5") {
    for (const auto& s : kSample) {
        CAPTURE(s[0]);
        pickle::Pickle p = load(unhex(s[1]));
        const pickle::Value* r = p.root();
        REQUIRE(r->kind == Kind::Dict);
        const pickle::Value* a = r->get("a");
        REQUIRE(a);
        REQUIRE(a->kind == Kind::List);
        REQUIRE(a->items.size() == 5);
        CHECK(a->items[0]->integer == 1);
        CHECK(a->items[1]->real == 2.5);
        CHECK(a->items[2]->text == "x");
        CHECK((a->items[3]->kind == Kind::Bool && a->items[3]->boolean));
        CHECK(a->items[4]->kind == Kind::None);
        const pickle::Value* b = r->get("b");
        REQUIRE((b && b->kind == Kind::Tuple && b->items.size() == 6));
        const int64_t want[] = {1, -2, 300, 70000, int64_t(1) << 40, -(int64_t(1) << 40)};
        for (int i = 0; i < 6; ++i) CHECK(b->items[i]->integer == want[i]);
        const pickle::Value* c = r->get("c");
        REQUIRE((c && c->kind == Kind::Bytes));
        CHECK(c->text == std::string("\x00\xff", 2));
        CHECK(r->get("u")->text == "h\xc3\xa9\xe4\xb8\xad");
        CHECK(to_json(r, "t").dump() == R"({"a":[1,2.5,"x",true,null],"b":[1,-2,300,70000,1099511627776,-1099511627776],"c":null,"u":"hé中"})");
    }
}

TEST_CASE("pickle: a global outside the allow-list is refused by name, and nothing runs") {
    // pickle.dumps({'x': E()}) where E.__reduce__ returns (os.system, ('true',))
    const std::string evil = unhex("80049526000000000000007d948c0178948c05706f736978948c0673797374656d9493948c0474727565"
                                   "9485945294732e");
    CHECK(test::error_of([&] { load(evil); }) ==
          "t.pkl: refused: the pickle would call posix.system; janusdna never runs code from a model file");
    // Protocol 0/2 GLOBAL, and "__builtin__" spelled the Python 2 way: still refused unless allowed.
    CHECK(test::error_of([&] { load(std::string("\x80\x02") + "c__builtin__\neval\n."); })
              .find("would call builtins.eval") != std::string::npos);
    CHECK(test::error_of([&] { load("cbuiltins\ngetattr\n."); }).find("builtins.getattr") != std::string::npos);
    // --allow-global: accepted as data, still never called (the REDUCE is recorded as an object).
    std::set<std::string> allowed = pickle::default_allowed_globals();
    allowed.insert("posix.system");
    pickle::Pickle p = load(evil, allowed);
    const pickle::Value* x = p.root()->get("x");
    REQUIRE(x);
    CHECK(x->is_object_of("posix.system"));
    CHECK(x->args->items[0]->text == "true");
}

TEST_CASE("pickle: damaged input is one error line") {
    const std::string ok = unhex(kSample[1][1]);
    for (const auto& [bytes, what] : std::vector<std::pair<std::string, std::string>>{
             {"", "ends without a STOP"},
             {"\x80\x02", "ends without a STOP"},
             {"\x80\x09.", "protocol 9"},
             {".", "stack is empty"},
             {"X\xff\xff\xff\x7f", "past the end"},
             {"h\x05.", "memo entry 5"},
             {"(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
              "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((", ""},
             {"\x8b\xff\xff\xff\xff", "too large"},
             {"\x82\x01.", "extension-registry"},
             {"}K\x01u.", "no MARK"},
             {"]K\x01K\x02s.", "not a dict"},
             {"K\x01K\x02R.", "not a global"},
             {std::string("\xff", 1), "unknown opcode"},
         }) {
        CAPTURE(bytes);
        const std::string e = test::error_of([&] { load(bytes); });
        CHECK(e.find("t.pkl: ") == 0);
        CHECK(e.find(what) != std::string::npos);
        CHECK(e.find('\n') == std::string::npos);
    }
    // Limits: marks, memo, values.
    pickle::Limits tight;
    tight.max_marks = 3;
    CHECK(test::error_of([&] { pickle::Pickle::load("((((", "t", {}, tight); }).find("nest too deeply") != std::string::npos);
    tight = {};
    tight.max_memo = 2;
    CHECK(test::error_of([&] { pickle::Pickle::load("K\x01q\x01q\x02q\x03.", "t", {}, tight); }).find("memo") != std::string::npos);
    tight = {};
    tight.max_values = 3;
    CHECK(test::error_of([&] { pickle::Pickle::load("K\x01K\x01K\x01K\x01.", "t", {}, tight); }).find("too many values") != std::string::npos);
    CHECK_NOTHROW(load(ok));
}

TEST_CASE("pickle: a cycle (OmegaConf's parent links) is kept, and to_json stops at its depth bound") {
    // d = {}; d['self'] = d  ->  protocol 2
    const std::string cyc = unhex("80027d7100580400000073656c6671016800732e");
    pickle::Pickle p = load(cyc);
    CHECK(p.root()->get("self") == p.root());
    CHECK(test::error_of([&] { to_json(p.root(), "c.pkl", 10); }) == "c.pkl: the pickled data nests too deeply");
}

// ------------------------------------------------------------------------------------------------ zip

TEST_CASE("zip: torch.save's archive layout, entries in place, CRC checked") {
    const std::string bytes = slurp(test_data("checkpoints/small.ckpt"));
    ZipArchive z = ZipArchive::from_bytes(bytes, "small.ckpt");
    REQUIRE(z.find("small/data.pkl"));
    REQUIRE(z.find("small/data/0"));
    CHECK(z.find("small/data/9") == nullptr);
    const std::string_view d0 = z.contents(*z.find("small/data/0"));
    REQUIRE(d0.size() == 24);
    float f[6];
    std::memcpy(f, d0.data(), 24);
    CHECK(f[0] == 1.0f);
    CHECK(f[5] == 6.0f);
    CHECK(test::error_of([&] { ZipArchive::from_bytes("not a zip", "x.zip"); }).find("x.zip: not a valid zip archive") == 0);
    // One flipped bit inside a stored entry: the CRC-32 catches it on access.
    std::string bad = bytes;
    const auto* e = z.find("small/data/0");
    bad[e->data_offset + 3] ^= 1;
    ZipArchive zb = ZipArchive::from_bytes(bad, "bad.ckpt");
    CHECK(test::error_of([&] { zb.contents(*zb.find("small/data/0")); }).find("CRC-32 mismatch") != std::string::npos);
}

// ------------------------------------------------------------------------------------------------ torch.save

TEST_CASE("torch archive: tensors of every storage dtype, shared storages, offsets and transposed views") {
    TorchArchive a = TorchArchive::open(test_data("checkpoints/small.ckpt"));
    const pickle::Value* root = a.root();
    auto t = a.tensors_of(root->get("state_dict"));
    REQUIRE(t.size() == 6);
    std::map<std::string, RawTensor> by;
    for (auto& [k, v] : t) by[k] = v;
    auto floats = [](const RawTensor& r) {
        std::vector<float> out(static_cast<size_t>(r.view("x").numel()));
        convert_to_f32(r.view("x"), out.data());
        return out;
    };
    CHECK(by["model.a"].shape == std::vector<int64_t>{2, 3});
    CHECK(floats(by["model.a"]) == std::vector<float>{1, 2, 3, 4, 5, 6});
    CHECK(floats(by["model.a_t"]) == std::vector<float>{1, 4, 2, 5, 3, 6}); // gathered from strides (1, 3)
    CHECK(by["model.a_t"].owned != nullptr);
    CHECK(by["model.a"].owned == nullptr);                                 // in place
    CHECK(floats(by["model.tail"]) == std::vector<float>{5, 6});          // storage offset 4
    CHECK(floats(by["model.half"]) == std::vector<float>{0.5f, -2.0f, 65504.0f});
    CHECK(by["model.bf16"].dtype == DType::BF16);
    CHECK(floats(by["model.bf16"])[1] == -0.375f);
    CHECK(by["steps"].dtype == DType::I64);
    int64_t steps = 0;
    std::memcpy(&steps, by["steps"].bytes.data(), 8);
    CHECK(steps == -9); // 0-d tensor at storage offset 1
    const nlohmann::json hp = to_json(root->get("hyper_parameters"), "small.ckpt");
    CHECK(hp["max_length"] == 16);
    CHECK(hp["gpu_mem"] == "${eval:__import__('os')}"); // kept as text, never evaluated
    CHECK(to_json(root->get("global_step"), "x") == 10000);
}

TEST_CASE("torch archive: the reference's Lightning checkpoint") {
    TorchArchive a = TorchArchive::open(test_data("checkpoints/tiny-midattn.lightning.ckpt"));
    auto t = a.tensors_of(a.root()->get("state_dict"));
    CHECK(t.size() == 640);
    const nlohmann::json hp = to_json(a.root()->get("hyper_parameters"), "x");
    CHECK(hp["model"]["config"]["hidden_size"] == 32);
    CHECK(hp["trainer"]["precision"] == "bf16-mixed");
    CHECK(hp["train"]["gpu_mem"].get<std::string>().rfind("${eval:", 0) == 0);
}

namespace {

// Offsets of an entry's CRC field in its central directory record, found by scanning (test-only).
size_t central_crc_offset(const std::string& zip, const std::string& name) {
    for (size_t p = zip.size() - 46; p-- > 0;) {
        if (zip.compare(p, 4, "PK\x01\x02") != 0) continue;
        const size_t len = static_cast<unsigned char>(zip[p + 28]) | static_cast<unsigned char>(zip[p + 29]) << 8;
        if (zip.compare(p + 46, len, name) == 0 && len == name.size()) return p + 16;
    }
    FAIL("no central record for " << name);
    return 0;
}

uint32_t crc32_of(std::string_view s) {
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : s) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

// Everything a converter does with an archive: parse, walk the state dict, read every tensor, JSON the rest.
void touch_archive(const std::string& bytes) {
    TorchArchive a = TorchArchive::from_bytes(bytes, "f.ckpt");
    const pickle::Value* r = a.root();
    const pickle::Value* sd = r->kind == Kind::Dict && r->get("state_dict") ? r->get("state_dict") : r;
    for (auto& [name, t] : a.tensors_of(sd)) {
        volatile char sink = 0;
        for (char c : t.bytes) sink = sink ^ c;
        (void)sink;
    }
    to_json(r, "f.ckpt");
}

} // namespace

TEST_CASE("torch archive: seeded fuzzing of the pickle and the zip only ever throws janusdna::Error") {
    const std::string valid = slurp(test_data("checkpoints/small.ckpt"));
    ZipArchive z = ZipArchive::from_bytes(valid, "v");
    const ZipArchive::Entry* pkl = z.find("small/data.pkl");
    REQUIRE(pkl);
    const size_t pkl_at = pkl->data_offset, pkl_size = pkl->size, crc_at = central_crc_offset(valid, "small/data.pkl");
    REQUIRE_NOTHROW(touch_archive(valid));
    std::mt19937_64 rng(20261207);
    size_t parsed = 0, rejected = 0;
    auto attempt = [&](const std::string& bytes) {
        try {
            touch_archive(bytes);
            ++parsed;
        } catch (const Error& e) {
            ++rejected;
            CHECK(std::string(e.what()).find('\n') == std::string::npos);
        }
    };
    for (int iter = 0; iter < 4000; ++iter) {
        std::string b = valid;
        const int mode = iter % 4;
        for (uint64_t k = 1 + rng() % 3; k > 0; --k) {
            if (mode <= 1) {
                // Inside the pickle, with its CRC fixed so the damage reaches the unpickler.
                const size_t at = pkl_at + rng() % pkl_size;
                if (mode == 0) b[at] ^= static_cast<char>(1u << (rng() % 8));
                else b[at] = static_cast<char>(rng() % 2 ? rng() : "().}]qhjKMXR\x81\x85\x86tbuesa"[rng() % 22]);
            } else if (mode == 2) {
                if (!b.empty()) b[rng() % b.size()] = static_cast<char>(rng()); // anywhere: headers, directory, storages
            } else {
                b.resize(rng() % (b.size() + 1)); // truncation
            }
        }
        if (mode <= 1) {
            const uint32_t crc = crc32_of(std::string_view(b).substr(pkl_at, pkl_size));
            for (int i = 0; i < 4; ++i) b[crc_at + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
        }
        attempt(b);
    }
    // The real checkpoint's pickle (OmegaConf tree, 640 tensors) mutated directly.
    const std::string real = [&] {
        ZipArchive r = ZipArchive::open(test_data("checkpoints/tiny-midattn.lightning.ckpt"));
        return std::string(r.contents(*r.find("tiny-midattn.lightning/data.pkl")));
    }();
    for (int iter = 0; iter < 600; ++iter) {
        std::string b = real;
        for (uint64_t k = 1 + rng() % 3; k > 0; --k) b[rng() % b.size()] = static_cast<char>(rng());
        try {
            pickle::Pickle p = pickle::Pickle::load(b, "data.pkl", pickle::default_allowed_globals());
            to_json(p.root(), "data.pkl");
            ++parsed;
        } catch (const Error&) {
            ++rejected;
        }
    }
    CHECK(parsed > 50);
    CHECK(rejected > 1000);
}
