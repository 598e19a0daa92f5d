// DNA text -> JanusDNA token ids.
#include "janusdna/tokenizer.h"

#include <array>

#include <fmt/format.h>

#include "janusdna/error.h"

namespace janusdna {
namespace {

// Byte -> token id; -1 marks a byte that is not a base or an IUPAC code. Built once, so tokenizing a
// chromosome is one table look-up per base.
constexpr std::array<int8_t, 256> make_id_table() {
    std::array<int8_t, 256> table{};
    for (auto& id : table) id = -1;
    const char bases[] = "ACGT";
    for (int i = 0; i < 4; ++i) {
        table[static_cast<unsigned char>(bases[i])] = static_cast<int8_t>(kIdA + i);
        table[static_cast<unsigned char>(bases[i] - 'A' + 'a')] = static_cast<int8_t>(kIdA + i);
    }
    for (const char* p = "NRYSWKMBDHV"; *p; ++p) {
        table[static_cast<unsigned char>(*p)] = static_cast<int8_t>(kPadId);
        table[static_cast<unsigned char>(*p - 'A' + 'a')] = static_cast<int8_t>(kPadId);
    }
    return table;
}
constexpr std::array<int8_t, 256> kIdTable = make_id_table();

// Byte -> complement byte, identity for everything that is not a base or an IUPAC code.
constexpr std::array<char, 256> make_complement_table() {
    std::array<char, 256> table{};
    for (int i = 0; i < 256; ++i) table[i] = static_cast<char>(i);
    const char from[] = "ACGTRYKMBVDHSWN";
    const char to[] = "TGCAYRMKVBHDSWN";
    for (int i = 0; from[i]; ++i) {
        table[static_cast<unsigned char>(from[i])] = to[i];
        table[static_cast<unsigned char>(from[i] - 'A' + 'a')] = static_cast<char>(to[i] - 'A' + 'a');
    }
    return table;
}
constexpr std::array<char, 256> kComplementTable = make_complement_table();

// Shows a byte the way a user can recognise it in an error message.
std::string printable(unsigned char c) {
    if (c >= 0x20 && c < 0x7f) return std::string(1, static_cast<char>(c));
    return fmt::format("\\x{:02X}", c);
}

} // namespace

Tokens tokenize(std::string_view seq, std::string_view source, std::string_view record, int64_t first_pos) {
    Tokens tokens;
    tokens.ids.resize(seq.size());
    tokens.scored.resize(seq.size());
    for (size_t i = 0; i < seq.size(); ++i) {
        const auto c = static_cast<unsigned char>(seq[i]);
        const int8_t id = kIdTable[c];
        if (id < 0)
            throw Error(fmt::format("{}: record \"{}\": invalid character '{}' at position {}", source, record,
                                    printable(c), first_pos + static_cast<int64_t>(i)));
        tokens.ids[i] = id;
        tokens.scored[i] = id != kPadId;
    }
    return tokens;
}

int base_index(char b) {
    switch (b) {
        case 'A': case 'a': return 0;
        case 'C': case 'c': return 1;
        case 'G': case 'g': return 2;
        case 'T': case 't': return 3;
        default: return -1;
    }
}

char base_of_id(int64_t id) {
    switch (id) {
    case kIdA: return 'A';
    case kIdC: return 'C';
    case kIdG: return 'G';
    case kIdT: return 'T';
    default: return 'N';
    }
}

std::string reverse_complement(std::string_view seq) {
    std::string out(seq.size(), '\0');
    for (size_t i = 0; i < seq.size(); ++i)
        out[seq.size() - 1 - i] = kComplementTable[static_cast<unsigned char>(seq[i])];
    return out;
}

} // namespace janusdna
