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

namespace {

// The grid of a contig: L = min(window, len) and n windows starting at min(k S, len - L).
struct Grid {
    int64_t len, L, S, n;
    Grid(int64_t contig_len, int64_t window, int64_t stride) : len(contig_len), S(stride) {
        if (contig_len < 1) throw Error(fmt::format("window plan: empty contig (length {})", contig_len));
        if (window < 2) throw Error(fmt::format("window plan: the window must be at least 2, not {}", window));
        if (stride < 1) throw Error(fmt::format("window plan: the stride must be positive, not {}", stride));
        if (stride > window)
            throw Error(fmt::format("window plan: stride {} is larger than the window {}, which would leave bases "
                                    "uncovered", stride, window));
        L = std::min(window, contig_len);
        n = len <= L ? 1 : (len - L + S - 1) / S + 1; // starts 0, S, ..., the first k S with k S + L >= len shifted back
    }
    int64_t start(int64_t k) const { return std::min(k * S, len - L); }
    // First base owned by window k + 1 (see plan_windows for the midpoint rule); len for the last window.
    int64_t split(int64_t k) const { return k + 1 < n ? (start(k) + start(k + 1) + L - 1) / 2 + 1 : len; }
    int64_t split_before(int64_t k) const { return k == 0 ? 0 : split(k - 1); }
    int64_t owner(int64_t x) const {
        int64_t k = std::clamp<int64_t>(x / S - 1, 0, n - 1);
        while (k > 0 && x < split_before(k)) --k;
        while (x >= split(k)) ++k;
        return k;
    }
    Window window(int64_t k) const { return Window{start(k), start(k) + L, split_before(k), split(k)}; }
};

} // namespace

std::vector<Window> plan_grid(int64_t beg, int64_t end, int64_t contig_len, int64_t window, int64_t stride) {
    if (beg >= end) throw Error(fmt::format("window plan: empty region [{}, {})", beg, end));
    if (beg < 0 || end > contig_len)
        throw Error(fmt::format("window plan: region [{}, {}) is outside the contig [0, {})", beg, end, contig_len));
    const Grid g(contig_len, window, stride);
    std::vector<Window> windows;
    for (int64_t k = g.owner(beg); k < g.n; ++k) {
        Window w = g.window(k);
        if (w.own_beg >= end) break;
        if (w.own_beg >= w.own_end) continue; // a window owning nothing (cannot happen with stride <= window)
        w.own_beg = std::max(w.own_beg, beg);
        w.own_end = std::min(w.own_end, end);
        windows.push_back(w);
    }
    return windows;
}

Window grid_window(int64_t pos, int64_t contig_len, int64_t window, int64_t stride) {
    const Grid g(contig_len, window, stride);
    if (pos < 0 || pos >= contig_len)
        throw Error(fmt::format("window plan: position {} is outside the contig [0, {})", pos, contig_len));
    return g.window(g.owner(pos));
}

} // namespace janusdna
