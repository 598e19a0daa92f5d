// janusdna convert: the reference's checkpoints in (Lightning .ckpt, Hugging Face directories, bare state dicts),
// janusdna model files out, and back out to the Hugging Face layout.
#include "janusdna/convert.h"
#include "janusdna/strings.h"
#include "janusdna/atomic_file.h"
#include "janusdna/classifier.h"
#include "janusdna/error.h"
#include "janusdna/model_file.h"
#include "janusdna/torch_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

namespace janusdna {

namespace {

using json = nlohmann::json;

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }
bool is_dir(const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool is_file(const std::string& p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
std::string dir_of(const std::string& p) {
    const size_t slash = p.rfind('/');
    return slash == std::string::npos ? "." : p.substr(0, slash);
}
std::string base_of(const std::string& p) {
    std::string b = p;
    while (b.size() > 1 && b.back() == '/') b.pop_back();
    const size_t slash = b.rfind('/');
    return slash == std::string::npos ? b : b.substr(slash + 1);
}

// Keys of the reference's configs that are bookkeeping of Hydra or transformers, not of the model.
const char* const kBookkeeping[] = {"_target_", "_name_", "architectures", "model_type", "torch_dtype",
                                    "transformers_version", "auto_map", "_name_or_path"};

// Everything the converter reads, with what keeps the tensors' bytes alive.
struct Source {
    std::string format;                                   // lightning, hf, state_dict
    std::vector<std::pair<std::string, RawTensor>> tensors;
    json config;                                          // the model config found in the source (or null)
    json hyper;                                           // Lightning's hyper_parameters (or null)
    json provenance = json::object();
    std::vector<std::shared_ptr<void>> keep;
};

// ------------------------------------------------------------------------------------------------ config files

json yaml_scalar(const YAML::Node& n) {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") return s; // quoted: a string
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
    char* end = nullptr;
    errno = 0;
    const long long i = std::strtoll(s.c_str(), &end, 10);
    if (*end == '\0' && errno == 0) return i;
    const double d = std::strtod(s.c_str(), &end);
    if (*end == '\0') return d;
    return s;
}

json yaml_to_json(const YAML::Node& n, const std::string& path, int depth) {
    if (depth > 64) throw Error(fmt::format("{}: the YAML nests too deeply", path));
    switch (n.Type()) {
    case YAML::NodeType::Scalar: return yaml_scalar(n);
    case YAML::NodeType::Sequence: {
        json j = json::array();
        for (const auto& x : n) j.push_back(yaml_to_json(x, path, depth + 1));
        return j;
    }
    case YAML::NodeType::Map: {
        json j = json::object();
        for (const auto& kv : n) j[kv.first.as<std::string>()] = yaml_to_json(kv.second, path, depth + 1);
        return j;
    }
    default: return nullptr;
    }
}

// A JSON or YAML config file (the reference's configs/model/*.yaml, a config.json, or janusdna's own).
json read_config_file(const std::string& path) {
    if (!is_file(path)) throw Error(fmt::format("{}: no such config file", path));
    MappedFile f = MappedFile::open(path);
    const std::string text(f.bytes());
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded()) return j;
    try {
        return yaml_to_json(YAML::Load(text), path, 0);
    } catch (const YAML::Exception& e) {
        throw Error(fmt::format("{}: neither JSON nor YAML: {}", path, e.what()));
    }
}

// The model's fields from whatever wrapping the config came in, with the reference's aliases resolved.
json model_fields(json j, const std::string& label) {
    if (j.is_object() && j.contains("config") && j["config"].is_object()) j = j["config"]; // {_name_, config: {...}}
    if (!j.is_object()) throw Error(fmt::format("{}: the model config is not a mapping", label));
    for (const char* k : kBookkeeping) j.erase(k);
    // The Hydra config nests the Mamba settings as ssm_cfg; the top-level mamba_* fields win when both agree.
    if (j.contains("ssm_cfg") && j["ssm_cfg"].is_object()) {
        const json ssm = j["ssm_cfg"];
        for (auto [from, to] : {std::pair{"d_state", "mamba_d_state"}, {"d_conv", "mamba_d_conv"},
                                {"expand", "mamba_expand"}, {"dt_rank", "mamba_dt_rank"},
                                {"conv_bias", "mamba_conv_bias"}, {"bias", "mamba_proj_bias"}}) {
            if (!ssm.contains(from) || ssm[from].is_null()) continue;
            if (ssm[from] == "auto" && j.contains(to) && !j[to].is_null()) continue; // resolved at the top level
            if (!j.contains(to) || j[to].is_null()) j[to] = ssm[from];
            else if (j[to] != ssm[from])
                throw Error(fmt::format("{}: config fields {}={} and ssm_cfg.{}={} disagree", label, to, j[to].dump(),
                                        from, ssm[from].dump()));
        }
        j.erase("ssm_cfg");
    }
    return j;
}

// --set key=value: the value as JSON when it parses (numbers, true, null, "text"), else as text.
void apply_sets(json& cfg, const std::vector<std::string>& sets) {
    for (const std::string& s : sets) {
        const size_t eq = s.find('=');
        if (eq == std::string::npos || eq == 0) throw Error(fmt::format("--set {}: expected KEY=VALUE", s));
        const std::string key = s.substr(0, eq), text = s.substr(eq + 1);
        json v = json::parse(text, nullptr, false);
        cfg[key] = v.is_discarded() ? json(text) : v;
    }
}

// ------------------------------------------------------------------------------------------------ sources

// State-dict names -> the module's parameter names; "" for what is not the backbone or its LM head.
std::string canonical_name(const std::string& n) {
    if (starts_with(n, "model.model.")) return n.substr(12);
    if (starts_with(n, "model.lm_head.")) return n.substr(6);
    if (starts_with(n, "model.")) return n.substr(6);
    if (starts_with(n, "backbone.")) return n.substr(9);
    return n;
}

void add_torch_file(Source& src, const std::string& path, const ConvertOptions& o, bool lightning_ok) {
    auto archive = std::make_shared<TorchArchive>(TorchArchive::open(path, o.allow_globals));
    const pickle::Value* root = archive->root();
    const pickle::Value* dict = root;
    if (root->kind == pickle::Kind::Dict && root->get("state_dict")) {
        if (!lightning_ok) throw Error(fmt::format("{}: a Lightning checkpoint inside a sharded model", path));
        src.format = "lightning";
        dict = root->get("state_dict");
        src.hyper = to_json(root->get("hyper_parameters"), path);
        for (const char* k : {"pytorch-lightning_version", "global_step", "epoch"}) {
            json v = to_json(root->get(k), path);
            if (!v.is_null()) src.provenance[k == std::string("pytorch-lightning_version") ? "lightning_version" : k] = v;
        }
        if (src.hyper.is_object() && src.hyper.contains("model") && src.hyper["model"].is_object() &&
            src.hyper["model"].contains("config"))
            src.config = src.hyper["model"]["config"];
    } else if (root->kind != pickle::Kind::Dict) {
        throw Error(fmt::format("{}: holds no state dict (its pickle is not a dict)", path));
    }
    auto t = archive->tensors_of(dict);
    src.tensors.insert(src.tensors.end(), t.begin(), t.end());
    src.keep.push_back(archive);
}

void add_safetensors_file(Source& src, const std::string& path) {
    auto file = std::make_shared<SafetensorsFile>(SafetensorsFile::open(path));
    if (file->metadata().count("janusdna_config"))
        throw Error(fmt::format("{}: already a janusdna model file; nothing to convert", path));
    for (const auto& v : file->tensors()) src.tensors.emplace_back(v.name, RawTensor{v.dtype, v.shape,
                                                                    std::string_view(static_cast<const char*>(v.data), v.nbytes), nullptr});
    src.keep.push_back(file);
}

bool is_torch_zip(const std::string& path) {
    MappedFile f = MappedFile::open(path);
    return ZipArchive::looks_like_zip(f.bytes().substr(0, 4));
}

void add_weights_file(Source& src, const std::string& path, const ConvertOptions& o, bool lightning_ok) {
    if (is_torch_zip(path)) add_torch_file(src, path, o, lightning_ok);
    else if (ends_with(path, ".safetensors")) add_safetensors_file(src, path);
    else {
        MappedFile f = MappedFile::open(path);
        const std::string_view b = f.bytes();
        if (b.size() >= 2 && static_cast<unsigned char>(b[0]) == 0x80)
            throw Error(fmt::format("{}: PyTorch's legacy format (before 1.6) is not read; re-save it with a current "
                                    "PyTorch (torch.save writes a zip)", path));
        add_safetensors_file(src, path); // say what is wrong with it as a safetensors file
    }
    src.provenance["md5"][base_of(path)] = file_md5(path);
}

// A sharded checkpoint: NAME.index.json maps each tensor to a shard file in the same directory.
void add_sharded(Source& src, const std::string& index_path, const ConvertOptions& o) {
    const json idx = read_config_file(index_path);
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
        throw Error(fmt::format("{}: no \"weight_map\" in the index", index_path));
    std::map<std::string, std::vector<std::string>> shards;
    for (auto& [name, shard] : idx["weight_map"].items()) {
        if (!shard.is_string()) throw Error(fmt::format("{}: shard of \"{}\" is not a file name", index_path, name));
        const std::string f = shard.get<std::string>();
        // Shards are plain file names beside the index: nothing outside the directory is read.
        if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
            throw Error(fmt::format("{}: shard \"{}\" is not a file name in the index's directory", index_path, f));
        shards[f].push_back(name);
    }
    for (const auto& [file, names] : shards) {
        // Each shard contributes the tensors the index assigns to it, all of them.
        Source shard;
        add_weights_file(shard, dir_of(index_path) + "/" + file, o, false);
        const std::set<std::string> wanted(names.begin(), names.end());
        std::set<std::string> got;
        for (auto& [name, t] : shard.tensors)
            if (wanted.count(name) && got.insert(name).second) src.tensors.emplace_back(name, t);
        for (const auto& n : names)
            if (!got.count(n)) throw Error(fmt::format("{}: tensor \"{}\" is not in its shard {}", index_path, n, file));
        src.keep.insert(src.keep.end(), shard.keep.begin(), shard.keep.end());
        for (auto& [k, v] : shard.provenance["md5"].items()) src.provenance["md5"][k] = v;
    }
}

Source read_source(const ConvertOptions& o) {
    Source src;
    const std::string& in = o.input;
    if (is_dir(in)) {
        src.format = "hf";
        const std::string cfg = in + "/config.json";
        if (!is_file(cfg)) throw Error(fmt::format("{}: a directory without config.json: not a Hugging Face model", in));
        src.config = read_config_file(cfg);
        bool found = false;
        for (const char* w : {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                              "pytorch_model.bin.index.json"}) {
            const std::string p = in + "/" + w;
            if (!is_file(p)) continue;
            if (ends_with(p, ".index.json")) add_sharded(src, p, o);
            else add_weights_file(src, p, o, false);
            found = true;
            break;
        }
        if (!found)
            throw Error(fmt::format("{}: no model.safetensors, pytorch_model.bin or their *.index.json", in));
    } else if (ends_with(in, ".index.json")) {
        src.format = "hf";
        add_sharded(src, in, o);
        if (is_file(dir_of(in) + "/config.json")) src.config = read_config_file(dir_of(in) + "/config.json");
    } else {
        if (!is_file(in)) throw Error(fmt::format("{}: no such file or directory", in));
        src.format = "state_dict";
        add_weights_file(src, in, o, true);
    }
    src.provenance["file"] = base_of(in);
    src.provenance["format"] = src.format;
    return src;
}

// ------------------------------------------------------------------------------------------------ inference

struct Shapes {
    std::map<std::string, const RawTensor*> t;
    const std::vector<int64_t>* get(const std::string& n) const {
        auto it = t.find(n);
        return it == t.end() ? nullptr : &it->second->shape;
    }
};

std::string set_str(const std::vector<int64_t>& s) { return fmt::format("{{{}}}", fmt::join(s, ", ")); }

// The layer indices i < L with i % period == offset.
std::vector<int64_t> periodic(int64_t L, int64_t period, int64_t offset) {
    std::vector<int64_t> out;
    for (int64_t i = 0; period > 0 && i < L; ++i)
        if (i % period == offset) out.push_back(i);
    return out;
}

// Completes `cfg` from the tensors and checks the fields it has against them.
std::vector<std::string> infer_config(json& cfg, const Shapes& s, const std::string& label) {
    std::vector<std::string> inferred;
    auto settle = [&](const char* key, const json& value, const std::string& evidence) {
        if (!cfg.contains(key) || cfg[key].is_null()) {
            cfg[key] = value;
            inferred.push_back(key);
        } else if (cfg[key] != value && !(cfg[key].is_number() && value.is_number() && cfg[key].get<double>() == value.get<double>())) {
            throw Error(fmt::format("{}: config field {}={} contradicts the tensors, which give {} ({})", label, key,
                                    cfg[key].dump(), value.dump(), evidence));
        }
    };
    auto need = [&](const std::string& name) -> const std::vector<int64_t>& {
        const auto* sh = s.get(name);
        if (!sh) throw Error(fmt::format("{}: no tensor \"{}\": not a JanusDNA state dict", label, name));
        return *sh;
    };
    auto shape_of = [&](const std::string& name) { return fmt::format("{} [{}]", name, fmt::join(need(name), ", ")); };

    const auto& emb = need("embed_tokens.weight");
    if (emb.size() != 2) throw Error(fmt::format("{}: {} is not a matrix", label, shape_of("embed_tokens.weight")));
    const int64_t V = emb[0], H = emb[1];
    settle("hidden_size", H, shape_of("embed_tokens.weight"));
    // vocab_size is stored before padding: check that it pads to the embedding's rows.
    if (!cfg.contains("vocab_size") || cfg["vocab_size"].is_null()) {
        cfg["vocab_size"] = V;
        if (!cfg.contains("pad_vocab_size_multiple") || !cfg["pad_vocab_size_multiple"].is_number_integer() ||
            V % std::max<int64_t>(1, cfg["pad_vocab_size_multiple"].get<int64_t>()) != 0)
            cfg["pad_vocab_size_multiple"] = 1;
        inferred.push_back("vocab_size");
    } else if (cfg["vocab_size"].is_number_integer()) {
        const int64_t v = cfg["vocab_size"], m = cfg.value("pad_vocab_size_multiple", json(8)).is_number_integer()
                                                      ? std::max<int64_t>(1, cfg.value("pad_vocab_size_multiple", int64_t(8))) : 1;
        if ((v + m - 1) / m * m != V)
            throw Error(fmt::format("{}: config field vocab_size={} (padded to a multiple of {}: {}) contradicts the "
                                    "tensors, which give {} ({})", label, v, m, (v + m - 1) / m * m, V,
                                    shape_of("embed_tokens.weight")));
    }

    // Layers, and which of them are attention and mixture-of-experts layers.
    std::set<int64_t> layers, attn, experts;
    int64_t num_experts = 0, inter = 0;
    std::string inter_evidence;
    for (const auto& [name, t] : s.t) {
        if (!starts_with(name, "layers.")) continue;
        const size_t dot = name.find('.', 7);
        const std::string idx = name.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
        if (idx.empty() || idx.size() > 6 || !std::all_of(idx.begin(), idx.end(), ::isdigit)) continue;
        const int64_t i = std::stoll(idx);
        layers.insert(i);
        const std::string rest = dot == std::string::npos ? "" : name.substr(dot + 1);
        if (starts_with(rest, "attn.")) attn.insert(i);
        if (ends_with(rest, ".feed_forward_fwd.router.weight")) {
            experts.insert(i);
            if (t->shape.size() == 2) num_experts = t->shape[0];
        }
        if ((ends_with(rest, ".feed_forward_fwd.gate_proj.weight") || ends_with(rest, ".experts.0.gate_proj.weight")) &&
            t->shape.size() == 2 && inter == 0) {
            inter = t->shape[0];
            inter_evidence = fmt::format("{} [{}]", name, fmt::join(t->shape, ", "));
        }
    }
    const int64_t L = layers.empty() ? 0 : *layers.rbegin() + 1;
    if (static_cast<int64_t>(layers.size()) != L)
        throw Error(fmt::format("{}: layers {} are not numbered 0..{}", label, set_str({layers.begin(), layers.end()}), L - 1));
    settle("num_hidden_layers", L, fmt::format("layers 0..{}", L - 1));
    if (inter > 0) settle("intermediate_size", inter, inter_evidence);

    // A layer kind at i % period == offset: take period and offset from the config, or derive them.
    auto settle_plan = [&](const char* what, const char* period_key, const char* offset_key, const std::set<int64_t>& at) {
        const std::vector<int64_t> want(at.begin(), at.end());
        const bool has_p = cfg.contains(period_key) && cfg[period_key].is_number_integer();
        const bool has_o = cfg.contains(offset_key) && cfg[offset_key].is_number_integer();
        if (has_p && has_o) {
            const auto got = periodic(L, cfg[period_key], cfg[offset_key]);
            if (got != want)
                throw Error(fmt::format("{}: config fields {}={}, {}={} put {} layers at {}, but the tensors have them "
                                        "at {}", label, period_key, cfg[period_key].dump(), offset_key,
                                        cfg[offset_key].dump(), what, set_str(got), set_str(want)));
            return;
        }
        int64_t p = has_p ? cfg[period_key].get<int64_t>() : 0, o = 0;
        if (want.empty()) { p = p > 0 ? p : 8; o = std::max<int64_t>(100, p); }
        else if (want.size() == 1) { p = p > 0 ? p : std::max(L, want[0] + 1); o = want[0] % p; }
        else { p = p > 0 ? p : want[1] - want[0]; o = want[0] % p; }
        if (periodic(L, p, o) != want)
            throw Error(fmt::format("{}: the tensors have {} layers at {}, which no {}/{} describe", label, what,
                                    set_str(want), period_key, offset_key));
        if (!has_p) { cfg[period_key] = p; inferred.push_back(period_key); }
        cfg[offset_key] = o;
        inferred.push_back(offset_key);
    };
    settle_plan("attention", "attn_layer_period", "attn_layer_offset", attn);
    settle_plan("mixture-of-experts", "expert_layer_period", "expert_layer_offset", experts);
    if (!experts.empty()) settle("num_experts", num_experts, "the routers' rows");

    // Mamba sizes, from the first Mamba layer.
    for (int64_t i = 0; i < L; ++i) {
        if (attn.count(i)) continue;
        const std::string m = fmt::format("layers.{}.mamba_module.mamba_fwd.", i);
        const auto& in = need(m + "in_proj.weight");
        const auto& conv = need(m + "conv1d.weight");
        const auto& dt = need(m + "dt_proj.weight");
        const auto& a = need(m + "A_log");
        if (in.size() != 2 || conv.size() != 3 || dt.size() != 2 || a.size() != 2 || H == 0 || in[0] % (2 * H) != 0)
            throw Error(fmt::format("{}: unexpected Mamba shapes in layer {} ({})", label, i, shape_of(m + "in_proj.weight")));
        settle("mamba_expand", in[0] / (2 * H), shape_of(m + "in_proj.weight"));
        settle("mamba_d_conv", conv[2], shape_of(m + "conv1d.weight"));
        settle("mamba_d_state", a[1], shape_of(m + "A_log"));
        if (cfg.contains("mamba_dt_rank") && cfg["mamba_dt_rank"] == "auto") cfg["mamba_dt_rank"] = (H + 15) / 16;
        settle("mamba_dt_rank", dt[1], shape_of(m + "dt_proj.weight"));
        settle("mamba_conv_bias", s.get(m + "conv1d.bias") != nullptr, m + "conv1d.bias present or not");
        settle("mamba_proj_bias", s.get(m + "in_proj.bias") != nullptr, m + "in_proj.bias present or not");
        // Tied projections are stored once, or twice with equal bytes.
        const std::string rev = fmt::format("layers.{}.mamba_module.mamba_rev.in_proj.weight", i);
        auto fwd_t = s.t.find(m + "in_proj.weight"), rev_t = s.t.find(rev);
        const bool tied = rev_t == s.t.end() ||
                          (rev_t->second->dtype == fwd_t->second->dtype && rev_t->second->bytes == fwd_t->second->bytes);
        settle("bidirectional_weight_tie", tied, tied ? "the reverse mixers' projections equal the forward ones'"
                                                      : "the reverse mixers have projections of their own");
        break;
    }
    const bool final_mlp = s.get("final_mlp.0.weight") != nullptr;
    settle("final_mlp", final_mlp, final_mlp ? "final_mlp.* present" : "no final_mlp.* tensors");

    // What no tensor shape tells.
    auto required = [&](const char* key, const char* what) {
        if (!cfg.contains(key) || cfg[key].is_null())
            throw Error(fmt::format("{}: {} ({}) is not in the checkpoint's config and cannot be inferred from the "
                                    "tensors; give it with --set {}=N", label, key, what, key));
    };
    required("num_attention_heads", "the attention heads");
    required("flex_attn_n_embd", "it sets the final attention's softmax scale");
    if (!experts.empty()) required("num_experts_per_tok", "the experts each token is routed to");
    return inferred;
}

DType parse_out_dtype(DType d) {
    if (d != DType::F32 && d != DType::F16 && d != DType::BF16)
        throw Error(fmt::format("--dtype {}: expected float32, float16 or bfloat16", dtype_name(d)));
    return d;
}

} // namespace

namespace {

// Reads the source and writes the model file's bytes into `file`; the source's mapping is released on return.
ConvertSummary write_converted(const ConvertOptions& o, AtomicFile& file) {
    const DType out_dtype = parse_out_dtype(o.dtype);
    Source src = read_source(o);
    const std::string& label = o.input;
    ConvertSummary summary;
    summary.format = src.format;

    // Sort the tensors: backbone and LM head, the classification head, and the rest.
    Shapes shapes;
    const RawTensor *head_w = nullptr, *head_b = nullptr;
    std::vector<std::pair<std::string, const RawTensor*>> backbone;
    for (const auto& [name, t] : src.tensors) {
        if (name == "decoder.0.output_transform.weight") { head_w = &t; continue; }
        if (name == "decoder.0.output_transform.bias") { head_b = &t; continue; }
        if (starts_with(name, "decoder.") || starts_with(name, "encoder.") || name.find("torchmetrics.") != std::string::npos) {
            summary.ignored.push_back(name);
            continue;
        }
        const std::string c = canonical_name(name);
        if (!shapes.t.emplace(c, &t).second)
            throw Error(fmt::format("{}: tensor \"{}\" appears twice (as \"{}\" and another prefix)", label, c, name));
        backbone.emplace_back(c, &t);
    }
    if (!head_w != !head_b)
        throw Error(fmt::format("{}: decoder.0.output_transform has a {} but no {}", label, head_w ? "weight" : "bias",
                                head_w ? "bias" : "weight"));
    summary.classifier = head_w != nullptr;

    // The config: --config, else the one in the source; then --set; then the tensors complete and check it.
    json cfg = !o.config_path.empty() ? read_config_file(o.config_path) : src.config;
    if (cfg.is_null())
        throw Error(fmt::format("{}: holds no model config; give the reference's with --config FILE (JSON or YAML)", label));
    cfg = model_fields(cfg, o.config_path.empty() ? label : o.config_path);
    json classifier_length = src.hyper.is_object() && src.hyper.contains("dataset") && src.hyper["dataset"].is_object()
                                 ? src.hyper["dataset"].value("max_length", json()) : json();
    apply_sets(cfg, o.set);
    if (cfg.contains("max_length")) { // a classifier's input length, not a model field
        classifier_length = cfg["max_length"];
        cfg.erase("max_length");
    }
    summary.inferred = infer_config(cfg, shapes, label);
    ModelConfig config = ModelConfig::from_json(cfg, label); // the engine's own checks and refusals
    config.final_mlp = shapes.get("final_mlp.0.weight") != nullptr;

    // Tensors in the requested dtype; float32 in, float32 out is written straight from the source's bytes.
    SafetensorsWriter w;
    std::vector<std::unique_ptr<std::string>> buffers;
    auto add = [&](const std::string& file_name, const RawTensor& t) {
        const TensorView v = t.view(file_name);
        if (t.dtype == out_dtype || (t.dtype != DType::F32 && t.dtype != DType::F16 && t.dtype != DType::BF16 &&
                                     t.dtype != DType::F64)) {
            w.add_view(file_name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()); // load_model checks the dtype
            return;
        }
        const int64_t n = v.numel();
        std::vector<float> f(static_cast<size_t>(n));
        convert_to_f32(v, f.data());
        auto buf = std::make_unique<std::string>();
        if (out_dtype == DType::F32) {
            buf->assign(reinterpret_cast<const char*>(f.data()), f.size() * sizeof(float));
        } else {
            buf->resize(f.size() * 2);
            for (size_t i = 0; i < f.size(); ++i) {
                const uint16_t h = out_dtype == DType::F16 ? float_to_half(f[i]) : float_to_bf16(f[i]);
                std::memcpy(buf->data() + 2 * i, &h, 2);
            }
        }
        w.add_view(file_name, out_dtype, t.shape, buf->data(), buf->size());
        buffers.push_back(std::move(buf));
    };
    for (const auto& [name, t] : backbone) add(starts_with(name, "lm_head.") ? name : "model." + name, *t);

    json provenance = src.provenance;
    provenance["inferred"] = summary.inferred;
    provenance["set"] = o.set;
    if (!summary.ignored.empty()) provenance["ignored"] = summary.ignored;
    if (!o.allow_globals.empty()) provenance["allowed_globals"] = o.allow_globals;
    if (summary.classifier) {
        // The reference's SequenceDecoder: mode "pool" is the mean over all positions, janusdna's "reference" pooling.
        const json decoder = src.hyper.is_object() ? src.hyper.value("decoder", json()) : json();
        const std::string mode = decoder.is_object() && decoder.contains("mode") && decoder["mode"].is_string()
                                     ? decoder["mode"].get<std::string>() : "pool";
        if (mode != "pool")
            throw Error(fmt::format("{}: the classifier's decoder mode \"{}\" is not supported (janusdna pools by the "
                                    "mean, the reference's \"pool\")", label, mode));
        if (!classifier_length.is_number_integer() || classifier_length.get<int64_t>() < 1)
            throw Error(fmt::format("{}: the classifier's input length (dataset.max_length) is not in the checkpoint; "
                                    "give it with --set max_length=N", label));
        if (head_w->shape.size() != 2 || head_b->shape.size() != 1 || head_w->shape[0] != head_b->shape[0])
            throw Error(fmt::format("{}: decoder.0.output_transform has shapes [{}] and [{}]", label,
                                    fmt::join(head_w->shape, ", "), fmt::join(head_b->shape, ", ")));
        std::vector<std::string> classes;
        for (int64_t c = 0; c < head_w->shape[0]; ++c) classes.push_back(std::to_string(c));
        add("classifier.weight", *head_w);
        add("classifier.bias", *head_b);
        w.set_metadata("janusdna_classifier",
                       json{{"classes", classes}, {"length", classifier_length}, {"rc", false}, {"pooling", "reference"}, {"pooling_version", 2},
                            {"protocol", {{"converted_from", provenance["file"]}}}}.dump());
    }
    w.set_metadata("janusdna_config", config.to_json().dump());
    w.set_metadata("janusdna_version", JANUSDNA_VERSION);
    w.set_metadata("janusdna_source", provenance.dump());

    w.write(file);
    summary.tensors = backbone.size() + (summary.classifier ? 2 : 0);
    return summary;
}

} // namespace

ConvertSummary convert_checkpoint(const ConvertOptions& o) {
    if (o.output.empty() || o.output == "-") throw Error("convert writes a model file: give -o FILE.safetensors");
    // Write, load it back as every subcommand will, and only then give it its name. The source is unmapped
    // before the check, so peak memory is the model once plus the file's pages, not three copies.
    AtomicFile file(o.output);
    const ConvertSummary summary = write_converted(o, file);
    const std::string& label = o.input;
    if (std::fflush(file.stream()) != 0) throw Error(fmt::format("{}: write failed", o.output));
    try {
        LoadedModel m = load_model(file.temp_path());
        if (summary.classifier) classifier_of(m);
    } catch (const Error& e) {
        std::string msg = e.what();
        for (size_t p; (p = msg.find(file.temp_path())) != std::string::npos;) msg.replace(p, file.temp_path().size(), label);
        throw Error(msg);
    }
    file.commit();
    return summary;
}

void export_hf(const std::string& model_path, const std::string& out_dir) {
    LoadedModel m = load_model(model_path);
    if (is_classifier(m))
        throw Error(fmt::format("{}: a fine-tuned classifier; the Hugging Face layout holds the language model only",
                                model_path));
    if (!is_dir(out_dir) && mkdir(out_dir.c_str(), 0777) != 0)
        throw Error(fmt::format("{}: cannot create the directory: {}", out_dir, std::strerror(errno)));
    SafetensorsFile file = SafetensorsFile::open(model_path);
    SafetensorsWriter w;
    std::vector<std::vector<float>> buffers;
    for (const auto& v : file.tensors()) {
        if (v.dtype == DType::F32) {
            w.add_view(v.name, v.dtype, v.shape, v.data, v.nbytes);
        } else {
            buffers.emplace_back(static_cast<size_t>(v.numel()));
            convert_to_f32(v, buffers.back().data());
            w.add_view(v.name, DType::F32, v.shape, buffers.back().data(), buffers.back().size() * sizeof(float));
        }
    }
    w.set_metadata("format", "pt"); // what transformers' safetensors loader expects
    json cfg = m.config.to_json();
    cfg["architectures"] = {"JanusDNAForCausalLM"};
    cfg["model_type"] = "JanusDNA";
    cfg["torch_dtype"] = "float32";
    cfg["num_key_value_heads"] = m.config.num_attention_heads;
    w.write(out_dir + "/model.safetensors");
    AtomicFile c(out_dir + "/config.json");
    c.write(cfg.dump(2) + "\n");
    c.commit();
}

} // namespace janusdna
