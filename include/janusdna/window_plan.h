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

// A window for variant scoring: [beg, end) in 0-based contig coordinates, owning the input positions with
// indices [first, last).
struct PositionWindow {
    int64_t beg, end;
    size_t first, last;
};

// Groups sorted 0-based positions of one contig into windows of length L = min(window, contig_len), so
// that every position is scored from a window where it has context on both sides. Greedy, left to right:
// the first position p not yet owned gets the window starting at max(0, min(p - window/2, contig_len - L));
// it and the following positions are owned by that window while each has at least f bases of the window
// before it (or the window starts at the contig start) and at least f bases after it (or the window ends
// at the contig end), with f = min(flank, (L-1)/2) so that p itself always qualifies.
// Returns the windows in order; each position is owned by exactly one window, indices are contiguous.
// Positions may repeat (they are then owned by the same window). Throws Error when window <= 0,
// flank < 0, contig_len <= 0, or the positions are unsorted or outside [0, contig_len).
std::vector<PositionWindow> plan_windows_for_positions(const std::vector<int64_t>& sorted_positions,
                                                       int64_t contig_len, int64_t window, int64_t flank);

} // namespace janusdna
