// Loading and saving model files (safetensors). The loader hands the model named, shape-checked tensors; it is
// the only place that knows the reference's naming quirks (prefixes, tied duplicates, optional final_mlp).
#include "janusdna/model_file.h"
#include "janusdna/strings.h"
#include "janusdna/atomic_file.h"
#include "janusdna/error.h"
#include "janusdna/safetensors.h"

#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <htslib/hts.h>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace janusdna {

namespace {

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// File name -> module parameter name ("layers.0...", "lm_head.weight").
std::string canonical_name(const std::string& n) {
    if (starts_with(n, "model.model.")) return n.substr(12);
    if (starts_with(n, "model.lm_head.")) return n.substr(6);
    if (starts_with(n, "model.")) return n.substr(6);
    return n;
}

// For a tied reverse-mixer projection, the forward mixer's name; "" otherwise.
std::string tied_source(const std::string& name) {
    for (const char* proj : {"in_proj.weight", "out_proj.weight"}) {
        const std::string rev = std::string("mamba_rev.") + proj;
        if (ends_with(name, rev)) return name.substr(0, name.size() - rev.size()) + "mamba_fwd." + proj;
    }
    return "";
}


torch::Tensor to_float_tensor(const TensorView& v) {
    torch::Tensor t = torch::empty(v.shape, torch::kFloat);
    convert_to_f32(v, t.data_ptr<float>());
    return t;
}

} // namespace

std::string foreign_model_hint(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return "";  // open() reports it
    const std::string base = [&] {
        std::string b = path;
        while (b.size() > 1 && b.back() == '/') b.pop_back();
        b = b.substr(b.rfind('/') == std::string::npos ? 0 : b.rfind('/') + 1);
        const size_t dot = b.rfind('.');
        return (dot == std::string::npos || dot == 0 ? b : b.substr(0, dot)) + ".safetensors";
    }();
    if (S_ISDIR(st.st_mode)) {
        if (access((path + "/config.json").c_str(), R_OK) == 0)
            return fmt::format("{}: a Hugging Face model directory, not a janusdna model file; convert it first: "
                               "janusdna convert {} -o {}", path, path, base);
        return "";
    }
    char head[16] = {0};
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return "";
    const size_t n = std::fread(head, 1, sizeof head, f);
    std::fclose(f);
    if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4)
        return fmt::format("{}: a PyTorch checkpoint (torch.save zip), not a janusdna model file; convert it first: "
                           "janusdna convert {} -o {}", path, path, base);
    if (n >= 2 && static_cast<unsigned char>(head[0]) == 0x80 && head[1] >= 2 && head[1] <= 5)
        return fmt::format("{}: a Python pickle (PyTorch's format before 1.6), not a janusdna model file; re-save it "
                           "with a current PyTorch, then run: janusdna convert {} -o {}", path, path, base);
    // safetensors: an 8-byte little-endian header length, then a JSON object
    uint64_t len = 0;
    for (int i = 7; i >= 0 && n >= 8; --i) len = (len << 8) | static_cast<unsigned char>(head[i]);
    if (n < 9 || head[8] != '{' || len < 2 || len > static_cast<uint64_t>(st.st_size) - 8)
        return fmt::format("{}: not a safetensors model file", path);
    try {
        SafetensorsFile file = SafetensorsFile::open(path);
        if (!file.metadata().count("janusdna_config"))
            return fmt::format("{}: a safetensors file without \"janusdna_config\" metadata (a bare state dict?); "
                               "convert it with its config: janusdna convert {} --config CONFIG.json -o {}", path, path,
                               base);
    } catch (const Error&) {
        return ""; // load_model reports the defect itself
    }
    return "";
}

LoadedModel load_model(const std::string& path) {
    if (std::string hint = foreign_model_hint(path); !hint.empty()) throw Error(hint);
    SafetensorsFile file = SafetensorsFile::open(path);
    LoadedModel out;
    out.path = path;
    out.md5 = file_md5(path);
    out.metadata = file.metadata();
    auto meta = out.metadata.find("janusdna_config");
    if (meta == out.metadata.end())
        throw Error(fmt::format("{}: not a janusdna model file (no \"janusdna_config\" metadata)", path));
    nlohmann::json cj = nlohmann::json::parse(meta->second, nullptr, /*allow_exceptions=*/false);
    if (cj.is_discarded()) throw Error(fmt::format("{}: \"janusdna_config\" metadata is not valid JSON", path));
    out.config = ModelConfig::from_json(cj, path);

    std::map<std::string, const TensorView*> by_name;
    bool has_final_mlp = false;
    const bool classifier = out.metadata.count("janusdna_classifier") > 0;
    for (const auto& v : file.tensors()) {
        if (classifier && starts_with(v.name, "classifier.")) {
            out.head[v.name] = to_float_tensor(v);
            continue;
        }
        const std::string name = canonical_name(v.name);
        if (!by_name.emplace(name, &v).second)
            throw Error(fmt::format("{}: tensor \"{}\" appears twice (as \"{}\" and another prefix)", path, name, v.name));
        has_final_mlp = has_final_mlp || starts_with(name, "final_mlp.");
    }
    // Weights published before 2025-08 have no final_mlp; its presence decides (MODEL.md 3.4).
    out.config.final_mlp = has_final_mlp;
    out.model = JanusModel(out.config);

    torch::NoGradGuard no_grad;
    std::set<std::string> used;
    for (auto& item_ : out.model->named_parameters()) {
        const std::string& name = item_.key();
        torch::Tensor& param = item_.value();
        auto it = by_name.find(name);
        if (it == by_name.end() && classifier && name == "lm_head.weight") {
            // A fine-tuned checkpoint of the reference drops the LM head; the classifier does not need it.
            param.zero_();
            out.lm_head = false;
            continue;
        }
        if (it == by_name.end()) throw Error(fmt::format("{}: missing tensor \"{}\" {}", path, name, shape_str(param.sizes().vec())));
        const TensorView& v = *it->second;
        if (v.dtype != DType::F32 && v.dtype != DType::F16 && v.dtype != DType::BF16 && v.dtype != DType::F64)
            throw Error(fmt::format("{}: tensor \"{}\" has dtype {}, expected F32, F16 or BF16", path, v.name, dtype_name(v.dtype)));
        if (v.shape != param.sizes().vec())
            throw Error(fmt::format("{}: tensor \"{}\" has shape {}, expected {} for this config", path, v.name,
                                    shape_str(v.shape), shape_str(param.sizes().vec())));
        convert_to_f32(v, param.data_ptr<float>()); // param: contiguous float32 of v's shape
        file.release(v); // copied out: the file's pages need not stay resident beside the weights
        used.insert(name);
    }
    for (const auto& [name, v] : by_name) {
        if (used.count(name)) continue;
        const std::string src = out.config.bidirectional_weight_tie ? tied_source(name) : "";
        if (src.empty() || !by_name.count(src))
            throw Error(fmt::format("{}: unexpected tensor \"{}\" (not part of this model config)", path, v->name));
        const TensorView& s = *by_name.at(src);
        if (v->shape != s.shape || !torch::equal(to_float_tensor(*v), to_float_tensor(s)))
            throw Error(fmt::format("{}: tied tensors \"{}\" and \"{}\" differ", path, v->name, s.name));
    }
    out.model->eval();
    return out;
}

void require_language_model(const LoadedModel& m) {
    if (m.metadata.count("janusdna_classifier") || !m.lm_head)
        throw Error(fmt::format("{}: a fine-tuned classifier, not a language model; give a pretrained model (the "
                                "zero-shot scores come from the language-model head)", m.path));
}

void save_model(const std::string& path, JanusModelImpl& model, const std::map<std::string, std::string>& extra,
                const std::map<std::string, torch::Tensor>& head) {
    SafetensorsWriter w;
    std::vector<torch::Tensor> keep; // the writer copies, but keep the float32 copies alive until then anyway
    auto add = [&](const std::string& name, const torch::Tensor& p) {
        torch::Tensor t = p.detach().to(torch::kCPU, torch::kFloat).contiguous();
        keep.push_back(t);
        const std::string file_name = starts_with(name, "lm_head.") ? name : "model." + name;
        w.add(file_name, DType::F32, t.sizes().vec(), t.data_ptr(), t.numel() * sizeof(float));
    };
    for (auto& item_ : model.named_parameters()) {
        const std::string& name = item_.key();
        torch::Tensor& p = item_.value();
        add(name, p);
        // The reference state_dict lists tied projections under both mixers; so do we, for its tools.
        if (model.config.bidirectional_weight_tie && (ends_with(name, "mamba_fwd.in_proj.weight") || ends_with(name, "mamba_fwd.out_proj.weight"))) {
            std::string rev = name;
            rev.replace(rev.find("mamba_fwd"), 9, "mamba_rev");
            add(rev, p);
        }
    }
    for (const auto& [name, t] : head) {
        torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
        keep.push_back(c);
        w.add(name, DType::F32, c.sizes().vec(), c.data_ptr(), c.numel() * sizeof(float));
    }
    w.set_metadata("janusdna_config", model.config.to_json().dump());
    w.set_metadata("janusdna_version", JANUSDNA_VERSION);
    for (const auto& [k, v] : extra) w.set_metadata(k, v);
    w.write(path);
}

std::string file_md5(const std::string& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw Error(fmt::format("{}: {}", path, std::strerror(errno)));
    hts_md5_context* ctx = hts_md5_init();
    std::vector<char> buf(1 << 20);
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) hts_md5_update(ctx, buf.data(), n);
    const bool failed = std::ferror(f);
    std::fclose(f);
    unsigned char digest[16];
    char hex[33];
    hts_md5_final(digest, ctx);
    hts_md5_destroy(ctx);
    if (failed) throw Error(fmt::format("{}: read error", path));
    hts_md5_hex(hex, digest);
    return hex;
}

int64_t default_window(const std::map<std::string, std::string>& metadata) {
    auto it = metadata.find("janusdna_train_seq_len");
    if (it != metadata.end()) {
        try {
            size_t used = 0;
            const long long w = std::stoll(it->second, &used);
            if (used == it->second.size() && w >= 2) return w;
        } catch (const std::exception&) {
        }
    }
    return 1024;
}

static bool readable(const std::string& p) { return access(p.c_str(), R_OK) == 0; }

std::string resolve_model_path(const std::string& option) {
    if (!option.empty()) return option;
    if (const char* env = std::getenv("JANUSDNA_MODEL"); env && *env) return env;
    std::vector<std::string> candidates;
    // Relative to the executable first, so a moved installation still finds its data.
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        std::string dir(exe, static_cast<size_t>(n));
        dir = dir.substr(0, dir.rfind('/'));
        candidates.push_back(dir + "/../share/janusdna/models/default.safetensors");
    }
    candidates.push_back(std::string(JANUSDNA_DATADIR) + "/models/default.safetensors");
    candidates.push_back(std::string(JANUSDNA_BUILD_DATADIR) + "/models/default.safetensors");
    for (const auto& c : candidates)
        if (readable(c)) return c;
    throw Error(fmt::format("no model given and no default model found (looked in {}); give one with -m FILE or "
                            "$JANUSDNA_MODEL, or train one with 'janusdna pretrain'",
                            fmt::join(candidates, ", ")));
}

} // namespace janusdna
