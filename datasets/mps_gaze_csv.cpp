#include "datasets/mps_gaze_csv.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "datasets/csv.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "libgaze/metrics/gaze_vector.h"

namespace gaze {

const char* mps_gaze_layout_name(MpsGazeLayout layout) {
  switch (layout) {
    case MpsGazeLayout::kLegacy:
      return "legacy";
    case MpsGazeLayout::kGeneralV2:
      return "general_v2";
    case MpsGazeLayout::kVergence:
      return "vergence";
    case MpsGazeLayout::kGen2:
      return "gen2";
  }
  return "?";
}

const MpsGazeRow* MpsGazeTable::match(int64_t t_us, int64_t tolerance_us) const {
  const auto it = std::lower_bound(rows.begin(), rows.end(), t_us,
                                   [](const MpsGazeRow& r, int64_t t) { return r.timestamp_us < t; });
  const MpsGazeRow* best = nullptr;
  int64_t best_gap = tolerance_us + 1;
  for (auto candidate : {it, it == rows.begin() ? rows.end() : it - 1}) {
    if (candidate == rows.end()) continue;
    const int64_t gap = std::llabs(candidate->timestamp_us - t_us);
    if (gap < best_gap) {
      best_gap = gap;
      best = &*candidate;
    }
  }
  return best;
}

MpsGazeTable read_mps_gaze_csv(const std::string& path, SkipLog* skip) {
  const std::vector<CsvRow> rows = read_csv_rows(path);
  if (rows.empty()) throw Error(path + ": empty gaze CSV (no header)");
  std::map<std::string, size_t> column;
  for (size_t i = 0; i < rows[0].fields.size(); ++i) column[trim(rows[0].fields[i])] = i;
  const auto has = [&](const char* name) { return column.count(name) > 0; };

  MpsGazeTable table;
  const bool combined = has("yaw_rads_cpf") && has("pitch_rads_cpf");
  const bool per_eye = has("left_yaw_rads_cpf") && has("right_yaw_rads_cpf") && has("pitch_rads_cpf");
  if (!has("tracking_timestamp_us") || (!combined && !per_eye)) {
    throw Error(path +
                ":1: not an MPS eye-gaze CSV: needs tracking_timestamp_us and either "
                "yaw_rads_cpf+pitch_rads_cpf or left_yaw_rads_cpf+right_yaw_rads_cpf+pitch_rads_cpf "
                "(header: " +
                join(rows[0].fields, ",") + ")");
  }
  if (combined && per_eye) {
    table.layout = MpsGazeLayout::kGen2;
  } else if (per_eye) {
    table.layout = MpsGazeLayout::kVergence;
  } else {
    table.layout = has("session_uid") ? MpsGazeLayout::kGeneralV2 : MpsGazeLayout::kLegacy;
  }

  const size_t width = rows[0].fields.size();
  for (size_t r = 1; r < rows.size(); ++r) {
    const CsvRow& row = rows[r];
    const std::string where = path + ":" + std::to_string(row.line);
    try {
      if (row.fields.size() < width) {
        throw Error(where + ": expected " + std::to_string(width) + " fields, got " +
                    std::to_string(row.fields.size()));
      }
      // Angles in the Central Pupil Frame: |angle| < pi/2 (tan is taken), everything else is damage.
      const auto number = [&](const char* name) {
        const double v = parse_finite_double(row.fields[column.at(name)], where + ": column " + name);
        if (std::fabs(v) >= M_PI / 2) {
          throw Error(where + ": column " + name + ": " + row.fields[column.at(name)] + " rad is not a gaze angle");
        }
        return v;
      };
      MpsGazeRow out;
      out.line = row.line;
      out.timestamp_us =
          parse_int64(row.fields[column.at("tracking_timestamp_us")], where + ": column tracking_timestamp_us");
      Vec3 d;
      if (combined) {
        d = aria_direction({number("yaw_rads_cpf"), number("pitch_rads_cpf")});
      } else {
        d = aria_vergence_direction(number("left_yaw_rads_cpf"), number("right_yaw_rads_cpf"),
                                    number("pitch_rads_cpf"));
      }
      out.direction = unit_gaze(d.x, d.y, d.z, where);
      table.rows.push_back(out);
    } catch (const Error& e) {
      if (!skip) throw;
      skip->add(e.what());
    }
  }
  std::stable_sort(table.rows.begin(), table.rows.end(),
                   [](const MpsGazeRow& a, const MpsGazeRow& b) { return a.timestamp_us < b.timestamp_us; });
  // Two rows for one instant: which one is the label? Refuse (or skip the later one).
  std::vector<MpsGazeRow> unique;
  for (const MpsGazeRow& row : table.rows) {
    if (!unique.empty() && unique.back().timestamp_us == row.timestamp_us) {
      const std::string message = path + ":" + std::to_string(row.line) + ": tracking_timestamp_us " +
                                  std::to_string(row.timestamp_us) + " repeats line " +
                                  std::to_string(unique.back().line);
      if (!skip) throw Error(message);
      skip->add(message);
      continue;
    }
    unique.push_back(row);
  }
  table.rows = std::move(unique);
  return table;
}

}  // namespace gaze
