#include "libgaze/config/config.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <type_traits>

#include "libgaze/config/stage_set.h"
#include "libgaze/core/crc32c.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

// A list of sections (pipeline.variants) is one value, as a leaf is: set, overridden and copied
// whole; each entry's keys are read and checked as a section's are.
template <class T>
struct is_section_list : std::false_type {};
template <class S>
struct is_section_list<std::vector<S>> : std::bool_constant<std::is_class_v<S> && !std::is_same_v<S, std::string>> {};
template <class T>
constexpr bool is_section_list_v = is_section_list<T>::value;

template <class T>
constexpr bool is_leaf_v =
    std::is_same_v<T, bool> || std::is_same_v<T, int64_t> || std::is_same_v<T, double> ||
    std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<int64_t>> ||
    std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<std::string>> || is_section_list_v<T>;

// Where a value came from, for messages: a file (with line:column from the YAML mark) or a
// command-line override (the assignment itself; its marks are meaningless).
struct Source {
  std::string name;
  bool is_file = true;

  std::string at(const YAML::Mark& mark) const {
    if (!is_file || mark.is_null()) return name;
    return name + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
};

template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bool>) return "a boolean (true/false)";
  if constexpr (std::is_same_v<T, int64_t>) return "an integer";
  if constexpr (std::is_same_v<T, double>) return "a number";
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  if constexpr (std::is_same_v<T, std::vector<int64_t>>) return "a list of integers";
  if constexpr (std::is_same_v<T, std::vector<double>>) return "a list of numbers";
  if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of strings";
  if constexpr (is_section_list_v<T>) return "a list of sections (maps of keys)";
  return "a section (a map of keys)";
}

std::string describe(const YAML::Node& node) {
  if (node.IsNull()) return "nothing";
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  return "a map";
}

// Collects dotted paths of a section's leaves (and, for suggestions, of its sub-sections).
struct KeyLister {
  std::string prefix;
  std::vector<std::string>* out;
  bool with_sections = false;

  template <class T>
  void operator()(const char* key, T& value, const char*) {
    if constexpr (is_leaf_v<T>) {
      out->push_back(prefix + key);
    } else {
      if (with_sections) out->push_back(prefix + key);
      KeyLister child{prefix + key + ".", out, with_sections};
      value.visit(child);
    }
  }
};

// Names (not paths) of one section's direct fields.
struct FieldNames {
  std::vector<std::string> names;
  template <class T>
  void operator()(const char* key, T&, const char*) {
    names.emplace_back(key);
  }
};

template <class T>
void read_value(const YAML::Node& node, T& value, const std::string& path, const Source& source, Config& root);

// Reads the keys present in a YAML map into a section; absent keys keep their values.
template <class Section>
struct SectionReader {
  const YAML::Node& node;
  std::string prefix;
  const Source& source;
  Config& root;

  template <class T>
  void operator()(const char* key, T& value, const char*) {
    const YAML::Node child = node[key];
    if (child) read_value(child, value, prefix + key, source, root);
  }
};

std::vector<std::string> all_keys(Config& root, bool with_sections = false) {
  std::vector<std::string> keys;
  KeyLister lister{"", &keys, with_sections};
  root.visit(lister);
  return keys;
}

// "; did you mean 'model.dims'?" for a mistyped dotted key (leaf or section).
std::string key_suggestion(const std::string& key, Config& root) { return suggest_suffix(key, all_keys(root, true)); }

template <class Section>
void read_section(const YAML::Node& node, Section& section, const std::string& path, const Source& source, Config& root,
                  const std::set<std::string>& ignored = {}) {
  const std::string prefix = path.empty() ? "" : path + ".";
  if (!node.IsMap()) {
    throw Error(source.at(node.Mark()) + ": " + (path.empty() ? "config" : path) +
                ": expected a section (a map of keys), got " + describe(node));
  }
  FieldNames fields;
  section.visit(fields);
  std::map<std::string, std::string> seen;  // key -> where it was first set
  for (const auto& entry : node) {
    const std::string where = source.at(entry.first.Mark());
    if (!entry.first.IsScalar()) {  // "? [a, b]: 1" is valid YAML, but not a config key
      throw Error(where + ": " + (path.empty() ? "config" : path) + ": a key must be a name, got " +
                  describe(entry.first));
    }
    const std::string key = entry.first.as<std::string>();
    if (!seen.emplace(key, where).second) {
      throw Error(where + ": duplicate key '" + prefix + key + "' (first set at " + seen[key] + ")");
    }
    if (ignored.count(key)) continue;
    if (std::find(fields.names.begin(), fields.names.end(), key) == fields.names.end()) {
      const std::string full = prefix + key;
      throw Error(source.at(entry.first.Mark()) + ": unknown key '" + full + "'" + key_suggestion(full, root));
    }
  }
  SectionReader<Section> reader{node, prefix, source, root};
  section.visit(reader);
}

template <class T>
void read_value(const YAML::Node& node, T& value, const std::string& path, const Source& source, Config& root) {
  if constexpr (!is_leaf_v<T>) {
    read_section(node, value, path, source, root);
    return;
  } else {
    const auto fail = [&]() {
      return Error(source.at(node.Mark()) + ": " + path + ": expected " + type_name<T>() + ", got " + describe(node));
    };
    constexpr bool is_list = std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>> ||
                             std::is_same_v<T, std::vector<std::string>>;
    if constexpr (is_section_list_v<T>) {
      if (!node.IsSequence()) throw fail();
      for (auto it = root.origin.begin(); it != root.origin.end();) {  // the entries it replaces
        it = starts_with(it->first, path + "[") ? root.origin.erase(it) : std::next(it);
      }
      T parsed(node.size());
      for (size_t i = 0; i < node.size(); ++i) {
        read_section(node[i], parsed[i], path + "[" + std::to_string(i) + "]", source, root);
      }
      value = std::move(parsed);
    } else if constexpr (is_list) {
      if (!node.IsSequence()) throw fail();
      T parsed;
      for (const auto& item : node) {
        if (!item.IsScalar()) throw fail();
        try {
          parsed.push_back(item.as<typename T::value_type>());
        } catch (const YAML::Exception&) {
          throw Error(source.at(item.Mark()) + ": " + path + ": expected " + type_name<T>() + ", got '" +
                      item.Scalar() + "'");
        }
      }
      value = std::move(parsed);
    } else if (std::is_same_v<T, std::string> && node.IsNull()) {
      value = T{};  // `key:` or `key=` with nothing: the empty string
    } else {
      if (!node.IsScalar()) throw fail();
      try {
        value = node.as<T>();
      } catch (const YAML::Exception&) {
        throw fail();
      }
    }
    root.origin[path] = source.at(node.Mark());
  }
}

// Sees where each document starts and nothing else.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;
  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// One YAML document: a second one ("---" then more keys) would otherwise be ignored silently.
// We walk the documents with yaml-cpp's parser instead of YAML::LoadAll, which loops forever,
// allocating, on a stray ',' where a node should start (yaml-cpp 0.7, jbeder/yaml-cpp#1040;
// fixed upstream after 0.7): the parser then reports a new document at the same position again
// and again, which is where we stop. Found by fuzz/fuzz_config.
YAML::Node parse_yaml(const std::string& text, const Source& source) {
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    const std::vector<YAML::Mark>& m = starts.marks;
    while (m.size() < 3 && parser.HandleNextDocument(starts)) {
      if (m.size() >= 2 && m[m.size() - 1].pos == m[m.size() - 2].pos) {
        throw Error(source.at(m.back()) + ": invalid YAML: a ',' where a value or key should start");
      }
    }
    if (m.size() > 1) throw Error(source.at(m[1]) + ": a second YAML document; a config is one document");
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw Error(source.at(e.mark) + ": invalid YAML: " + e.msg);
  }
}

// The stage config files of `gaze run`, by key (dotted path) and field.
std::vector<std::pair<std::string, StageRef*>> stage_refs(Config& config) {
  PipelineStages& s = config.pipeline.stages;
  return {{"pipeline.stages.teacher_mae", &s.teacher_mae},  {"pipeline.stages.teacher_adapters", &s.teacher_adapters},
          {"pipeline.stages.distill", &s.distill},          {"pipeline.stages.student_adapters", &s.student_adapters},
          {"pipeline.stages.personalize", &s.personalize},  {"pipeline.stages.baseline", &s.baseline},
          {"pipeline.stages.student_full", &s.student_full}};
}

// Stage config paths a file names are relative to that file (as `extends` is); this rewrites
// the ones `file` just set into paths that hold from the working directory.
void resolve_stage_paths(Config& config, const fs::path& file) {
  for (auto& [key, ref] : stage_refs(config)) {
    const std::string origin = config_origin(config, key + ".config");
    if (ref->config.empty() || fs::path(ref->config).is_absolute()) continue;
    if (!starts_with(origin, file.string() + ":")) continue;
    ref->config = (file.parent_path() / ref->config).lexically_normal().string();
  }
}

// Reads one file into `config`, after the files it extends. `chain` detects cycles.
void read_file_into(const fs::path& path, Config& config, std::vector<fs::path>& chain) {
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(path, ec);
  if (std::find(chain.begin(), chain.end(), canonical) != chain.end()) {
    throw Error(path.string() + ": 'extends' cycle back to this file");
  }
  if (!fs::exists(path)) throw Error(path.string() + ": config file not found");
  if (!fs::is_regular_file(path)) throw Error(path.string() + ": not a config file (a directory?)");
  std::ifstream in(path, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad() || !in.is_open()) throw Error(path.string() + ": cannot read config file");
  const Source source{path.string(), true};
  const YAML::Node node = parse_yaml(text, source);
  if (node.IsNull()) return;  // an empty file means "all defaults"
  if (node.IsMap() && node["extends"]) {
    const YAML::Node extends = node["extends"];
    std::vector<std::string> parents;
    if (extends.IsScalar()) {
      parents = {extends.Scalar()};
    } else {
      read_value(extends, parents, "extends", source, config);
    }
    chain.push_back(canonical);
    for (const auto& parent : parents) read_file_into(path.parent_path() / parent, config, chain);
    chain.pop_back();
  }
  read_section(node, config, "", source, config, {"extends"});
  resolve_stage_paths(config, path);
}

// Emits a section as a YAML map with help comments.
struct Dumper {
  YAML::Emitter& out;

  template <class T>
  void operator()(const char* key, const T& value, const char* help) {
    out << YAML::Key << key << YAML::Value;
    if constexpr (is_section_list_v<T>) {
      // The help goes on the key's line: after a block list it would trail the last entry's key.
      if (value.empty()) {
        out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq << YAML::Comment(help);
        return;
      }
      out << YAML::Comment(help) << YAML::BeginSeq;
      for (const auto& item : value) {
        out << YAML::BeginMap;
        Dumper child{out};
        const_cast<typename T::value_type&>(item).visit(child);
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    } else if constexpr (is_leaf_v<T>) {
      if constexpr (std::is_same_v<T, std::vector<int64_t>> || std::is_same_v<T, std::vector<double>> ||
                    std::is_same_v<T, std::vector<std::string>>) {
        out << YAML::Flow << YAML::BeginSeq;
        for (const auto& item : value) out << item;
        out << YAML::EndSeq;
      } else {
        out << value;
      }
      out << YAML::Comment(help);
    } else {
      out << YAML::BeginMap;
      Dumper child{out};
      const_cast<T&>(value).visit(child);
      out << YAML::EndMap;
    }
  }
};

// Walks a dotted path to one leaf and reads a YAML value into it.
struct OverrideSetter {
  std::vector<std::string> parts;
  size_t depth;
  const YAML::Node& value;
  const Source& source;
  Config& root;
  bool found = false;

  template <class T>
  void operator()(const char* key, T& field, const char*) {
    if (found || parts[depth] != key) return;
    found = true;
    const std::string path = join({parts.begin(), parts.begin() + depth + 1}, ".");
    const bool last = depth + 1 == parts.size();
    if constexpr (is_leaf_v<T>) {
      if (!last) throw Error(source.name + ": '" + path + "' is a value, not a section");
      read_value(value, field, path, source, root);
    } else {
      if (last) {
        read_value(value, field, path, source, root);  // a whole section as a YAML map
        return;
      }
      OverrideSetter child{parts, depth + 1, value, source, root};
      field.visit(child);
      if (!child.found) {
        const std::string full = join(parts, ".");
        throw Error(source.name + ": unknown key '" + full + "'" + key_suggestion(full, root));
      }
    }
  }
};

// A leaf field of a config and how to assign it from the same field of another config.
struct LeafSlot {
  void* field;
  void (*assign)(void* dst, const void* src);
};

// Collects every leaf of a config by dotted path.
struct LeafSlots {
  std::string prefix;
  std::map<std::string, LeafSlot>* out;

  template <class T>
  void operator()(const char* key, T& value, const char*) {
    const std::string path = prefix + key;
    if constexpr (is_leaf_v<T>) {
      (*out)[path] = {&value, [](void* dst, const void* src) { *static_cast<T*>(dst) = *static_cast<const T*>(src); }};
    } else {
      LeafSlots child{path + ".", out};
      value.visit(child);
    }
  }
};

std::map<std::string, LeafSlot> leaf_slots(Config& config) {
  std::map<std::string, LeafSlot> slots;
  LeafSlots walker{"", &slots};
  config.visit(walker);
  return slots;
}

// Where a failed check's value came from; used by validate_config.
[[noreturn]] void invalid(const Config& config, const std::string& key, const std::string& what) {
  throw Error(config_origin(config, key) + ": " + key + ": " + what);
}

}  // namespace

void apply_override(Config& config, const std::string& assignment) {
  const Source source{"command line '" + assignment + "'", false};
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error(source.name + ": expected key.sub=value");
  }
  const std::string key = trim(assignment.substr(0, eq));
  const YAML::Node value = parse_yaml(assignment.substr(eq + 1), source);
  OverrideSetter setter{split(key, '.'), 0, value, source, config};
  config.visit(setter);
  if (!setter.found) {
    throw Error(source.name + ": unknown key '" + key + "'" + key_suggestion(key, config));
  }
}

const std::vector<std::string>& baseline_archs() {
  static const std::vector<std::string> archs = {"gazenet", "rtgene", "gazetr_hybrid"};
  return archs;
}

bool is_baseline_arch(const std::string& arch) {
  const auto& a = baseline_archs();
  return std::find(a.begin(), a.end(), arch) != a.end();
}

namespace {

// The depths and widths of a ConvNeXt V2 gaze network: sized before anything is allocated.
void validate_gaze_net_shape(Config& config) {
  ModelConfig& m = config.model;
  if (m.depths.size() != 4) invalid(config, "model.depths", "needs 4 entries (one per stage)");
  if (m.dims.size() != 4) invalid(config, "model.dims", "needs 4 entries (one per stage)");
  if (m.adapter.reduction < 1) invalid(config, "model.adapter.reduction", "must be >= 1");
  // Sizes are bounded before anything is allocated: a typo must not ask LibTorch for 100 GB.
  constexpr int64_t kMaxDepth = 64, kMaxDim = 4096;
  double weights = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (m.depths[i] < 1) invalid(config, "model.depths", "every stage needs at least one block");
    if (m.depths[i] > kMaxDepth) invalid(config, "model.depths", "at most 64 blocks per stage");
    if (m.dims[i] < 1) invalid(config, "model.dims", "every width must be positive");
    if (m.dims[i] > kMaxDim) invalid(config, "model.dims", "at most 4096 channels per stage");
    weights += 8.0 * double(m.depths[i]) * double(m.dims[i]) * double(m.dims[i]);
    if (m.adapter.enabled && m.dims[i] % m.adapter.reduction != 0) {
      invalid(config, "model.adapter.reduction", "must divide every stage width (" + std::to_string(m.dims[i]) + ")");
    }
  }
  if (weights > 5e8) {
    invalid(config, "model.depths",
            "with model.dims this is ~" + std::to_string(int64_t(weights * 4 / 1e9)) +
                " GB of fp32 weights; libgaze caps a model at 5e8 parameters");
  }
}

// A stage's `set` list (`key`): every override names a real key with a value of its type, none
// sets pipeline.*, and dataset entries ("openeds:...") only where the stage runs per dataset.
void validate_stage_set(const Config& config, const std::string& key, const std::vector<std::string>& set,
                        bool per_dataset) {
  Config scratch;
  for (const auto& entry : set) {
    try {
      const StageSetEntry e = parse_stage_set_entry(entry);
      if (starts_with(e.assignment, "pipeline.")) throw Error("'" + entry + "': a stage cannot set pipeline.*");
      if (!e.dataset.empty() && !per_dataset) {
        throw Error("'" + entry + "' is for one dataset, but this stage is shared by all of them");
      }
      apply_override(scratch, e.assignment);
    } catch (const Error& e) {
      invalid(config, key, e.what());
    }
  }
}

// pipeline.variants: names that make distinct rows and run folders, known models, valid sets.
void validate_variants(const Config& config) {
  const std::vector<PipelineVariant>& variants = config.pipeline.variants;
  for (size_t i = 0; i < variants.size(); ++i) {
    const PipelineVariant& v = variants[i];
    const std::string key = "pipeline.variants[" + std::to_string(i) + "]";
    const auto refuse = [&](const std::string& field, const std::string& what) {
      const std::string origin = config.origin.count(key + "." + field) ? config_origin(config, key + "." + field)
                                                                        : config_origin(config, "pipeline.variants");
      throw Error(origin + ": " + key + "." + field + ": " + what);
    };
    if (v.name.empty()) refuse("name", "every variant needs a name (its rows are <model>_<name>)");
    if (v.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
      refuse("name", "'" + v.name + "': only a-z, 0-9 and _ (it names run folders)");
    // "<model>_adapters_<dataset>" is the paper's run; "<model>_full" is pipeline.full_finetune's row.
    if (v.name == "adapters" || v.name == "full")
      refuse("name", "'" + v.name + "' is taken by the pipeline's own runs; choose another");
    for (size_t j = 0; j < i; ++j) {
      if (variants[j].name == v.name)
        refuse("name", "'" + v.name + "' is also the name of variant " + std::to_string(j));
    }
    if (v.models.empty()) refuse("models", "needs teacher, student or both");
    for (size_t j = 0; j < v.models.size(); ++j) {
      const std::string& m = v.models[j];
      if (m != "teacher" && m != "student")
        refuse("models", "unknown model '" + m + "'" + suggest_suffix(m, {"teacher", "student"}));
      if (std::find(v.models.begin(), v.models.begin() + long(j), m) != v.models.begin() + long(j))
        refuse("models", "'" + m + "' is listed twice");
    }
    validate_stage_set(config, key + ".set", v.set, /*per_dataset=*/true);
    for (const std::string model : {"teacher", "student"}) {
      const std::vector<std::string>& own = v.own_set(model);
      if (!own.empty() && !v.trains(model))
        refuse(model + "_set", "the variant does not train the " + model + " (models: [" + join(v.models, ", ") +
                                   "]); add it to models or drop these overrides");
      validate_stage_set(config, key + "." + model + "_set", own, /*per_dataset=*/true);
    }
  }
}

}  // namespace

void validate_config(Config& config) {
  ModelConfig& m = config.model;
  if (m.arch == "teacher" || m.arch == "student") {
    const std::vector<int64_t> depths = {2, 2, 6, 2};
    const std::vector<int64_t> dims =
        m.arch == "teacher" ? std::vector<int64_t>{40, 80, 160, 320} : std::vector<int64_t>{40, 20, 40, 80};
    // Presets fill what was not set explicitly — again on every validation, so overriding
    // model.arch on a resolved config switches the preset too.
    if (m.depths.empty() || !config.origin.count("model.depths")) m.depths = depths;
    if (m.dims.empty() || !config.origin.count("model.dims")) m.dims = dims;
  } else if (is_baseline_arch(m.arch)) {
    m.depths.clear();  // a published architecture: nothing to configure
    m.dims.clear();
  } else if (m.arch != "custom") {
    std::vector<std::string> archs = {"teacher", "student", "custom"};
    for (const auto& b : baseline_archs()) archs.push_back(b);
    invalid(config, "model.arch", "unknown architecture '" + m.arch + "'" + suggest_suffix(m.arch, archs));
  }
  if (!is_baseline_arch(m.arch)) validate_gaze_net_shape(config);
  if (m.head.grid.size() != 2 || m.head.grid[0] < 1 || m.head.grid[1] < 1 || m.head.grid[0] > 16 ||
      m.head.grid[1] > 16) {
    invalid(config, "model.head.grid", "needs [rows, cols], each in 1..16");
  }
  if (m.head.keypoints < 0 || m.head.keypoints == 1 || m.head.keypoints > 64) {
    // One key point less its centroid is always (0, 0): nothing for the head to read.
    invalid(config, "model.head.keypoints", "must be 0 (none) or 2..64 (read relative to each other)");
  }
  if (m.in_chans != 1 && m.in_chans != 3) invalid(config, "model.in_chans", "must be 1 or 3");
  if (m.drop_path < 0 || m.drop_path >= 1) invalid(config, "model.drop_path", "must be in [0, 1)");
  if (!(m.ln_eps > 0)) invalid(config, "model.ln_eps", "must be > 0");
  const DataConfig& data = config.data;
  if (data.openeds_size.size() != 2) invalid(config, "data.openeds_size", "needs [H, W]");
  if (data.eye != "pair" && data.eye != "left" && data.eye != "right" && data.eye != "both") {
    invalid(config, "data.eye", "must be pair, left, right or both");
  }
  if (data.input_size.size() != 2 || data.input_size[0] < 32 || data.input_size[1] < 32) {
    invalid(config, "data.input_size", "needs [H, W], each >= 32 (the network downsamples by 32)");
  }
  if (data.input_size[0] > 4096 || data.input_size[1] > 4096)
    invalid(config, "data.input_size", "at most 4096 per side");
  if (data.workers < 1) invalid(config, "data.workers", "must be >= 1");
  if (data.workers > 256) invalid(config, "data.workers", "at most 256 decode threads");
  if (data.cache_mib < 0 || data.cache_mib > (int64_t(1) << 30))
    invalid(config, "data.cache_mib", "must be in [0, 2^30]");
  if (config.run.dist_timeout_s < 1) invalid(config, "run.dist_timeout_s", "must be >= 1");
  if (data.max_image_pixels < 1 || data.max_image_pixels > (int64_t(1) << 31)) {
    invalid(config, "data.max_image_pixels", "must be in 1..2^31");
  }
  if (data.max_record_mib < 1 || data.max_record_mib > 4095) {
    invalid(config, "data.max_record_mib", "must be in 1..4095 (VRS sizes are 32-bit)");
  }
  if (data.prefetch < 1) invalid(config, "data.prefetch", "must be >= 1");
  if (data.hold_out < -1) invalid(config, "data.hold_out", "must be a pXX number, or -1 for none");
  if (data.train_people < -1 || data.train_people == 0)
    invalid(config, "data.train_people", "must be >= 1, or -1 for every train person");
  if (data.mpii_subset != "evaluation" && data.mpii_subset != "all")
    invalid(config, "data.mpii_subset", "must be evaluation or all");
  if (data.tolerance_us < 0) invalid(config, "data.tolerance_us", "must be >= 0");
  const SynthConfig& sy = config.synth;
  const std::vector<std::string> layouts = {"openeds", "aea", "mpiigaze", "mpiifacegaze", "images"};
  for (const auto& layout : sy.layouts) {
    if (std::find(layouts.begin(), layouts.end(), layout) == layouts.end())
      invalid(config, "synth.layouts", "unknown layout '" + layout + "'" + suggest_suffix(layout, layouts));
  }
  if (sy.mpii_images < 2) invalid(config, "synth.mpii_images", "needs at least 2 (a day file and a one-image day)");
  if (sy.mpii_evaluation < 2 || sy.mpii_evaluation > sy.mpii_images)
    invalid(config, "synth.mpii_evaluation", "must be in [2, synth.mpii_images]");
  if (sy.mpii_frame.size() != 2 || sy.mpii_frame[0] < 120 || sy.mpii_frame[1] < 160 || sy.mpii_frame[0] > 4096 ||
      sy.mpii_frame[1] > 4096)
    invalid(config, "synth.mpii_frame", "needs [H, W] with H in [120, 4096] and W in [160, 4096]");
  if (sy.participants < 3) invalid(config, "synth.participants", "needs at least 3 (one per split)");
  if (!(sy.train_participants > 0 && sy.validation_participants > 0 &&
        sy.train_participants + sy.validation_participants < 1)) {
    invalid(config, "synth.train_participants", "train and validation fractions must be > 0 and sum below 1");
  }
  if (config.pipeline.mpii_protocol != "fold" && config.pipeline.mpii_protocol != "leave_one_out") {
    invalid(config, "pipeline.mpii_protocol",
            "unknown protocol '" + config.pipeline.mpii_protocol + "'" +
                suggest_suffix(config.pipeline.mpii_protocol, {"fold", "leave_one_out"}));
  }
  const auto& seeds = config.pipeline.seeds;
  for (size_t i = 0; i < seeds.size(); ++i) {
    if (seeds[i] < 0) invalid(config, "pipeline.seeds", "seeds must be >= 0, got " + std::to_string(seeds[i]));
    if (std::find(seeds.begin(), seeds.begin() + long(i), seeds[i]) != seeds.begin() + long(i))
      invalid(config, "pipeline.seeds", "seed " + std::to_string(seeds[i]) + " is listed twice");
  }
  for (const char* key : {"pipeline.teacher_source", "pipeline.distill_source"}) {
    const std::string& v =
        std::string(key) == "pipeline.teacher_source" ? config.pipeline.teacher_source : config.pipeline.distill_source;
    if (v != "eyes" && v != "images") {
      invalid(config, key, "unknown source '" + v + "'" + suggest_suffix(v, {"eyes", "images"}));
    }
  }
  if (sy.images < 1) invalid(config, "synth.images", "must be >= 1");
  if (sy.image_classes < 1) invalid(config, "synth.image_classes", "must be >= 1");
  for (const char* key : {"synth.openeds_size", "synth.aea_size", "synth.image_size"}) {
    const std::string k = key;
    const auto& size = k == "synth.openeds_size" ? sy.openeds_size
                       : k == "synth.aea_size"   ? sy.aea_size
                                                 : sy.image_size;
    if (size.size() != 2 || size[0] < 32 || size[1] < 32) invalid(config, key, "needs [H, W], each >= 32");
  }
  if (sy.aea_size.size() == 2 && sy.aea_size[1] % 2) invalid(config, "synth.aea_size", "width must be even (two eyes)");
  if (sy.test_frames < 6) invalid(config, "synth.test_frames", "needs at least 6 (5 calibration + 1 to evaluate)");
  if (sy.train_frames < 1 || sy.validation_frames < 1 || sy.aea_frames < 1) {
    invalid(config, "synth.train_frames", "frame counts must be positive");
  }
  if (sy.jpeg_quality < 1 || sy.jpeg_quality > 100) invalid(config, "synth.jpeg_quality", "must be in 1..100");
  if (sy.camera_tilt_deg.size() != 2 || std::fabs(sy.camera_tilt_deg[0]) > 45 || std::fabs(sy.camera_tilt_deg[1]) > 45)
    invalid(config, "synth.camera_tilt_deg", "needs [yaw, pitch], each within +-45 degrees");
  const auto valid_range = [](const std::vector<double>& r, double lo, double hi) {
    return r.size() == 2 && r[0] >= lo && r[0] <= r[1] && r[1] <= hi;
  };
  if (!valid_range(sy.eye_distance_mm, 18, 60))
    invalid(config, "synth.eye_distance_mm", "needs [min, max] within 18..60 mm");
  if (!(sy.eye_offset_mm >= 0 && sy.eye_offset_mm <= 8)) invalid(config, "synth.eye_offset_mm", "must be in 0..8 mm");
  if (sy.leds < 0 || sy.leds > 16) invalid(config, "synth.leds", "must be in 0..16");
  if (!valid_range(sy.exposure, 0.1, 4)) invalid(config, "synth.exposure", "needs [min, max] within 0.1..4");
  if (!(sy.light_gradient >= 0 && sy.light_gradient < 1)) invalid(config, "synth.light_gradient", "must be in [0, 1)");
  if (!(sy.anatomy_spread >= 0 && sy.anatomy_spread <= 2.5))
    invalid(config, "synth.anatomy_spread", "must be in 0..2.5 (wider would draw impossible eyes)");
  if (!valid_range(sy.iris_brightness, 10, 250))
    invalid(config, "synth.iris_brightness", "needs [min, max] within 10..250");
  const TrainConfig& t = config.train;
  if (t.steps < 1) invalid(config, "train.steps", "must be >= 1");
  if (t.batch_size < 1) invalid(config, "train.batch_size", "must be >= 1");
  if (!(t.lr > 0)) invalid(config, "train.lr", "must be > 0");
  if (t.min_lr < 0 || t.min_lr > t.lr) invalid(config, "train.min_lr", "must be in [0, train.lr]");
  if (t.warmup_steps < 0) invalid(config, "train.warmup_steps", "must be >= 0");
  if (t.clip_grad < 0) invalid(config, "train.clip_grad", "must be >= 0 (0 = off)");
  if (!(t.ema >= 0 && t.ema < 1)) invalid(config, "train.ema", "must be in [0, 1) (0 = off)");
  if (t.checkpoint_every < 1) invalid(config, "train.checkpoint_every", "must be >= 1");
  if (t.log_every < 1) invalid(config, "train.log_every", "must be >= 1");
  if (t.clusters < 1) invalid(config, "train.clusters", "must be >= 1");
  const AugmentConfig& a = t.augmentation;
  if (!(a.shift >= 0 && a.shift <= 0.5)) invalid(config, "train.augmentation.shift", "must be in 0..0.5");
  if (!(a.scale >= 0 && a.scale <= 0.5)) invalid(config, "train.augmentation.scale", "must be in 0..0.5");
  if (!(a.brightness >= 0 && a.brightness <= 1)) invalid(config, "train.augmentation.brightness", "must be in 0..1");
  if (!(a.contrast >= 0 && a.contrast < 1)) invalid(config, "train.augmentation.contrast", "must be in [0, 1)");
  if (!(a.gamma >= 0 && a.gamma <= 2)) invalid(config, "train.augmentation.gamma", "must be in 0..2");
  if (!(a.noise >= 0 && a.noise <= 64)) invalid(config, "train.augmentation.noise", "must be in 0..64 grey levels");
  if (a.focal == -1) {
    invalid(config, "train.augmentation.focal",
            "-1 (auto) belongs in a gaze run stage's set (pipeline.stages.<stage>.set), which makes it the renderer's "
            "focal length for the data the pipeline renders; elsewhere give the camera's in image widths, or 0");
  }
  if (!(a.focal >= 0 && a.focal <= 100))
    invalid(config, "train.augmentation.focal", "must be in 0..100 image widths, or -1");
  if (a.focal > 0 && config.data.eye == "pair") {
    invalid(config, "train.augmentation.focal", "is per eye image: not with data.eye=pair (two eyes side by side)");
  }
  if (a.tilt.size() != 2 || std::fabs(a.tilt[0]) > 45 || std::fabs(a.tilt[1]) > 45)
    invalid(config, "train.augmentation.tilt", "needs [yaw, pitch], each within +-45 degrees");
  if (a.warp && a.focal == 0) {
    invalid(config, "train.augmentation.warp",
            "turns the camera: needs its focal length (train.augmentation.focal > 0, or -1 in a gaze run stage)");
  }
  if (!(a.roll >= 0 && a.roll <= 45)) invalid(config, "train.augmentation.roll", "must be in 0..45 degrees");
  if (a.roll > 0 && !a.warp)
    invalid(config, "train.augmentation.roll", "turns the camera through the warp: needs train.augmentation.warp=true");
  const std::string& source = config.data.source;
  if (a.focal > 0 && (starts_with(source, "mpiigaze:") || starts_with(source, "mpiifacegaze:"))) {
    invalid(config, "train.augmentation.focal",
            "turns labels in the OpenEDS / AEA frame; MPII's normalised labels point y and z the other way");
  }
  if (t.gaze_loss != "l1" && t.gaze_loss != "laplace_nll") {
    invalid(config, "train.gaze_loss",
            "unknown loss '" + t.gaze_loss + "'" + suggest_suffix(t.gaze_loss, {"l1", "laplace_nll"}));
  }
  if (t.tune != "adapters" && t.tune != "all") {
    invalid(config, "train.tune", "unknown '" + t.tune + "'" + suggest_suffix(t.tune, {"adapters", "all"}));
  }
  if (t.head_init != "face_data" && t.head_init != "mean_gaze" && t.head_init != "random") {
    invalid(config, "train.head_init",
            "unknown '" + t.head_init + "'" + suggest_suffix(t.head_init, {"face_data", "mean_gaze", "random"}));
  }
  if (t.gaze_loss == "laplace_nll" && !config.model.head.uncertainty) {
    invalid(config, "train.gaze_loss", "laplace_nll needs the scale output (model.head.uncertainty: true)");
  }
  const MaeConfig& mae = config.mae;
  if (!(mae.mask_ratio > 0 && mae.mask_ratio < 1)) invalid(config, "mae.mask_ratio", "must be in (0, 1)");
  if (mae.patch < 32 || mae.patch % 32) invalid(config, "mae.patch", "must be a multiple of 32");
  // The ConvNeXt networks downsample by 32 and mask mae.patch squares; a baseline takes its own size.
  if (!is_baseline_arch(config.model.arch) && data.input_size.size() == 2 &&
      (data.input_size[0] % mae.patch || data.input_size[1] % mae.patch)) {
    invalid(config, "data.input_size", "must be a multiple of mae.patch (" + std::to_string(mae.patch) + ")");
  }
  if (mae.decoder_dim < 8) invalid(config, "mae.decoder_dim", "must be >= 8");
  if (mae.kd_weight < 0) invalid(config, "mae.kd_weight", "must be >= 0");
  const PersonalizeConfig& pz = config.personalize;
  if (pz.k < 0) invalid(config, "personalize.k", "must be >= 0");
  if (pz.steps < 1) invalid(config, "personalize.steps", "must be >= 1");
  if (!(pz.gap_ms >= 0)) invalid(config, "personalize.gap_ms", "must be >= 0");
  if (!(pz.calibration_window_ms >= 0)) invalid(config, "personalize.calibration_window_ms", "must be >= 0");
  if (!(pz.replay_fraction >= 0 && pz.replay_fraction < 1)) {
    invalid(config, "personalize.replay_fraction", "must be in [0, 1)");
  }
  const std::vector<std::string>& datasets = gaze_datasets();
  for (const auto& d : config.pipeline.datasets) {
    if (std::find(datasets.begin(), datasets.end(), d) == datasets.end()) {
      invalid(config, "pipeline.datasets", "unknown dataset '" + d + "'" + suggest_suffix(d, datasets));
    }
  }
  for (const auto& b : config.pipeline.baselines) {
    if (!is_baseline_arch(b)) {
      invalid(config, "pipeline.baselines", "unknown baseline '" + b + "'" + suggest_suffix(b, baseline_archs()));
    }
  }
  if (config.pipeline.datasets.empty()) invalid(config, "pipeline.datasets", "needs at least one dataset");
  for (auto& [key, ref] : stage_refs(config)) {
    validate_stage_set(config, key + ".set", ref->set, stage_runs_per_dataset(key.substr(key.rfind('.') + 1)));
  }
  validate_variants(config);
  const ExportConfig& ex = config.export_;
  if (!ex.input_size.empty() && (ex.input_size.size() != 2 || ex.input_size[0] < 32 || ex.input_size[1] < 32 ||
                                 ex.input_size[0] % 32 || ex.input_size[1] % 32)) {
    invalid(config, "export.input_size", "needs [H, W], multiples of 32 (the network downsamples by 32)");
  }
  if (ex.calibration_frames < 1) invalid(config, "export.calibration_frames", "must be >= 1");
  if (ex.observer != "minmax" && ex.observer != "percentile") {
    invalid(config, "export.observer",
            "unknown observer '" + ex.observer + "'" + suggest_suffix(ex.observer, {"minmax", "percentile"}));
  }
  if (!(ex.percentile > 50 && ex.percentile <= 100)) invalid(config, "export.percentile", "must be in (50, 100]");
  if (ex.eval_frames < 0) invalid(config, "export.eval_frames", "must be >= 0");
  if (ex.arena_budget_kb < 1) invalid(config, "export.arena_budget_kb", "must be >= 1");
  if (ex.int8_hidden != "auto" && ex.int8_hidden != "none" && ex.int8_hidden != "all") {
    invalid(config, "export.int8_hidden",
            "unknown choice '" + ex.int8_hidden + "'" + suggest_suffix(ex.int8_hidden, {"auto", "none", "all"}));
  }
  if (ex.int8 != "auto" && ex.int8 != "none" && ex.int8 != "all") {
    invalid(config, "export.int8",
            "unknown choice '" + ex.int8 + "'" + suggest_suffix(ex.int8, {"auto", "none", "all"}));
  }
  if (!(ex.int8_budget_deg > 0 && ex.int8_budget_deg <= 10))
    invalid(config, "export.int8_budget_deg", "must be in (0, 10]");
  if (!(ex.int8_max_deg > 0 && ex.int8_max_deg <= 10)) invalid(config, "export.int8_max_deg", "must be in (0, 10]");
  if (ex.int8_frames < 1) invalid(config, "export.int8_frames", "must be >= 1");
  if (ex.weight_rounding != "nearest" && ex.weight_rounding != "gptq") {
    invalid(config, "export.weight_rounding",
            "unknown rounding '" + ex.weight_rounding + "'" + suggest_suffix(ex.weight_rounding, {"nearest", "gptq"}));
  }
  if (config.run.threads < 0) invalid(config, "run.threads", "must be >= 0 (0 = all cores)");
  if (config.run.threads > 1024) invalid(config, "run.threads", "at most 1024 (0 = all cores)");
  const std::string& name = config.run.name;
  if (name.empty()) invalid(config, "run.name", "must not be empty");
  // The run directory is out_dir/name: a name must not climb out of out_dir or replace it.
  if (name.find('/') != std::string::npos || name == "." || name == "..") {
    invalid(config, "run.name", "must be one folder name inside run.out_dir (no '/', '.' or '..')");
  }
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Config config;
  std::vector<fs::path> chain;
  read_file_into(path, config, chain);
  for (const auto& o : overrides) apply_override(config, o);
  validate_config(config);
  return config;
}

Config parse_config(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides) {
  Config config;
  const Source source{source_name, true};
  const YAML::Node node = parse_yaml(yaml_text, source);
  if (!node.IsNull()) read_section(node, config, "", source, config);
  for (const auto& o : overrides) apply_override(config, o);
  validate_config(config);
  return config;
}

Config default_config(const std::vector<std::string>& overrides) {
  Config config;
  for (const auto& o : overrides) apply_override(config, o);
  validate_config(config);
  return config;
}

std::string config_hash(const Config& config) {
  const std::string text = dump_config(config);
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", crc32c(text.data(), text.size()));
  return hex;
}

std::string dump_config(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  Dumper dumper{out};
  const_cast<Config&>(config).visit(dumper);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> config_keys() {
  Config config;
  return all_keys(config);
}

std::string config_origin(const Config& config, const std::string& key) {
  const auto it = config.origin.find(key);
  return it == config.origin.end() ? "default" : it->second;
}

void copy_explicit_keys(const Config& from, Config& to, const std::vector<std::string>& skip_prefixes) {
  const auto source = leaf_slots(const_cast<Config&>(from));
  const auto target = leaf_slots(to);
  for (const auto& entry : from.origin) {
    const std::string& key = entry.first;
    const bool skipped = std::any_of(skip_prefixes.begin(), skip_prefixes.end(),
                                     [&](const std::string& p) { return starts_with(key, p); });
    const auto src = source.find(key);
    if (skipped || src == source.end()) continue;
    const LeafSlot& dst = target.at(key);
    dst.assign(dst.field, src->second.field);
    to.origin[key] = entry.second;
  }
}

}  // namespace gaze
