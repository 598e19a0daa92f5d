// String helpers every layer uses, defined once.
#pragma once
#include <string>
#include <string_view>
#include <vector>

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

// True when s holds only spaces and tabs (or nothing).
inline bool is_blank(std::string_view s) {
    return s.find_first_not_of(" \t") == std::string_view::npos;
}

// s without the leading and trailing characters of `blanks`.
inline std::string_view trim(std::string_view s, std::string_view blanks = " \t") {
    const size_t first = s.find_first_not_of(blanks);
    if (first == std::string_view::npos) return {};
    return s.substr(first, s.find_last_not_of(blanks) - first + 1);
}

// items joined by ", ": at most max_items of them, then ", ... (N in all)".
inline std::string join_list(const std::vector<std::string>& items, size_t max_items = 20) {
    std::string out;
    for (size_t i = 0; i < items.size() && i < max_items; ++i) out += (i ? ", " : "") + items[i];
    if (items.size() > max_items) out += fmt::format(", ... ({} in all)", items.size());
    return out;
}

// A byte for a message: 'X' when printable, '\xNN' otherwise.
inline std::string describe_byte(unsigned char c) {
    if (c > 0x20 && c < 0x7f) return fmt::format("'{}'", static_cast<char>(c));
    return fmt::format("'\\x{:02X}'", static_cast<unsigned>(c));
}

} // namespace janusdna
