// gaze synth: renders synthetic people and writes them in the real datasets' layouts, so
// that every downstream step (loaders, packs, trainers) runs through the real readers.
//
//   <out_dir>/openeds/{train,validation,test}/sequences/<seq>/NNN.png + labels/<seq>.txt
//   <out_dir>/openeds/participants.csv         "seq,participant" (for personalisation)
//   <out_dir>/people.csv                        each person's draw: anatomy, kappa, headset fit,
//                                               camera (people_csv), to study errors against
//   <out_dir>/aea/synth_pNN_rec1/recording.vrs  eye stream 211-1 (JPEG, both eyes), plus a
//                                               zstd-compressed IMU-like stream to skip
//                                               (NN: the person, zero-padded to the largest)
//   <out_dir>/aea/synth_pNN_rec1/mps/eye_gaze/general_eye_gaze.csv   (general_v2 columns)
//   <out_dir>/aea/synth_pNN_rec1/metadata.json
//   <out_dir>/images/class_NN/NNNNN.jpg         RGB natural-image stand-ins (natural_images.h)
//   <out_dir>/mpiigaze/..., mpiifacegaze/...    the MPII datasets' layouts (mpii_writer.h)
// Rendered blinks are listed beside the labels (openeds/<split>/blinks/<seq>.txt: frame ids;
// aea/<rec>/synth_blinks.txt: timestamps in µs); the loaders set SampleLabel::blink from them.
// People are split into train / validation / test by synth.*_participants, so OpenEDS's
// validation and test people are never seen in its training (their kappa is theirs to
// personalise). Both layouts render the same people (person i is OpenEDS participant i and AEA
// recording synth_p<i>); AEA's recordings are split when packed, with their own draw, so a
// pipeline's label-free stages, which read both datasets' training people, see a few people as
// AEA images whom OpenEDS holds out, and the other way round (no labels; the pipeline's report
// lists it among its deviations). Each layout
// is written into a temporary folder and renamed into place: an interrupted run never leaves
// a half-written dataset where a complete one was.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "datasets/synth/eye_renderer.h"
#include "libgaze/config/config.h"

namespace gaze {

struct SynthFrame {
  EyeFrameState state;
  bool blink = false;  // lids more than half closed
};

// One row per rendered person, with a header: participant (the id OpenEDS' participants.csv and
// AEA's synth_pNN recordings carry), their OpenEDS split (what was rendered: a pipeline with
// data.train_people trains on the first N "train" rows only; AEA's split is drawn when packed),
// and the draws a per-person error can be studied against (kappa and camera tilt in degrees,
// distances in mm; the skin, sclera, lid shape and iris depth draws are not listed).
std::string people_csv(const SynthConfig& config, uint64_t seed);

// The population synth.* describes (camera tilt, fit, LEDs, anatomy spread, iris brightness).
EyePopulation eye_population(const SynthConfig& config);

// A gaze sequence at `fps`: fixations with drift, saccades, blinks, pupil changes, slip, and
// the sequence's light (synth.exposure per frame, synth.light_gradient per sequence).
std::vector<SynthFrame> generate_sequence(const EyeParticipant& p, int64_t frames, double fps,
                                          const SynthConfig& config, uint64_t seed);

struct SynthReport {
  int64_t openeds_images = 0, aea_frames = 0, images = 0, mpiigaze_images = 0, mpiifacegaze_images = 0;
  double seconds = 0;
  std::string openeds_root, aea_root, images_root, mpiigaze_root, mpiifacegaze_root;
};

SynthReport write_synthetic_datasets(const SynthConfig& config, uint64_t seed, int64_t threads);

}  // namespace gaze
