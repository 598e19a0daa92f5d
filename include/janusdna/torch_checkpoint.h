// torch.save archives (PyTorch >= 1.6: a zip holding ARCHIVE/data.pkl and the storages ARCHIVE/data/N) read
// without PyTorch and without running anything: the pickle goes through the restricted reader (pickle.h), tensors
// are located in their storages and checked against the archive, and the rest becomes JSON. Torch-free.
#pragma once
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "janusdna/pickle.h"
#include "janusdna/safetensors.h"
#include "janusdna/zip_archive.h"

namespace janusdna {

// A tensor's data, contiguous in row-major order: in place in the archive when it was stored so, else gathered
// into `owned`.
struct RawTensor {
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    std::string_view bytes;
    std::shared_ptr<std::string> owned;

    TensorView view(const std::string& name) const { return {name, dtype, shape, bytes.data(), bytes.size()}; }
};

class TorchArchive {
public:
    // Opens and unpickles `path`. `extra_globals` are accepted as inert data beside the default allow-list
    // (--allow-global); they are never called either.
    static TorchArchive open(const std::string& path, const std::set<std::string>& extra_globals = {});
    static TorchArchive from_bytes(std::string bytes, const std::string& label,
                                   const std::set<std::string>& extra_globals = {});

    const pickle::Value* root() const { return pickle_.root(); }
    const std::string& label() const { return zip_.label(); }

    // The tensors of a state dict (a Dict of name -> tensor); entries that are not tensors are skipped.
    std::vector<std::pair<std::string, RawTensor>> tensors_of(const pickle::Value* dict) const;
    // The tensor that `v` rebuilds; throws naming `name` when it is not a tensor or its storage is damaged.
    RawTensor tensor(const pickle::Value* v, const std::string& name) const;
    bool is_tensor(const pickle::Value* v) const;

private:
    void load(const std::set<std::string>& extra_globals);

    ZipArchive zip_;
    std::string prefix_;   // "ARCHIVE/"
    pickle::Pickle pickle_;
};

// The plain data of a pickled value as JSON: dicts (OrderedDict, AttributeDict, OmegaConf DictConfig) become
// objects, lists and tuples arrays, OmegaConf value nodes their value, numpy scalars numbers. Interpolations
// such as "${eval:...}" stay the strings they are; nothing is resolved or evaluated. Tensors, globals and other
// objects become null. Throws janusdna::Error when nesting exceeds `max_depth`.
nlohmann::json to_json(const pickle::Value* v, const std::string& label, int max_depth = 64);

} // namespace janusdna
