// DNA text -> JanusDNA token ids, and the reverse-complement helper used for '-' strand regions.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace janusdna {

// Token ids of the JanusDNA vocabulary that the tokenizer produces (the full table is in docs/MODEL.md).
constexpr int64_t kPadId = 4;  // [PAD]: what N and the IUPAC ambiguity codes become, as in pretraining
constexpr int64_t kIdA = 7;
constexpr int64_t kIdC = 8;
constexpr int64_t kIdG = 9;
constexpr int64_t kIdT = 10;

// One tokenized sequence: ids[i] is the token of base i, scored[i] is 1 for A/C/G/T and 0 for N or an
// ambiguity code (those positions get [PAD] and no score, probability or LLR is reported for them).
struct Tokens {
    std::vector<int64_t> ids;
    std::vector<uint8_t> scored;
};

// Tokenizes seq: A/C/G/T in either case (soft-masked bases are bases) -> 7/8/9/10, scored;
// N and R Y S W K M B D H V in either case -> kPadId, not scored.
// source (a file name) and record (a sequence name) only name the input in errors; first_pos is the 1-based
// position of seq[0] in that record, so the error points at the right base when seq is a slice.
// Throws Error on any other byte: `SOURCE: record "NAME": invalid character 'C' at position P`
// (a non-printable byte is written as \xNN).
Tokens tokenize(std::string_view seq, std::string_view source, std::string_view record, int64_t first_pos = 1);

// Index 0..3 of a base (A, C, G, T, either case), -1 for anything else.
int base_index(char b);

// Returns the upper-case base of a token id: 'A','C','G','T' for 7..10 and 'N' for every other id
// ([PAD], N and the special tokens), so that it can be used on any model output without a check.
char base_of_id(int64_t id);

// Returns the reverse complement of seq: A<->T, C<->G, R<->Y, K<->M, B<->V, D<->H; S, W and N are their own
// complement; case is preserved. Any other byte is kept unchanged (the tokenizer reports it later).
std::string reverse_complement(std::string_view seq);

} // namespace janusdna
