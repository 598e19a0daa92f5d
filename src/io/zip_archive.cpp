#include "janusdna/zip_archive.h"
#include "janusdna/error.h"

#include <cstring>
#include <fmt/format.h>
#include <zlib.h>

namespace janusdna {

namespace {

constexpr uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50, kEndOfDirectory = 0x06054b50,
                   kZip64End = 0x06064b50, kZip64Locator = 0x07064b50;

// Little-endian reads, bounds-checked against the whole archive.
struct Cursor {
    std::string_view bytes;
    const std::string& label;
    uint64_t pos;

    void need(uint64_t n, const char* what) const {
        if (pos > bytes.size() || n > bytes.size() - pos)
            throw Error(fmt::format("{}: not a valid zip archive: {} runs past the end of the file", label, what));
    }
    uint64_t uint(int n, const char* what) {
        need(static_cast<uint64_t>(n), what);
        uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[pos + static_cast<uint64_t>(i)]);
        pos += static_cast<uint64_t>(n);
        return v;
    }
    std::string_view take(uint64_t n, const char* what) {
        need(n, what);
        std::string_view s = bytes.substr(pos, n);
        pos += n;
        return s;
    }
};

std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 200)) out += (c >= 32 && c < 127) ? c : '?';
    return out;
}

} // namespace

bool ZipArchive::looks_like_zip(std::string_view b) {
    return b.size() >= 4 && b[0] == 'P' && b[1] == 'K' &&
           ((b[2] == 3 && b[3] == 4) || (b[2] == 5 && b[3] == 6));
}

ZipArchive ZipArchive::open(const std::string& path) {
    ZipArchive z;
    z.label_ = path;
    z.file_ = MappedFile::open(path);
    z.index();
    return z;
}

ZipArchive ZipArchive::from_bytes(std::string bytes, std::string label) {
    ZipArchive z;
    z.label_ = std::move(label);
    z.file_ = MappedFile::from_bytes(std::move(bytes));
    z.index();
    return z;
}

void ZipArchive::index() {
    const std::string_view b = file_.bytes();
    auto fail = [&](const std::string& what) {
        throw Error(fmt::format("{}: not a valid zip archive: {}", label_, what));
    };
    // The end-of-directory record is the last 22 bytes plus a comment of at most 65,535 bytes.
    if (b.size() < 22) fail("too short");
    uint64_t eocd = b.size();
    const uint64_t lowest = b.size() >= 22 + 65535 ? b.size() - 22 - 65535 : 0;
    for (uint64_t p = b.size() - 22 + 1; p-- > lowest;) {
        Cursor c{b, label_, p};
        if (c.uint(4, "end of directory") == kEndOfDirectory) {
            eocd = p;
            break;
        }
    }
    if (eocd == b.size()) fail("no end-of-directory record");
    Cursor c{b, label_, eocd + 4};
    const uint64_t disk = c.uint(2, "end of directory"), cd_disk = c.uint(2, "end of directory");
    c.uint(2, "end of directory");
    uint64_t count = c.uint(2, "end of directory");
    uint64_t cd_size = c.uint(4, "end of directory"), cd_offset = c.uint(4, "end of directory");
    if (disk != 0 || cd_disk != 0) fail("multi-part archives are not supported");
    if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
        // Zip64: the locator sits just before the end-of-directory record.
        if (eocd < 20) fail("zip64 locator missing");
        Cursor l{b, label_, eocd - 20};
        if (l.uint(4, "zip64 locator") != kZip64Locator) fail("zip64 locator missing");
        l.uint(4, "zip64 locator");
        Cursor z{b, label_, l.uint(8, "zip64 locator")};
        if (z.uint(4, "zip64 end of directory") != kZip64End) fail("zip64 end-of-directory record missing");
        z.uint(8, "zip64 end of directory");
        z.uint(4, "zip64 end of directory");
        z.uint(4, "zip64 end of directory");
        z.uint(8, "zip64 end of directory");
        count = z.uint(8, "zip64 end of directory");
        cd_size = z.uint(8, "zip64 end of directory");
        cd_offset = z.uint(8, "zip64 end of directory");
    }
    if (cd_offset > b.size() || cd_size > b.size() - cd_offset) fail("the central directory lies outside the file");
    // Each directory record takes at least 46 bytes: a count beyond that is a lie, not a reason to allocate.
    if (count > cd_size / 46) fail(fmt::format("{} entries cannot fit a central directory of {} bytes", count, cd_size));
    entries_.reserve(count);
    Cursor d{b.substr(0, cd_offset + cd_size), label_, cd_offset};
    for (uint64_t i = 0; i < count; ++i) {
        if (d.uint(4, "central directory") != kCentralHeader) fail(fmt::format("central directory record {} is damaged", i));
        Entry e;
        d.uint(2, "central directory");
        d.uint(2, "central directory");
        const uint64_t flags = d.uint(2, "central directory");
        e.method = static_cast<uint16_t>(d.uint(2, "central directory"));
        d.uint(4, "central directory");
        e.crc32 = static_cast<uint32_t>(d.uint(4, "central directory"));
        e.compressed_size = d.uint(4, "central directory");
        e.size = d.uint(4, "central directory");
        const uint64_t name_len = d.uint(2, "central directory"), extra_len = d.uint(2, "central directory"),
                       comment_len = d.uint(2, "central directory");
        d.uint(2, "central directory");
        d.uint(2, "central directory");
        d.uint(4, "central directory");
        uint64_t local = d.uint(4, "central directory");
        e.name = std::string(d.take(name_len, "an entry name"));
        Cursor x{d.take(extra_len, "an extra field"), label_, 0};
        while (x.pos + 4 <= x.bytes.size()) {
            const uint64_t id = x.uint(2, "an extra field"), len = x.uint(2, "an extra field");
            Cursor f{x.take(len, "an extra field"), label_, 0};
            if (id != 0x0001) continue; // zip64 sizes, each present only when its 32-bit field is saturated
            if (e.size == 0xFFFFFFFF) e.size = f.uint(8, "a zip64 field");
            if (e.compressed_size == 0xFFFFFFFF) e.compressed_size = f.uint(8, "a zip64 field");
            if (local == 0xFFFFFFFF) local = f.uint(8, "a zip64 field");
        }
        d.take(comment_len, "an entry comment");
        if (flags & 1) fail(fmt::format("entry \"{}\" is encrypted", printable(e.name)));
        if (e.method != 0 && e.method != 8)
            fail(fmt::format("entry \"{}\" uses compression method {} (only stored and deflated are read)",
                             printable(e.name), e.method));
        if (e.method == 0 && e.compressed_size != e.size)
            fail(fmt::format("entry \"{}\" is stored with two different sizes", printable(e.name)));
        Cursor h{b, label_, local};
        if (h.uint(4, "a local header") != kLocalHeader) fail(fmt::format("entry \"{}\" has no local header", printable(e.name)));
        h.pos += 22;
        const uint64_t local_name = h.uint(2, "a local header"), local_extra = h.uint(2, "a local header");
        h.take(local_name, "a local header");
        h.take(local_extra, "a local header");
        e.data_offset = h.pos;
        if (e.data_offset > b.size() || e.compressed_size > b.size() - e.data_offset)
            fail(fmt::format("entry \"{}\" ({} bytes) runs past the end of the file", printable(e.name), e.compressed_size));
        if (!by_name_.emplace(e.name, entries_.size()).second)
            fail(fmt::format("entry \"{}\" appears twice", printable(e.name)));
        entries_.push_back(std::move(e));
    }
    checked_.assign(entries_.size(), false);
}

const ZipArchive::Entry* ZipArchive::find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &entries_[it->second];
}

std::string_view ZipArchive::contents(const Entry& e) const {
    const size_t index = static_cast<size_t>(&e - entries_.data());
    if (index >= entries_.size()) throw Error(fmt::format("{}: entry \"{}\" is not of this archive", label_, e.name));
    const std::string_view raw = file_.bytes().substr(e.data_offset, e.compressed_size);
    std::string_view out = raw;
    if (e.method == 8) {
        auto& slot = inflated_[e.name];
        if (!slot) {
            // A deflated stream expands at most ~1032x; a larger claim is damage, not a reason to allocate.
            if (e.size / 1032 > e.compressed_size + 1)
                throw Error(fmt::format("{}: entry \"{}\": implausible size {}", label_, printable(e.name), e.size));
            auto buf = std::make_unique<std::string>(e.size, '\0');
            z_stream zs{};
            if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw Error(fmt::format("{}: zlib failed to start", label_));
            uint64_t in_done = 0, out_done = 0;
            int rc = Z_OK;
            while (rc == Z_OK) {
                const uInt in_chunk = static_cast<uInt>(std::min<uint64_t>(raw.size() - in_done, 1u << 30));
                const uInt out_chunk = static_cast<uInt>(std::min<uint64_t>(e.size - out_done, 1u << 30));
                zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data() + in_done));
                zs.avail_in = in_chunk;
                zs.next_out = reinterpret_cast<Bytef*>(buf->data() + out_done);
                zs.avail_out = out_chunk;
                rc = inflate(&zs, Z_NO_FLUSH);
                in_done += in_chunk - zs.avail_in;
                out_done += out_chunk - zs.avail_out;
                if (rc == Z_OK && zs.avail_in == in_chunk && zs.avail_out == out_chunk) rc = Z_BUF_ERROR; // no progress
            }
            inflateEnd(&zs);
            if (rc != Z_STREAM_END || out_done != e.size)
                throw Error(fmt::format("{}: entry \"{}\": damaged deflate data", label_, printable(e.name)));
            slot = std::move(buf);
        }
        out = *slot;
    }
    if (!checked_[index]) {
        uLong crc = crc32(0L, Z_NULL, 0);
        for (uint64_t done = 0; done < out.size();) {
            const uInt n = static_cast<uInt>(std::min<uint64_t>(out.size() - done, 1u << 30));
            crc = crc32(crc, reinterpret_cast<const Bytef*>(out.data() + done), n);
            done += n;
        }
        if (static_cast<uint32_t>(crc) != e.crc32)
            throw Error(fmt::format("{}: entry \"{}\": CRC-32 mismatch (the file is damaged)", label_, printable(e.name)));
        checked_[index] = true;
    }
    return out;
}

} // namespace janusdna
