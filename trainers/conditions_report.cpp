#include "trainers/conditions_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

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

// One model's cell of report.json as one SeedScores per seed: its `seeds` list when the run had
// several, else its means, which are the one seed's.
std::vector<SeedScores> report_seeds(const Json& cell, const std::vector<int64_t>& seeds, const std::string& where) {
  const auto scores = [&](const Json& c, int64_t seed) {
    return SeedScores{seed, number_at(c, "generalised_deg", where), number_at(c, "personalised_deg", where),
                      number_at(c, "before_personalisation_deg", where), number_at(c, "mean_gaze_baseline_deg", where)};
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

// A cell's seeds as the DatasetScores report.h checks: the means, and the seeds when several.
DatasetScores over_seeds(const std::vector<SeedScores>& seeds) {
  DatasetScores s;
  const double n = double(seeds.size());
  for (const SeedScores& seed : seeds) {
    s.generalised += seed.generalised / n;
    s.personalised += seed.personalised / n;
    s.before += seed.before / n;
    s.baseline += seed.baseline / n;
  }
  if (seeds.size() > 1) s.seeds = seeds;
  return s;
}

std::string spread_cell(const DatasetScores& s) {
  return fmt(s.generalised) + (s.seeds.size() > 1 ? " ± " + fmt(seed_sd(s, &SeedScores::generalised)) : "");
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

}  // namespace

std::string experiment_description(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("#", 0) != 0) break;
    const std::string text = trim(line.substr(1));
    if (!text.empty()) return text;
  }
  return "";
}

ConditionResults read_condition_run(const ConditionRun& run) {
  const std::string& path = run.report_json;
  const Json r = parse_json(read_report(path), path);
  ConditionResults c{run.name, run.description, run.config, {path}, seeds_at(r, path), {}};
  for (const auto& [d, models] : json_at(r, "datasets", path).items()) {
    const std::string where = path + ": datasets." + d;
    ConditionResults::Cell cell{d, 0, report_seeds(json_at(models, "student", where), c.seeds, where + ".student"),
                                report_seeds(json_at(models, "teacher", where), c.seeds, where + ".teacher")};
    cell.baseline = cell.student.front().baseline;
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
    c.sources = {path};
    if (entry.contains("sources")) {
      c.sources.clear();
      for (const Json& source : entry.at("sources")) {
        if (!source.is_string()) throw Error(where + ": 'sources' holds " + source.dump() + ", not a file");
        c.sources.push_back(source.get<std::string>());
      }
    }
    c.seeds = seeds_at(entry, where);
    for (const auto& [d, cell] : json_at(entry, "datasets", where).items()) {
      const std::string at = where + ".datasets." + d;
      ConditionResults::Cell out_cell{d, number_at(cell, "mean_gaze_baseline_deg", at), {}, {}};
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
                                    number_at(seed, "before_personalisation_deg", at_seed), out_cell.baseline});
        out_cell.teacher.push_back({c.seeds[i], number_at(seed, "teacher_deg", at_seed), 0, 0, out_cell.baseline});
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
      if (c.datasets.size() != it->datasets.size()) throw Error(what + ": not the datasets of " + there);
      for (ConditionResults::Cell& cell : it->datasets) {
        const auto more = std::find_if(c.datasets.begin(), c.datasets.end(),
                                       [&](const auto& m) { return m.dataset == cell.dataset; });
        if (more == c.datasets.end()) throw Error(what + ": lacks dataset " + cell.dataset + " of " + there);
        if (std::abs(more->baseline - cell.baseline) > 1e-6 * std::abs(cell.baseline)) {
          throw Error(what + ": " + cell.dataset + "'s mean-gaze baseline " + fmt(more->baseline, 4) +
                      " differs from " + fmt(cell.baseline, 4) + " in " + there + ": not the same data");
        }
        cell.student.insert(cell.student.end(), more->student.begin(), more->student.end());
        cell.teacher.insert(cell.teacher.end(), more->teacher.begin(), more->teacher.end());
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
  for (const ConditionResults& c : conditions) {
    Json datasets = Json::object();
    for (const ConditionResults::Cell& cell : c.datasets) {
      const std::string& d = cell.dataset;
      const DatasetScores st = over_seeds(cell.student), te = over_seeds(cell.teacher);
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
          {c.name, d, std::to_string(c.seeds.size()), fmt(cell.baseline), spread_cell(te), spread_cell(st),
           ratio(st.generalised / cell.baseline, "student_vs_baseline"),
           ratio(st.generalised / te.generalised, "student_vs_teacher"),
           fmt(st.before) + " -> " + fmt(st.personalised) + " (" + check_word(checks["personalisation_lowers"]) + ")"});
      Json per_seed = Json::array();
      for (size_t i = 0; i < cell.student.size(); ++i) {
        per_seed.push_back({{"seed", cell.student[i].seed},
                            {"teacher_deg", json_number(cell.teacher[i].generalised)},
                            {"student_deg", json_number(cell.student[i].generalised)},
                            {"before_personalisation_deg", json_number(cell.student[i].before)},
                            {"personalised_deg", json_number(cell.student[i].personalised)}});
      }
      datasets[d] = {{"mean_gaze_baseline_deg", json_number(cell.baseline)},
                     {"teacher_deg", json_number(te.generalised)},
                     {"teacher_sd_deg", json_number(seed_sd(te, &SeedScores::generalised))},
                     {"student_deg", json_number(st.generalised)},
                     {"student_sd_deg", json_number(seed_sd(st, &SeedScores::generalised))},
                     {"student_vs_baseline", json_number(st.generalised / cell.baseline)},
                     {"student_vs_teacher", json_number(st.generalised / te.generalised)},
                     {"before_personalisation_deg", json_number(st.before)},
                     {"personalised_deg", json_number(st.personalised)},
                     {"per_seed", per_seed},
                     {"checks", checks_json},
                     {"passes", passes}};
    }
    descriptions += "- **" + c.name + "** (`" + c.config +
                    "`): " + (c.description.empty() ? "no description" : c.description) + "\n";
    summaries.push_back({{"name", c.name},
                         {"description", c.description},
                         {"config", c.config},
                         {"sources", c.sources},
                         {"seeds", c.seeds},
                         {"datasets", datasets}});
  }
  report.markdown =
      "# DFT Gaze on held-out renderer conditions\n\n"
      "The demo's recipe (configs/pipeline/demo.yaml), unchanged, on data rendered with what it was not tuned "
      "on. Errors are generalised mean angular errors in degrees on people unseen in training, mean ± standard "
      "deviation over training seeds. A cell passes when the student is <= 0.5x the mean-gaze baseline and "
      "<= 1.25x the teacher and personalisation lowers its error, on the means and on every seed (**mixed**: "
      "passes on some seeds only).\n\n" +
      descriptions + "\n" +
      markdown_table({"condition", "dataset", "seeds", "mean-gaze baseline", "teacher", "student", "student / baseline",
                      "student / teacher", "student personalised (before -> after)"},
                     rows) +
      "\n" + std::to_string(report.cells_passing) + " of " + std::to_string(report.cells) +
      " condition x dataset cells pass every check on every seed.\n";
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw Error(folder + ": cannot create the report folder: " + ec.message());
  report.markdown_path = (fs::path(folder) / "conditions.md").string();
  report.json_path = (fs::path(folder) / "conditions.json").string();
  write_text_atomically(report.markdown_path, report.markdown);
  write_text_atomically(
      report.json_path,
      Json{{"conditions", summaries}, {"cells", report.cells}, {"cells_passing", report.cells_passing}}.dump(2) + "\n");
  return report;
}

}  // namespace gaze
