// Coarse-grained parallelism: janusdna's own threads over independent work (windows, the two streams, heads),
// each task single-threaded inside. At hidden sizes 32-144 this beats LibTorch's intra-op threading, which splits
// every small op and paid more in synchronisation than it gained (PERFORMANCE.md).
#pragma once
#include <cstdint>
#include <functional>

namespace janusdna {

// Threads parallel_tasks may use (set_compute_threads sets it; LibTorch and OpenBLAS then run one thread each).
int parallel_threads();

// How many tasks would run at once here: 1 inside a task (nested calls run serially), else parallel_threads().
int parallel_width();

// Runs fn(0) .. fn(n-1), spread over up to parallel_width() threads (the caller's thread included); returns when
// all are done. Grad mode, inference mode and LibTorch's other thread-local state are carried to the workers. If
// tasks throw, the exception of the lowest-numbered failing task is rethrown after all have finished.
void parallel_tasks(int64_t n, const std::function<void(int64_t)>& fn);

// Splits [begin, end) into at most parallel_width() contiguous ranges of at least `grain` items and runs
// fn(range_begin, range_end) on each in parallel.
void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

} // namespace janusdna
