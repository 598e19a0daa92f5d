// The dataset options finetune and evaluate share, and the split they make from them: declared once so that
// evaluate rebuilds exactly the split a fine-tuned model was trained on (its metadata records these options).
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "janusdna/dataset.h"

namespace janusdna::cli {

struct DatasetArgs {
    std::string data, valid, test, reference;
    bool chr_prefix = false;      // --chr-prefix, --rename-chrs: coordinate files' contig names -> the reference's
    std::string rename_chrs;
    std::string seq_column = "sequence", label_column = "label";
    double valid_fraction = 0.1;  // used only when the dataset has no validation split
    int folds = 0, fold = 1;      // --folds K: validation = fold `fold` of K (stratified), training = the rest
    uint64_t split_seed = 1;
    nlohmann::json to_json() const;
    static DatasetArgs from_json(const nlohmann::json& j);
    // These arguments with those given on app's command line (parsed into `given` by add_dataset_options) instead.
    DatasetArgs overridden_by(const DatasetArgs& given, const CLI::App& app) const;
    // As recorded in a fine-tuned model: file paths relative to the model file's directory, so that the model and
    // its dataset can move together ("paths": "relative to the model").
    nlohmann::json to_json_for_model(const std::string& model_path) const;
    // Reads either form; paths recorded relative to the model are resolved against model_path's directory.
    static DatasetArgs from_json_for_model(const nlohmann::json& j, const std::string& model_path);
};

// Adds DATA (positional, optional when `data_optional`) and the dataset options to app.
void add_dataset_options(CLI::App& app, DatasetArgs& a, bool data_optional);

// Loads the dataset and makes the validation split: fold `fold` of `folds` when folds > 0, else the dataset's
// own validation split, else a stratified `valid_fraction` of train. `classes` fixes the class order (a
// fine-tuned model's). Throws Error.
Dataset load_split(const DatasetArgs& a, const std::vector<std::string>& classes, const WarnFn& warn);

} // namespace janusdna::cli
