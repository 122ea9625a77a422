#include "trainers/conditions_report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include "libgaze/config/run_dir.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/json.h"
#include "libgaze/core/strings.h"
#include "trainers/report.h"
#include "trainers/tables.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

double number_at(const Json& object, const std::string& key, const std::string& source) {
  const Json& v = json_at(object, key, source);
  if (!v.is_number()) throw Error(source + ": '" + key + "' is not a number");
  return v.get<double>();
}

std::vector<int64_t> seeds_at(const Json& object, const std::string& source) {
  const Json& v = json_at(object, "seeds", source);
  if (!v.is_array() || v.empty()) throw Error(source + ": 'seeds' is not a list of training seeds");
  std::vector<int64_t> seeds;
  for (const Json& seed : v) {
    if (!seed.is_number_integer()) throw Error(source + ": 'seeds' holds " + seed.dump() + ", not a seed");
    seeds.push_back(seed.get<int64_t>());
  }
  return seeds;
}

std::vector<std::string> strings_at(const Json& object, const std::string& key, const std::string& source) {
  const Json& v = json_at(object, key, source);
  if (!v.is_array()) throw Error(source + ": '" + key + "' is not a list");
  std::vector<std::string> out;
  for (const Json& item : v) {
    if (!item.is_string()) throw Error(source + ": '" + key + "' holds " + item.dump() + ", not a string");
    out.push_back(item.get<std::string>());
  }
  return out;
}

// "the recipe as it is" or "`a=1`, `b=2`".
std::string recipe_words(const std::vector<std::string>& recipe) {
  if (recipe.empty()) return "the recipe as it is";
  std::string words;
  for (const std::string& o : recipe) words += (words.empty() ? "`" : ", `") + o + "`";
  return words;
}

// "the paper's student and teacher" or "variant grid".
std::string variant_words(const std::string& variant) {
  return variant.empty() ? "the paper's student and teacher" : "variant " + variant;
}

// "" or ", the rows of variant grid": which rows of a summary's runs it holds.
std::string variant_of(const ConditionResults& c) {
  return c.variant.empty() ? "" : ", the rows of " + variant_words(c.variant);
}

// One model's cell of report.json as one SeedScores per seed: its `seeds` list when the run had
// several, else its means, which are the one seed's.
std::vector<SeedScores> report_seeds(const Json& cell, const std::vector<int64_t>& seeds, const std::string& where) {
  const auto scores = [&](const Json& c, int64_t seed) {
    return SeedScores{seed,
                      number_at(c, "generalised_deg", where),
                      number_at(c, "personalised_deg", where),
                      number_at(c, "before_personalisation_deg", where),
                      number_at(c, "mean_gaze_baseline_deg", where),
                      people_at(c, "people_deg", where)};
  };
  if (!cell.contains("seeds")) {
    if (seeds.size() != 1)
      throw Error(where + ": no per-seed numbers, but the run has " + std::to_string(seeds.size()) + " seeds");
    return {scores(cell, seeds[0])};
  }
  std::vector<SeedScores> out;
  for (const Json& seed : cell.at("seeds")) out.push_back(scores(seed, int64_t(number_at(seed, "seed", where))));
  if (out.size() != seeds.size())
    throw Error(where + ": " + std::to_string(out.size()) + " seeds' numbers for " + std::to_string(seeds.size()) +
                " seeds");
  return out;
}

// Two runs that scored the same people (the same ids).
bool same_people(const std::map<int64_t, double>& a, const std::map<int64_t, double>& b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) { return x.first == y.first; });
}

// Two errors of the same data computed twice (by runs, or by a run and a script from its packs):
// equal to a millionth, what summaries' rounding and float sums leave.
bool same_error(double a, double b) { return std::abs(a - b) <= 1e-6 * std::abs(b); }

// The same people with the same errors.
bool same_scores(const std::map<int64_t, double>& a, const std::map<int64_t, double>& b) {
  return same_people(a, b) && std::equal(a.begin(), a.end(), b.begin(),
                                         [](const auto& x, const auto& y) { return same_error(x.second, y.second); });
}

// A cell's seeds as the DatasetScores report.h checks: the means, and the seeds when several;
// each held-out person's mean over the seeds only when every seed scored the same people (a
// summary merged with one made before people were kept has none), counted in `unit`.
DatasetScores over_seeds(const std::vector<SeedScores>& seeds, const std::string& unit) {
  DatasetScores s;
  s.protocol.unit = unit;
  const double n = double(seeds.size());
  std::vector<const std::map<int64_t, double>*> people;
  bool same = true;
  for (const SeedScores& seed : seeds) {
    s.generalised += seed.generalised / n;
    s.personalised += seed.personalised / n;
    s.before += seed.before / n;
    s.baseline += seed.baseline / n;
    people.push_back(&seed.people);
    same = same && same_people(seed.people, seeds.front().people);
  }
  if (same) s.people = mean_per_person(people);
  if (seeds.size() > 1) s.seeds = seeds;
  return s;
}

// "ok", "FAIL", or "ok, mixed: fails on seed 1".
std::string check_word(const CheckResult& c) {
  return std::string(c.passes ? "ok" : "FAIL") + (c.mixed() ? ", " + mixed_seeds_flag(c.failing_seeds) : "");
}

std::string read_report(const std::string& path) {
  try {
    return read_text_file(path);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (the run's report: did its pipeline finish?)");
  }
}

// `c`'s cell of `cell`'s dataset; `what` names c and `there` the summaries `cell` comes from, in
// the error.
const ConditionResults::Cell& cell_of(const ConditionResults& c, const ConditionResults::Cell& cell,
                                      const std::string& what, const std::string& there) {
  const auto it =
      std::find_if(c.datasets.begin(), c.datasets.end(), [&](const auto& m) { return m.dataset == cell.dataset; });
  if (it == c.datasets.end()) throw Error(what + ": lacks dataset " + cell.dataset + " of " + there);
  return *it;
}

// Two cells of the same data: the same mean-gaze baseline (the mean gaze of the same training people).
bool same_data(const ConditionResults::Cell& a, const ConditionResults::Cell& b) {
  return same_error(a.baseline, b.baseline);
}

std::string other_data_words(const ConditionResults::Cell& was, const ConditionResults::Cell& cell,
                             const std::string& what, const std::string& there) {
  return what + ": " + cell.dataset + "'s mean-gaze baseline " + fmt(was.baseline, 4) + " differs from " +
         fmt(cell.baseline, 4) + " in " + there + ": not the same data";
}

// One seed's scores under the base and the candidate recipe.
using SeedPair = std::pair<const SeedScores*, const SeedScores*>;

// Per held-out person both score, over the seed pairs: candidate - base of their generalised
// error, averaged over the seeds. Empty when either kept no people.
std::vector<double> person_differences(const std::vector<SeedPair>& seeds) {
  std::map<int64_t, std::pair<double, int64_t>> sums;  // id -> (sum of differences, seeds)
  for (const auto& [b, c] : seeds) {
    for (const auto& [id, error] : c->people) {
      const auto was = b->people.find(id);
      if (was == b->people.end()) continue;
      sums[id].first += error - was->second;
      sums[id].second += 1;
    }
  }
  std::vector<double> out;
  for (const auto& [id, sum] : sums) out.push_back(sum.first / double(sum.second));
  return out;
}

RecipeComparison::Change change_over(const std::vector<double>& differences) {
  RecipeComparison::Change c;
  c.pairs = int64_t(differences.size());
  c.standard_error = std::nan("");
  if (differences.empty()) {
    c.mean = std::nan("");
    return c;
  }
  for (const double d : differences) {
    c.mean += d / double(differences.size());
    c.lower += d < 0 ? 1 : 0;
  }
  if (differences.size() < 2) return c;
  c.standard_error = sample_standard_deviation(differences) / std::sqrt(double(differences.size()));
  return c;
}

// `pairs_key` names what was paired: "seed_cells", "people".
Json change_json(const RecipeComparison::Change& c, const std::string& pairs_key) {
  return {{"mean_deg", json_number(c.mean)},
          {"standard_error_deg", json_number(c.standard_error)},
          {pairs_key, c.pairs},
          {"lower", c.lower},
          {"seen", c.seen()}};
}

// "+1.25" / "-0.40": a difference with its sign.
std::string signed_fmt(double d) {
  const std::string magnitude = fmt(std::abs(d));
  return (d < 0 && magnitude != fmt(0.0) ? "-" : "+") + magnitude;
}

// "-0.80 ± 0.15": a change and its standard error, "–" for what is not there (no pairs; one pair's
// standard error).
std::string change_fmt(const RecipeComparison::Change& c) {
  if (c.pairs == 0) return "–";
  return signed_fmt(c.mean) + " ± " + (std::isnan(c.standard_error) ? "–" : fmt(c.standard_error));
}

// "a.b" of an override "a.b=value".
std::string override_key(const std::string& o) { return trim(o.substr(0, o.find('='))); }

// Keys that `a` and `b` (overrides) set differently, or that only one sets.
std::vector<std::string> differing_keys(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::map<std::string, std::string> x, y;  // key -> its override
  for (const std::string& o : a) x[override_key(o)] = o;
  for (const std::string& o : b) y[override_key(o)] = o;
  std::vector<std::string> keys;
  for (const auto& [key, o] : x)
    if (!y.count(key) || y.at(key) != o) keys.push_back(key);
  for (const auto& [key, o] : y)
    if (!x.count(key)) keys.push_back(key);
  return keys;
}

// A recipe difference that may change who the rendered people are, so that the same id would
// name another person: any synth key but how many people are drawn and how they are split (a
// person is drawn from the seed and their index alone, datasets/synth).
bool redraws_people(const std::string& key) {
  return key.rfind("synth.", 0) == 0 && key != "synth.participants" && key != "synth.train_participants" &&
         key != "synth.validation_participants";
}

// Writes <folder>/<name>.md and <name>.json, each atomically; returns their paths.
std::pair<std::string, std::string> write_md_and_json(const std::string& folder, const std::string& name,
                                                      const std::string& markdown, const Json& json) {
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw Error(folder + ": cannot create the report folder: " + ec.message());
  const std::string md = (fs::path(folder) / (name + ".md")).string(),
                    js = (fs::path(folder) / (name + ".json")).string();
  write_text_atomically(md, markdown);
  write_text_atomically(js, json.dump(2) + "\n");
  return {md, js};
}

}  // namespace

std::vector<std::string> recipe_overrides(const std::vector<std::string>& overrides) {
  std::vector<std::string> recipe;
  for (const std::string& o : overrides) {
    const std::string key = override_key(o);
    if (key != "pipeline.seeds" && !starts_with(key, "run.")) recipe.push_back(trim(o));
  }
  return recipe;
}

void require_run_made_with(const Config& config, const std::string& condition_file) {
  const std::string path = (fs::path(run_dir_path(config)) / "pipeline.yaml").string();
  std::string made;
  try {
    made = read_text_file(path);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (the run's resolved config: did its pipeline run?)");
  }
  const ConfigDifference d = config_difference(made, path, dump_config(config));
  if (d.line > 0) {
    throw Error(path + ":" + std::to_string(d.line) + ": the run was made with '" + d.stored + "', where " +
                condition_file + " with the overrides given makes '" + d.ours +
                "': give the overrides the run was made with");
  }
}

std::string experiment_description(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!starts_with(line, "#")) break;
    const std::string text = trim(line.substr(1));
    if (!text.empty()) return text;
  }
  return "";
}

ConditionResults read_condition_run(const ConditionRun& run) {
  const std::string& path = run.report_json;
  const Json r = parse_json(read_report(path), path);
  ConditionResults c{run.name, run.description, run.config, {path}, run.recipe, seeds_at(r, path), {}, run.variant};
  const std::string suffix = run.variant.empty() ? "" : "_" + run.variant;
  for (const auto& [d, models] : json_at(r, "datasets", path).items()) {
    const std::string where = path + ": datasets." + d;
    const std::string student = "student" + suffix,
                      teacher = models.contains("teacher" + suffix) ? "teacher" + suffix : "teacher";
    if (!run.variant.empty() && !models.contains(student)) {
      throw Error(where + ": no row " + student + ": was the run made with pipeline.variants naming '" + run.variant +
                  "' (and its student)?");
    }
    const Json& student_cell = json_at(models, student, where);
    ConditionResults::Cell cell{d, 0, report_seeds(student_cell, c.seeds, where + "." + student),
                                report_seeds(json_at(models, teacher, where), c.seeds, where + "." + teacher)};
    cell.baseline = cell.student.front().baseline;
    cell.baseline_people = people_at(student_cell, "baseline_people_deg", where);
    if (student_cell.contains("personalised_per")) cell.unit = json_string_at(student_cell, "personalised_per", where);
    c.datasets.push_back(cell);
  }
  return c;
}

std::vector<ConditionResults> read_conditions_summary(const std::string& path) {
  const Json j = parse_json(read_text_file(path), path);
  std::vector<ConditionResults> out;
  for (const Json& entry : json_at(j, "conditions", path)) {
    ConditionResults c;
    c.name = json_string_at(entry, "name", path + ": conditions[" + std::to_string(out.size()) + "]");
    const std::string where = path + ": conditions." + c.name;
    c.description = json_string_at(entry, "description", where);
    c.config = json_string_at(entry, "config", where);
    c.sources = entry.contains("sources") ? strings_at(entry, "sources", where) : std::vector<std::string>{path};
    c.recipe = entry.contains("recipe") ? strings_at(entry, "recipe", where) : std::vector<std::string>{};
    c.variant = entry.contains("variant") ? json_string_at(entry, "variant", where) : "";
    c.seeds = seeds_at(entry, where);
    for (const auto& [d, cell] : json_at(entry, "datasets", where).items()) {
      const std::string at = where + ".datasets." + d;
      ConditionResults::Cell out_cell{d, number_at(cell, "mean_gaze_baseline_deg", at), {}, {}};
      if (cell.contains("people_unit")) out_cell.unit = json_string_at(cell, "people_unit", at);
      out_cell.baseline_people = people_at(cell, "baseline_people_deg", at);
      // Summaries written before per_seed hold one seed each: their means are its numbers.
      if (!cell.contains("per_seed") && c.seeds.size() != 1) throw Error(at + ": lacks per_seed for its seeds");
      const Json per_seed = cell.contains("per_seed") ? cell.at("per_seed") : Json::array({cell});
      if (!per_seed.is_array() || per_seed.size() != c.seeds.size()) {
        throw Error(at + ": per_seed is not a list of the condition's " + std::to_string(c.seeds.size()) + " seeds");
      }
      for (size_t i = 0; i < c.seeds.size(); ++i) {
        const Json& seed = per_seed[i];
        const std::string at_seed = at + ".per_seed[" + std::to_string(i) + "]";
        if (seed.contains("seed") && number_at(seed, "seed", at_seed) != double(c.seeds[i])) {
          throw Error(at_seed + ": seed " + seed.at("seed").dump() + " where the seeds list " +
                      std::to_string(c.seeds[i]));
        }
        out_cell.student.push_back({c.seeds[i], number_at(seed, "student_deg", at_seed),
                                    number_at(seed, "personalised_deg", at_seed),
                                    number_at(seed, "before_personalisation_deg", at_seed), out_cell.baseline,
                                    people_at(seed, "student_people_deg", at_seed)});
        out_cell.teacher.push_back({c.seeds[i], number_at(seed, "teacher_deg", at_seed), 0, 0, out_cell.baseline,
                                    people_at(seed, "teacher_people_deg", at_seed)});
      }
      c.datasets.push_back(out_cell);
    }
    out.push_back(c);
  }
  if (out.empty()) throw Error(path + ": no conditions");
  return out;
}

std::vector<ConditionResults> merge_condition_results(const std::vector<std::vector<ConditionResults>>& summaries) {
  std::vector<ConditionResults> merged;
  for (const auto& summary : summaries) {
    for (const ConditionResults& c : summary) {
      auto it = std::find_if(merged.begin(), merged.end(), [&](const auto& m) { return m.name == c.name; });
      if (it == merged.end()) {
        merged.push_back(c);
        continue;
      }
      const std::string what = "condition " + c.name + " (" + join(c.sources, ", ") + ")";
      const std::string there = join(it->sources, ", ");
      for (const int64_t seed : c.seeds) {
        if (std::find(it->seeds.begin(), it->seeds.end(), seed) != it->seeds.end()) {
          throw Error(what + ": seed " + std::to_string(seed) + " is already in " + there);
        }
      }
      if (c.variant != it->variant) {
        throw Error(what + ": the rows of " + variant_words(c.variant) + ", " + there + " those of " +
                    variant_words(it->variant) + ": summaries of different rows do not merge");
      }
      if (c.recipe != it->recipe) {
        throw Error(what + ": made with " + recipe_words(c.recipe) + ", " + there + " with " +
                    recipe_words(it->recipe) + ": summaries of different recipes do not merge");
      }
      if (c.datasets.size() != it->datasets.size()) throw Error(what + ": not the datasets of " + there);
      for (ConditionResults::Cell& cell : it->datasets) {
        const ConditionResults::Cell& more = cell_of(c, cell, what, there);
        if (!same_data(more, cell)) throw Error(other_data_words(more, cell, what, there));
        cell.student.insert(cell.student.end(), more.student.begin(), more.student.end());
        cell.teacher.insert(cell.teacher.end(), more.teacher.begin(), more.teacher.end());
        if (cell.baseline_people.empty()) {
          cell.baseline_people = more.baseline_people;  // the same data's
        } else if (!more.baseline_people.empty() && !same_scores(more.baseline_people, cell.baseline_people)) {
          throw Error(what + ": " + cell.dataset + "'s baseline on the held-out people differs from " + there +
                      "'s: not the same data");
        }
      }
      it->seeds.insert(it->seeds.end(), c.seeds.begin(), c.seeds.end());
      it->sources.insert(it->sources.end(), c.sources.begin(), c.sources.end());
    }
  }
  return merged;
}

ConditionsReport write_conditions_report(const std::vector<ConditionResults>& conditions, const std::string& folder) {
  if (conditions.empty()) throw Error("no conditions to report");
  ConditionsReport report;
  std::vector<std::vector<std::string>> rows;
  Json summaries = Json::array();
  std::string descriptions;
  const bool same_recipe = std::all_of(conditions.begin(), conditions.end(),
                                       [&](const ConditionResults& c) { return c.recipe == conditions[0].recipe; });
  const std::string& variant = conditions[0].variant;
  for (const ConditionResults& c : conditions) {
    if (c.variant != variant)
      throw Error("condition " + c.name + ": the rows of " + variant_words(c.variant) + ", condition " +
                  conditions[0].name + " those of " + variant_words(variant) + ": one summary holds one pair");
  }
  for (const ConditionResults& c : conditions) {
    Json datasets = Json::object();
    for (const ConditionResults::Cell& cell : c.datasets) {
      const std::string& d = cell.dataset;
      DatasetScores st = over_seeds(cell.student, cell.unit);
      const DatasetScores te = over_seeds(cell.teacher, cell.unit);
      st.baseline_people = cell.baseline_people;
      std::map<std::string, CheckResult> checks;
      Json checks_json = Json::object();
      bool passes = true;
      for (const std::string& name : pipeline_check_names()) {
        const CheckResult& r = checks[name] = run_check(name, st, te);
        passes = passes && r.passes && !r.mixed();
        checks_json[name] = {{"passes", r.passes}, {"mixed", r.mixed()}, {"failing_seeds", r.failing_seeds}};
      }
      ++report.cells;
      report.cells_passing += passes ? 1 : 0;
      const auto ratio = [&](double value, const char* check) {
        return fmt(value, 3) + " (" + check_word(checks[check]) + ")";
      };
      rows.push_back(
          {c.name, d, std::to_string(c.seeds.size()), fmt(cell.baseline), error_cell(te, false, false),
           error_cell(st, false, false), ratio(st.generalised / cell.baseline, "student_vs_baseline"),
           people_error_cell(st), ratio(st.generalised / te.generalised, "student_vs_teacher"),
           fmt(st.before) + " -> " + fmt(st.personalised) + " (" + check_word(checks["personalisation_lowers"]) + ")"});
      Json per_seed = Json::array();
      for (size_t i = 0; i < cell.student.size(); ++i) {
        per_seed.push_back({{"seed", cell.student[i].seed},
                            {"teacher_deg", json_number(cell.teacher[i].generalised)},
                            {"student_deg", json_number(cell.student[i].generalised)},
                            {"before_personalisation_deg", json_number(cell.student[i].before)},
                            {"personalised_deg", json_number(cell.student[i].personalised)}});
        if (!cell.student[i].people.empty())
          per_seed.back()["student_people_deg"] = people_json(cell.student[i].people);
        if (!cell.teacher[i].people.empty())
          per_seed.back()["teacher_people_deg"] = people_json(cell.teacher[i].people);
      }
      datasets[d] = {{"mean_gaze_baseline_deg", json_number(cell.baseline)},
                     {"teacher_deg", json_number(te.generalised)},
                     {"teacher_sd_deg", json_number(seed_sd(te, &SeedScores::generalised))},
                     {"student_deg", json_number(st.generalised)},
                     {"student_sd_deg", json_number(seed_sd(st, &SeedScores::generalised))},
                     {"student_vs_baseline", json_number(st.generalised / cell.baseline)},
                     {"student_vs_teacher", json_number(st.generalised / te.generalised)},
                     {"held_out_people", st.people.size()},
                     {"people_unit", cell.unit},
                     {"student_vs_baseline_people_se", json_number(people_ratio_standard_error(st))},
                     {"student_vs_baseline_people_se_paired", people_ratio_paired(st)},
                     {"before_personalisation_deg", json_number(st.before)},
                     {"personalised_deg", json_number(st.personalised)},
                     {"per_seed", per_seed},
                     {"checks", checks_json},
                     {"passes", passes}};
      if (!cell.baseline_people.empty()) datasets[d]["baseline_people_deg"] = people_json(cell.baseline_people);
    }
    descriptions += "- **" + c.name + "** (`" + c.config + "`" +
                    (same_recipe || c.recipe.empty() ? "" : " with " + recipe_words(c.recipe)) +
                    "): " + (c.description.empty() ? "no description" : c.description) + "\n";
    summaries.push_back({{"name", c.name},
                         {"description", c.description},
                         {"config", c.config},
                         {"sources", c.sources},
                         {"recipe", c.recipe},
                         {"variant", c.variant},
                         {"seeds", c.seeds},
                         {"datasets", datasets}});
  }
  report.markdown =
      "# DFT Gaze on held-out renderer conditions\n\n"
      "The demo's recipe (configs/pipeline/demo.yaml), " +
      (!same_recipe                   ? std::string("with the changes listed per condition,")
       : conditions[0].recipe.empty() ? std::string("unchanged,")
                                      : "with " + recipe_words(conditions[0].recipe) + ",") +
      " on data rendered with what it was not tuned on" +
      (variant.empty() ? std::string()
                       : "; the rows of its variant `" + variant + "` (student_" + variant + ", against teacher_" +
                             variant + " where the variant trains the teacher too)") +
      ". Errors are generalised mean angular errors in degrees on "
      "people unseen in training, mean ± standard "
      "deviation over training seeds. A cell passes when the student is <= 0.5x the mean-gaze baseline and "
      "<= 1.25x the teacher and personalisation lowers its error, on the means and on every seed (**mixed**: "
      "passes on some seeds only). Every seed is scored on the same held-out people, so the seeds' spread "
      "cannot show how much a verdict rests on who they are: the standard error column does, that of "
      "student / baseline over those people (each person's mean error over the seeds, paired with the "
      "baseline's error on them; where a summary from before session 34 lacks the baseline's, the baseline "
      "held fixed; – where the runs did not keep their people).\n\n" +
      descriptions + "\n" +
      markdown_table({"condition", "dataset", "seeds", "mean-gaze baseline", "teacher", "student", "student / baseline",
                      "its standard error over the held-out people", "student / teacher",
                      "student personalised (before -> after)"},
                     rows) +
      "\n" + std::to_string(report.cells_passing) + " of " + std::to_string(report.cells) +
      " condition x dataset cells pass every check on every seed.\n";
  std::tie(report.markdown_path, report.json_path) = write_md_and_json(
      folder, "conditions", report.markdown,
      Json{{"conditions", summaries}, {"cells", report.cells}, {"cells_passing", report.cells_passing}});
  return report;
}

RecipeComparison write_recipe_comparison(const std::vector<ConditionResults>& base,
                                         const std::vector<ConditionResults>& candidate, const std::string& reference,
                                         const std::string& folder) {
  if (base.empty() || candidate.empty()) throw Error("no conditions to compare");
  RecipeComparison out;
  // The held-out paired differences of teacher, student and personalised student, per dataset
  // and ("") over all.
  std::map<std::string, std::array<std::vector<double>, 3>> differences_by;
  std::vector<std::vector<std::string>> rows, people_rows;
  std::vector<std::string> other_data_cells, redrawing;
  for (const std::string& key : differing_keys(base.front().recipe, candidate.front().recipe))
    if (redraws_people(key)) redrawing.push_back(key);
  Json cells = Json::array();
  for (const ConditionResults& c : candidate) {
    const std::string what = "condition " + c.name + " (" + join(c.sources, ", ") + ")";
    const auto b = std::find_if(base.begin(), base.end(), [&](const auto& m) { return m.name == c.name; });
    if (b == base.end()) throw Error(what + ": not in the base summary");
    const std::string there = join(b->sources, ", ");
    const bool held_out = c.name != reference;
    for (const ConditionResults::Cell& cell : c.datasets) {
      const ConditionResults::Cell& was = cell_of(*b, cell, what, there);
      const bool same = same_data(was, cell);
      // Per seed both have, the three errors under each recipe: means[error][recipe], and the
      // paired differences (candidate - base) of the held-out cells of the same data.
      std::vector<int64_t> seeds;
      std::vector<SeedPair> teacher_seeds, student_seeds;
      double means[3][2] = {};
      int64_t lowers[2] = {};  // seeds on which personalisation lowered the student's error
      for (size_t i = 0; i < cell.student.size(); ++i) {
        const auto j = std::find_if(was.student.begin(), was.student.end(),
                                    [&](const SeedScores& s) { return s.seed == cell.student[i].seed; });
        if (j == was.student.end()) continue;
        const size_t k = size_t(j - was.student.begin());
        const SeedScores *st[2] = {&was.student[k], &cell.student[i]}, *te[2] = {&was.teacher[k], &cell.teacher[i]};
        const double errors[3][2] = {{te[0]->generalised, te[1]->generalised},
                                     {st[0]->generalised, st[1]->generalised},
                                     {st[0]->personalised, st[1]->personalised}};
        seeds.push_back(cell.student[i].seed);
        teacher_seeds.push_back({te[0], te[1]});
        student_seeds.push_back({st[0], st[1]});
        for (int e = 0; e < 3; ++e) {
          for (int r = 0; r < 2; ++r) means[e][r] += errors[e][r];
          if (!held_out || !same) continue;
          differences_by[""][e].push_back(errors[e][1] - errors[e][0]);
          differences_by[cell.dataset][e].push_back(errors[e][1] - errors[e][0]);
        }
        for (int r = 0; r < 2; ++r) lowers[r] += st[r]->personalised < st[r]->before ? 1 : 0;
      }
      if (seeds.empty()) throw Error(what + ": " + cell.dataset + " has no seed in common with " + there);
      for (auto& m : means) m[0] /= double(seeds.size()), m[1] /= double(seeds.size());

      // Per person: the same people under both recipes.
      const std::string label = c.name + "/" + cell.dataset;
      // Not where the recipes may draw other people under the same ids.
      RecipeComparison::PersonChanges people;
      if (redrawing.empty())
        people = {change_over(person_differences(teacher_seeds)), change_over(person_differences(student_seeds))};
      if (!same && !redrawing.empty())
        throw Error(other_data_words(was, cell, what, there) + ", and the recipes differ in " + join(redrawing, ", ") +
                    ", which may render other people under the same ids: not paired");
      if (!same && people.student.pairs == 0)
        throw Error(other_data_words(was, cell, what, there) + ", and no held-out person in common to pair");
      if (!same && held_out) other_data_cells.push_back(label);
      Json people_json = nullptr;
      if (people.student.pairs > 0) {
        out.people_by_cell[label] = people;
        const auto words = [&](const RecipeComparison::Change& d) {
          if (d.pairs == 0) return std::string("–");
          return change_fmt(d) + ", lower for " + std::to_string(d.lower) + " of " + std::to_string(d.pairs) +
                 (d.seen() ? (d.mean < 0 ? " (seen lower)" : " (seen higher)") : "");
        };
        people_rows.push_back({c.name + (held_out ? "" : " (reference)"), cell.dataset,
                               std::to_string(people.student.pairs) + " " + cell.unit + "s", words(people.teacher),
                               words(people.student)});
        if (held_out) {
          for (auto [tally, change] :
               {std::pair{&out.teacher_people, &people.teacher}, std::pair{&out.student_people, &people.student}}) {
            if (change->pairs == 0) continue;
            tally->cells += 1;
            tally->seen_lower += change->seen() && change->mean < 0 ? 1 : 0;
            tally->seen_higher += change->seen() && change->mean > 0 ? 1 : 0;
          }
        }
        people_json = {{"unit", cell.unit},
                       {"teacher", change_json(people.teacher, "people")},
                       {"student", change_json(people.student, "people")}};
      }

      const auto pair = [&](int m) {
        return fmt(means[m][0]) + " -> " + fmt(means[m][1]) +
               (same ? " (" + signed_fmt(means[m][1] - means[m][0]) + ")" : " (other data)");
      };
      std::string seed_list;
      for (const int64_t seed : seeds) seed_list += (seed_list.empty() ? "" : ", ") + std::to_string(seed);
      const std::string n = std::to_string(seeds.size());
      rows.push_back({c.name + (held_out ? "" : " (reference)"), cell.dataset, seed_list, pair(0), pair(1), pair(2),
                      std::to_string(lowers[0]) + " -> " + std::to_string(lowers[1]) + " of " + n});
      const auto model = [&](int m) {
        return Json{{"base_deg", json_number(means[m][0])}, {"candidate_deg", json_number(means[m][1])}};
      };
      cells.push_back({{"condition", c.name},
                       {"dataset", cell.dataset},
                       {"seeds", seeds},
                       {"same_data", same},
                       {"teacher", model(0)},
                       {"student", model(1)},
                       {"student_personalised", model(2)},
                       {"personalisation_lowers", {{"base", lowers[0]}, {"candidate", lowers[1]}}},
                       {"per_person", people_json}});
    }
  }
  const auto changes = [](const std::array<std::vector<double>, 3>& d) {
    return RecipeComparison::Changes{change_over(d[0]), change_over(d[1]), change_over(d[2])};
  };
  out.held_out = changes(differences_by[""]);
  for (const auto& [dataset, d] : differences_by) {
    if (!dataset.empty()) out.by_dataset[dataset] = changes(d);
  }

  // Per model: over all held-out cells, then per dataset.
  std::vector<std::vector<std::string>> summary_rows;
  Json held_out_json = Json::object(), by_dataset_json = Json::object();
  const struct {
    const char *name, *key;
    RecipeComparison::Change RecipeComparison::Changes::*change;
  } models[] = {{"teacher", "teacher", &RecipeComparison::Changes::teacher},
                {"student", "student", &RecipeComparison::Changes::student},
                {"student personalised", "student_personalised", &RecipeComparison::Changes::personalised}};
  for (const auto& [name, key, change] : models) {
    const auto row = [&](const std::string& label, const RecipeComparison::Change& c) {
      summary_rows.push_back(
          {label, change_fmt(c), std::to_string(c.lower) + " of " + std::to_string(c.pairs),
           c.seen() ? "seen: more than twice its standard error" : "not seen: within twice its standard error"});
    };
    row(name, out.held_out.*change);
    held_out_json[key] = change_json(out.held_out.*change, "seed_cells");
    for (const auto& [dataset, c] : out.by_dataset) {
      row(std::string(name) + ", " + dataset, c.*change);
      by_dataset_json[dataset][key] = change_json(c.*change, "seed_cells");
    }
  }
  held_out_json["by_dataset"] = by_dataset_json;
  const auto tally_json = [](const RecipeComparison::Tally& t) {
    return Json{{"cells", t.cells}, {"seen_lower", t.seen_lower}, {"seen_higher", t.seen_higher}};
  };
  held_out_json["per_person"] = {{"teacher", tally_json(out.teacher_people)},
                                 {"student", tally_json(out.student_people)}};
  const auto tally_words = [](const char* model, const RecipeComparison::Tally& t) {
    return std::string(model) + " seen lower in " + std::to_string(t.seen_lower) + ", seen higher in " +
           std::to_string(t.seen_higher);
  };
  std::string other_data = "";
  if (!other_data_cells.empty()) {
    other_data = " The training data differ (another mean-gaze baseline) in " + join(other_data_cells, ", ") +
                 ": their means are over other people and are left out here; they are compared per person below.";
  }
  out.markdown =
      "# Two recipes on the held-out renderer conditions\n\n"
      "Base: " +
      recipe_words(base.front().recipe) + variant_of(base.front()) +
      ". Candidate: " + recipe_words(candidate.front().recipe) + variant_of(candidate.front()) +
      ". Generalised mean angular errors in degrees (the student's personalised error after personalisation), "
      "means over the seeds both summaries have; in brackets candidate - base.\n\n" +
      markdown_table({"condition", "dataset", "seeds", "teacher", "student", "student personalised",
                      "personalisation lowers the student's error"},
                     rows) +
      "\nOver the " + std::to_string(out.held_out.student.pairs) + " held-out seed-cells of the same data (every " +
      "condition but " + reference + "), candidate - base, mean ± standard error of the paired differences." +
      other_data + "\n\n" +
      (out.held_out.student.pairs > 0 ? markdown_table({"error", "change", "lower on", "verdict"}, summary_rows)
                                      : "No held-out seed-cell of the same data to pair.\n");
  if (!redrawing.empty()) {
    out.markdown += "\nNot compared per person: the recipes differ in " + join(redrawing, ", ") +
                    ", which may render other people under the same ids.\n";
  }
  if (!people_rows.empty()) {
    out.markdown +=
        "\nPer held-out person: each person both summaries score, candidate - base of their generalised error (their "
        "mean over the seeds both have), mean ± standard error over those people, and for how many of them the "
        "candidate is lower; seen where the mean exceeds twice its standard error. The same people under both (an "
        "id names the same person in both: the recipes differ in no synth key that redraws people), so who was held "
        "out cancels. The training seed's noise does not: seen here is one trained model against another per seed, "
        "not yet a recipe's verdict, which needs the seeds.\n\n" +
        markdown_table({"condition", "dataset", "held-out people in both", "teacher", "student"}, people_rows) +
        "\nOver the " + std::to_string(out.student_people.cells) +
        " held-out cells compared per person: " + tally_words("student", out.student_people) + "; " +
        tally_words("teacher", out.teacher_people) + ".\n";
  }
  std::tie(out.markdown_path, out.json_path) = write_md_and_json(folder, "comparison", out.markdown,
                                                                 Json{{"base_recipe", base.front().recipe},
                                                                      {"base_variant", base.front().variant},
                                                                      {"candidate_recipe", candidate.front().recipe},
                                                                      {"candidate_variant", candidate.front().variant},
                                                                      {"reference", reference},
                                                                      {"not_paired_per_person_for", redrawing},
                                                                      {"cells", cells},
                                                                      {"held_out", held_out_json}});
  return out;
}

}  // namespace gaze
