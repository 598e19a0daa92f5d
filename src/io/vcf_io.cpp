// VCF/BCF reading and writing through htslib; see include/janusdna/vcf_io.h.
#include "janusdna/vcf_io.h"
#include "janusdna/strings.h"

#include "janusdna/error.h"
#include "janusdna/interrupt.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <htslib/bgzf.h>
#include <htslib/hts.h>
#include <htslib/tbx.h>
#include <sys/stat.h>
#include <unistd.h>

namespace janusdna {

namespace {
std::string errno_text(int e) { return e ? std::strerror(e) : "unknown error"; }
} // namespace

VcfOutType vcf_out_type(const std::string& opt, const std::string& path) {
    if (opt == "v") return VcfOutType::Vcf;
    if (opt == "z") return VcfOutType::VcfGz;
    if (opt == "b") return VcfOutType::Bcf;
    if (opt == "u") return VcfOutType::BcfRaw;
    if (opt == "t") return VcfOutType::Table;
    if (!opt.empty()) throw Error(fmt::format("unknown output type -O {} (use v, z, b, u or t)", opt));
    if (ends_with(path, ".vcf.gz") || ends_with(path, ".vcf.bgz")) return VcfOutType::VcfGz;
    if (ends_with(path, ".bcf")) return VcfOutType::Bcf;
    if (ends_with(path, ".tsv.gz") || ends_with(path, ".txt.gz") || ends_with(path, ".tsv.bgz")) return VcfOutType::Table;
    return VcfOutType::Vcf;
}

// ---------------------------------------------------------------------------------------------------------------
VcfReader::VcfReader(const std::string& path, WarnFn warn) : display_(path == "-" ? "stdin" : path), warn_(std::move(warn)) {
    if (path != "-") {
        struct stat st;
        if (stat(path.c_str(), &st) != 0) throw Error(fmt::format("{}: {}", path, errno_text(errno)));
        if (S_ISDIR(st.st_mode)) throw Error(fmt::format("{}: is a directory", path));
        if (S_ISREG(st.st_mode) && st.st_size == 0) throw Error(fmt::format("{}: empty file (not VCF or BCF)", path));
    }
    errno = 0;
    fp_ = hts_open(path.c_str(), "r");
    if (!fp_) throw Error(fmt::format("{}: cannot open: {}", display_, errno_text(errno)));
    const htsFormat* f = hts_get_format(fp_);
    if (f->category != variant_data) {
        hts_close(fp_); fp_ = nullptr;
        throw Error(fmt::format("{}: not a VCF or BCF file (found {})", display_, hts_format_description(f)));
    }
    // A bgzip file without its end-of-file block was cut short (bcftools says so too); a pipe cannot be checked.
    if (fp_->format.compression == bgzf && fp_->fp.bgzf && bgzf_check_EOF(fp_->fp.bgzf) == 0) {
        hts_close(fp_); fp_ = nullptr;
        throw Error(fmt::format("{}: truncated file: the bgzip end-of-file block is missing (cut short, or still being written)", display_));
    }
    hdr_ = bcf_hdr_read(fp_);
    if (!hdr_) {
        const bool damaged = fp_->format.compression == bgzf && fp_->fp.bgzf && fp_->fp.bgzf->errcode;
        hts_close(fp_); fp_ = nullptr;
        if (damaged) throw Error(fmt::format("{}: truncated or corrupt compressed file (a bgzip block of the header is cut off or damaged)", display_));
        throw Error(fmt::format("{}: malformed VCF header (or truncated file)", display_));
    }
}

VcfReader::~VcfReader() {
    if (hdr_) bcf_hdr_destroy(hdr_);
    if (fp_) hts_close(fp_);
}

bool VcfReader::next(bcf1_t* rec) {
    const int ret = bcf_read(fp_, hdr_, rec);
    const bool text = fp_->format.format == vcf;
    auto where = [&] {
        return text ? fmt::format("{}:{}", display_, fp_->lineno) : fmt::format("{}: record {}", display_, records_ + 1);
    };
    auto line_text = [&] {
        if (!text || !fp_->line.s) return std::string();
        std::string s(fp_->line.s, std::min<size_t>(fp_->line.l, 80));
        for (char& c : s) if (c == '\t' || c == '\0') c = ' ';  // vcf_parse cuts the line at the tabs
        return ": " + s + (fp_->line.l > 80 ? "..." : "");
    };
    if (ret < 0 && fp_->format.compression == bgzf && fp_->fp.bgzf && fp_->fp.bgzf->errcode)
        throw Error(fmt::format("{}: truncated or corrupt compressed file (a bgzip block is cut off or damaged, after "
                                "{} records)", display_, records_));
    if (ret == -1 && rec->errcode == 0) return false;
    // A contig or an INFO/FILTER/FORMAT tag the header does not declare: htslib has added it to the header; accept
    // the record as bcftools does.
    if (ret == 0 && (rec->errcode & BCF_ERR_TAG_UNDEF) && warn_ && !warned_undeclared_) {
        warn_(fmt::format("{}: INFO/FILTER/FORMAT tags not declared in the header (first at this record); accepted "
                          "as bcftools accepts them, with header lines added for them", where()));
        warned_undeclared_ = true;
    }
    if (ret == 0) rec->errcode &= ~(BCF_ERR_CTG_UNDEF | BCF_ERR_TAG_UNDEF);
    if (ret < 0 || rec->errcode) throw Error(fmt::format("{}: malformed VCF record{}", where(), line_text()));
    ++records_;
    if (bcf_unpack(rec, BCF_UN_STR) < 0) throw Error(fmt::format("{}: malformed VCF record{}", where(), line_text()));
    if (rec->n_allele < 1 || !rec->d.allele || !rec->d.allele[0])
        throw Error(fmt::format("{}: malformed VCF record (fewer than 8 columns, or no REF){}", where(), line_text()));
    if (text && fp_->line.s) {  // htslib reads a non-numeric POS as 0: check the column itself
        const char* chrom_end = static_cast<const char*>(std::memchr(fp_->line.s, '\0', fp_->line.l));
        const char* p = chrom_end ? chrom_end + 1 : nullptr;
        bool digits = p && p < fp_->line.s + fp_->line.l && std::isdigit(static_cast<unsigned char>(*p));
        for (; digits && p < fp_->line.s + fp_->line.l && *p && *p != '\t'; ++p) digits = std::isdigit(static_cast<unsigned char>(*p));
        if (!digits) throw Error(fmt::format("{}: malformed VCF record (POS is not a number){}", where(), line_text()));
    }
    return true;
}

// ---------------------------------------------------------------------------------------------------------------
VcfOutput::VcfOutput(const std::string& path, VcfOutType type, bcf_hdr_t* hdr, bool write_index,
                     const std::vector<std::string>& table_columns)
    : path_(path), type_(type), hdr_(hdr), index_(write_index), is_stdout_(path == "-") {
    if (index_ && is_stdout_) throw Error("-W/--write-index needs an output file (-o FILE)");
    if (index_ && (type_ == VcfOutType::Vcf || type_ == VcfOutType::BcfRaw))
        throw Error("-W/--write-index needs bgzipped output (-O z, b or t)");
    std::string name = path_;
    if (!is_stdout_) {
        std::string templ = path_ + ".tmp.XXXXXX";
        int fd = mkstemp(templ.data());
        if (fd < 0) throw Error(fmt::format("{}: cannot create the output file: {}", path_, errno_text(errno)));
        ::close(fd);
        tmp_ = name = templ;
        track_temp_file(tmp_);
    }
    if (type_ == VcfOutType::Table) {
        bgzf_ = bgzf_open(name.c_str(), "w");
        if (!bgzf_) { cleanup(); throw Error(fmt::format("{}: cannot open for writing: {}", path_, errno_text(errno))); }
        std::string head = "#CHROM\tPOS\tREF\tALT";
        for (const std::string& c : table_columns) head += "\t" + c;
        head += "\n";
        if (bgzf_write(bgzf_, head.data(), head.size()) < 0) { cleanup(); throw Error(fmt::format("{}: write failed", path_)); }
        return;
    }
    const char* mode = type_ == VcfOutType::Vcf ? "w" : type_ == VcfOutType::VcfGz ? "wz" : type_ == VcfOutType::Bcf ? "wb" : "wbu";
    errno = 0;
    fp_ = hts_open(name.c_str(), mode);
    if (!fp_) { cleanup(); throw Error(fmt::format("{}: cannot open for writing: {}", path_, errno_text(errno))); }
    if (bcf_hdr_write(fp_, hdr_) < 0) { cleanup(); throw Error(fmt::format("{}: cannot write the header: {}", path_, errno_text(errno))); }
    idx_name_ = tmp_ + ".csi";  // htslib keeps the pointer until bcf_idx_save
    if (index_ && bcf_idx_init(fp_, hdr_, 14, idx_name_.c_str()) < 0) {
        cleanup();
        throw Error(fmt::format("{}: cannot start the index", path_));
    }
}

VcfOutput::~VcfOutput() { if (!done_) cleanup(); }

void VcfOutput::cleanup() noexcept {
    if (fp_) { hts_close(fp_); fp_ = nullptr; }
    if (bgzf_) { bgzf_close(bgzf_); bgzf_ = nullptr; }
    if (!tmp_.empty()) {
        ::unlink(tmp_.c_str());
        ::unlink((tmp_ + ".csi").c_str());
        ::unlink((tmp_ + ".tbi").c_str());
        untrack_temp_file(tmp_);
    }
}

void VcfOutput::write(bcf1_t* rec) {
    if (!fp_) throw Error(fmt::format("{}: not a VCF/BCF output", path_));
    if (bcf_write(fp_, hdr_, rec) < 0) {
        if (index_) throw Error(fmt::format("{}: write failed (is the input sorted? -W needs sorted records): {}", path_, errno_text(errno)));
        throw Error(fmt::format("{}: write failed: {}", path_, errno_text(errno)));
    }
}

void VcfOutput::write_row(const std::string& chrom, int64_t pos1, const std::string& ref, const std::string& alt,
                          const std::vector<float>& values) {
    buf_.clear();
    fmt::format_to(std::back_inserter(buf_), "{}\t{}\t{}\t{}", chrom, pos1, ref, alt);
    for (float v : values) {
        if (std::isnan(v)) buf_ += "\t.";
        else fmt::format_to(std::back_inserter(buf_), "\t{:.6g}", v);
    }
    buf_ += '\n';
    if (bgzf_write(bgzf_, buf_.data(), buf_.size()) < 0) throw Error(fmt::format("{}: write failed: {}", path_, errno_text(errno)));
}

void VcfOutput::commit() {
    if (done_) throw Error(fmt::format("{}: committed twice", path_));
    if (fp_) {
        if (index_ && bcf_idx_save(fp_) < 0) {
            cleanup();
            throw Error(fmt::format("{}: cannot write the index (is the output sorted?)", path_));
        }
        const int ret = hts_close(fp_);
        fp_ = nullptr;
        if (ret < 0) { cleanup(); throw Error(fmt::format("{}: error writing the output: {}", path_, errno_text(errno))); }
    }
    if (bgzf_) {
        const int ret = bgzf_close(bgzf_);
        bgzf_ = nullptr;
        if (ret < 0) { cleanup(); throw Error(fmt::format("{}: error writing the output: {}", path_, errno_text(errno))); }
        if (index_) {
            tbx_conf_t conf = {0, 1, 2, 2, '#', 0};
            if (tbx_index_build(tmp_.c_str(), 0, &conf) < 0) {
                cleanup();
                throw Error(fmt::format("{}: cannot build the tabix index (is the output sorted?)", path_));
            }
        }
    }
    if (!is_stdout_) {
        mode_t mask = umask(0); umask(mask);
        chmod(tmp_.c_str(), 0666 & ~mask);
        const char* ext = type_ == VcfOutType::Table ? ".tbi" : ".csi";
        // the data first, then the index, so that the index is not older than the data (htslib warns)
        if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
            cleanup();
            throw Error(fmt::format("{}: cannot rename into place: {}", path_, errno_text(errno)));
        }
        if (index_) {
            chmod((tmp_ + ext).c_str(), 0666 & ~mask);
            if (std::rename((tmp_ + ext).c_str(), (path_ + ext).c_str()) != 0) {
                cleanup();
                throw Error(fmt::format("{}{}: cannot rename into place: {}", path_, ext, errno_text(errno)));
            }
        }
    }
    untrack_temp_file(tmp_);
    done_ = true;
}

} // namespace janusdna
