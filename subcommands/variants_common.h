// Helpers shared by score-variants and track (header only).
#pragma once
#include "janusdna/error.h"
#include "janusdna/model_file.h"

#include <cstdlib>
#include <fmt/format.h>
#include <string>

namespace janusdna::cli {

// The model's training length (see janusdna::default_window).
inline int64_t default_window(const LoadedModel& m) { return janusdna::default_window(m.metadata); }

// --chr-prefix: maps an input contig name to the reference's ("add": 20 -> chr20, "remove": chr20 -> 20).
inline std::string rename_contig(const std::string& name, const std::string& mode) {
    if (mode == "add") return name.compare(0, 3, "chr") == 0 ? name : "chr" + name;
    if (mode == "remove") return name.compare(0, 3, "chr") == 0 ? name.substr(3) : name;
    return name;
}

} // namespace janusdna::cli
