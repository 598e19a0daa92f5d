#include "janusdna/parallel.h"

#include <ATen/ThreadLocalState.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <vector>

namespace janusdna {
namespace {
std::atomic<int> g_threads{1};
thread_local bool t_in_task = false;

// Marks the current thread as running tasks (so nested calls run serially) and restores the mark on exit.
struct InTask {
    bool outer = t_in_task;
    InTask() { t_in_task = true; }
    ~InTask() { t_in_task = outer; }
};
} // namespace

namespace detail {
void set_parallel_threads(int n) { g_threads.store(std::max(1, n)); }
} // namespace detail

int parallel_threads() { return g_threads.load(); }

int parallel_width() { return t_in_task ? 1 : g_threads.load(); }

void parallel_tasks(int64_t n, const std::function<void(int64_t)>& fn) {
    if (n <= 0) return;
    const int64_t width = std::min<int64_t>(parallel_width(), n);
    if (width <= 1) {
        InTask in_task; // tasks are single-threaded inside, whichever thread runs them
        for (int64_t i = 0; i < n; ++i) fn(i);
        return;
    }
    std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
    std::atomic<int64_t> next{width}; // tasks 0 .. width-1 go to threads 0 .. width-1 (0: the caller)
    const at::ThreadLocalState state; // grad/inference mode etc. of the caller
    auto worker = [&](int64_t first) {
        at::ThreadLocalStateGuard guard(state);
        InTask in_task;
        // The first task is fixed, so with n <= width the task-to-thread mapping never depends on timing; the
        // rest are handed out as threads come free (uneven tasks stay balanced).
        for (int64_t i = first; i < n; i = next.fetch_add(1)) {
            try {
                fn(i);
            } catch (...) {
                errors[static_cast<size_t>(i)] = std::current_exception();
            }
        }
    };
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(width - 1));
    for (int64_t t = 1; t < width; ++t) threads.emplace_back(worker, t);
    worker(0); // the caller works too
    for (auto& t : threads) t.join();
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
}

void parallel_for(int64_t begin, int64_t end, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
    if (end <= begin) return;
    const int64_t n = end - begin;
    const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(parallel_width(), n / std::max<int64_t>(1, grain)));
    const int64_t step = (n + parts - 1) / parts;
    parallel_tasks(parts, [&](int64_t i) {
        const int64_t b = begin + i * step, e = std::min(end, b + step);
        if (b < e) fn(b, e);
    });
}

} // namespace janusdna
