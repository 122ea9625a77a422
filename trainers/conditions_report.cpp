#include "trainers/conditions_report.h"

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

// One model's errors on one dataset over the run's seeds.
struct SeedSpread {
  double mean = 0, sd = 0;
  std::vector<double> per_seed;
};

double number_at(const Json& object, const std::string& key, const std::string& source) {
  const Json& v = json_at(object, key, source);
  if (!v.is_number()) throw Error(source + ": '" + key + "' is not a number");
  return v.get<double>();
}

// Generalised error of one model cell of report.json, with each seed's when the run had several.
SeedSpread generalised(const Json& cell, const std::string& source) {
  SeedSpread s;
  s.mean = number_at(cell, "generalised_deg", source);
  if (cell.contains("seeds")) {
    for (const Json& seed : cell.at("seeds")) s.per_seed.push_back(number_at(seed, "generalised_deg", source));
    s.sd = number_at(cell, "generalised_sd_deg", source);
  }
  return s;
}

std::string spread_cell(const SeedSpread& s) { return fmt(s.mean) + (s.per_seed.size() > 1 ? " ± " + fmt(s.sd) : ""); }

// "ok", "FAIL", or "ok, mixed: fails on seed 1" from one entry of report.json's checks.
std::string check_word(const Json& check, const std::string& source) {
  std::string out = json_at(check, "passes", source).get<bool>() ? "ok" : "FAIL";
  if (json_at(check, "mixed", source).get<bool>()) {
    out += ", " + mixed_seeds_flag(json_at(check, "failing_seeds", source).get<std::vector<int64_t>>());
  }
  return out;
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

ConditionsReport write_conditions_report(const std::vector<ConditionRun>& runs, const std::string& folder) {
  if (runs.empty()) throw Error("no conditions to report");
  ConditionsReport report;
  std::vector<std::vector<std::string>> rows;
  Json conditions = Json::array();
  std::string descriptions;
  for (const ConditionRun& run : runs) {
    const Json r = parse_json(read_report(run.report_json), run.report_json);
    const Json& datasets = json_at(r, "datasets", run.report_json);
    const Json& seeds = json_at(r, "seeds", run.report_json);
    Json summary = Json::object();
    for (const auto& [d, models] : datasets.items()) {
      const std::string where = run.report_json + ": datasets." + d;
      const Json& student = json_at(models, "student", where);
      const Json& teacher = json_at(models, "teacher", where);
      const SeedSpread st = generalised(student, where + ".student"), te = generalised(teacher, where + ".teacher");
      const double baseline = number_at(student, "mean_gaze_baseline_deg", where + ".student");
      const double before = number_at(student, "before_personalisation_deg", where + ".student");
      const double after = number_at(student, "personalised_deg", where + ".student");
      std::map<std::string, std::string> words;
      bool passes = true;
      Json checks = Json::object();
      for (const Json& check : json_at(r, "checks", run.report_json)) {
        if (json_at(check, "dataset", run.report_json) != d) continue;
        const std::string name = json_at(check, "check", run.report_json).get<std::string>();
        words[name] = check_word(check, run.report_json);
        passes = passes && check.at("passes").get<bool>() && !check.at("mixed").get<bool>();
        checks[name] = check;
        checks[name].erase("dataset");
        checks[name].erase("check");
      }
      for (const std::string& name : pipeline_check_names()) {
        if (!words.count(name)) throw Error(run.report_json + ": checks lack " + name + " for " + d);
      }
      ++report.cells;
      report.cells_passing += passes ? 1 : 0;
      rows.push_back({run.name, d, std::to_string(seeds.size()), fmt(baseline), spread_cell(te), spread_cell(st),
                      fmt(st.mean / baseline, 3) + " (" + words["student_vs_baseline"] + ")",
                      fmt(st.mean / te.mean, 3) + " (" + words["student_vs_teacher"] + ")",
                      fmt(before) + " -> " + fmt(after) + " (" + words["personalisation_lowers"] + ")"});
      summary[d] = {{"mean_gaze_baseline_deg", json_number(baseline)},
                    {"teacher_deg", json_number(te.mean)},
                    {"teacher_sd_deg", json_number(te.sd)},
                    {"student_deg", json_number(st.mean)},
                    {"student_sd_deg", json_number(st.sd)},
                    {"student_per_seed_deg", st.per_seed},
                    {"teacher_per_seed_deg", te.per_seed},
                    {"student_vs_baseline", json_number(st.mean / baseline)},
                    {"student_vs_teacher", json_number(st.mean / te.mean)},
                    {"before_personalisation_deg", json_number(before)},
                    {"personalised_deg", json_number(after)},
                    {"checks", checks},
                    {"passes", passes}};
    }
    descriptions += "- **" + run.name + "** (`" + run.config +
                    "`): " + (run.description.empty() ? "no description" : run.description) + "\n";
    conditions.push_back({{"name", run.name},
                          {"description", run.description},
                          {"config", run.config},
                          {"report", run.report_json},
                          {"seeds", seeds},
                          {"datasets", summary}});
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
      Json{{"conditions", conditions}, {"cells", report.cells}, {"cells_passing", report.cells_passing}}.dump(2) +
          "\n");
  return report;
}

}  // namespace gaze
