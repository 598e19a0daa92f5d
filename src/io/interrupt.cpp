#include "janusdna/interrupt.h"

#include "janusdna/error.h"

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>
#include <unistd.h>

namespace janusdna {
namespace {

// A fixed table the handler can walk without allocating: a slot is free (0), being written (1) or live (2).
constexpr int kSlots = 64;
constexpr size_t kPathMax = 4096;
struct Slot {
    std::atomic<int> state{0};
    char path[kPathMax];
};
Slot g_slots[kSlots];
std::mutex g_mutex;  // serialises the writers; the handler only reads live slots

char g_label[256] = "janusdna";
char g_hint[2048] = "";
std::atomic<bool> g_hint_set{false};

void write_str(const char* s) {
    size_t n = std::strlen(s);
    while (n > 0) {
        const ssize_t w = ::write(STDERR_FILENO, s, n);
        if (w <= 0) return;
        s += w;
        n -= static_cast<size_t>(w);
    }
}

void unlink_with_indexes(const char* path) {
    ::unlink(path);
    char buf[kPathMax + 8];
    const size_t n = std::strlen(path);
    if (n + 5 > sizeof buf) return;
    for (const char* ext : {".tbi", ".csi"}) {
        std::memcpy(buf, path, n);
        std::memcpy(buf + n, ext, 5);
        ::unlink(buf);
    }
}

extern "C" void on_signal(int sig) {
    for (Slot& s : g_slots)
        if (s.state.load(std::memory_order_acquire) == 2) unlink_with_indexes(s.path);
    write_str(g_label);
    write_str(sig == SIGINT ? ": interrupted (SIGINT)" : sig == SIGTERM ? ": terminated (SIGTERM)" : ": hung up (SIGHUP)");
    write_str("; no output was written");
    if (g_hint_set.load(std::memory_order_acquire) && g_hint[0]) {
        write_str("; ");
        write_str(g_hint);
    }
    write_str("\n");
    ::_exit(128 + sig);
}

void copy_bounded(char* dst, size_t cap, const std::string& src) {
    const size_t n = std::min(cap - 1, src.size());
    std::memcpy(dst, src.data(), n);
    dst[n] = 0;
}

} // namespace

void install_interrupt_cleanup(const std::string& label) {
    copy_bounded(g_label, sizeof g_label, label);
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sa.sa_mask, sig);  // one handler run at a time
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        struct sigaction old {};
        sigaction(sig, nullptr, &old);
        if (old.sa_handler == SIG_IGN) continue;  // nohup / background jobs keep ignoring it
        sigaction(sig, &sa, nullptr);
    }
}

void track_temp_file(const std::string& path) {
    if (path.empty()) return;
    if (path.size() >= kPathMax) throw Error(path + ": output path too long");
    std::lock_guard<std::mutex> lock(g_mutex);
    for (Slot& s : g_slots) {
        if (s.state.load(std::memory_order_relaxed) != 0) continue;
        s.state.store(1, std::memory_order_relaxed);
        copy_bounded(s.path, kPathMax, path);
        s.state.store(2, std::memory_order_release);
        return;
    }
    throw Error(path + ": more than 64 outputs open at once");
}

void untrack_temp_file(const std::string& path) {
    if (path.empty()) return;
    std::lock_guard<std::mutex> lock(g_mutex);
    for (Slot& s : g_slots) {
        if (s.state.load(std::memory_order_relaxed) == 2 && path == s.path) {
            s.state.store(0, std::memory_order_release);
            return;
        }
    }
}

void set_interrupt_hint(const std::string& hint) {
    g_hint_set.store(false, std::memory_order_release);
    copy_bounded(g_hint, sizeof g_hint, hint);
    g_hint_set.store(true, std::memory_order_release);
}

} // namespace janusdna
