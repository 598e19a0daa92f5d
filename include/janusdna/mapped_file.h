// Read-only bytes of a file, memory-mapped, or of an in-memory buffer: what the model-file readers (safetensors,
// zip archives) parse. Move-only; the bytes stay at the same address for the object's lifetime.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace janusdna {

class MappedFile {
public:
    // Maps `path` read-only. Throws janusdna::Error naming the file when it cannot be opened, is not a regular
    // file (a pipe or a directory) or cannot be mapped. An empty file gives an empty view.
    static MappedFile open(const std::string& path);
    // Holds `bytes` in memory instead (tests, fuzzing).
    static MappedFile from_bytes(std::string bytes);

    MappedFile() = default;
    MappedFile(MappedFile&&) noexcept = default;
    MappedFile& operator=(MappedFile&&) noexcept = default;

    std::string_view bytes() const { return state_ ? std::string_view(state_->data, state_->size) : std::string_view(); }
    // Tells the kernel that the whole pages inside [p, p + n) of a mapping are not needed for now: they leave the
    // resident set and are read from the file again if touched. For a reader that has copied a tensor out, so that
    // loading a model does not hold the file and the weights in memory together. A no-op for in-memory bytes.
    void release(const void* p, size_t n) const;

private:
    struct State {
        const char* data = nullptr;
        size_t size = 0;
        void* map = nullptr; // set when the bytes are an mmap of the file
        std::string owned;   // set for from_bytes
        State() = default;
        State(const State&) = delete;
        State& operator=(const State&) = delete;
        ~State();
    };
    std::unique_ptr<State> state_; // heap-held so views stay valid when the object moves
};

} // namespace janusdna
