#include "dataset_args.h"

#include <filesystem>

#include "janusdna/error.h"

#include <fmt/format.h>

namespace janusdna::cli {

nlohmann::json DatasetArgs::to_json() const {
    return {{"data", data}, {"valid", valid}, {"test", test}, {"reference", reference}, {"seq_column", seq_column},
            {"label_column", label_column}, {"valid_fraction", valid_fraction}, {"folds", folds}, {"fold", fold},
            {"split_seed", split_seed}, {"chr_prefix", chr_prefix}, {"rename_chrs", rename_chrs}};
}

DatasetArgs DatasetArgs::from_json(const nlohmann::json& j) {
    DatasetArgs a;
    a.data = j.at("data"); a.valid = j.at("valid"); a.test = j.at("test"); a.reference = j.at("reference");
    a.seq_column = j.at("seq_column"); a.label_column = j.at("label_column"); a.valid_fraction = j.at("valid_fraction");
    a.folds = j.at("folds"); a.fold = j.at("fold"); a.split_seed = j.at("split_seed");
    a.chr_prefix = j.value("chr_prefix", false); a.rename_chrs = j.value("rename_chrs", "");
    return a;
}

namespace {
std::filesystem::path model_dir(const std::string& model_path) {
    return std::filesystem::absolute(std::filesystem::path(model_path)).parent_path();
}
} // namespace

nlohmann::json DatasetArgs::to_json_for_model(const std::string& model_path) const {
    const std::filesystem::path dir = model_dir(model_path);
    DatasetArgs r = *this;
    for (std::string* p : {&r.data, &r.valid, &r.test, &r.reference, &r.rename_chrs})
        if (!p->empty() && *p != "-") *p = std::filesystem::absolute(*p).lexically_normal().lexically_relative(dir).string();
    nlohmann::json j = r.to_json();
    j["paths"] = "relative to the model";
    return j;
}

DatasetArgs DatasetArgs::from_json_for_model(const nlohmann::json& j, const std::string& model_path) {
    DatasetArgs a = from_json(j);
    if (j.value("paths", "") != "relative to the model") return a;  // older files: as typed at fine-tuning
    const std::filesystem::path dir = model_dir(model_path);
    for (std::string* p : {&a.data, &a.valid, &a.test, &a.reference, &a.rename_chrs})
        if (!p->empty() && *p != "-" && std::filesystem::path(*p).is_relative()) *p = (dir / *p).lexically_normal().string();
    return a;
}

void add_dataset_options(CLI::App& app, DatasetArgs& a, bool data_optional) {
    auto* d = app.add_option("data", a.data, "dataset: a GUE/NT directory (train.csv, dev.csv, test.csv), a "
                                             "GenomicBenchmarks directory, or a CSV/TSV/FASTA/BED file (the training split)")
                  ->group("Dataset");
    if (!data_optional) d->required();
    app.add_option("--valid", a.valid, "validation split file (replaces the dataset's)")->group("Dataset");
    app.add_option("--test", a.test, "test split file (replaces the dataset's)")->group("Dataset");
    app.add_option("-f,--fasta-ref", a.reference, "indexed FASTA for BED and GenomicBenchmarks coordinate files")->group("Dataset");
    app.add_flag("--chr-prefix", a.chr_prefix, "match contig names that differ by a \"chr\" prefix (20 <-> chr20)")->group("Dataset");
    app.add_option("--rename-chrs", a.rename_chrs, "rename input contigs to the reference's: a file of OLD NEW lines")->group("Dataset");
    app.add_option("--seq-column", a.seq_column, "CSV/TSV column holding the sequence")->group("Dataset");
    app.add_option("--label-column", a.label_column, "CSV/TSV column (name), BED column (1-based number) or FASTA "
                                                     "header KEY=VALUE key holding the label")->group("Dataset");
    app.add_option("--valid-fraction", a.valid_fraction, "stratified fraction of train held out for validation when "
                                                         "the dataset has no validation split")->group("Dataset");
    app.add_option("--folds", a.folds, "K-fold cross-validation on train: validation is fold --fold of K")->group("Dataset");
    app.add_option("--fold", a.fold, "which fold (1..K) is the validation split")->group("Dataset");
    app.add_option("--split-seed", a.split_seed, "seed of the validation split or the folds")->group("Dataset");
}

Dataset load_split(const DatasetArgs& a, const std::vector<std::string>& classes, const WarnFn& warn) {
    DatasetOptions o;
    o.reference = a.reference;
    o.contigs = ContigMatcher(a.chr_prefix, a.rename_chrs);
    o.seq_column = a.seq_column;
    o.label_column = a.label_column;
    o.classes = classes;
    o.warn = warn;
    Dataset d = load_dataset(a.data, a.valid, a.test, o);
    if (a.folds > 0) {
        if (a.fold < 1 || a.fold > a.folds) throw Error(fmt::format("--fold must be in 1..{}", a.folds));
        auto folds = kfold(d.train, a.folds, a.split_seed);
        d.train = folds[a.fold - 1].first;
        d.valid = folds[a.fold - 1].second;
        d.description += fmt::format("; validation = fold {} of {} (seed {})", a.fold, a.folds, a.split_seed);
    } else if (d.valid.empty() && !d.train.empty()) {
        split_valid_fraction(d, a.valid_fraction, a.split_seed);
        d.description += fmt::format("; validation = {:g} of train (seed {})", a.valid_fraction, a.split_seed);
    }
    return d;
}

} // namespace janusdna::cli
