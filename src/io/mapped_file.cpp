#include "janusdna/mapped_file.h"
#include "janusdna/error.h"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace janusdna {

MappedFile::State::~State() {
    if (map) munmap(map, size);
}

MappedFile MappedFile::open(const std::string& path) {
    MappedFile f;
    f.state_ = std::make_unique<State>();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        throw Error(fmt::format("{}: cannot stat: {}", path, std::strerror(err)));
    }
    // A pipe or directory cannot be mapped; say so instead of reporting a confusing mmap error.
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        throw Error(fmt::format("{}: not a regular file", path));
    }
    const size_t size = static_cast<size_t>(st.st_size);
    if (size > 0) { // mmap rejects length 0
        void* map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int err = errno;
            close(fd);
            throw Error(fmt::format("{}: cannot map: {}", path, std::strerror(err)));
        }
        f.state_->map = map;
        f.state_->data = static_cast<const char*>(map);
        f.state_->size = size;
    }
    close(fd); // the mapping keeps the file alive
    return f;
}

void MappedFile::release(const void* p, size_t n) const {
    if (!state_ || !state_->map || n == 0) return;
    static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t beg = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
    const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
    const uintptr_t map_beg = reinterpret_cast<uintptr_t>(state_->map), map_end = map_beg + state_->size;
    if (beg < end && beg >= map_beg && end <= map_end) madvise(reinterpret_cast<void*>(beg), end - beg, MADV_DONTNEED);
}

MappedFile MappedFile::from_bytes(std::string bytes) {
    MappedFile f;
    f.state_ = std::make_unique<State>();
    f.state_->owned = std::move(bytes);
    f.state_->data = f.state_->owned.data();
    f.state_->size = f.state_->owned.size();
    return f;
}

} // namespace janusdna
