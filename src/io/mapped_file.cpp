#include "janusdna/mapped_file.h"
#include "janusdna/error.h"

#include <cerrno>
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

MappedFile MappedFile::from_bytes(std::string bytes) {
    MappedFile f;
    f.state_ = std::make_unique<State>();
    f.state_->owned = std::move(bytes);
    f.state_->data = f.state_->owned.data();
    f.state_->size = f.state_->owned.size();
    return f;
}

} // namespace janusdna
