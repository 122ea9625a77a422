// gaze synth's MPII layouts: rendered people written the way the MPII datasets ship, so the
// MPIIGaze and MPIIFaceGaze loaders read them through their real code paths (matio).
//
//   <out_dir>/mpiigaze/Data/Normalized/pXX/dayYY.mat    data.{left,right}.{gaze,image,pose},
//                                                       filenames (MATLAB level 5, compressed)
//   <out_dir>/mpiigaze/Evaluation Subset/sample list for eye image/pXX.txt
//   <out_dir>/mpiifacegaze/pXX/pXX.txt, pXX/dayYY/NNNN.jpg,
//                          pXX/Calibration/{Camera,monitorPose,screenSize}.mat
// Every rendered person is one pXX (the MPII protocols are leave-one-person-out). Each person
// has synth.mpii_images images over a few days, the last day holding a single image (real days
// range from 1 to ~800 images); the evaluation list names synth.mpii_evaluation of them, half
// left and half right eyes, in random order, so lookups by file name are exercised. Eyes are
// rendered at 36x60, histogram-equalised, gaze and head pose in MPII's normalised camera frame
// (x right, y down, z forward; the gaze points from the eye to the target).
// MPIIFaceGaze frames (synth.mpii_frame, 360x640 by default against the real 720x1280) show a
// head placed and turned at random 450-650 mm from a calibrated camera with mild lens
// distortion: a face ellipse, two rendered eyes looking at a target on the screen below the
// camera, a mouth; the annotation holds the six landmarks projected from a 6-point face model
// (ours: MPII's model file is not redistributable), head pose, face centre (the model points'
// mean) and the target, exactly as the real files are laid out.
#pragma once

#include <cstdint>

#include "datasets/synth/synth_writer.h"

namespace gaze {

// Writes <out_dir>/mpiigaze atomically (a staged folder renamed into place); returns its root.
std::string write_synthetic_mpiigaze(const SynthConfig& config, uint64_t seed, int64_t threads, int64_t* images);
std::string write_synthetic_mpiifacegaze(const SynthConfig& config, uint64_t seed, int64_t threads, int64_t* images);

}  // namespace gaze
