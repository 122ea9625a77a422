#include "libgaze/io/pickle.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "libgaze/core/error.h"

namespace gaze::pickle {
namespace {

using Kind = Value::Kind;

ValuePtr make(Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

ValuePtr make_string(Kind kind, std::string text) {
  auto v = make(kind);
  v->text = std::move(text);
  return v;
}

ValuePtr make_int(int64_t i) {
  auto v = make(Kind::kInt);
  v->integer = i;
  return v;
}

std::vector<int64_t> int_list(const ValuePtr& v, const std::string& what, const std::string& where) {
  if (!v || (v->kind != Kind::kTuple && v->kind != Kind::kList)) {
    throw Error(where + ": tensor " + what + " is not a tuple");
  }
  std::vector<int64_t> out;
  for (const auto& item : v->items) {
    if (item->kind != Kind::kInt) throw Error(where + ": tensor " + what + " holds a non-integer");
    out.push_back(item->integer);
  }
  return out;
}

class Unpickler {
 public:
  Unpickler(const std::string& bytes, const std::string& where) : b_(bytes), where_(where) {}

  ValuePtr run() {
    while (true) {
      op_pos_ = pos_;
      const uint8_t op = u8();
      switch (op) {
        case 0x80:
          u8();
          break;  // PROTO
        case 0x95:
          take(8);
          break;  // FRAME (length is advisory)
        case '.':
          return pop("STOP");  // STOP
        case '(':
          marks_.push_back(stack_.size());
          break;
        case '}':
          push(make(Kind::kDict));
          break;  // EMPTY_DICT
        case ']':
          push(make(Kind::kList));
          break;  // EMPTY_LIST
        case ')':
          push(make(Kind::kTuple));
          break;  // EMPTY_TUPLE
        case 'N':
          push(make(Kind::kNone));
          break;
        case 0x88:
        case 0x89: {  // NEWTRUE / NEWFALSE
          auto v = make(Kind::kBool);
          v->boolean = op == 0x88;
          push(v);
          break;
        }
        case 'K':
          push(make_int(u8()));
          break;  // BININT1
        case 'M':
          push(make_int(le(2)));
          break;  // BININT2
        case 'J':
          push(make_int(static_cast<int32_t>(le(4))));
          break;  // BININT
        case 0x8a:
          push(make_int(long1(u8())));
          break;     // LONG1
        case 'G': {  // BINFLOAT, big-endian double
          const std::string raw = take(8);
          uint64_t bits = 0;
          for (unsigned char c : raw) bits = (bits << 8) | c;
          auto v = make(Kind::kFloat);
          std::memcpy(&v->real, &bits, 8);
          push(v);
          break;
        }
        case 'X':
          push(make_string(Kind::kString, take(le(4))));
          break;  // BINUNICODE
        case 0x8c:
          push(make_string(Kind::kString, take(u8())));
          break;  // SHORT_BINUNICODE
        case 0x8d:
          push(make_string(Kind::kString, take(le(8))));
          break;  // BINUNICODE8
        case 'C':
          push(make_string(Kind::kBytes, take(u8())));
          break;  // SHORT_BINBYTES
        case 'B':
          push(make_string(Kind::kBytes, take(le(4))));
          break;  // BINBYTES
        case 'q':
          memo_[u8()] = top();
          break;  // BINPUT
        case 'r':
          memo_[le(4)] = top();
          break;  // LONG_BINPUT
        case 0x94:
          memo_[memo_.size()] = top();
          break;  // MEMOIZE
        case 'h':
          push(memo(u8()));
          break;  // BINGET
        case 'j':
          push(memo(le(4)));
          break;     // LONG_BINGET
        case 'c': {  // GLOBAL
          const std::string module = line();
          push(make_string(Kind::kGlobal, module + "." + line()));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const ValuePtr name = pop("STACK_GLOBAL"), module = pop("STACK_GLOBAL");
          push(make_string(Kind::kGlobal, module->text + "." + name->text));
          break;
        }
        case 't': {  // TUPLE
          auto v = make(Kind::kTuple);
          v->items = pop_to_mark();
          for (const auto& item : v->items) adopt(v, item);
          push(v);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          auto v = make(Kind::kTuple);
          v->items.resize(op - 0x84);
          for (size_t i = v->items.size(); i-- > 0;) v->items[i] = pop("TUPLEn");
          for (const auto& item : v->items) adopt(v, item);
          push(v);
          break;
        }
        case 'a': {  // APPEND
          const ValuePtr item = pop("APPEND");
          const ValuePtr list = grow(expect(top(), Kind::kList, "APPEND"), "APPEND");
          adopt(list, item);
          list->items.push_back(item);
          break;
        }
        case 'e': {  // APPENDS
          auto items = pop_to_mark();
          const ValuePtr list = grow(expect(top(), Kind::kList, "APPENDS"), "APPENDS");
          for (const auto& item : items) adopt(list, item);
          list->items.insert(list->items.end(), items.begin(), items.end());
          break;
        }
        case 's': {  // SETITEM
          const ValuePtr value = pop("SETITEM"), key = pop("SETITEM");
          set_item(expect(top(), Kind::kDict, "SETITEM"), key, value);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = pop_to_mark();
          if (items.size() % 2) fail("SETITEMS with an odd number of items");
          const ValuePtr dict = expect(top(), Kind::kDict, "SETITEMS");
          for (size_t i = 0; i < items.size(); i += 2) set_item(dict, items[i], items[i + 1]);
          break;
        }
        case 'Q':
          push(persistent(pop("BINPERSID")));
          break;  // BINPERSID
        case 'R':
        case 0x81: {  // REDUCE / NEWOBJ
          const ValuePtr args = pop("REDUCE"), callable = pop("REDUCE");
          push(reduce(callable, args));
          break;
        }
        case 'b':
          pop("BUILD");
          break;  // BUILD: object state (e.g. a state dict's _metadata)
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(std::string("unsupported pickle opcode ") + hex);
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(where_ + ": byte " + std::to_string(op_pos_) + ": " + what);
  }

  uint8_t u8() {
    if (pos_ >= b_.size()) fail("truncated pickle (no STOP opcode)");
    return static_cast<uint8_t>(b_[pos_++]);
  }
  std::string take(uint64_t n) {
    if (n > b_.size() - pos_) fail("truncated pickle (needs " + std::to_string(n) + " bytes)");
    std::string out = b_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  uint64_t le(int n) {
    const std::string raw = take(n);
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(raw[i]);
    return v;
  }
  int64_t long1(int n) {
    if (n > 8) fail("integer wider than 64 bits");
    if (n == 0) return 0;
    uint64_t v = le(n);
    if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  std::string line() {
    const size_t end = b_.find('\n', pos_);
    if (end == std::string::npos) fail("truncated pickle (unterminated GLOBAL)");
    std::string out = b_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }

  void push(ValuePtr v) { stack_.push_back(std::move(v)); }
  ValuePtr pop(const char* op) {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) {
      fail(std::string(op) + " on an empty stack");
    }
    ValuePtr v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr top() {
    if (stack_.empty()) fail("memo/append on an empty stack");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark() {
    if (marks_.empty()) fail("no MARK before a collection opcode");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return items;
  }
  ValuePtr memo(uint64_t key) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) fail("memo key " + std::to_string(key) + " was never stored");
    return it->second;
  }
  ValuePtr expect(const ValuePtr& v, Kind kind, const char* op) {
    // OrderedDicts arrive as kDict already (see reduce); other objects cannot take items.
    if (v->kind != kind) fail(std::string(op) + " on a " + v->kind_name());
    return v;
  }
  // `child` goes inside `parent`: bounded depth, and `child` is final from now on.
  void adopt(const ValuePtr& parent, const ValuePtr& child) {
    if (child.get() == parent.get()) fail("a container inside itself");
    parent->depth = std::max(parent->depth, child->depth + 1);
    if (parent->depth > kMaxPickleDepth) fail("nesting deeper than " + std::to_string(kMaxPickleDepth) + " levels");
    child->nested = true;
  }
  const ValuePtr& grow(const ValuePtr& container, const char* op) {
    if (container->nested) fail(std::string(op) + " into a container already nested in another (not a state dict)");
    return container;
  }
  void set_item(const ValuePtr& dict, const ValuePtr& key, const ValuePtr& value) {
    grow(dict, "SETITEM");
    adopt(dict, key);
    adopt(dict, value);
    dict->items.push_back(key);
    dict->items.push_back(value);
  }

  ValuePtr persistent(const ValuePtr& pid) {
    // ('storage', <global torch.XStorage>, key, location, numel)
    if (pid->kind != Kind::kTuple || pid->items.size() < 5 || pid->items[0]->text != "storage") {
      fail("unsupported persistent id (not a torch storage)");
    }
    auto storage = make(Kind::kStorage);
    const std::string& type = pid->items[1]->text;
    storage->storage_type = type.substr(type.rfind('.') + 1);
    storage->text = pid->items[2]->text;
    storage->storage_numel = pid->items[4]->integer;
    return storage;
  }

  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args) {
    const std::string& name = callable->text;
    if (args->kind != Kind::kTuple) fail("REDUCE arguments are not a tuple");
    const auto& a = args->items;
    if (name == "collections.OrderedDict" || name == "builtins.dict") return make(Kind::kDict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (a.size() < 4 || a[0]->kind != Kind::kStorage || a[1]->kind != Kind::kInt) {
        fail("malformed _rebuild_tensor_v2 arguments");
      }
      auto t = make(Kind::kTensor);
      t->storage = a[0];
      t->storage_offset = a[1]->integer;
      t->sizes = int_list(a[2], "size", where_);
      t->strides = int_list(a[3], "stride", where_);
      if (t->sizes.size() != t->strides.size()) fail("tensor size and stride ranks differ");
      return t;
    }
    if (name == "torch._utils._rebuild_parameter" && !a.empty() && a[0]->kind == Kind::kTensor) {
      return a[0];
    }
    auto object = make_string(Kind::kObject, name);
    object->items = a;
    for (const auto& item : a) adopt(object, item);
    return object;
  }

  const std::string& b_;
  const std::string& where_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, ValuePtr> memo_;
};

}  // namespace

ValuePtr Value::get(const std::string& key) const {
  if (kind != Kind::kDict) return nullptr;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    if (items[i]->kind == Kind::kString && items[i]->text == key) return items[i + 1];
  }
  return nullptr;
}

const char* Value::kind_name() const {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTuple:
      return "tuple";
    case Kind::kList:
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kGlobal:
      return "global";
    case Kind::kStorage:
      return "storage";
    case Kind::kTensor:
      return "tensor";
    case Kind::kObject:
      return "object";
  }
  return "?";
}

ValuePtr unpickle(const std::string& bytes, const std::string& where) { return Unpickler(bytes, where).run(); }

}  // namespace gaze::pickle
