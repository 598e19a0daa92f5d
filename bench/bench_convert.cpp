// janusdna convert on a generated ~100 MB Lightning checkpoint: seconds and peak RSS of `janusdna convert`, beside
// reading the same file once (the I/O floor). The checkpoint is written here as torch.save writes one: a zip of
// ARCHIVE/data.pkl (pickle protocol 2: a dict with state_dict of _rebuild_tensor_v2 over FloatStorage, and the
// model config in hyper_parameters) and one stored entry per storage.
// Usage: bench_convert [--hidden H] [--keep DIR]   (H = 128 gives ~110 MB)
#include "janusdna/config.h"
#include "janusdna/model.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <sys/wait.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <vector>
#include <zlib.h>

extern char** environ;

namespace {

// ---------------------------------------------------------------- a minimal pickle (protocol 2) writer
struct Pickler {
    std::string out = "\x80\x02";
    void op(char c) { out += c; }
    void u32(uint32_t v) { for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF); }
    void str(const std::string& s) { op('X'); u32(static_cast<uint32_t>(s.size())); out += s; }
    void integer(int64_t v) {
        if (v >= 0 && v < (1 << 30)) { op('J'); u32(static_cast<uint32_t>(v)); return; }
        op('\x8a'); out += '\x08';
        for (int i = 0; i < 8; ++i) out += static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xFF);
    }
    void global(const char* module, const char* name) { out += std::string("c") + module + "\n" + name + "\n"; }
    void tuple_of(const std::vector<int64_t>& v) { op('('); for (int64_t x : v) integer(x); op('t'); }
};

// ---------------------------------------------------------------- a minimal stored-zip writer
struct ZipWriter {
    std::ofstream f;
    struct Rec { std::string name; uint32_t crc; uint64_t size, offset; };
    std::vector<Rec> recs;
    uint64_t pos = 0;
    explicit ZipWriter(const std::string& path) : f(path, std::ios::binary) {}
    void le(uint64_t v, int n) { for (int i = 0; i < n; ++i) f.put(static_cast<char>((v >> (8 * i)) & 0xFF)); pos += static_cast<uint64_t>(n); }
    void add(const std::string& name, const char* data, uint64_t size) {
        const uint32_t crc = static_cast<uint32_t>(crc32(crc32(0, nullptr, 0), reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size)));
        recs.push_back({name, crc, size, pos});
        le(0x04034b50, 4); le(20, 2); le(0, 2); le(0, 2); le(0, 4); le(crc, 4); le(size, 4); le(size, 4);
        le(name.size(), 2); le(0, 2);
        f.write(name.data(), static_cast<std::streamsize>(name.size())); pos += name.size();
        f.write(data, static_cast<std::streamsize>(size)); pos += size;
    }
    void close() {
        const uint64_t cd = pos;
        for (const auto& r : recs) {
            le(0x02014b50, 4); le(20, 2); le(20, 2); le(0, 2); le(0, 2); le(0, 4); le(r.crc, 4); le(r.size, 4);
            le(r.size, 4); le(r.name.size(), 2); le(0, 2); le(0, 2); le(0, 2); le(0, 2); le(0, 4); le(r.offset, 4);
            f.write(r.name.data(), static_cast<std::streamsize>(r.name.size())); pos += r.name.size();
        }
        const uint64_t cd_size = pos - cd;
        le(0x06054b50, 4); le(0, 2); le(0, 2); le(recs.size(), 2); le(recs.size(), 2); le(cd_size, 4); le(cd, 4); le(0, 2);
        f.close();
    }
};

// Writes a Lightning-style checkpoint of `model` (names model.model.* and model.lm_head.weight).
void write_checkpoint(janusdna::JanusModelImpl& model, const std::string& path) {
    Pickler p;
    p.op('}'); p.op('(');
    p.str("global_step"); p.integer(1000);
    p.str("epoch"); p.integer(1);
    p.str("pytorch-lightning_version"); p.str("2.4.0");
    p.str("hyper_parameters"); p.op('}'); p.op('('); p.str("model"); p.op('}'); p.op('('); p.str("config"); p.op('}'); p.op('(');
    const auto config = model.config.to_json(); // items() of a temporary would dangle
    for (auto& [k, v] : config.items()) {
        p.str(k);
        if (v.is_boolean()) p.op(v.get<bool>() ? '\x88' : '\x89');
        else if (v.is_number_integer()) p.integer(v.get<int64_t>());
        else if (v.is_number_float()) { p.op('G'); double d = v.get<double>(); uint64_t b; std::memcpy(&b, &d, 8);
                                        for (int i = 7; i >= 0; --i) p.out += static_cast<char>((b >> (8 * i)) & 0xFF); }
        else p.op('N');
    }
    p.op('u'); p.op('u'); p.op('u');
    p.str("state_dict"); p.global("collections", "OrderedDict"); p.op(')'); p.op('R'); p.op('(');
    ZipWriter z(path);
    std::vector<std::pair<std::string, torch::Tensor>> storages;
    int key = 0;
    for (auto& item : model.named_parameters()) {
        torch::Tensor t = item.value().detach().contiguous();
        const std::string name = item.key().rfind("lm_head.", 0) == 0 ? "model." + item.key() : "model.model." + item.key();
        p.str(name);
        p.global("torch._utils", "_rebuild_tensor_v2"); p.op('(');
        p.op('('); p.str("storage"); p.global("torch", "FloatStorage"); p.str(std::to_string(key)); p.str("cpu");
        p.integer(t.numel()); p.op('t'); p.op('Q');
        p.integer(0);
        p.tuple_of(t.sizes().vec());
        p.tuple_of(t.strides().vec());
        p.op('\x89'); p.global("collections", "OrderedDict"); p.op(')'); p.op('R');
        p.op('t'); p.op('R');
        storages.emplace_back(std::to_string(key++), t);
    }
    p.op('u'); p.op('u'); p.op('.');
    z.add("bench/data.pkl", p.out.data(), p.out.size());
    for (auto& [k, t] : storages)
        z.add("bench/data/" + k, static_cast<const char*>(t.data_ptr()), static_cast<uint64_t>(t.numel()) * 4);
    z.add("bench/version", "3\n", 2);
    z.close();
}

// VmHWM of a running process in MB (0 once it has exited).
double vm_hwm_mb(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
    return 0;
}

// Runs argv with stdout to /dev/null, returns {seconds, peak RSS in MB} of the program. The peak is the exec'd
// image's own VmHWM, polled every millisecond: getrusage's maxrss of a child would count this process's pages,
// which a forked or vforked child shares until exec.
std::pair<double, double> run_child(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    const auto t0 = std::chrono::steady_clock::now();
    pid_t pid = 0;
    if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) {
        std::fprintf(stderr, "bench_convert: cannot run %s\n", args[0].c_str());
        std::exit(1);
    }
    posix_spawn_file_actions_destroy(&fa);
    double peak = 0;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        peak = std::max(peak, vm_hwm_mb(pid));
        usleep(1000);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "bench_convert: %s failed\n", args[0].c_str());
        std::exit(1);
    }
    return {s, peak};
}

} // namespace

int main(int argc, char** argv) {
    int64_t hidden = 128;
    std::string keep;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--hidden") && i + 1 < argc) hidden = std::atoll(argv[++i]);
        else if (!std::strcmp(argv[i], "--keep") && i + 1 < argc) keep = argv[++i];
        else { std::fprintf(stderr, "usage: bench_convert [--hidden H] [--keep DIR]\n"); return 1; }
    }
    std::string exe(4096, '\0');
    exe.resize(static_cast<size_t>(readlink("/proc/self/exe", exe.data(), exe.size())));
    const std::string janusdna = exe.substr(0, exe.rfind('/')) + "/janusdna";
    std::string dir = keep;
    if (dir.empty()) {
        char tmpl[] = "/tmp/bench_convert-XXXXXX";
        dir = mkdtemp(tmpl);
    }
    janusdna::ModelConfig c = janusdna::ModelConfig::preset("32-midattn");
    c.hidden_size = hidden;
    c.intermediate_size = 4 * hidden;
    c.flex_attn_n_embd = 2 * hidden;
    c.final_mlp = true;
    torch::manual_seed(1);
    const std::string ckpt = dir + "/bench.ckpt";
    int64_t params = 0;
    {
        janusdna::JanusModel model(c);
        params = janusdna::count_parameters(*model).total;
        write_checkpoint(*model, ckpt);
    }
    std::ifstream sz(ckpt, std::ios::binary | std::ios::ate);
    const double mb = static_cast<double>(sz.tellg()) / 1e6;

    // Drop neither cache: every run reads the file from the page cache, so the figures are the converter's work.
    run_child({"/bin/cat", ckpt}); // warm the cache
    auto [cat_s, cat_rss] = run_child({"/bin/cat", ckpt});
    auto [ver_s, ver_rss] = run_child({janusdna, "--version"});
    std::vector<double> secs, rss;
    for (int r = 0; r < 3; ++r) {
        auto [s, m] = run_child({janusdna, "convert", "-v", "0", ckpt, "-o", dir + "/bench.safetensors"});
        secs.push_back(s);
        rss.push_back(m);
    }
    std::sort(secs.begin(), secs.end());
    const double peak = *std::max_element(rss.begin(), rss.end());
    std::printf("bench_convert: Lightning checkpoint of %.1f MB (H = %lld, %lld parameters), float32 -> float32\n",
                mb, static_cast<long long>(hidden), static_cast<long long>(params));
    std::printf("%-36s %10s %12s %14s\n", "", "seconds", "peak RSS MB", "RSS / file");
    std::printf("%-36s %10.2f %12.1f %14.2f\n", "cat (read the file once)", cat_s, cat_rss, cat_rss / mb);
    std::printf("%-36s %10.2f %12.1f %14.2f\n", "janusdna --version (LibTorch loaded)", ver_s, ver_rss, ver_rss / mb);
    std::printf("%-36s %10.2f %12.1f %14.2f\n", "janusdna convert (median of 3)", secs[1], peak, peak / mb);
    std::printf("convert: %.1fx cat's time; %.2f x the file size in RSS above janusdna's start-up\n", secs[1] / cat_s,
                (peak - ver_rss) / mb);
    if (keep.empty()) std::system(("rm -rf " + dir).c_str());
    return 0;
}
