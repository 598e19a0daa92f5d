// The process-wide switch that makes the ops use their scalar reference kernels (benchmarks compare both).
#include "janusdna/ops.h"

#include <atomic>

namespace janusdna::ops {
namespace {
std::atomic<bool> g_reference{false};
}
void set_reference_kernels(bool on) { g_reference.store(on); }
bool reference_kernels() { return g_reference.load(std::memory_order_relaxed); }
} // namespace janusdna::ops
