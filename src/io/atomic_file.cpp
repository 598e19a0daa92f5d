#include "janusdna/atomic_file.h"

#include "janusdna/error.h"
#include "janusdna/interrupt.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace janusdna {
namespace {

// Names the target in messages: "-" means nothing to a user reading an error.
std::string display_name(const std::string& path) { return path == "-" ? "standard output" : path; }

Error sys_error(const std::string& path, const std::string& what, int err) {
    return Error(display_name(path) + ": " + what + ": " + std::strerror(err));
}

// The process umask without changing it: umask() can only be read by setting it, and setting it even briefly
// would let another thread create a world-writable file, so ask /proc first (Linux >= 4.7).
mode_t current_umask() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("Umask:", 0) == 0) return static_cast<mode_t>(std::strtoul(line.c_str() + 6, nullptr, 8));
    }
    mode_t mask = umask(022);
    umask(mask);
    return mask;
}

} // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
    if (path_ == "-") {
        stream_ = stdout;
        is_stdout_ = true;
        return;
    }
    if (path_.empty()) throw Error("empty output file name");
    // Same directory as the target, so the final rename() is atomic (no cross-device copy).
    std::string tmpl = path_ + ".tmp.XXXXXX";
    int fd = mkstemp(tmpl.data());
    if (fd < 0) throw sys_error(path_, "cannot create temporary file " + tmpl, errno);
    temp_path_ = tmpl;
    track_temp_file(temp_path_);
    stream_ = fdopen(fd, "wb");
    if (!stream_) {
        int err = errno;
        close(fd);
        unlink(temp_path_.c_str());
        throw sys_error(path_, "cannot open temporary file " + temp_path_, err);
    }
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)), temp_path_(std::move(other.temp_path_)), stream_(other.stream_),
      is_stdout_(other.is_stdout_), done_(other.done_) {
    other.stream_ = nullptr;
    other.done_ = true; // the moved-from object owns nothing
}

AtomicFile& AtomicFile::operator=(AtomicFile&& other) noexcept {
    if (this != &other) {
        release();
        path_ = std::move(other.path_);
        temp_path_ = std::move(other.temp_path_);
        stream_ = other.stream_;
        is_stdout_ = other.is_stdout_;
        done_ = other.done_;
        other.stream_ = nullptr;
        other.done_ = true;
    }
    return *this;
}

AtomicFile::~AtomicFile() { release(); }

void AtomicFile::release() noexcept {
    if (done_ || is_stdout_) return; // stdout is not ours to close
    if (stream_) fclose(stream_);
    stream_ = nullptr;
    if (!temp_path_.empty()) {
        unlink(temp_path_.c_str());
        untrack_temp_file(temp_path_);
    }
    done_ = true;
}

void AtomicFile::write(const void* data, size_t n) {
    if (!stream_) throw Error(display_name(path_) + ": write after commit");
    if (n == 0) return;
    errno = 0;
    if (fwrite(data, 1, n, stream_) != n) {
        // errno comes from the failed write(2); fall back to EIO should stdio not have set it.
        throw sys_error(path_, "write failed", errno ? errno : EIO);
    }
}

void AtomicFile::write(std::string_view text) { write(text.data(), text.size()); }

void AtomicFile::commit() {
    if (!stream_) throw Error(display_name(path_) + ": commit called twice");
    if (is_stdout_) {
        // Earlier buffered writes may have failed silently (fprintf through stream()): ferror catches those.
        errno = 0;
        bool failed = fflush(stdout) != 0 || ferror(stdout);
        if (failed) throw sys_error(path_, "write failed", errno ? errno : EIO);
        stream_ = nullptr; // a second commit is a bug, as for files
        return;
    }
    FILE* stream = stream_;
    int fd = fileno(stream);
    errno = 0;
    if (fflush(stream) != 0 || ferror(stream)) throw sys_error(path_, "write failed", errno ? errno : EIO);
    // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
    if (fsync(fd) != 0) throw sys_error(path_, "cannot sync", errno);
    mode_t mode = 0666 & ~current_umask();
    if (fchmod(fd, mode) != 0) throw sys_error(path_, "cannot set permissions", errno);
    // fclose can report deferred write errors (e.g. NFS); the stream is gone either way.
    stream_ = nullptr;
    if (fclose(stream) != 0) throw sys_error(path_, "write failed", errno);
    if (rename(temp_path_.c_str(), path_.c_str()) != 0) throw sys_error(path_, "cannot rename " + temp_path_, errno);
    untrack_temp_file(temp_path_);
    done_ = true;
}

} // namespace janusdna
