// Project Aria MPS eye-gaze CSV (mps/eye_gaze/general_eye_gaze.csv), parsed by header name.
//
// Four column layouts exist; each row becomes a unit direction in the Central Pupil Frame:
//   legacy      tracking_timestamp_us, yaw_rads_cpf, pitch_rads_cpf, depth_m, ... (no session_uid)
//   general_v2  the same plus session_uid
//   vergence    left_yaw_rads_cpf, right_yaw_rads_cpf, pitch_rads_cpf (+ eye origins): the two
//               eye rays are intersected (IPD 0.063 m, SPEC §3)
//   gen2        Aria Gen2: combined yaw_rads_cpf/pitch_rads_cpf beside the per-eye yaws; the
//               combined angles are used
// Yaw/pitch -> d = normalise(tan yaw, tan pitch, 1). Rows come back sorted by timestamp.
// Errors: a missing column, a short row or a non-numeric/NaN value names file:line and the
// column; with `skip`, bad rows are counted there instead.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "datasets/dataset.h"

namespace gaze {

enum class MpsGazeLayout { kLegacy, kGeneralV2, kVergence, kGen2 };
const char* mps_gaze_layout_name(MpsGazeLayout layout);

struct MpsGazeRow {
  int64_t timestamp_us = 0;
  std::array<float, 3> direction{0, 0, 1};
  int64_t line = 0;
};

struct MpsGazeTable {
  MpsGazeLayout layout = MpsGazeLayout::kGeneralV2;
  std::vector<MpsGazeRow> rows;  // sorted by timestamp_us

  // Row whose timestamp is nearest `t_us` and within `tolerance_us`; nullptr if none.
  const MpsGazeRow* match(int64_t t_us, int64_t tolerance_us) const;
};

MpsGazeTable read_mps_gaze_csv(const std::string& path, SkipLog* skip = nullptr);

}  // namespace gaze
