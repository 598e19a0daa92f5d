// VCF/BCF through htslib for the variant commands: a reader whose errors name the file and line, and an output
// that is VCF, bgzipped VCF, BCF, uncompressed BCF or a bgzipped CHROM POS REF ALT score table, written under a
// temporary name and renamed into place at commit() (stdout "-" streams), optionally with its index.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <htslib/vcf.h>

#include "janusdna/error.h"

struct BGZF;

namespace janusdna {

enum class VcfOutType { Vcf, VcfGz, Bcf, BcfRaw, Table };

// -O value (v, z, b, u, t) or, when it is empty, the -o suffix (.vcf.gz/.vcf.bgz -> z, .bcf -> b, .tsv.gz/.txt.gz
// -> t, anything else -> v). Throws Error for an unknown -O value.
VcfOutType vcf_out_type(const std::string& opt, const std::string& path);

// Reads records of a VCF (plain or bgzipped) or BCF file; "-" = stdin.
class VcfReader {
public:
    // Throws Error naming the file when it cannot be opened (strerror), is empty, has no valid VCF header, or is
    // bgzipped without its end-of-file block (cut short, as bcftools reports it). warn hears about tags the header
    // does not declare (accepted, as bcftools accepts them), once per file.
    explicit VcfReader(const std::string& path, WarnFn warn = {});
    ~VcfReader();
    VcfReader(const VcfReader&) = delete;
    VcfReader& operator=(const VcfReader&) = delete;

    bcf_hdr_t* header() { return hdr_; }
    // Reads the next record into rec (unpacked up to the alleles); false at the end of the file.
    // Throws Error "FILE:LINE: malformed VCF record: TEXT" (text VCF) or "FILE: record N: ..." (BCF), and
    // "FILE: truncated or corrupt compressed file" when a bgzip block is cut off or damaged.
    bool next(bcf1_t* rec);
    const std::string& display_name() const { return display_; }

private:
    std::string display_;
    htsFile* fp_ = nullptr;
    bcf_hdr_t* hdr_ = nullptr;
    int64_t records_ = 0;
    WarnFn warn_;
    bool warned_undeclared_ = false;
};

// Output of annotated VCF records or of score-table rows.
class VcfOutput {
public:
    // hdr is borrowed (it must outlive this object) and is written at once for the VCF types; for Table a
    // "#CHROM POS REF ALT <columns>" line is written. write_index needs a file (not "-") and writes PATH.csi
    // (VCF types) or PATH.tbi (Table); the output must then be sorted. Throws Error naming the path.
    VcfOutput(const std::string& path, VcfOutType type, bcf_hdr_t* hdr, bool write_index,
              const std::vector<std::string>& table_columns = {"JANUS_LLR", "JANUS_PLL"});
    ~VcfOutput(); // removes the temporary files unless committed
    VcfOutput(const VcfOutput&) = delete;
    VcfOutput& operator=(const VcfOutput&) = delete;

    VcfOutType type() const { return type_; }
    void write(bcf1_t* rec);                          // VCF types
    void write_row(const std::string& chrom, int64_t pos1, const std::string& ref, const std::string& alt,
                   const std::vector<float>& values);  // Table; NaN -> "."
    // Closes (checking for write errors), writes the index, renames into place.
    void commit();

private:
    void cleanup() noexcept;
    std::string path_, tmp_, idx_name_;
    VcfOutType type_;
    bcf_hdr_t* hdr_;
    bool index_, done_ = false, is_stdout_;
    htsFile* fp_ = nullptr;
    BGZF* bgzf_ = nullptr;
    std::string buf_;
};

} // namespace janusdna
