#include "trainers/report.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "libgaze/core/atomic_file.h"
#include "libgaze/core/json.h"
#include "libgaze/core/strings.h"
#include "trainers/charts.h"
#include "trainers/tables.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

// Paper Table 3 (mean angular error, degrees), SPEC §5.
struct PaperRow {
  bool personalised, student;
  double aea, openeds;
};
constexpr PaperRow kPaper[] = {
    {false, false, 1.94, 6.90},
    {false, true, 2.14, 7.82},
    {true, false, 2.32, 5.36},
    {true, true, 2.60, 5.80},
};

}  // namespace

double sample_standard_deviation(const std::vector<double>& values) {
  const size_t n = values.size();
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  double mean = 0, squares = 0;
  for (const double v : values) mean += v / double(n);
  for (const double v : values) squares += (v - mean) * (v - mean);
  return std::sqrt(squares / double(n - 1));
}

double seed_sd(const DatasetScores& s, double SeedScores::*field) {
  if (s.seeds.size() < 2) return 0;
  std::vector<double> values;
  for (const SeedScores& seed : s.seeds) values.push_back(seed.*field);
  return sample_standard_deviation(values);
}

std::string error_cell(const DatasetScores& s, bool personalised, bool csv) {
  const double mean = personalised ? s.personalised : s.generalised;
  if (csv) return fmt(mean, 4);
  double SeedScores::*field = personalised ? &SeedScores::personalised : &SeedScores::generalised;
  return fmt(mean) + (s.seeds.size() > 1 ? " ± " + fmt(seed_sd(s, field)) : "");
}

double people_standard_error(const std::map<int64_t, double>& people) {
  std::vector<double> errors;
  for (const auto& [id, error] : people) errors.push_back(error);
  return sample_standard_deviation(errors) / std::sqrt(double(errors.size()));
}

std::map<int64_t, double> mean_per_person(const std::vector<const std::map<int64_t, double>*>& runs) {
  std::map<int64_t, double> sum;
  std::map<int64_t, int64_t> count;
  for (const auto* run : runs) {
    for (const auto& [id, error] : *run) {
      sum[id] += error;
      ++count[id];
    }
  }
  for (auto& [id, error] : sum) error /= double(count.at(id));
  return sum;
}

bool people_ratio_paired(const DatasetScores& s) {
  return !s.people.empty() && std::all_of(s.people.begin(), s.people.end(), [&](const auto& person) {
    return s.baseline_people.count(person.first) > 0;
  });
}

double people_ratio_standard_error(const DatasetScores& s) {
  if (!people_ratio_paired(s) || s.people.size() < 2) return people_standard_error(s.people) / s.baseline;
  const double n = double(s.people.size());
  double model = 0, baseline = 0;
  for (const auto& [id, error] : s.people) {
    model += error / n;
    baseline += s.baseline_people.at(id) / n;
  }
  const double ratio = model / baseline;
  double squares = 0;
  for (const auto& [id, error] : s.people) {
    const double residual = error - ratio * s.baseline_people.at(id);
    squares += residual * residual;
  }
  return std::sqrt(squares / (n * (n - 1))) / baseline;
}

std::string people_error_cell(const DatasetScores& s) {
  if (s.people.size() < 2) return "–";
  return fmt(people_ratio_standard_error(s), 3) + " (" + std::to_string(s.people.size()) + " " + s.protocol.unit + "s)";
}

Json people_json(const std::map<int64_t, double>& people) {
  Json out = Json::object();
  for (const auto& [id, error] : people) {
    if (std::isfinite(error)) out[std::to_string(id)] = error;  // summarize_errors refuses NaN: never skips
  }
  return out;
}

std::map<int64_t, double> people_at(const Json& object, const std::string& key, const std::string& where) {
  std::map<int64_t, double> people;
  if (!object.contains(key)) return people;
  const Json& v = object.at(key);
  if (!v.is_object()) throw Error(where + ": '" + key + "' is not an object of participant id -> degrees");
  for (const auto& [id, error] : v.items()) {
    int64_t person = 0;
    const auto [end, failed] = std::from_chars(id.data(), id.data() + id.size(), person);
    if (failed != std::errc() || end != id.data() + id.size() || std::to_string(person) != id || !error.is_number()) {
      throw Error(where + ": " + key + "." + id + ": expected a participant id and a number of degrees");
    }
    people[person] = error.get<double>();
  }
  return people;
}

namespace {

std::string error_sd_cell(const DatasetScores& s, bool personalised) {
  return fmt(seed_sd(s, personalised ? &SeedScores::personalised : &SeedScores::generalised), 4);
}

// Appends a model's error on one dataset to a table row: its cell, and in a CSV of a
// several-seed run the deviation's column after it.
void add_error_cells(std::vector<std::string>& cells, const DatasetScores& s, bool personalised, bool csv, bool seeds) {
  cells.push_back(error_cell(s, personalised, csv));
  if (csv && seeds) cells.push_back(error_sd_cell(s, personalised));
}

// A small SVG line chart of error vs k, one line per (model, dataset).
std::string k_curve_svg(const std::map<std::string, std::map<int64_t, double>>& curves) {
  double y_max = 0;
  int64_t k_max = 1;
  for (const auto& [name, curve] : curves) {
    for (const auto& [k, e] : curve) y_max = std::max(y_max, e), k_max = std::max(k_max, k);
  }
  y_max = std::max(1.0, y_max * 1.1);
  const double w = 560, h = 320, left = 60, bottom = 40, top = 20, right = 150;
  const auto px = [&](double k) { return left + (w - left - right) * k / double(k_max); };
  const auto py = [&](double e) { return top + (h - top - bottom) * (1 - e / y_max); };
  std::string svg =
      "<svg xmlns='http://www.w3.org/2000/svg' width='560' height='320' font-family='sans-serif' font-size='12'>\n";
  svg += "<rect width='100%' height='100%' fill='white'/>\n";
  svg += "<line x1='" + fmt(left) + "' y1='" + fmt(py(0)) + "' x2='" + fmt(px(double(k_max))) + "' y2='" + fmt(py(0)) +
         "' stroke='black'/>\n";
  svg += "<line x1='" + fmt(left) + "' y1='" + fmt(top) + "' x2='" + fmt(left) + "' y2='" + fmt(py(0)) +
         "' stroke='black'/>\n";
  svg += "<text x='" + fmt((left + w - right) / 2) + "' y='" + fmt(h - 8) +
         "' text-anchor='middle'>calibration images k</text>\n";
  svg += "<text x='14' y='" + fmt(h / 2) + "' transform='rotate(-90 14 " + fmt(h / 2) +
         ")' text-anchor='middle'>mean error (deg)</text>\n";
  for (int t = 0; t <= 4; ++t) {
    const double e = y_max * t / 4;
    svg += "<text x='" + fmt(left - 6) + "' y='" + fmt(py(e) + 4) + "' text-anchor='end'>" + fmt(e, 1) + "</text>\n";
  }
  const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"};
  int line = 0;
  for (const auto& [name, curve] : curves) {
    std::string points;
    for (const auto& [k, e] : curve) {
      points += fmt(px(double(k))) + "," + fmt(py(e)) + " ";
      svg += "<text x='" + fmt(px(double(k))) + "' y='" + fmt(py(0) + 14) + "' text-anchor='middle'>" +
             std::to_string(k) + "</text>\n";
    }
    const char* colour = colours[line % 4];
    svg += "<polyline fill='none' stroke='" + std::string(colour) + "' stroke-width='2' points='" + points + "'/>\n";
    svg += "<text x='" + fmt(w - right + 10) + "' y='" + fmt(top + 16 * line + 10) + "' fill='" + colour + "'>" + name +
           "</text>\n";
    ++line;
  }
  return svg + "</svg>\n";
}

// Paper Tables 1 and 2 (SPEC §5). Errors in kTableDatasets order; NaN is the paper's "–".
constexpr double kDash = std::numeric_limits<double>::quiet_NaN();
const std::vector<std::string> kTableDatasets = {"mpiigaze", "mpiifacegaze", "aea", "openeds"};
struct PaperModelRow {
  const char* model;  // ModelScores::name, or a method we do not run
  const char* title;
  const char* params;
  const char* tunable;
  double errors[4];
  const char* quoted;  // non-null: the paper quotes this row; why we do not run it
};
constexpr const char* kSourceFree =
    "source-free unsupervised domain adaptation: the paper quotes its published number and did not run it; not "
    "implemented here";
const PaperModelRow kTable1[] = {
    {"gazenet", "GazeNet (Zhang et al. 2019)", "90.24M", "90.24M", {5.70, 5.76, 3.01, 7.51}, nullptr},
    {"rtgene", "RT-Gene (Fischer et al. 2018)", "31.67M", "31.67M", {4.61, 4.66, 2.03, 6.02}, nullptr},
    {"gazetr_hybrid", "GazeTR-Hybrid (Cheng & Lu 2022)", "11.42M", "11.42M", {kDash, 4.00, 1.71, 5.44}, nullptr},
    {"teacher", "ConvNeXt V2-A (teacher)", "3.6M", "191.7K", {5.30, 4.29, 1.94, 6.90}, nullptr},
    {"student", "DFT Gaze", "281K", "14.43K", {6.13, 5.17, 2.14, 7.82}, nullptr},
};
const PaperModelRow kTable2[] = {
    {"gazenet", "GazeNet", "90.24M", "90.24M", {5.39, kDash, 4.16, 6.57}, nullptr},
    {"rtgene", "RT-Gene", "31.67M", "31.67M", {kDash, 3.27, 2.38, 4.80}, nullptr},
    {"gazetr_hybrid", "GazeTR-Hybrid", "11.42M", "11.42M", {kDash, 3.04, 2.05, 3.43}, nullptr},
    {"pnp_ga", "†PNP-GA", "119.5M", "116.9M", {kDash, 6.91, kDash, kDash}, kSourceFree},
    {"ruda", "†RUDA", "12.20M", "12.20M", {kDash, 6.86, kDash, kDash}, kSourceFree},
    {"tpgaze", "†TPGaze", "11.82M", "125K", {kDash, 6.30, kDash, kDash}, kSourceFree},
    {"teacher", "ConvNeXt V2-A (teacher)", "3.6M", "191.7K", {5.49, 4.60, 2.32, 5.36}, nullptr},
    {"student", "DFT Gaze", "281K", "14.43K", {6.61, 5.35, 2.60, 5.80}, nullptr},
};

// "90.24M", "191.7K", "14.43K": four significant digits, as Tables 1 and 2 print counts.
std::string table_count(int64_t n) {
  char buf[32];
  if (n >= 1000000) {
    std::snprintf(buf, sizeof buf, "%.4gM", double(n) / 1e6);
  } else if (n >= 1000) {
    std::snprintf(buf, sizeof buf, "%.4gK", double(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%lld", (long long)n);
  }
  return buf;
}

// Every model the run trained: teacher, student, our rows (full fine-tuning, variants), baselines.
std::vector<const ModelScores*> every_model(const PipelineResults& r) {
  std::vector<const ModelScores*> models = {&r.teacher, &r.student};
  for (const auto& m : r.our_rows) models.push_back(&m);
  for (const auto& b : r.baselines) models.push_back(&b);
  return models;
}

const ModelScores* find_model(const PipelineResults& r, const std::string& name) {
  for (const ModelScores* m : every_model(r))
    if (m->name == name) return m;
  return nullptr;
}

// The student rows the checks run on, each with the teacher row it is compared with: the
// paper's student against the paper's teacher, then ours that name one (checked_against).
std::vector<std::pair<const ModelScores*, const ModelScores*>> checked_pairs(const PipelineResults& r) {
  std::vector<std::pair<const ModelScores*, const ModelScores*>> pairs = {{&r.student, &r.teacher}};
  for (const auto& m : r.our_rows) {
    const ModelScores* teacher = m.checked_against.empty() ? nullptr : find_model(r, m.checked_against);
    if (teacher) pairs.emplace_back(&m, teacher);
  }
  return pairs;
}

// Table 1 (generalised) or 2 (personalised): every paper row, ours beside the paper's value; a
// cell we have no value for says why (Markdown: a numbered note; CSV: the reason itself).
std::string table12(const PipelineResults& r, bool personalised, bool csv) {
  const bool seeds = r.seeds.size() > 1;
  std::vector<std::string> header = {"model", "params", "paper params", "tunable", "paper tunable"};
  for (const auto& d : kTableDatasets) {
    const bool stand_in = r.stand_in.count(d) && r.stand_in.at(d);
    header.push_back(csv ? d + "_ours" : dataset_title(d) + (stand_in ? " (ours, stand-in)" : " (ours)"));
    if (csv && seeds) header.push_back(d + "_ours_sd");
    header.push_back(csv ? d + "_paper" : "paper");
  }
  header.push_back(csv ? "how_run_here" : "how run here");
  std::vector<std::string> reasons;
  const auto why = [&](const std::string& reason) -> std::string {
    if (csv) return "not run: " + reason;
    auto it = std::find(reasons.begin(), reasons.end(), reason);
    if (it == reasons.end()) it = reasons.insert(reasons.end(), reason);
    return "not run [" + std::to_string(it - reasons.begin() + 1) + "]";
  };
  std::vector<std::vector<std::string>> rows;
  for (const PaperModelRow& row : personalised ? std::vector<PaperModelRow>(std::begin(kTable2), std::end(kTable2))
                                               : std::vector<PaperModelRow>(std::begin(kTable1), std::end(kTable1))) {
    const ModelScores* m = row.quoted ? nullptr : find_model(r, row.model);
    const bool ran = m && !m->datasets.empty();
    std::vector<std::string> cells = {row.title, ran ? table_count(m->params) : "", row.params,
                                      ran ? table_count(m->tunable) : "", row.tunable};
    for (size_t i = 0; i < kTableDatasets.size(); ++i) {
      const std::string& d = kTableDatasets[i];
      std::string ours, sd;
      if (row.quoted) {
        ours = why(row.quoted);
      } else if (!m) {
        ours = why("not in pipeline.baselines");
      } else if (m->not_run.count(d)) {
        ours = why(m->not_run.at(d));
      } else if (!m->datasets.count(d)) {
        ours = why(dataset_title(d) + " is not in pipeline.datasets (gaze reproduce --" +
                   (d == "openeds" ? std::string("openeds2020") : d) + " PATH adds it)");
      } else {
        const DatasetScores& s = m->datasets.at(d);
        ours = error_cell(s, personalised, csv);
        sd = error_sd_cell(s, personalised);
      }
      cells.push_back(ours);
      if (csv && seeds) cells.push_back(sd);
      cells.push_back(std::isnan(row.errors[i]) ? (csv ? "" : "–") : fmt(row.errors[i]));
    }
    cells.push_back(ran ? m->note : "");
    if (csv) {
      for (auto& c : cells) c = csv_field(c);
    }
    rows.push_back(cells);
  }
  for (const ModelScores& m : r.our_rows) {  // beside the paper's rows: full fine-tuning, variants
    std::vector<std::string> cells = {m.title, table_count(m.params), "", table_count(m.tunable), ""};
    for (const std::string& d : kTableDatasets) {
      if (!m.datasets.count(d)) {
        cells.push_back(why(dataset_title(d) + " is not in pipeline.datasets"));
        if (csv && seeds) cells.push_back("");
      } else {
        add_error_cells(cells, m.datasets.at(d), personalised, csv, seeds);
      }
      cells.push_back(csv ? "" : "–");
    }
    cells.push_back(m.note);
    if (csv) {
      for (auto& c : cells) c = csv_field(c);
    }
    rows.push_back(cells);
  }
  if (csv) return csv_table(header, rows);
  std::string md = markdown_table(header, rows);
  if (!reasons.empty()) md += "\n";
  for (size_t i = 0; i < reasons.size(); ++i) md += "[" + std::to_string(i + 1) + "] " + reasons[i] + "  \n";
  return md;
}

// "# Title" -> "## Title": a table file's heading as a section of report.md.
std::string replace_first_heading(const std::string& markdown) {
  return starts_with(markdown, "# ") ? "#" + markdown : markdown;
}

// The demo's checks, per dataset, on the student's and teacher's numbers: the means, or one
// seed's. Names as report.json lists them.

bool check_passes(const std::string& check, const SeedScores& student, const SeedScores& teacher) {
  if (check == "student_vs_baseline") return student.generalised <= 0.5 * student.baseline;
  if (check == "student_vs_teacher") return student.generalised <= 1.25 * teacher.generalised;
  return student.personalised < student.before;  // personalisation_lowers
}

SeedScores means_of(const DatasetScores& s) { return {-1, s.generalised, s.personalised, s.before, s.baseline}; }

}  // namespace

CheckResult run_check(const std::string& check, const DatasetScores& student, const DatasetScores& teacher) {
  CheckResult c;
  c.passes = check_passes(check, means_of(student), means_of(teacher));
  c.seeds = std::min(student.seeds.size(), teacher.seeds.size());
  for (size_t i = 0; i < c.seeds; ++i) {
    if (!check_passes(check, student.seeds[i], teacher.seeds[i])) c.failing_seeds.push_back(student.seeds[i].seed);
  }
  return c;
}

namespace {

// Pass/fail words of one check, and "mixed" naming the seeds it fails on when it passes on others.
std::string verdict(const CheckResult& c, const std::string& pass, const std::string& fail) {
  std::string out = " (" + (c.passes ? pass : fail);
  if (c.mixed()) out += "; " + mixed_seeds_flag(c.failing_seeds);
  return out + ")";
}

std::string table3(const PipelineResults& r, bool csv) {
  const bool seeds = r.seeds.size() > 1;
  std::vector<std::string> header = {"setting", "model", "params"};
  for (const auto& d : r.datasets) {
    if (csv) {
      header.push_back(d + "_ours");
      if (seeds) header.push_back(d + "_ours_sd");
      header.push_back(d + "_paper");
    } else {
      header.insert(header.end(), {dataset_title(d) + " (ours)", "paper"});
    }
  }
  std::vector<std::vector<std::string>> rows;
  for (const PaperRow& row : kPaper) {
    const ModelScores& m = row.student ? r.student : r.teacher;
    std::vector<std::string> cells = {row.personalised ? "personalised" : "generalised",
                                      csv           ? m.name
                                      : row.student ? "DFT Gaze (student)"
                                                    : "ConvNeXt V2-A (teacher)",
                                      short_count(m.params)};
    for (const auto& d : r.datasets) {
      add_error_cells(cells, m.datasets.at(d), row.personalised, csv, seeds);
      cells.push_back(d == "aea" ? fmt(row.aea) : d == "openeds" ? fmt(row.openeds) : "–");
    }
    rows.push_back(cells);
  }
  for (const ModelScores& m : r.our_rows) {  // not the paper's: full fine-tuning, variants
    for (const bool personalised : {false, true}) {
      std::vector<std::string> cells = {personalised ? "personalised" : "generalised", csv ? m.name : m.title,
                                        short_count(m.params)};
      for (const auto& d : r.datasets) {
        add_error_cells(cells, m.datasets.at(d), personalised, csv, seeds);
        cells.push_back("–");
      }
      rows.push_back(cells);
    }
  }
  return csv ? csv_table(header, rows) : markdown_table(header, rows);
}

std::string checks(const PipelineResults& r) {
  std::vector<std::vector<std::string>> rows;
  const auto pairs = checked_pairs(r);
  for (const auto& [student, teacher] : pairs) {
    for (const auto& d : r.datasets) {
      const DatasetScores& st = student->datasets.at(d);
      const DatasetScores& te = teacher->datasets.at(d);
      const auto check = [&](const char* name) { return run_check(name, st, te); };
      rows.push_back({d});
      // With our rows beside the paper's pair, which student is checked against which teacher.
      if (pairs.size() > 1) rows.back().push_back(student->name + " vs " + teacher->name);
      rows.back().insert(
          rows.back().end(),
          {fmt(st.baseline),
           fmt(st.generalised / st.baseline, 3) + verdict(check("student_vs_baseline"), "<= 0.5 ok", "> 0.5"),
           people_error_cell(st),
           fmt(st.generalised / te.generalised, 3) + verdict(check("student_vs_teacher"), "<= 1.25 ok", "> 1.25"),
           fmt(st.before) + " -> " + fmt(st.personalised) +
               verdict(check("personalisation_lowers"), "lower ok", "not lower"),
           st.blink_auc < 0 ? "n/a" : fmt(st.blink_auc, 3),
           fmt(st.calibrate_seconds_per_user) + " s (" + fmt(st.seconds_per_user) + " s with the k curve)"});
    }
  }
  std::vector<std::string> header = {"dataset",
                                     "mean-gaze baseline",
                                     "student / baseline",
                                     "its standard error over the held-out people",
                                     "student / teacher",
                                     "personalisation (student: before -> after)",
                                     "blink AUC (student)",
                                     "calibrating one user at k (student)"};
  if (pairs.size() > 1) header.insert(header.begin() + 1, "pair");
  return markdown_table(header, rows);
}

// Under the checks, when some cell has its held-out people: what their standard error says.
std::string people_sentence(const PipelineResults& r) {
  bool any = false;
  for (const ModelScores* m : every_model(r)) {
    for (const auto& [d, s] : m->datasets) any = any || s.people.size() > 1;
  }
  if (!any) return "";
  return std::string(
             "\nThe standard error is that of student / baseline over the held-out people (each person's mean "
             "error over their open-eye frames") +
         (r.seeds.size() > 1 ? " and the seeds" : "") +
         ", the baseline's paired with the student's person by person): how much student / baseline would "
         "move had other people been held out. " +
         (r.seeds.size() > 1 ? "Every seed is scored on the same people, so the seeds' spread does not show it. "
                             : "") +
         "The ratio itself weights every frame alike; with as many frames per person the two means agree.\n";
}

// With several seeds: what the cells are ("" for one seed).
std::string seeds_sentence(const PipelineResults& r) {
  if (r.seeds.size() < 2) return "";
  std::vector<std::string> seeds;
  for (int64_t seed : r.seeds) seeds.push_back(std::to_string(seed));
  return "Every error is the mean over training seeds " + join(seeds, ", ") +
         " ± the standard deviation across them (pipeline.seeds; the data is the same for every seed).\n\n";
}

// How one dataset's cells were measured, in words that say who is unseen.
std::string protocol_sentence(const std::string& d, const DatasetScores& scores, int64_t k) {
  const CalibrationProtocol& p = scores.protocol;
  std::string out = dataset_title(d) + ": generalised = ";
  if (p.unit == "recording") {
    out +=
        "held-out recordings (recordings unseen; the wearer is not recorded, so a person may also appear in "
        "training)";
  } else if (p.unit == "sequence") {
    out += "the validation split (sequences unseen in training)";
  } else {
    out += "the validation split (people unseen in training)";
  }
  out += ", all open-eye frames. Personalised = ";
  const std::string ks = std::to_string(k);
  if (p.unit == "participant") {
    out += ks +
           " calibration images per person, drawn at random, mean over people of their frames outside the "
           "draw (the curve's largest k, so every k and model is scored on the same frames).";
  } else {
    const std::string from = p.calibration_window_ms > 0
                                 ? "the " + ks + " frames of its first " + fmt(p.calibration_window_ms, 0) +
                                       " ms whose gaze lies farthest apart"
                                 : "its first " + ks + " frames";
    out += "per " + p.unit + " (no person ids): calibrated on " + from + ", evaluated on its frames " +
           fmt(p.gap_ms, 0) + " ms and more after " + (p.calibration_window_ms > 0 ? "that window" : "them") +
           ", mean over " + p.unit + "s.";
  }
  return out;
}

std::string k_table(const PipelineResults& r, const std::map<std::string, std::map<int64_t, double>>& curves) {
  std::vector<std::string> header = {"model / dataset"};
  for (int64_t k : r.k_curve) header.push_back("k=" + std::to_string(k));
  std::vector<std::vector<std::string>> rows;
  for (const auto& [name, curve] : curves) {
    std::vector<std::string> cells = {name};
    for (int64_t k : r.k_curve) cells.push_back(curve.count(k) ? fmt(curve.at(k)) : "-");
    rows.push_back(cells);
  }
  return markdown_table(header, rows);
}

Json report_json(const PipelineResults& r) {
  Json datasets = Json::object();
  const std::vector<const ModelScores*> models = every_model(r);
  Json params = Json::object(), not_run = Json::object();
  for (const ModelScores* m : models) {
    params[m->name] = m->params;
    for (const auto& [d, reason] : m->not_run) not_run[m->name][d] = reason;
  }
  for (const auto& d : r.datasets) {
    for (const ModelScores* m : models) {
      if (!m->datasets.count(d)) continue;
      const DatasetScores& s = m->datasets.at(d);
      Json k_curve = Json::object();
      for (const auto& [k, e] : s.k_curve) k_curve[std::to_string(k)] = json_number(e);
      Json cell = {{"generalised_deg", json_number(s.generalised)},
                   {"personalised_deg", json_number(s.personalised)},
                   {"before_personalisation_deg", json_number(s.before)},
                   {"mean_gaze_baseline_deg", json_number(s.baseline)},
                   {"blink_auc", s.blink_auc < 0 ? Json(nullptr) : Json(s.blink_auc)},
                   {"seconds_per_user", s.seconds_per_user},
                   {"calibrate_seconds_per_user", s.calibrate_seconds_per_user},
                   {"personalised_per", s.protocol.unit},
                   {"gap_ms", s.protocol.gap_ms < 0 ? Json(nullptr) : Json(s.protocol.gap_ms)},
                   {"calibration_window_ms", s.protocol.calibration_window_ms},
                   {"k_curve", k_curve}};
      if (!s.people.empty()) {
        cell["people_deg"] = people_json(s.people);
        cell["people_standard_error_deg"] = json_number(people_standard_error(s.people));
      }
      if (!s.baseline_people.empty()) cell["baseline_people_deg"] = people_json(s.baseline_people);
      if (s.seeds.size() > 1) {
        Json seeds = Json::array();
        for (const SeedScores& seed : s.seeds) {
          seeds.push_back({{"seed", seed.seed},
                           {"generalised_deg", json_number(seed.generalised)},
                           {"personalised_deg", json_number(seed.personalised)},
                           {"before_personalisation_deg", json_number(seed.before)},
                           {"mean_gaze_baseline_deg", json_number(seed.baseline)}});
          if (!seed.people.empty()) seeds.back()["people_deg"] = people_json(seed.people);
        }
        cell["seeds"] = seeds;
        cell["generalised_sd_deg"] = json_number(seed_sd(s, &SeedScores::generalised));
        cell["personalised_sd_deg"] = json_number(seed_sd(s, &SeedScores::personalised));
      }
      datasets[d][m->name] = cell;
    }
  }
  Json checks = Json::array();
  for (const auto& [student, teacher] : checked_pairs(r)) {
    for (const auto& d : r.datasets) {
      for (const std::string& name : pipeline_check_names()) {
        const CheckResult c = run_check(name, student->datasets.at(d), teacher->datasets.at(d));
        checks.push_back({{"dataset", d},
                          {"model", student->name},
                          {"against", teacher->name},
                          {"check", name},
                          {"passes", c.passes},
                          {"mixed", c.mixed()},
                          {"failing_seeds", c.failing_seeds}});
      }
    }
  }
  return {{"datasets", datasets},
          {"deviations", r.deviations},
          {"ours", r.ours},
          {"params", params},
          {"not_run", not_run},
          {"commit", r.commit},
          {"config_hash", r.config_hash},
          {"input", {r.input_h, r.input_w}},
          {"k", r.k},
          {"seeds", r.seeds},
          {"checks", checks},
          {"seconds", r.seconds}};
}

// Per dataset: every model's generalised error CDF, and its error vs calibration shots k.
std::vector<std::string> write_table_charts(const PipelineResults& r, const std::string& folder) {
  const std::vector<const ModelScores*> models = every_model(r);
  std::vector<std::string> paths;
  for (const auto& d : r.datasets) {
    LineChart cdf, k_curve;
    cdf.title = dataset_title(d) + ": generalised error, cumulative";
    cdf.x_label = "angular error (deg)";
    cdf.y_label = "fraction of frames";
    cdf.markers = false;
    k_curve.title = dataset_title(d) + ": error vs calibration images";
    k_curve.x_label = "calibration images k";
    k_curve.y_label = "mean error (deg)";
    for (const ModelScores* m : models) {
      if (!m->datasets.count(d)) continue;
      const DatasetScores& s = m->datasets.at(d);
      const std::string name = m->title.empty() ? m->name : m->title;
      if (!s.errors.empty()) cdf.series.push_back({name, cdf_points(s.errors)});
      ChartSeries curve{name, {}};
      for (const auto& [k, e] : s.k_curve) curve.points.emplace_back(double(k), e);
      if (!curve.points.empty()) k_curve.series.push_back(curve);
    }
    if (!cdf.series.empty()) {
      paths.push_back((fs::path(folder) / ("table1_cdf_" + d + ".png")).string());
      write_chart_png(cdf, paths.back());
    }
    if (!k_curve.series.empty()) {
      paths.push_back((fs::path(folder) / ("table2_k_" + d + ".png")).string());
      write_chart_png(k_curve, paths.back());
    }
  }
  return paths;
}

}  // namespace

std::string dataset_title(const std::string& d) {
  if (d == "aea") return "AEA";
  if (d == "openeds") return "OpenEDS2020";
  if (d == "mpiigaze") return "MPIIGaze";
  if (d == "mpiifacegaze") return "MPIIFaceGaze";
  return d;
}

std::string protocol_markdown(const std::vector<std::string>& deviations, const std::vector<std::string>& ours) {
  std::string md = "Deviations from the paper:\n\n";
  if (deviations.empty()) md += "- none\n";
  for (const auto& line : deviations) md += "- " + line + "\n";
  md += "\nValues the paper does not state (ours):\n\n";
  if (ours.empty()) md += "- none\n";
  for (const auto& line : ours) md += "- " + line + "\n";
  return md;
}

std::string short_count(int64_t n) {
  char buf[32];
  if (n >= 1000000) {
    std::snprintf(buf, sizeof buf, "%.1fM", double(n) / 1e6);
  } else if (n >= 1000) {
    std::snprintf(buf, sizeof buf, "%lldK", (long long)((n + 500) / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%lld", (long long)n);
  }
  return buf;
}

const std::vector<std::string>& pipeline_check_names() {
  static const std::vector<std::string> names = {"student_vs_baseline", "student_vs_teacher", "personalisation_lowers"};
  return names;
}

std::string mixed_seeds_flag(const std::vector<int64_t>& failing_seeds) {
  std::vector<std::string> seeds;
  for (int64_t seed : failing_seeds) seeds.push_back(std::to_string(seed));
  return "**mixed**: fails on seed" + std::string(seeds.size() > 1 ? "s " : " ") + join(seeds, ", ");
}

PipelineReport write_pipeline_report(const PipelineResults& r, const std::string& folder) {
  std::map<std::string, std::map<int64_t, double>> curves;
  for (const auto& d : r.datasets) {
    std::vector<const ModelScores*> models = {&r.teacher, &r.student};
    for (const auto& m : r.our_rows) models.push_back(&m);
    for (const ModelScores* m : models) curves[m->name + " " + d] = m->datasets.at(d).k_curve;
  }
  std::string md = "# DFT Gaze — Table 3 reproduction\n\n";
  md += "Data: " + r.data_description + "; input " + std::to_string(r.input_h) + "x" + std::to_string(r.input_w) +
        "; mean angular error in degrees (ours | paper).\n\n";
  md += seeds_sentence(r);
  md += table3(r, false) + "\n";
  for (const auto& d : r.datasets) md += "- " + protocol_sentence(d, r.student.datasets.at(d), r.k) + "\n";
  md += "\n## Protocol\n\n" + protocol_markdown(r.deviations, r.ours);
  md += "\n## Checks\n\n";
  md += checks(r);
  md += people_sentence(r);
  md += "\n## Error vs number of calibration images k\n\n" + k_table(r, curves);
  md += "\n![error vs k](k_curve.svg)\n\nPipeline time: " + fmt(r.seconds, 0) + " s.\n";
  const bool tables12 = !r.baselines.empty() || std::any_of(r.datasets.begin(), r.datasets.end(), [](const auto& d) {
    return d == "mpiigaze" || d == "mpiifacegaze";
  });
  std::vector<std::pair<std::string, std::string>> table_files;
  if (tables12) {
    const std::string provenance = "Data: " + r.data_description + ". Mean angular error in degrees. Wall time " +
                                   fmt(r.seconds, 0) + " s on this machine; libgaze " + r.commit + ", config " +
                                   r.config_hash + " (pipeline.yaml beside this file).\n\n" + seeds_sentence(r);
    for (const bool personalised : {false, true}) {
      const std::string name = personalised ? "table2" : "table1";
      const std::string title = personalised ? "# Table 2 — personalised (k = " + std::to_string(r.k) + ")\n\n"
                                             : "# Table 1 — generalised, within-dataset\n\n";
      std::string charts;
      for (const auto& d : r.datasets) {
        charts += personalised ? "![" + dataset_title(d) + " error vs k](table2_k_" + d + ".png)\n"
                               : "![" + dataset_title(d) + " error CDF](table1_cdf_" + d + ".png)\n";
      }
      const std::string table = title + provenance + table12(r, personalised, false) + "\n" + charts;
      md += "\n" + replace_first_heading(table);
      table_files.emplace_back(name + ".md", table);
      table_files.emplace_back(name + ".csv", table12(r, personalised, true));
    }
  }

  PipelineReport report;
  report.seconds = r.seconds;
  report.markdown = md;
  report.markdown_path = (fs::path(folder) / "report.md").string();
  report.csv_path = (fs::path(folder) / "table3.csv").string();
  report.json_path = (fs::path(folder) / "report.json").string();
  report.svg_path = (fs::path(folder) / "k_curve.svg").string();
  write_text_atomically(report.markdown_path, md);
  write_text_atomically(report.csv_path, table3(r, true));
  write_text_atomically(report.json_path, report_json(r).dump(2) + "\n");
  write_text_atomically(report.svg_path, k_curve_svg(curves));
  for (const auto& [file, text] : table_files) {
    report.table_paths.push_back((fs::path(folder) / file).string());
    write_text_atomically(report.table_paths.back(), text);
  }
  if (tables12) report.chart_paths = write_table_charts(r, folder);
  return report;
}

}  // namespace gaze
