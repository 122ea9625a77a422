// A small reader for the Python pickles inside torch.save() archives (no torch, no Python).
//
// It understands the opcodes pickle protocols 2–5 emit for state dicts — dicts, OrderedDicts,
// lists, tuples, strings, numbers, globals, persistent ids — and turns the two torch-specific
// constructs into plain values:
//   persistent id ('storage', torch.FloatStorage, key, location, numel) -> kStorage
//   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) -> kTensor
//   torch._utils._rebuild_parameter(tensor, ...) -> that tensor
// Any other REDUCE/NEWOBJ becomes an opaque kObject (never executed). Malformed or truncated
// input throws gaze::Error naming `where` and the byte offset.
//
// Nesting is bounded (kMaxPickleDepth levels), and a container may not grow once it sits inside
// another: Python's pickler finishes a container before nesting it, so state dicts never do,
// while crafted pickles that do could build cycles or nest deep enough to overflow the stack.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gaze::pickle {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

constexpr int32_t kMaxPickleDepth = 256;

struct Value {
  enum class Kind {
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kBytes,
    kTuple,
    kList,
    kDict,
    kGlobal,
    kStorage,
    kTensor,
    kObject
  };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  // kString/kBytes: the text; kGlobal/kObject: "module.name"; kStorage: the record key.
  std::string text;
  // kTuple/kList/kObject args; kDict: keys and values alternating, in insertion order.
  std::vector<ValuePtr> items;
  // kStorage: element type ("FloatStorage") and element count.
  std::string storage_type;
  int64_t storage_numel = 0;
  // kTensor: which storage, and the view on it.
  ValuePtr storage;
  int64_t storage_offset = 0;
  std::vector<int64_t> sizes, strides;
  // Levels of containers below and including this one; set once it is inside another.
  int32_t depth = 1;
  bool nested = false;

  // kDict lookup by string key; nullptr when absent.
  ValuePtr get(const std::string& key) const;
  const char* kind_name() const;
};

ValuePtr unpickle(const std::string& bytes, const std::string& where);

}  // namespace gaze::pickle
