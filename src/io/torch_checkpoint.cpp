#include "janusdna/torch_checkpoint.h"
#include "janusdna/error.h"

#include <cmath>
#include <cstring>
#include <fmt/format.h>

namespace janusdna {

namespace {

using pickle::Kind;
using pickle::Value;

std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 120)) out += (c >= 32 && c < 127) ? c : '?';
    return out;
}

// torch's typed storage classes.
bool storage_dtype(const std::string& global, DType& out) {
    static const std::map<std::string, DType> kinds = {
        {"torch.FloatStorage", DType::F32},  {"torch.HalfStorage", DType::F16}, {"torch.BFloat16Storage", DType::BF16},
        {"torch.DoubleStorage", DType::F64}, {"torch.LongStorage", DType::I64}, {"torch.IntStorage", DType::I32},
        {"torch.BoolStorage", DType::BOOL},  {"torch.ByteStorage", DType::U8}};
    auto it = kinds.find(global);
    if (it == kinds.end()) return false;
    out = it->second;
    return true;
}

bool int_tuple(const Value* v, std::vector<int64_t>& out) {
    if (!v || (v->kind != Kind::Tuple && v->kind != Kind::List)) return false;
    out.clear();
    for (const Value* x : v->items) {
        if (x->kind != Kind::Int) return false;
        out.push_back(x->integer);
    }
    return true;
}

} // namespace

TorchArchive TorchArchive::open(const std::string& path, const std::set<std::string>& extra_globals) {
    TorchArchive a;
    a.zip_ = ZipArchive::open(path);
    a.load(extra_globals);
    return a;
}

TorchArchive TorchArchive::from_bytes(std::string bytes, const std::string& label,
                                      const std::set<std::string>& extra_globals) {
    TorchArchive a;
    a.zip_ = ZipArchive::from_bytes(std::move(bytes), label);
    a.load(extra_globals);
    return a;
}

void TorchArchive::load(const std::set<std::string>& extra_globals) {
    // The pickle is ARCHIVE/data.pkl, ARCHIVE being any one top-level folder name.
    const ZipArchive::Entry* pkl = nullptr;
    for (const auto& e : zip_.entries()) {
        const size_t slash = e.name.find('/');
        if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
            if (pkl) throw Error(fmt::format("{}: more than one data.pkl in the archive", zip_.label()));
            pkl = &e;
            prefix_ = e.name.substr(0, slash + 1);
        }
    }
    if (!pkl) throw Error(fmt::format("{}: a zip archive without data.pkl: not a torch.save file", zip_.label()));
    std::set<std::string> allowed = pickle::default_allowed_globals();
    allowed.insert(extra_globals.begin(), extra_globals.end());
    pickle_ = pickle::Pickle::load(zip_.contents(*pkl), zip_.label(), allowed);
}

bool TorchArchive::is_tensor(const Value* v) const {
    return v && v->kind == Kind::Object && v->global &&
           (v->global->text == "torch._utils._rebuild_tensor_v2" || v->global->text == "torch._utils._rebuild_parameter" ||
            v->global->text == "torch._utils._rebuild_parameter_with_state" ||
            v->global->text == "torch._tensor._rebuild_from_type_v2");
}

RawTensor TorchArchive::tensor(const Value* v, const std::string& name) const {
    auto fail = [&](const std::string& what) -> RawTensor {
        throw Error(fmt::format("{}: tensor \"{}\": {}", zip_.label(), printable(name), what));
    };
    // Parameters and tensor subclasses wrap the plain rebuild; unwrap a bounded number of times.
    if (!is_tensor(v) || !v->args) return fail("not a tensor");
    std::string func = v->global->text;
    const Value* args = v->args;
    for (int depth = 0; func != "torch._utils._rebuild_tensor_v2"; ++depth) {
        const auto& a = args->items;
        if (depth == 8) return fail("tensor wrappers nest too deeply");
        if (func == "torch._tensor._rebuild_from_type_v2") { // (func, type, args, state)
            if (a.size() < 3 || a[0]->kind != Kind::Global || a[2]->kind != Kind::Tuple)
                return fail("an unsupported tensor subclass");
            func = a[0]->text;
            args = a[2];
        } else if (func == "torch._utils._rebuild_parameter" || func == "torch._utils._rebuild_parameter_with_state") {
            if (a.empty() || !is_tensor(a[0]) || !a[0]->args) return fail("a parameter without its tensor");
            func = a[0]->global->text;
            args = a[0]->args;
        } else {
            return fail(fmt::format("{} is not a tensor rebuild", printable(func)));
        }
    }
    const auto& a = args->items;
    if (a.size() < 4) return fail("a tensor rebuild with too few arguments");
    const Value* pid = a[0]->kind == Kind::Persistent ? a[0]->args : nullptr;
    // ('storage', StorageType, key, location, numel)
    if (!pid || pid->kind != Kind::Tuple || pid->items.size() < 5 || pid->items[0]->kind != Kind::Str ||
        pid->items[0]->text != "storage" || pid->items[1]->kind != Kind::Global || pid->items[2]->kind != Kind::Str ||
        pid->items[4]->kind != Kind::Int)
        return fail("its storage reference is not ('storage', type, key, location, numel)");
    RawTensor t;
    if (!storage_dtype(pid->items[1]->text, t.dtype))
        return fail(fmt::format("storage type {} is not read", printable(pid->items[1]->text)));
    const std::string& key = pid->items[2]->text;
    if (key.empty() || key.find('/') != std::string::npos || key.find('\0') != std::string::npos)
        return fail(fmt::format("bad storage key \"{}\"", printable(key)));
    const ZipArchive::Entry* entry = zip_.find(prefix_ + "data/" + key);
    if (!entry) return fail(fmt::format("its storage {} is not in the archive", printable(key)));
    const uint64_t esize = dtype_size(t.dtype);
    const int64_t numel = pid->items[4]->integer;
    if (numel < 0 || static_cast<uint64_t>(numel) > entry->size / esize)
        return fail(fmt::format("storage {} holds {} bytes, fewer than {} elements of {}", printable(key), entry->size,
                                numel, dtype_name(t.dtype)));
    std::vector<int64_t> stride;
    if (a[1]->kind != Kind::Int || !int_tuple(a[2], t.shape) || !int_tuple(a[3], stride) || stride.size() != t.shape.size())
        return fail("bad offset, size or stride");
    const int64_t offset = a[1]->integer;
    if (t.shape.size() > 16) return fail("more than 16 dimensions");
    int64_t count = 1, last = offset;
    bool contiguous = true;
    int64_t expect = 1;
    for (size_t i = t.shape.size(); i-- > 0;) {
        if (t.shape[i] < 0 || stride[i] < 0) return fail("a negative size or stride");
        if (__builtin_mul_overflow(count, t.shape[i], &count)) return fail("too many elements");
        if (t.shape[i] > 1 && stride[i] != expect) contiguous = false;
        if (__builtin_mul_overflow(expect, t.shape[i], &expect)) return fail("too many elements");
        int64_t reach = 0;
        if (t.shape[i] > 0 && (__builtin_mul_overflow(t.shape[i] - 1, stride[i], &reach) ||
                               __builtin_add_overflow(last, reach, &last)))
            return fail("its extent overflows");
    }
    if (offset < 0) return fail("a negative storage offset");
    if (count > 0 && last >= numel)
        return fail(fmt::format("it reaches element {} of a storage of {}", last, numel));
    const std::string_view data = zip_.contents(*entry);
    const uint64_t nbytes = static_cast<uint64_t>(count) * esize;
    if (count == 0) {
        t.bytes = std::string_view();
    } else if (contiguous) {
        t.bytes = data.substr(static_cast<uint64_t>(offset) * esize, nbytes);
    } else {
        t.owned = std::make_shared<std::string>(nbytes, '\0');
        std::vector<int64_t> idx(t.shape.size(), 0);
        for (int64_t n = 0; n < count; ++n) {
            int64_t src = offset;
            for (size_t d = 0; d < idx.size(); ++d) src += idx[d] * stride[d];
            std::memcpy(t.owned->data() + static_cast<uint64_t>(n) * esize, data.data() + static_cast<uint64_t>(src) * esize, esize);
            for (size_t d = idx.size(); d-- > 0;) {
                if (++idx[d] < t.shape[d]) break;
                idx[d] = 0;
            }
        }
        t.bytes = *t.owned;
    }
    return t;
}

std::vector<std::pair<std::string, RawTensor>> TorchArchive::tensors_of(const Value* dict) const {
    if (!dict || dict->kind != Kind::Dict) throw Error(fmt::format("{}: the state dict is not a dict", zip_.label()));
    std::vector<std::pair<std::string, RawTensor>> out;
    std::set<std::string> seen;
    for (const auto& [k, v] : dict->entries) {
        if (k->kind != Kind::Str) throw Error(fmt::format("{}: a state dict key is not a string", zip_.label()));
        if (!is_tensor(v)) continue;
        if (!seen.insert(k->text).second)
            throw Error(fmt::format("{}: tensor \"{}\" appears twice", zip_.label(), printable(k->text)));
        out.emplace_back(k->text, tensor(v, k->text));
    }
    return out;
}

nlohmann::json to_json(const Value* v, const std::string& label, int max_depth) {
    if (max_depth < 0) throw Error(fmt::format("{}: the pickled data nests too deeply", label));
    if (!v) return nullptr;
    auto object_of = [&](const Value* dict) {
        nlohmann::json j = nlohmann::json::object();
        if (!dict) return j;
        for (const auto& [k, x] : dict->entries) {
            std::string key;
            if (k->kind == Kind::Str) key = k->text;
            else if (k->kind == Kind::Int) key = std::to_string(k->integer);
            else continue;
            j[key] = to_json(x, label, max_depth - 1);
        }
        return j;
    };
    switch (v->kind) {
    case Kind::None: return nullptr;
    case Kind::Bool: return v->boolean;
    case Kind::Int: return v->integer;
    case Kind::Float: return std::isfinite(v->real) ? nlohmann::json(v->real) : nlohmann::json(nullptr);
    case Kind::Str: return v->text;
    case Kind::Bytes: return nullptr;
    case Kind::List: case Kind::Tuple: case Kind::Set: {
        nlohmann::json j = nlohmann::json::array();
        for (const Value* x : v->items) j.push_back(to_json(x, label, max_depth - 1));
        return j;
    }
    case Kind::Dict: return object_of(v);
    case Kind::Object: {
        const std::string& g = v->global->text;
        if (g == "omegaconf.dictconfig.DictConfig") {
            const Value* content = v->state ? v->state->get("_content") : nullptr;
            return content && content->kind == Kind::Dict ? object_of(content) : nlohmann::json(nullptr);
        }
        if (g == "omegaconf.listconfig.ListConfig") {
            const Value* content = v->state ? v->state->get("_content") : nullptr;
            return content ? to_json(content, label, max_depth - 1) : nlohmann::json(nullptr);
        }
        if (g.rfind("omegaconf.nodes.", 0) == 0) {
            const Value* val = v->state ? v->state->get("_val") : nullptr;
            return to_json(val, label, max_depth - 1);
        }
        if (g.size() > 14 && g.compare(g.size() - 14, 14, ".AttributeDict") == 0) { // a dict subclass
            Value merged;
            merged.kind = Kind::Dict;
            merged.entries = v->entries;
            if (v->state && v->state->kind == Kind::Dict)
                merged.entries.insert(merged.entries.end(), v->state->entries.begin(), v->state->entries.end());
            return object_of(&merged);
        }
        if (g == "numpy.core.multiarray.scalar" || g == "numpy._core.multiarray.scalar") {
            // scalar(dtype, bytes): dtype is numpy.dtype("f8", ...) with its byte order in its state
            const auto& a = v->args->items;
            if (a.size() != 2 || !a[0]->is_object_of("numpy.dtype") || a[1]->kind != Kind::Bytes || a[0]->args->items.empty() ||
                a[0]->args->items[0]->kind != Kind::Str)
                return nullptr;
            const std::string& code = a[0]->args->items[0]->text;
            const std::string& raw = a[1]->text;
            auto read = [&](auto zero) -> nlohmann::json {
                decltype(zero) x;
                if (raw.size() != sizeof x) return nullptr;
                std::memcpy(&x, raw.data(), sizeof x);
                return x;
            };
            if (code == "f8") return read(double());
            if (code == "f4") return read(float());
            if (code == "i8") return read(int64_t());
            if (code == "i4") return read(int32_t());
            if (code == "u8") return read(uint64_t());
            if (code == "b1") return raw.size() == 1 ? nlohmann::json(raw[0] != 0) : nlohmann::json(nullptr);
            return nullptr;
        }
        return nullptr;
    }
    default: return nullptr;
    }
}

} // namespace janusdna
