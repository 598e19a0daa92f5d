// The window planner: which windows the model reads and which bases each one reports.
#include "janusdna/window_plan.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "janusdna/error.h"

namespace janusdna {

std::vector<Window> plan_windows(int64_t beg, int64_t end, int64_t contig_len, int64_t window, int64_t stride,
                                 int64_t flank) {
    if (beg >= end) throw Error(fmt::format("window plan: empty region [{}, {})", beg, end));
    if (beg < 0 || end > contig_len)
        throw Error(fmt::format("window plan: region [{}, {}) is outside the contig [0, {})", beg, end, contig_len));
    if (window < 0) throw Error(fmt::format("window plan: negative window {}", window));
    if (stride < 0) throw Error(fmt::format("window plan: negative stride {}", stride));
    if (flank < 0) throw Error(fmt::format("window plan: negative flank {}", flank));
    if (window > 0 && stride > window)
        throw Error(fmt::format("window plan: stride {} is larger than the window {}, which would leave bases "
                                "uncovered",
                                stride, window));

    // Written to avoid overflow when flank is huge ("as much context as there is").
    const int64_t ext_beg = flank >= beg ? 0 : beg - flank;
    const int64_t ext_end = flank >= contig_len - end ? contig_len : end + flank;
    if (window == 0 || ext_end - ext_beg <= window) return {Window{ext_beg, ext_end, beg, end}};

    if (stride == 0) stride = std::max<int64_t>(1, window / 2);
    std::vector<int64_t> starts;
    for (int64_t start = ext_beg;; start += stride) {
        if (start + window >= ext_end) {
            // Shifted back so that every window has length W; it is still after the previous start,
            // since that one ended before ext_end.
            starts.push_back(ext_end - window);
            break;
        }
        starts.push_back(start);
    }

    // Centrality of base x in window [b, b+W) is min(x-b, b+W-1-x) = (W-1)/2 - |x - m| with the centre
    // m = b + (W-1)/2, so the most central window is the one with the nearest centre. Centres increase with
    // the starts, so window i beats window i+1 exactly for x <= (m_i + m_{i+1})/2, and ownership changes at
    // split_i = floor((b_i + b_{i+1} + W - 1) / 2) + 1 (ties, at the exact midpoint, stay with window i).
    std::vector<Window> windows;
    int64_t own_beg = beg;
    for (size_t i = 0; i < starts.size() && own_beg < end; ++i) {
        const int64_t split = i + 1 < starts.size() ? (starts[i] + starts[i + 1] + window - 1) / 2 + 1
                                                    : std::numeric_limits<int64_t>::max();
        const int64_t own_end = std::min(end, split);
        if (own_end > own_beg) {
            windows.push_back(Window{starts[i], starts[i] + window, own_beg, own_end});
            own_beg = own_end;
        }
    }
    return windows;
}

std::vector<PositionWindow> plan_windows_for_positions(const std::vector<int64_t>& sorted_positions,
                                                       int64_t contig_len, int64_t window, int64_t flank) {
    if (window <= 0) throw Error(fmt::format("window plan: the window must be positive, not {}", window));
    if (flank < 0) throw Error(fmt::format("window plan: negative flank {}", flank));
    if (contig_len <= 0) throw Error(fmt::format("window plan: empty contig (length {})", contig_len));
    for (size_t i = 0; i < sorted_positions.size(); ++i) {
        const int64_t pos = sorted_positions[i];
        if (pos < 0 || pos >= contig_len)
            throw Error(fmt::format("window plan: position {} is outside the contig [0, {})", pos, contig_len));
        if (i > 0 && pos < sorted_positions[i - 1])
            throw Error(fmt::format("window plan: positions are not sorted ({} after {})", pos, sorted_positions[i - 1]));
    }

    const int64_t length = std::min(window, contig_len);
    // A flank wider than half the window could never be met, not even by the position the window is
    // centred on.
    const int64_t min_context = std::min(flank, (length - 1) / 2);
    std::vector<PositionWindow> windows;
    size_t i = 0;
    while (i < sorted_positions.size()) {
        const int64_t first_pos = sorted_positions[i];
        const int64_t wbeg = std::max<int64_t>(0, std::min(first_pos - window / 2, contig_len - length));
        const int64_t wend = wbeg + length;
        size_t j = i;
        // Positions only increase, so the context before them only grows: once one has too little context
        // after it, so do all that follow.
        while (j < sorted_positions.size()) {
            const int64_t pos = sorted_positions[j];
            const bool enough_before = pos - wbeg >= min_context || wbeg == 0;
            const bool enough_after = wend - 1 - pos >= min_context || wend == contig_len;
            if (pos >= wend || !enough_before || !enough_after) break;
            ++j;
        }
        windows.push_back(PositionWindow{wbeg, wend, i, j});
        i = j;
    }
    return windows;
}

} // namespace janusdna
