// Reader of zip archives as torch.save writes them (a checkpoint "ARCHIVE/data.pkl" plus one entry per storage,
// "ARCHIVE/data/N"), torch-free. Stored entries are handed out in place, without a copy (torch aligns them to 64
// bytes, so a 10 GB checkpoint is read through the page cache); deflated entries are inflated with zlib. Zip64
// archives (over 4 GiB or 65,535 entries) are read too.
//
// Archives come from users: every offset and size is checked against the file, every entry's CRC-32 when it is
// first read, and any defect is a janusdna::Error naming the archive and the entry.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "janusdna/mapped_file.h"

namespace janusdna {

class ZipArchive {
public:
    struct Entry {
        std::string name;
        uint16_t method = 0;          // 0 stored, 8 deflated
        uint32_t crc32 = 0;
        uint64_t compressed_size = 0;
        uint64_t size = 0;            // uncompressed
        uint64_t data_offset = 0;     // of the (compressed) data in the archive, past the local header
    };

    // Maps and indexes the archive; throws janusdna::Error when it is not a zip archive or its directory is
    // damaged. `label` names the archive in errors (defaults to the path).
    static ZipArchive open(const std::string& path);
    static ZipArchive from_bytes(std::string bytes, std::string label);

    // True when `bytes` starts like a zip archive (a local file header or an empty archive).
    static bool looks_like_zip(std::string_view bytes);

    const std::vector<Entry>& entries() const { return entries_; }
    const Entry* find(const std::string& name) const;   // nullptr when absent
    // The entry's uncompressed bytes, valid for the archive's lifetime: in place for a stored entry, inflated once
    // (and kept) for a deflated one. The CRC-32 is checked on first access.
    std::string_view contents(const Entry& entry) const;
    const std::string& label() const { return label_; }

private:
    void index();

    std::string label_;
    MappedFile file_;
    std::vector<Entry> entries_;                       // in directory order
    std::map<std::string, size_t> by_name_;
    mutable std::map<std::string, std::unique_ptr<std::string>> inflated_;
    mutable std::vector<bool> checked_;                // CRC verified
};

} // namespace janusdna
