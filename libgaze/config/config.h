// The experiment configuration: typed sections with defaults, read from YAML.
//
// A section is a struct whose `visit(v)` names each field once: v("key", member, "help").
// That one list drives reading (unknown keys rejected with the nearest valid key, type errors
// reported as file:line:column), `key.sub=value` overrides, dumping the resolved config (with
// the help text as comments) and the list of valid keys. Add a field = add one line.
//
// A config file may start with `extends: other.yaml` (path relative to the file; a list is
// allowed): the named files are read first, then this file's keys override theirs.
//
// load_config() also validates and resolves presets (e.g. model.arch=student fills depths and
// dims), so every value in a Config is final; dump_config() of it is the resolved config that
// is written into each run directory.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gaze {

struct AdapterConfig {
  bool enabled = true;
  int64_t reduction = 4;
  double slope = 0.01;

  template <class V>
  void visit(V& v) {
    v("enabled", enabled, "add a bottleneck adapter to every block (identity at init)");
    v("reduction", reduction, "bottleneck width = block width / reduction");
    v("slope", slope, "LeakyReLU negative slope inside the adapter");
  }
};

struct HeadConfig {
  bool uncertainty = true;

  template <class V>
  void visit(V& v) {
    v("uncertainty", uncertainty,
      "train the 4th output as a Laplace log-scale (NLL loss); false: plain L1 on the direction");
  }
};

struct ModelConfig {
  std::string arch = "student";
  std::vector<int64_t> depths;  // empty: taken from `arch`
  std::vector<int64_t> dims;    // empty: taken from `arch`
  int64_t in_chans = 3;
  double drop_path = 0.0;
  double ln_eps = 1e-6;
  AdapterConfig adapter;
  HeadConfig head;

  template <class V>
  void visit(V& v) {
    v("arch", arch, "teacher (ConvNeXt V2-Atto) | student (DFT Gaze) | custom");
    v("depths", depths, "blocks per stage; empty = the arch preset");
    v("dims", dims, "channels per stage; empty = the arch preset");
    v("in_chans", in_chans, "input channels (grey eye images are replicated to 3)");
    v("drop_path", drop_path, "stochastic depth rate, linearly increasing over blocks");
    v("ln_eps", ln_eps, "LayerNorm epsilon");
    v("adapter", adapter, "gaze adapters inside every block");
    v("head", head, "gaze head: pool -> LayerNorm -> Linear(4)");
  }
};

struct RunConfig {
  std::string name = "run";
  std::string out_dir = "runs";
  int64_t seed = 0;
  int64_t threads = 0;

  template <class V>
  void visit(V& v) {
    v("name", name, "run name; the run directory is out_dir/name");
    v("out_dir", out_dir, "parent folder of run directories");
    v("seed", seed, "seed for every random number generator");
    v("threads", threads, "intra-op threads; 0 = all cores");
  }
};

struct Config {
  ModelConfig model;
  RunConfig run;

  template <class V>
  void visit(V& v) {
    v("model", model, "network architecture");
    v("run", run, "where and how a run is executed");
  }

  // Where each key got its value ("cfg.yaml:3:9", "command line 'a.b=1'"); absent = default.
  std::map<std::string, std::string> origin;
};

// Reads `path` (following `extends`), applies `overrides` ("key.sub=value"), validates.
// Throws gaze::Error with file:line:column (or the override) on any problem.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Same from YAML text; `source` names it in error messages.
Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides = {});

// Defaults only (validated), plus overrides.
Config default_config(const std::vector<std::string>& overrides = {});

// Applies one "key.sub=value" override (value is YAML: 3, true, [1,2], text).
void apply_override(Config& config, const std::string& assignment);

// Fills presets and checks invariants; errors name the key and where its value came from.
void validate_config(Config& config);

// The resolved config as YAML, every key present, help text as comments.
std::string dump_config(const Config& config);

// All leaf keys as dotted paths ("model.adapter.slope", ...).
std::vector<std::string> config_keys();

// "cfg.yaml:3:9" for a key set from a file, "default" when never set.
std::string config_origin(const Config& config, const std::string& key);

}  // namespace gaze
