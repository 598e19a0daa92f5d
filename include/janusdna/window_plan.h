// The window planner shared by embed, predict, track and score-variants: which windows of the reference the
// model reads, and which bases (or variant positions) each window reports.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace janusdna {

// One model window [beg, end) in 0-based contig coordinates. It reports the region bases [own_beg, own_end)
// (the ones for which it is the most central window); the rest of it is context.
struct Window {
    int64_t beg, end, own_beg, own_end;
};

// Plans the windows for the region [beg, end) of a contig of length contig_len, with window length `window`
// (W), `stride` (S; 0 = max(1, W/2)) and `flank` (F, bases of context wanted on each side of the region).
// - The extended interval is [max(0, beg-F), min(contig_len, end+F)): windows are clipped at the contig
//   ends and never padded.
// - If W == 0 or the extended interval is at most W long, the result is one window: the extended interval,
//   owning the whole region.
// - Otherwise windows of length exactly W (so callers can batch them) start at ext_beg, ext_beg+S, ...; the
//   last is shifted back to end exactly at ext_end.
// - Each region base is owned by the window in which it is most central, i.e. which maximises
//   min(bases before it in the window, bases after it in the window); ties go to the earlier window.
//   The owned intervals are contiguous, in order, and partition [beg, end).
// - Windows that would own no region base (flank-only windows) are left out.
// Returns the windows in contig order. Throws Error when beg >= end, beg < 0, end > contig_len, W < 0,
// S < 0, F < 0, or S > W when W > 0 (bases would be left uncovered).
std::vector<Window> plan_windows(int64_t beg, int64_t end, int64_t contig_len, int64_t window, int64_t stride,
                                 int64_t flank);

// The contig grid: windows of length L = min(window, contig_len) starting at 0, S, 2S, ... (S = stride), the last
// one shifted back to end exactly at the contig end; each contig base is owned by the window in which it is most
// central (ties to the earlier window), as in plan_windows. The grid depends on the contig length, the window and
// the stride only, so every per-base quantity read from it is a function of the position alone, whatever the
// region, the other records, their order or the shard that asked for it. Every owned base has at least
// floor((L - S) / 2) bases of context on each side, unless the contig ends first.
//
// plan_grid returns the grid windows that own bases of [beg, end), in contig order, with own_beg/own_end clipped
// to [beg, end); it equals plan_windows(0, contig_len, contig_len, window, stride, 0) restricted to [beg, end).
// Throws Error when beg >= end, beg < 0, end > contig_len, window < 2, stride < 1 or stride > window.
std::vector<Window> plan_grid(int64_t beg, int64_t end, int64_t contig_len, int64_t window, int64_t stride);

// The grid window that owns contig position pos (with own_beg/own_end its whole owned interval).
// Same errors as plan_grid.
Window grid_window(int64_t pos, int64_t contig_len, int64_t window, int64_t stride);

} // namespace janusdna
