// A restricted reader of Python pickles (protocols 0-5), torch-free, for the model files that PyTorch and
// PyTorch Lightning write. It never runs anything: it builds a graph of plain values, and what a pickle would
// call (REDUCE, NEWOBJ, BUILD on a global) becomes an Object value that records the global and its arguments.
// Only the globals in an allow-list may appear at all; any other is refused as soon as the pickle names it:
//   "x.ckpt: refused: the pickle would call posix.system; janusdna never runs code from a model file"
// Sizes, the mark stack, the memo and the number of values are bounded, so malformed or hostile input is a
// janusdna::Error, never a crash, a hang or a read outside the buffer.
#pragma once
#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace janusdna::pickle {

enum class Kind { None, Bool, Int, Float, Str, Bytes, List, Tuple, Dict, Set, Global, Object, Persistent };

// One value of the graph. Containers hold pointers into the owning Pickle; the graph may contain cycles
// (OmegaConf nodes point at their parents), so walk it with a depth bound.
struct Value {
    Kind kind = Kind::None;
    bool boolean = false;
    int64_t integer = 0;
    double real = 0;
    std::string text;                                   // Str (UTF-8), Bytes; Global: "module.name"
    std::vector<Value*> items;                          // List, Tuple, Set; Object: APPENDed items
    std::vector<std::pair<Value*, Value*>> entries;     // Dict; Object: SETITEMed entries
    const Value* global = nullptr;                      // Object: the class or function it was made from
    const Value* args = nullptr;                        // Object: its argument tuple; Persistent: the id
    const Value* state = nullptr;                       // Object: what BUILD gave it

    bool is(Kind k) const { return kind == k; }
    bool is_global(std::string_view name) const { return kind == Kind::Global && text == name; }
    // Object made from the global `name` (e.g. "torch._utils._rebuild_tensor_v2").
    bool is_object_of(std::string_view name) const { return kind == Kind::Object && global && global->text == name; }
    // Dict lookup by string key; nullptr when absent or not a Dict.
    const Value* get(std::string_view key) const;
};

struct Limits {
    size_t max_values = 0;           // 0: 4 per input byte + 64 (each opcode makes at most a few)
    size_t max_memo = 1u << 24;      // memo entries
    size_t max_marks = 10000;        // nesting of MARKs (lists, tuples, dicts being built)
    size_t max_stack = 1u << 24;     // values on the stack
};

// The globals a checkpoint needs: torch's tensor rebuild functions and typed storages, collections' dicts,
// OmegaConf's containers, nodes and metadata, typing.Any, Lightning's AttributeDict, numpy scalars and dtypes, and
// the builtin types. "__builtin__" is read as "builtins" and "copy_reg" as "copyreg", as Python does.
const std::set<std::string>& default_allowed_globals();

class Pickle {
public:
    // Parses `bytes`. `label` names the source in errors. `allowed` is the allow-list (module.name).
    static Pickle load(std::string_view bytes, const std::string& label, const std::set<std::string>& allowed,
                       const Limits& limits = {});
    const Value* root() const { return root_; }

    Pickle() = default;
    Pickle(Pickle&&) = default;
    Pickle& operator=(Pickle&&) = default;

private:
    std::deque<Value> arena_;   // owns every value; a deque never moves them
    Value* root_ = nullptr;
    friend class Machine;
};

} // namespace janusdna::pickle
