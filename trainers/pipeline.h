// gaze run — the end-to-end job (the README's main job) and its report.
//
//   synth (unless real dataset roots are given) -> pack (one HDF5 per dataset, all splits)
//   -> teacher FCMAE on every dataset's train split (optionally from an imported official
//      checkpoint) -> MAE+KD distillation of the student -> per dataset, teacher and student
//      adapters -> generalised evaluation on each validation split -> personalisation on each
//      test split (k-shot, error vs k) -> report (trainers/report.h).
//
// The pipeline is data: pipeline.stages names each stage's config file (configs/stages/*.yaml)
// and its overrides; the pipeline file's other sections are what all stages share (see
// PipelineStages in libgaze/config/config.h for the order they are applied in).
//
// Everything lives under <run.out_dir>/<run.name>/: data/, packs/, one run directory per
// stage (each resumes when the pipeline is run again), users/, and the report: report.md,
// table3.csv, report.json, k_curve.svg.
//
// Repeats: the MPII datasets' leave-one-person-out folds (pipeline.mpii_protocol) train their
// adapters, baselines and users per held-out person (runs named _pNN), and pipeline.seeds trains
// every stage after packing once per seed (runs and user folders named _sN, except run.seed's
// own, which keep their plain names). The data is rendered, packed and split once, with run.seed.
// A row whose adapters and personalisation configs equal an earlier row's but for the run names
// (a variant that trains a model again with nothing changed for it) is trained once: it reports
// the earlier row's scores and has no run or user folders of its own.
//
// Work already done is skipped by stamps: data/synth.done (the renderer's
// version, datasets/synth/renderer_version.h, its settings and seed) and
// packs/<dataset>.done (the data settings); a new render drops the packs' stamps first, so what
// is rendered is always packed anew. A folder rendered by another renderer version (or whose stamp
// names none) is refused. A model already scored from the same checkpoint, config, pack and
// libgaze code reads its scores back from its run's scores.json (trainers/score_cache.h), so a
// finished run resumed to add a variant or seed scores only what is new. describe_pipeline()
// (`gaze run --protocol`) states the report's deviations from the paper and our own choices without rendering or
// training. The report averages over folds and seeds and shows the seeds' spread (trainers/report.h).
#pragma once

#include <string>
#include <vector>

#include "libgaze/config/config.h"
#include "trainers/report.h"

namespace gaze {

PipelineReport run_pipeline(const Config& config);

// Where a run of `config` departs from the paper's protocol and the values it chooses where the
// paper is silent, as its report will state them (PipelineResults::deviations, ::ours), without
// running anything (`gaze run --protocol`).
struct PipelineProtocol {
  std::vector<std::string> deviations, ours;
};
PipelineProtocol describe_pipeline(const Config& config);

}  // namespace gaze
