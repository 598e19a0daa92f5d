// Helpers shared by score-variants and track (header only).
#pragma once
#include "janusdna/error.h"
#include "janusdna/model_file.h"

#include <cstdlib>
#include <fmt/format.h>
#include <string>

namespace janusdna::cli {

// The model's training length: config field l_max / max_seq_len / seq_len / max_length (kept in
// ModelConfig::extra) or metadata key "janusdna_window" when present, else 1024.
inline int64_t default_window(const LoadedModel& m) {
    for (const char* k : {"l_max", "max_seq_len", "seq_len", "max_length", "max_position_embeddings"})
        if (m.config.extra.contains(k) && m.config.extra[k].is_number_integer() && m.config.extra[k].get<int64_t>() >= 2)
            return m.config.extra[k].get<int64_t>();
    auto it = m.metadata.find("janusdna_window");
    if (it != m.metadata.end()) {
        const long long w = std::atoll(it->second.c_str());
        if (w >= 2) return w;
    }
    return 1024;
}

// --chr-prefix: maps an input contig name to the reference's ("add": 20 -> chr20, "remove": chr20 -> 20).
inline std::string rename_contig(const std::string& name, const std::string& mode) {
    if (mode == "add") return name.compare(0, 3, "chr") == 0 ? name : "chr" + name;
    if (mode == "remove") return name.compare(0, 3, "chr") == 0 ? name.substr(3) : name;
    return name;
}

} // namespace janusdna::cli
