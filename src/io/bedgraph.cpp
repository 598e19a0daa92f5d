// bedGraph and bigWig track writers; see include/janusdna/bedgraph.h.
#include "janusdna/bedgraph.h"
#include "janusdna/strings.h"

#include "janusdna/error.h"
#include "janusdna/interrupt.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>
#include <htslib/bgzf.h>
#include <htslib/tbx.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef JANUSDNA_HAVE_BIGWIG
#define NOCURL 1
extern "C" {
#include <bigWig.h>
}
#endif

namespace janusdna {


bool bigwig_supported() {
#ifdef JANUSDNA_HAVE_BIGWIG
    return true;
#else
    return false;
#endif
}

TrackFormat track_format(const std::string& opt, const std::string& path) {
    if (opt == "bedgraph" || opt == "v") return TrackFormat::BedGraph;
    if (opt == "bedgraph.gz" || opt == "z") return TrackFormat::BedGraphGz;
    if (opt == "bigwig" || opt == "bw") return TrackFormat::BigWig;
    if (!opt.empty()) throw Error(fmt::format("unknown track format -O {} (use bedgraph.gz or z, bedgraph or v, bigwig or bw)", opt));
    if (ends_with(path, ".bw") || ends_with(path, ".bigwig") || ends_with(path, ".bigWig")) return TrackFormat::BigWig;
    if (path.empty() || ends_with(path, ".gz") || ends_with(path, ".bgz")) return TrackFormat::BedGraphGz;
    return TrackFormat::BedGraph;  // stdout, .bedgraph, .bed, no suffix: text, as bcftools writes uncompressed VCF
}

struct TrackWriter::Impl {
    std::string path, tmp;
    TrackFormat format;
    bool is_stdout = false, done = false, index = false;
    BGZF* bgzf = nullptr;
    FILE* plain = nullptr;
    std::string buf;
#ifdef JANUSDNA_HAVE_BIGWIG
    bigWigFile_t* bw = nullptr;
    std::string run_contig;
    int64_t run_beg = -1;
    std::vector<float> run;
    void flush_run() {
        if (run.empty()) return;
        if (bwAddIntervalSpanSteps(bw, run_contig.c_str(), static_cast<uint32_t>(run_beg), 1, 1, run.data(),
                                   static_cast<uint32_t>(run.size())))
            throw Error(fmt::format("{}: cannot write bigWig intervals ({}:{})", path, run_contig, run_beg + 1));
        run.clear();
    }
#endif
    void cleanup() noexcept {
        if (bgzf) { bgzf_close(bgzf); bgzf = nullptr; }
        if (plain && plain != stdout) { std::fclose(plain); plain = nullptr; }
#ifdef JANUSDNA_HAVE_BIGWIG
        if (bw) { bwClose(bw); bw = nullptr; }
#endif
        if (!tmp.empty()) { ::unlink(tmp.c_str()); ::unlink((tmp + ".tbi").c_str()); untrack_temp_file(tmp); }
    }
    void write(const std::string& s) {
        if (bgzf) { if (bgzf_write(bgzf, s.data(), s.size()) < 0) throw Error(fmt::format("{}: write failed", path)); }
        else if (std::fwrite(s.data(), 1, s.size(), plain) != s.size())
            throw Error(fmt::format("{}: write failed: {}", path, std::strerror(errno)));
    }
};

TrackWriter::TrackWriter(const std::string& path, TrackFormat format, const std::vector<std::string>& contigs,
                         const std::vector<int64_t>& lengths, const std::string& comment, bool write_index)
    : impl_(std::make_unique<Impl>()) {
    Impl& d = *impl_;
    d.path = path; d.format = format; d.is_stdout = path == "-"; d.index = write_index;
    if (write_index && d.is_stdout) throw Error("-W/--write-index needs an output file (-o FILE)");
    if (write_index && format != TrackFormat::BedGraphGz)
        throw Error(fmt::format("{}: -W/--write-index needs bgzipped bedGraph output (-O z); bigWig carries its own index", path));
    if (format == TrackFormat::BigWig && !bigwig_supported())
        throw Error("bigWig output is not available: this janusdna was built without libBigWig (Debian libbigwig-dev)");
    if (format == TrackFormat::BigWig && d.is_stdout) throw Error("bigWig output needs a file name (-o FILE.bw)");
    std::string name = path;
    if (!d.is_stdout) {
        std::string templ = path + ".tmp.XXXXXX";
        int fd = mkstemp(templ.data());
        if (fd < 0) throw Error(fmt::format("{}: cannot create the output file: {}", path, std::strerror(errno)));
        ::close(fd);
        d.tmp = name = templ;
        track_temp_file(d.tmp);
    }
    if (format == TrackFormat::BedGraphGz) {
        d.bgzf = bgzf_open(name.c_str(), "w");
        if (!d.bgzf) { d.cleanup(); throw Error(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno))); }
    } else if (format == TrackFormat::BedGraph) {
        d.plain = d.is_stdout ? stdout : std::fopen(name.c_str(), "w");
        if (!d.plain) { d.cleanup(); throw Error(fmt::format("{}: cannot open for writing: {}", path, std::strerror(errno))); }
    } else {
#ifdef JANUSDNA_HAVE_BIGWIG
        if (bwInit(1 << 17) != 0) { d.cleanup(); throw Error("cannot initialise libBigWig"); }
        d.bw = bwOpen(name.c_str(), nullptr, "w");
        if (!d.bw) { d.cleanup(); throw Error(fmt::format("{}: cannot open for writing", path)); }
        std::vector<const char*> names;
        std::vector<uint32_t> lens;
        for (size_t i = 0; i < contigs.size(); ++i) { names.push_back(contigs[i].c_str()); lens.push_back(static_cast<uint32_t>(lengths[i])); }
        if (bwCreateHdr(d.bw, 10) || !(d.bw->cl = bwCreateChromList(names.data(), lens.data(), static_cast<int64_t>(names.size()))) ||
            bwWriteHdr(d.bw)) {
            d.cleanup();
            throw Error(fmt::format("{}: cannot write the bigWig header", path));
        }
#endif
        return;
    }
    if (!comment.empty()) d.write(comment);
}

TrackWriter::~TrackWriter() { if (!impl_->done) impl_->cleanup(); }

void TrackWriter::add(const std::string& contig, int64_t pos0, float value) {
    Impl& d = *impl_;
#ifdef JANUSDNA_HAVE_BIGWIG
    if (d.bw) {
        if (!d.run.empty() && (contig != d.run_contig || pos0 != d.run_beg + static_cast<int64_t>(d.run.size()))) d.flush_run();
        if (d.run.empty()) { d.run_contig = contig; d.run_beg = pos0; }
        d.run.push_back(value);
        if (d.run.size() >= (1u << 16)) d.flush_run();
        return;
    }
#endif
    d.buf.clear();
    fmt::format_to(std::back_inserter(d.buf), "{}\t{}\t{}\t{:.6g}\n", contig, pos0, pos0 + 1, value);
    d.write(d.buf);
}

void TrackWriter::commit() {
    Impl& d = *impl_;
    if (d.done) throw Error(fmt::format("{}: committed twice", d.path));
    if (d.bgzf) {
        const int ret = bgzf_close(d.bgzf);
        d.bgzf = nullptr;
        if (ret < 0) { d.cleanup(); throw Error(fmt::format("{}: error writing the output", d.path)); }
        if (d.index && tbx_index_build(d.tmp.c_str(), 0, &tbx_conf_bed) < 0) {
            d.cleanup();
            throw Error(fmt::format("{}: cannot build the tabix index", d.path));
        }
    }
    if (d.plain) {
        const bool bad = d.plain == stdout ? (std::fflush(stdout) != 0 || std::ferror(stdout)) : std::fclose(d.plain) != 0;
        d.plain = nullptr;
        if (bad) { d.cleanup(); throw Error(fmt::format("{}: error writing the output: {}", d.path, std::strerror(errno))); }
    }
#ifdef JANUSDNA_HAVE_BIGWIG
    if (d.bw) {
        try { d.flush_run(); } catch (...) { d.cleanup(); throw; }
        bwClose(d.bw);  // writes the zoom levels and index; libBigWig reports no error here
        d.bw = nullptr;
        bwCleanup();
    }
#endif
    if (!d.is_stdout) {
        mode_t mask = umask(0); umask(mask);
        chmod(d.tmp.c_str(), 0666 & ~mask);
        if (std::rename(d.tmp.c_str(), d.path.c_str()) != 0) {
            d.cleanup();
            throw Error(fmt::format("{}: cannot rename into place: {}", d.path, std::strerror(errno)));
        }
        if (d.index) {  // after the data, so that the index is not older than it
            chmod((d.tmp + ".tbi").c_str(), 0666 & ~mask);
            if (std::rename((d.tmp + ".tbi").c_str(), (d.path + ".tbi").c_str()) != 0) {
                d.cleanup();
                throw Error(fmt::format("{}.tbi: cannot rename into place: {}", d.path, std::strerror(errno)));
            }
        }
    }
    untrack_temp_file(d.tmp);
    d.done = true;
}

} // namespace janusdna
