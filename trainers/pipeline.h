// gaze run — the end-to-end job (the README's main job) and its report.
//
//   synth (unless real dataset roots are given) -> pack (one HDF5 per dataset, all splits)
//   -> teacher FCMAE on every dataset's train split (optionally from an imported official
//      checkpoint) -> teacher adapters per dataset -> MAE+KD distillation of the student
//   -> student adapters per dataset -> generalised evaluation on each validation split
//   -> personalisation on each test split (k-shot, error vs k) -> report.
//
// Everything lives under <run.out_dir>/<run.name>/: data/, packs/, one run directory per
// stage (each resumes when the pipeline is run again), users/, and the report: report.md,
// table3.csv, report.json, k_curve.svg. The report puts Table 3 (teacher/student x
// generalised/personalised, per dataset) beside the paper's numbers and the mean-gaze
// baseline, and checks the acceptance criteria.
#pragma once

#include <string>

#include "libgaze/config/config.h"

namespace gaze {

struct PipelineReport {
  std::string markdown_path, csv_path, json_path, svg_path;
  std::string markdown;
  double seconds = 0;
};

PipelineReport run_pipeline(const Config& config);

}  // namespace gaze
