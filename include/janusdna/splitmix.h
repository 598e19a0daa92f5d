// SplitMix64: a counter-based generator, so that any random choice can be made from (seed, counters) without
// replaying earlier ones, identically on every platform (std:: distributions differ between libraries).
#pragma once
#include <cstdint>

namespace janusdna {

inline uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

} // namespace janusdna
