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

} // namespace janusdna::cli
