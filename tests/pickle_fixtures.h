// Hand-assembled pickles in the exact byte form torch.save() writes (protocol 2), so the
// pickle reader and the archive reader can be tested without Python.
#pragma once

#include <cstdint>
#include <string>

namespace gaze::testing {

using namespace std::string_literals;

// Protocol-2 BINUNICODE of a short string.
inline std::string pickle_str(const std::string& s) {
  std::string out = "X";
  const uint32_t n = static_cast<uint32_t>(s.size());
  out.append(reinterpret_cast<const char*>(&n), 4);
  return out + s;
}

// One tensor `name` = FloatStorage "0" viewed as 2x3 (strides 3,1), inside
// {"model": OrderedDict([(name, tensor)]), "epoch": 7} — an official checkpoint in miniature.
inline std::string tiny_state_dict_pickle(const std::string& name = "w") {
  std::string p = "\x80\x02}q\x00"s;
  p += pickle_str("model") + "q\x01";
  p += "ccollections\nOrderedDict\nq\x02)Rq\x03";
  p += pickle_str(name) + "q\x04";
  p += "ctorch._utils\n_rebuild_tensor_v2\nq\x05(";
  p += "(" + pickle_str("storage") + "ctorch\nFloatStorage\nq\x06" + pickle_str("0") + pickle_str("cpu") +
       "K\x06tq\x07Q";
  p += "K\x00"s + "K\x02K\x03\x86q\x08" + "K\x03K\x01\x86q\x09" + "\x89";
  p += "ccollections\nOrderedDict\n)R";
  p += "tq\x0aRq\x0b";
  p += "s";  // od[name] = tensor
  p += "}q\x0c"
       "b";  // BUILD: the state dict's _metadata (ignored)
  p += "s";  // root["model"] = od
  p += pickle_str("epoch") + "K\x07s";
  p += ".";
  return p;
}

}  // namespace gaze::testing
