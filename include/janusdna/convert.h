// Converting the reference's checkpoints into janusdna model files, and janusdna models back into the reference's
// Hugging Face layout. Nothing that comes with a checkpoint is ever executed: pickles go through the restricted
// reader (pickle.h), configs are read as data, and "${eval:...}" interpolations are ignored.
#pragma once
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "janusdna/safetensors.h"

namespace janusdna {

struct ConvertOptions {
    std::string input;                       // .ckpt, HF directory, index .json, .bin/.pt/.safetensors state dict
    std::string output;                      // the janusdna model file (safetensors)
    std::string config_path;                 // --config: JSON or the reference's YAML model config
    std::vector<std::string> set;            // --set key=value, applied last
    std::set<std::string> allow_globals;     // --allow-global MODULE.NAME: accepted as inert data
    DType dtype = DType::F32;                // stored dtype: F32, F16 or BF16
    std::function<void(const std::string&)> warn;
};

struct ConvertSummary {
    std::string format;                      // "lightning", "hf", "state_dict"
    size_t tensors = 0;                      // written
    bool classifier = false;                 // a fine-tuned classification checkpoint
    std::vector<std::string> inferred;       // config fields taken from the tensor shapes
    std::vector<std::string> ignored;        // source tensors that are not part of the model (metrics, ...)
};

// Reads `input`, completes and checks its config against the tensors, and writes `output` atomically. The result
// is loaded back with load_model before it is committed, so a converted file is one every subcommand accepts.
// Throws janusdna::Error naming the input for anything it cannot or will not read.
ConvertSummary convert_checkpoint(const ConvertOptions& options);

// Writes `out_dir`/config.json (the reference's JanusDNAConfig field names) and `out_dir`/model.safetensors (the
// reference's parameter names, float32) from a janusdna model file; creates `out_dir` if needed. A fine-tuned
// classifier is refused (the reference keeps its task head outside the Hugging Face model).
void export_hf(const std::string& model_path, const std::string& out_dir);


} // namespace janusdna
