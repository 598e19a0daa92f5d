// An output file that appears under its final name only when complete: data goes to a temporary file in the
// same directory (so rename() cannot cross file systems), commit() syncs it and renames it into place.
// A crash, an exception or a failed write leaves any previous file of that name untouched and no debris.
#pragma once
#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

namespace janusdna {

class AtomicFile {
public:
    // Creates "<path>.tmp.XXXXXX" (mkstemp); "-" means standard output (written directly, no temp file).
    // Throws janusdna::Error naming `path` and the system error when the temporary file cannot be created.
    explicit AtomicFile(std::string path);
    AtomicFile(AtomicFile&& other) noexcept;
    AtomicFile& operator=(AtomicFile&& other) noexcept;
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;
    // Removes the temporary file unless commit() succeeded.
    ~AtomicFile();

    // For code that wants fprintf & co.; errors on it surface at the next write() or at commit().
    FILE* stream() { return stream_; }
    // Throw janusdna::Error naming the final path and the system error (e.g. "No space left on device").
    void write(const void* data, size_t n);
    void write(std::string_view text);
    // Flushes, fsyncs, closes (all checked), sets mode 0666 & ~umask, renames to the final path.
    // For stdout: flushes and checks for write errors. Calling it twice is an error.
    void commit();

    const std::string& path() const { return path_; }
    // Where the data is until commit() (empty for stdout): for checking what was written before committing it.
    const std::string& temp_path() const { return temp_path_; }

private:
    void release() noexcept; // closes and removes the temp file if not committed

    std::string path_;      // final name, or "-"
    std::string temp_path_; // empty for stdout
    FILE* stream_ = nullptr;
    bool is_stdout_ = false;
    bool done_ = false;     // committed (or moved from): nothing to clean up
};

} // namespace janusdna
