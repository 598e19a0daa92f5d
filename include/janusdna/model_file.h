// Model files: safetensors with the reference's parameter names and the config as JSON in the metadata key
// "janusdna_config". Reads float32, float16 and bfloat16 (converted to float32); writes float32.
#pragma once
#include <map>
#include <string>

#include "janusdna/config.h"
#include "janusdna/model.h"

namespace janusdna {

struct LoadedModel {
    ModelConfig config;
    JanusModel model{nullptr};                       // float32, CPU, eval mode
    std::map<std::string, std::string> metadata;     // every metadata entry of the file
    std::map<std::string, torch::Tensor> head;       // "classifier.*" tensors of a fine-tuned model (float32)
    std::string path;
    std::string md5;                                 // of the file, as `md5sum` prints it (provenance in outputs)
    bool lm_head = true;                             // false for a converted classifier without an LM head
};

// Loads and checks every tensor: a missing, unexpected, wrong-shaped or wrong-dtype tensor, unequal tied copies, a
// truncated file or a corrupt header is a janusdna::Error naming the file and the tensor. Names are accepted bare,
// with the fixtures' "model." prefix, or with the Lightning prefixes "model.model." / "model.lm_head.".
// final_mlp is enabled iff its tensors are present. A fine-tuned model (metadata "janusdna_classifier") also
// holds "classifier.*" tensors, returned in `head`.
LoadedModel load_model(const std::string& path);

// Throws when `m` is a fine-tuned classifier: the zero-shot scores need the language model's head, which a
// classifier converted from the reference does not even have.
void require_language_model(const LoadedModel& m);

// Writes the model atomically (temporary name, then rename): "model.<name>" for the backbone, "lm_head.weight",
// tied projections under both mixers' names as the reference does; metadata gets janusdna_config, janusdna_version
// and `extra`.
// `head` tensors are written under their own names (a classifier's "classifier.weight", ...).
void save_model(const std::string& path, JanusModelImpl& model, const std::map<std::string, std::string>& extra = {},
                const std::map<std::string, torch::Tensor>& head = {});

// The window a model was trained on (metadata "janusdna_train_seq_len", written by pretrain), else 1024: the
// default --window of every subcommand.
int64_t default_window(const std::map<std::string, std::string>& model_metadata);

// When `path` is not a janusdna model file but something `janusdna convert` reads (a torch.save checkpoint, a
// pickle, a Hugging Face directory, a safetensors state dict without janusdna's config), or not a safetensors
// file at all, one sentence that says what it is and what to run; "" for a safetensors file with janusdna's
// config. load_model throws it.
std::string foreign_model_hint(const std::string& path);

// Hex MD5 of a file's bytes (the checksum `info` prints and outputs record).
std::string file_md5(const std::string& path);

// Which model file to use: `option` if given, else $JANUSDNA_MODEL, else the installed data directory's
// models/default.safetensors, else the build tree's data/models/default.safetensors. Throws with advice if none.
std::string resolve_model_path(const std::string& option);

} // namespace janusdna
