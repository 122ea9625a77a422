// The synthetic renderer's version: which rendering a folder of synthetic data came from.
//
// A pipeline renders its data once and reuses the folder while data/synth.done, the stamp of the
// render, names the same settings and seed. Settings and seed do not say which renderer drew the
// pixels: after a change to the renderer (eye_renderer, synth_writer, mpii_writer,
// natural_images) a run folder from before would be reused, and every number trained on it
// would come from the old eyes. So the stamp's first line names this version ("# renderer: N", a
// YAML comment: the stamp stays a config `gaze synth -c` reads), and a run folder whose stamp
// names another version, or none, is refused with the folder to delete: its stages were trained
// on the old eyes, and a stage is reused by its config, which a new renderer does not change.
//
// Bump kSynthRendererVersion in the change that makes the renderer write other bytes for the
// same settings and seed; a change that keeps every byte (speed, refactoring) keeps it.
// renderer_version_test.cpp holds the version to that: it compares a small render of every
// layout with the fingerprint recorded for this version (datasets/synth/testdata/).
#pragma once

#include <string>

namespace gaze {

inline constexpr int kSynthRendererVersion = 1;

// The stamp's first line starts with this; the version and a newline follow.
inline constexpr char kSynthRendererStampPrefix[] = "# renderer: ";

// The first line a stamp written by this libgaze starts with.
inline std::string synth_renderer_stamp_line() {
  return kSynthRendererStampPrefix + std::to_string(kSynthRendererVersion) + "\n";
}

}  // namespace gaze
