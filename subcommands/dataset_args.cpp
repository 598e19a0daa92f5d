#include "dataset_args.h"

#include <filesystem>
#include <type_traits>

#include "janusdna/error.h"

#include <fmt/format.h>

namespace janusdna::cli {

namespace {

// Every dataset field, declared once: its option (CLI11 names; "data" is the positional), its key in a model's
// metadata, whether metadata written before the field existed may lack it, and its help text.
struct Field { const char* option; const char* key; bool may_be_absent; const char* help; };

// Calls fn(Field, the field of each args...) for every field, in the order --help lists them.
template <class Fn, class... Args>
void for_each_field(Fn&& fn, Args&... a) {
    fn(Field{"data", "data", false, "dataset: a GUE/NT directory (train.csv, dev.csv, test.csv), a GenomicBenchmarks "
                                     "directory, or a CSV/TSV/FASTA/BED file (the training split)"}, a.data...);
    fn(Field{"--valid", "valid", false, "validation split file (replaces the dataset's)"}, a.valid...);
    fn(Field{"--test", "test", false, "test split file (replaces the dataset's)"}, a.test...);
    fn(Field{"-f,--fasta-ref", "reference", false, "indexed FASTA for BED and GenomicBenchmarks coordinate files"},
       a.reference...);
    fn(Field{"--chr-prefix", "chr_prefix", true, "match contig names that differ by a \"chr\" prefix (20 <-> chr20)"},
       a.chr_prefix...);
    fn(Field{"--rename-chrs", "rename_chrs", true, "rename input contigs to the reference's: a file of OLD NEW lines"},
       a.rename_chrs...);
    fn(Field{"--seq-column", "seq_column", false, "CSV/TSV column holding the sequence"}, a.seq_column...);
    fn(Field{"--label-column", "label_column", false, "CSV/TSV column (name), BED column (1-based number) or FASTA "
                                                       "header KEY=VALUE key holding the label"}, a.label_column...);
    fn(Field{"--valid-fraction", "valid_fraction", false, "stratified fraction of train held out for validation when "
                                                           "the dataset has no validation split"}, a.valid_fraction...);
    fn(Field{"--folds", "folds", false, "K-fold cross-validation on train: validation is fold --fold of K"}, a.folds...);
    fn(Field{"--fold", "fold", false, "which fold (1..K) is the validation split"}, a.fold...);
    fn(Field{"--split-seed", "split_seed", false, "seed of the validation split or the folds"}, a.split_seed...);
}

// The name CLI11's count() takes: the last of the comma-separated names.
std::string long_name(const char* option) {
    const std::string s(option);
    return s.substr(s.rfind(',') + 1);
}

// The directory of a model file, against which its dataset's relative paths are recorded.
std::filesystem::path model_dir(const std::string& model_path) {
    return std::filesystem::absolute(std::filesystem::path(model_path)).parent_path();
}

} // namespace

nlohmann::json DatasetArgs::to_json() const {
    nlohmann::json j;
    for_each_field([&](const Field& f, const auto& field) { j[f.key] = field; }, *this);
    return j;
}

DatasetArgs DatasetArgs::from_json(const nlohmann::json& j) {
    DatasetArgs a;
    for_each_field([&](const Field& f, auto& field) {
        if (!f.may_be_absent || j.contains(f.key)) j.at(f.key).get_to(field);
    }, a);
    return a;
}

DatasetArgs DatasetArgs::overridden_by(const DatasetArgs& given, const CLI::App& app) const {
    DatasetArgs out = *this;
    for_each_field([&](const Field& f, auto& to, const auto& from) {
        if (app.count(long_name(f.option)) > 0) to = from;
    }, out, given);
    return out;
}

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
    for_each_field([&](const Field& f, auto& field) {
        CLI::Option* o = nullptr;
        if constexpr (std::is_same_v<std::decay_t<decltype(field)>, bool>) o = app.add_flag(f.option, field, f.help);
        else o = app.add_option(f.option, field, f.help);
        o->group("Dataset");
        if (o->get_positional() && !data_optional) o->required();
    }, a);
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
