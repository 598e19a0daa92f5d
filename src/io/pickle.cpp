#include "janusdna/pickle.h"
#include "janusdna/error.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <unordered_map>

namespace janusdna::pickle {

const Value* Value::get(std::string_view key) const {
    if (kind != Kind::Dict) return nullptr;
    for (const auto& [k, v] : entries)
        if (k->kind == Kind::Str && k->text == key) return v;
    return nullptr;
}

const std::set<std::string>& default_allowed_globals() {
    static const std::set<std::string> allowed = {
        // torch.save's tensors: rebuild functions (interpreted by janusdna, never called) and typed storages
        "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2",
        "torch.nn.parameter.Parameter", "torch.Tensor", "torch._tensor.Tensor",
        "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
        "torch.LongStorage", "torch.IntStorage", "torch.BoolStorage", "torch.ByteStorage",
        // containers
        "collections.OrderedDict", "collections.defaultdict",
        "builtins.dict", "builtins.list", "builtins.tuple", "builtins.set", "builtins.frozenset",
        "builtins.int", "builtins.long", "builtins.float", "builtins.bool", "builtins.str", "builtins.bytes",
        "builtins.object", "_codecs.encode",
        // Lightning's hyper-parameters: an OmegaConf tree or an AttributeDict
        "omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig", "omegaconf.base.ContainerMetadata",
        "omegaconf.base.Metadata", "omegaconf.nodes.AnyNode", "omegaconf.nodes.StringNode",
        "omegaconf.nodes.IntegerNode", "omegaconf.nodes.FloatNode", "omegaconf.nodes.BooleanNode",
        "omegaconf.nodes.BytesNode", "omegaconf.nodes.PathNode", "typing.Any",
        "pytorch_lightning.utilities.parsing.AttributeDict", "lightning.fabric.utilities.data.AttributeDict",
        "lightning_fabric.utilities.data.AttributeDict",
        // numpy scalars (a metric or a step saved as numpy)
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
    };
    return allowed;
}

namespace {

std::string printable(std::string_view s) {
    std::string out;
    for (char c : s.substr(0, 120)) out += (c >= 32 && c < 127) ? c : '?';
    return out;
}

// Appends code point `cp` to `out` as UTF-8.
void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) out += static_cast<char>(cp);
    else if (cp < 0x800) { out += static_cast<char>(0xC0 | (cp >> 6)); out += static_cast<char>(0x80 | (cp & 0x3F)); }
    else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

} // namespace

class Machine {
public:
    Machine(std::string_view bytes, const std::string& label, const std::set<std::string>& allowed, const Limits& limits,
            Pickle& out)
        : b_(bytes), label_(label), allowed_(allowed), limits_(limits), out_(out) {
        if (limits_.max_values == 0) limits_.max_values = bytes.size() * 4 + 64;
    }

    Value* run();

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw Error(fmt::format("{}: damaged pickle at byte {}: {}", label_, op_pos_, what));
    }
    Value* make(Kind k) {
        if (out_.arena_.size() >= limits_.max_values) fail("too many values");
        out_.arena_.emplace_back();
        out_.arena_.back().kind = k;
        return &out_.arena_.back();
    }
    std::string_view take(uint64_t n) {
        if (n > b_.size() - pos_) fail("a length runs past the end of the data");
        std::string_view s = b_.substr(pos_, n);
        pos_ += n;
        return s;
    }
    uint64_t uint(int n) {
        std::string_view s = take(static_cast<uint64_t>(n));
        uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<size_t>(i)]);
        return v;
    }
    std::string_view line() {
        const size_t nl = b_.find('\n', pos_);
        if (nl == std::string_view::npos) fail("a text argument has no end of line");
        std::string_view s = b_.substr(pos_, nl - pos_);
        pos_ = nl + 1;
        return s;
    }
    void push(Value* v) {
        if (stack_.size() >= limits_.max_stack) fail("the stack is too deep");
        stack_.push_back(v);
    }
    Value* pop() {
        if (stack_.size() <= base()) fail("the stack is empty");
        Value* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    Value* top() {
        if (stack_.size() <= base()) fail("the stack is empty");
        return stack_.back();
    }
    size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
    // The values since the last MARK, which is removed.
    std::vector<Value*> pop_mark() {
        if (marks_.empty()) fail("no MARK to pop to");
        const size_t m = marks_.back();
        marks_.pop_back();
        std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
        stack_.resize(m);
        return items;
    }
    void memo_put(uint64_t index, Value* v) {
        if (memo_.size() >= limits_.max_memo && !memo_.count(index)) fail("the memo is too large");
        memo_[index] = v;
    }
    Value* memo_get(uint64_t index) {
        auto it = memo_.find(index);
        if (it == memo_.end()) fail(fmt::format("memo entry {} is not defined", index));
        return it->second;
    }
    Value* integer(int64_t v) {
        Value* x = make(Kind::Int);
        x->integer = v;
        return x;
    }
    Value* string(Kind k, std::string_view s) {
        Value* x = make(k);
        x->text = std::string(s);
        return x;
    }
    // Little-endian two's complement of n bytes (LONG1/LONG4), up to 64 bits.
    Value* long_bytes(uint64_t n) {
        if (n > 8) fail(fmt::format("an integer of {} bytes is too large", n));
        std::string_view s = take(n);
        uint64_t v = 0;
        for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<unsigned char>(s[i]);
        if (n > 0 && n < 8 && (static_cast<unsigned char>(s[n - 1]) & 0x80)) v |= ~uint64_t(0) << (8 * n);
        return integer(static_cast<int64_t>(v));
    }
    Value* parse_int_text(std::string_view t, bool is_long) {
        if (is_long && !t.empty() && t.back() == 'L') t.remove_suffix(1);
        if (!is_long && t == "01") { Value* v = make(Kind::Bool); v->boolean = true; return v; }
        if (!is_long && t == "00") return make(Kind::Bool);
        std::string s(t);
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(s.c_str(), &end, 10);
        if (s.empty() || *end != '\0' || errno == ERANGE) fail(fmt::format("bad integer \"{}\"", printable(t)));
        return integer(v);
    }
    Value* global(std::string module, std::string name) {
        if (module == "__builtin__") module = "builtins";
        if (module == "copy_reg") module = "copyreg";
        const std::string full = module + "." + name;
        if (!allowed_.count(full))
            throw Error(fmt::format("{}: refused: the pickle would call {}; janusdna never runs code from a model file",
                                    label_, printable(full)));
        return string(Kind::Global, full);
    }
    // What calling an allowed global with `args` gives, without calling anything: the builtin containers become
    // plain values, everything else an Object recording the global and the arguments.
    Value* instantiate(Value* callable, Value* args) {
        if (callable->kind != Kind::Global) fail("a call of something that is not a global");
        if (args->kind != Kind::Tuple) fail("call arguments are not a tuple");
        const std::string& g = callable->text;
        const auto& a = args->items;
        if (g == "collections.OrderedDict" || g == "builtins.dict" || g == "collections.defaultdict") {
            Value* d = make(Kind::Dict);
            if (g != "collections.defaultdict" && !a.empty()) {
                if (a[0]->kind == Kind::Dict) d->entries = a[0]->entries;
                else if (a[0]->kind == Kind::List || a[0]->kind == Kind::Tuple)
                    for (Value* pair : a[0]->items) {
                        if ((pair->kind != Kind::Tuple && pair->kind != Kind::List) || pair->items.size() != 2)
                            fail("a dict built from something other than pairs");
                        d->entries.emplace_back(pair->items[0], pair->items[1]);
                    }
            }
            return d;
        }
        if (g == "builtins.list" || g == "builtins.tuple" || g == "builtins.set" || g == "builtins.frozenset") {
            Value* v = make(g == "builtins.list" ? Kind::List : g == "builtins.tuple" ? Kind::Tuple : Kind::Set);
            if (!a.empty()) {
                if (a[0]->kind != Kind::List && a[0]->kind != Kind::Tuple && a[0]->kind != Kind::Set)
                    fail(fmt::format("{} of a non-sequence", g));
                v->items = a[0]->items;
            }
            return v;
        }
        if (g == "_codecs.encode") { // how protocol 2 stores bytes: encode(text, "latin1")
            if (a.size() != 2 || a[0]->kind != Kind::Str || a[1]->kind != Kind::Str ||
                (a[1]->text != "latin1" && a[1]->text != "latin-1"))
                fail("_codecs.encode is read only as encode(text, \"latin1\")");
            Value* v = make(Kind::Bytes);
            const std::string& s = a[0]->text;
            for (size_t i = 0; i < s.size(); ++i) { // UTF-8 -> code points < 256
                const unsigned char c = static_cast<unsigned char>(s[i]);
                if (c < 0x80) v->text += static_cast<char>(c);
                else if ((c & 0xE0) == 0xC0 && i + 1 < s.size() && c <= 0xC3)
                    v->text += static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F));
                else fail("latin1 text with a code point above 255");
            }
            return v;
        }
        Value* o = make(Kind::Object);
        o->global = callable;
        o->args = args;
        return o;
    }

    std::string_view b_;
    const std::string& label_;
    const std::set<std::string>& allowed_;
    Limits limits_;
    Pickle& out_;
    size_t pos_ = 0, op_pos_ = 0;
    std::vector<Value*> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, Value*> memo_;
};

Value* Machine::run() {
    while (true) {
        op_pos_ = pos_;
        if (pos_ >= b_.size()) fail("the data ends without a STOP opcode");
        const unsigned char op = static_cast<unsigned char>(b_[pos_++]);
        switch (op) {
        case 0x80: { // PROTO
            const uint64_t p = uint(1);
            if (p > 5) fail(fmt::format("pickle protocol {} is not supported", p));
            break;
        }
        case 0x95: uint(8); break; // FRAME: a hint only
        case '.': { // STOP
            Value* v = pop();
            return v;
        }
        case '(':
            if (marks_.size() >= limits_.max_marks) fail("MARKs nest too deeply");
            marks_.push_back(stack_.size());
            break;
        case '0': pop(); break;
        case '1': pop_mark(); break;
        case '2': push(top()); break;
        case 'N': push(make(Kind::None)); break;
        case 0x88: case 0x89: { Value* v = make(Kind::Bool); v->boolean = op == 0x88; push(v); break; }
        case 'I': push(parse_int_text(line(), false)); break;
        case 'L': push(parse_int_text(line(), true)); break;
        case 'J': push(integer(static_cast<int32_t>(static_cast<uint32_t>(uint(4))))); break;
        case 'K': push(integer(static_cast<int64_t>(uint(1)))); break;
        case 'M': push(integer(static_cast<int64_t>(uint(2)))); break;
        case 0x8a: push(long_bytes(uint(1))); break;
        case 0x8b: push(long_bytes(uint(4))); break;
        case 'F': {
            std::string s(line());
            char* end = nullptr;
            const double d = std::strtod(s.c_str(), &end);
            if (s.empty() || *end != '\0') fail(fmt::format("bad float \"{}\"", printable(s)));
            Value* v = make(Kind::Float);
            v->real = d;
            push(v);
            break;
        }
        case 'G': {
            const uint64_t bits = [&] { uint64_t v = 0; for (char c : take(8)) v = (v << 8) | static_cast<unsigned char>(c); return v; }();
            Value* v = make(Kind::Float);
            std::memcpy(&v->real, &bits, 8);
            push(v);
            break;
        }
        case 'X': push(string(Kind::Str, take(uint(4)))); break;
        case 0x8c: push(string(Kind::Str, take(uint(1)))); break;
        case 0x8d: push(string(Kind::Str, take(uint(8)))); break;
        case 'T': { // BINSTRING: a Python 2 str, read as text
            const int64_t n = static_cast<int32_t>(static_cast<uint32_t>(uint(4)));
            if (n < 0) fail("negative string length");
            push(string(Kind::Str, take(static_cast<uint64_t>(n))));
            break;
        }
        case 'U': push(string(Kind::Str, take(uint(1)))); break;
        case 'B': push(string(Kind::Bytes, take(uint(4)))); break;
        case 'C': push(string(Kind::Bytes, take(uint(1)))); break;
        case 0x8e: case 0x96: push(string(Kind::Bytes, take(uint(8)))); break;
        case 'S': { // STRING: a quoted repr
            std::string_view t = line();
            if (t.size() < 2 || t.front() != t.back() || (t.front() != '\'' && t.front() != '"'))
                fail("STRING argument is not quoted");
            t = t.substr(1, t.size() - 2);
            std::string s;
            for (size_t i = 0; i < t.size(); ++i) {
                if (t[i] != '\\' || i + 1 == t.size()) { s += t[i]; continue; }
                const char e = t[++i];
                if (e == 'n') s += '\n'; else if (e == 't') s += '\t'; else if (e == 'r') s += '\r';
                else if (e == 'x') {
                    if (i + 2 >= t.size() || !std::isxdigit(static_cast<unsigned char>(t[i + 1])) ||
                        !std::isxdigit(static_cast<unsigned char>(t[i + 2])))
                        fail("bad \\x escape");
                    s += static_cast<char>(std::stoi(std::string(t.substr(i + 1, 2)), nullptr, 16));
                    i += 2;
                } else s += e;
            }
            push(string(Kind::Str, s));
            break;
        }
        case 'V': { // UNICODE: raw-unicode-escape text
            std::string_view t = line();
            std::string s;
            for (size_t i = 0; i < t.size(); ++i) {
                if (t[i] == '\\' && i + 1 < t.size() && (t[i + 1] == 'u' || t[i + 1] == 'U')) {
                    const size_t n = t[i + 1] == 'u' ? 4 : 8;
                    if (i + 2 + n > t.size()) fail("bad \\u escape");
                    uint32_t cp = 0;
                    for (size_t k = 0; k < n; ++k) {
                        const char c = t[i + 2 + k];
                        if (!std::isxdigit(static_cast<unsigned char>(c))) fail("bad \\u escape");
                        cp = cp * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10));
                    }
                    if (cp > 0x10FFFF) fail("bad code point");
                    put_utf8(s, cp);
                    i += 1 + n;
                } else put_utf8(s, static_cast<unsigned char>(t[i]));
            }
            push(string(Kind::Str, s));
            break;
        }
        case ']': push(make(Kind::List)); break;
        case ')': push(make(Kind::Tuple)); break;
        case '}': push(make(Kind::Dict)); break;
        case 0x8f: push(make(Kind::Set)); break;
        case 'l': case 't': case 0x91: {
            Value* v = make(op == 'l' ? Kind::List : op == 't' ? Kind::Tuple : Kind::Set);
            v->items = pop_mark();
            push(v);
            break;
        }
        case 0x85: case 0x86: case 0x87: {
            const size_t n = op - 0x84u;
            Value* v = make(Kind::Tuple);
            v->items.resize(n);
            for (size_t i = n; i-- > 0;) v->items[i] = pop();
            push(v);
            break;
        }
        case 'd': {
            std::vector<Value*> items = pop_mark();
            if (items.size() % 2) fail("DICT with an odd number of items");
            Value* v = make(Kind::Dict);
            for (size_t i = 0; i < items.size(); i += 2) v->entries.emplace_back(items[i], items[i + 1]);
            push(v);
            break;
        }
        case 'a': case 'e': case 0x90: {
            std::vector<Value*> items;
            if (op == 'a') items.push_back(pop());
            else items = pop_mark();
            Value* target = top();
            const bool ok = op == 0x90 ? target->kind == Kind::Set
                                       : (target->kind == Kind::List || target->kind == Kind::Object);
            if (!ok) fail("APPEND to something that is not a list");
            target->items.insert(target->items.end(), items.begin(), items.end());
            break;
        }
        case 's': case 'u': {
            std::vector<Value*> items;
            if (op == 's') { Value* v = pop(); Value* k = pop(); items = {k, v}; }
            else items = pop_mark();
            if (items.size() % 2) fail("SETITEMS with an odd number of items");
            Value* target = top();
            if (target->kind != Kind::Dict && target->kind != Kind::Object) fail("SETITEM on something that is not a dict");
            for (size_t i = 0; i < items.size(); i += 2) target->entries.emplace_back(items[i], items[i + 1]);
            break;
        }
        case 'c': {
            std::string module(line());
            std::string name(line());
            push(global(std::move(module), std::move(name)));
            break;
        }
        case 0x93: { // STACK_GLOBAL
            Value* name = pop();
            Value* module = pop();
            if (module->kind != Kind::Str || name->kind != Kind::Str) fail("STACK_GLOBAL of non-strings");
            push(global(module->text, name->text));
            break;
        }
        case 'R': {
            Value* args = pop();
            Value* callable = pop();
            push(instantiate(callable, args));
            break;
        }
        case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
            Value* args = pop();
            Value* cls = pop();
            push(instantiate(cls, args));
            break;
        }
        case 0x92: { // NEWOBJ_EX: keyword arguments are recorded with the arguments
            Value* kwargs = pop();
            Value* args = pop();
            Value* cls = pop();
            if (kwargs->kind != Kind::Dict) fail("NEWOBJ_EX keywords are not a dict");
            Value* o = instantiate(cls, args);
            if (o->kind == Kind::Object) o->entries.insert(o->entries.end(), kwargs->entries.begin(), kwargs->entries.end());
            push(o);
            break;
        }
        case 'b': { // BUILD: record the state; nothing is set up by calling __setstate__
            Value* state = pop();
            Value* target = top();
            if (target->kind == Kind::Object) {
                if (target->state) fail("BUILD twice on one object");
                target->state = state;
            } else if (target->kind == Kind::Dict && state->kind == Kind::Dict) {
                target->entries.insert(target->entries.end(), state->entries.begin(), state->entries.end());
            } else if (!(target->kind == Kind::Dict && state->kind == Kind::None)) {
                fail("BUILD on a value that is not an object");
            }
            break;
        }
        case 'Q': { // BINPERSID: a reference to data outside the pickle (torch: a storage)
            Value* v = make(Kind::Persistent);
            v->args = pop();
            push(v);
            break;
        }
        case 'P': {
            Value* v = make(Kind::Persistent);
            v->args = string(Kind::Str, line());
            push(v);
            break;
        }
        case 'p': {
            std::string s(line());
            char* end = nullptr;
            const unsigned long long i = std::strtoull(s.c_str(), &end, 10);
            if (s.empty() || *end) fail("bad PUT index");
            memo_put(i, top());
            break;
        }
        case 'q': memo_put(uint(1), top()); break;
        case 'r': memo_put(uint(4), top()); break;
        case 0x94: memo_put(memo_.size(), top()); break;
        case 'g': {
            std::string s(line());
            char* end = nullptr;
            const unsigned long long i = std::strtoull(s.c_str(), &end, 10);
            if (s.empty() || *end) fail("bad GET index");
            push(memo_get(i));
            break;
        }
        case 'h': push(memo_get(uint(1))); break;
        case 'j': push(memo_get(uint(4))); break;
        case 'i': case 'o':
            fail("INST/OBJ opcodes (old-style class instances) are not read");
        case 0x82: case 0x83: case 0x84:
            fail("extension-registry opcodes are not read");
        case 0x97: case 0x98:
            fail("out-of-band buffers are not read");
        default:
            fail(fmt::format("unknown opcode 0x{:02x}", op));
        }
    }
}

Pickle Pickle::load(std::string_view bytes, const std::string& label, const std::set<std::string>& allowed,
                    const Limits& limits) {
    Pickle p;
    Machine m(bytes, label, allowed, limits, p);
    p.root_ = m.run();
    return p;
}

} // namespace janusdna::pickle
