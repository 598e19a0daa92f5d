// String helpers every layer uses, defined once.
#pragma once
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace janusdna {

inline bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A tensor shape for messages: "[2, 3, 4]". Sizes: any range of integers (std::vector<int64_t>, at::IntArrayRef).
template <class Sizes>
std::string shape_str(const Sizes& sizes) {
    return fmt::format("[{}]", fmt::join(sizes.begin(), sizes.end(), ", "));
}

} // namespace janusdna
