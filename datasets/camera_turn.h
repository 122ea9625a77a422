// Camera turns: how a near-eye camera turned about its centre sees the eye, and the gaze label
// with it (no dependencies).
//
// Frames: the camera's (x right, y up, z along the view) and the label's, the renderer's and
// OpenEDS' and AEA's layouts (x along the columns, y against the rows, z out of the eye towards
// the camera; not MPIIGaze's normalised frame, where y and z point the other way). An untilted
// camera's frame is the label frame with z negated. A camera tilted against the wearer's
// straight ahead (below or beside the eye, as on real headsets: CameraTilt, synth.camera_tilt_deg)
// sees that direction d along tilt.apply(d).
//
// A turn (CameraTurn) is a rotation in the camera's own frame: a direction the camera saw along
// v it sees along turn.apply(v) once turned; the image is resampled through the turn
// (preprocess.h's resample_turned), the label through the tilt, the turn and the tilt undone
// (turn_gaze). A crop shift stands for such a turn (camera_turn_for_shift): to first order a
// window moved by d pixels is a camera turned by atan(d / focal). The image so turned is exact;
// the label is the visual axis, which the image shows only through the optical axis, kappa away:
// turned, the two differ at second order (the renderer's kappa: ~0.2 degrees at a 6-degree turn).
#pragma once

#include "libgaze/metrics/gaze_vector.h"

namespace gaze {

// Yaw about the camera's y axis (a positive yaw takes +z towards +x), then pitch about its x
// axis (positive: +y towards +z), then roll about its view axis (positive: +x towards +y),
// radians. undo is the inverse, each step undone in reverse order.
struct CameraTurn {
  double yaw = 0, pitch = 0, roll = 0;
  Vec3 apply(const Vec3& v) const;
  Vec3 undo(const Vec3& v) const;
};

// The turn a crop shift of (shift_x, shift_y) source pixels (x right, y down) stands for, for a
// camera of focal length `focal_px` pixels, then `roll`: its yaw and pitch take the view axis
// (0, 0, 1) to (-shift_x, shift_y, focal_px) exactly, so the source's centre lands where the
// translated window puts it. (The output's centre then shows a point a little off the shifted
// window's centre when both shifts are non-zero: about 0.1 px at the demo's 8%.)
CameraTurn camera_turn_for_shift(double shift_x, double shift_y, double roll, double focal_px);

// The camera's tilt against the label frame (radians), the renderer's convention: pitch about x
// (positive: the eye's straight ahead turns up in the image, a camera looking up from below),
// then yaw about y (positive: +z towards -x, straight ahead appearing to the image's right; the
// opposite sense of CameraTurn's yaw). apply takes an untilted camera-frame direction to the
// tilted camera's frame; the renderer calls it, so its arithmetic is the renderer's own.
struct CameraTilt {
  double yaw = 0, pitch = 0;
  bool level() const { return yaw == 0 && pitch == 0; }
  Vec3 apply(const Vec3& v) const;
  Vec3 undo(const Vec3& v) const;
};

// A gaze label as the turned camera sees it, in the label frame: the label taken into the
// camera's frame (z negated, then `tilt`), turned, and taken back.
Vec3 turn_gaze(const Vec3& gaze, const CameraTurn& turn, const CameraTilt& tilt = {});

// The gaze an eye shows when the crop window moves by (shift_x, shift_y) source pixels, for a
// level camera of focal length `focal_px` pixels: turn_gaze by camera_turn_for_shift, no roll
// (the tests' and the docs' shorthand).
// Moving the window right puts the eye further left in the frame, that is, seen from further
// right: an eye that looks the same there looks further towards the camera's +x.
Vec3 turn_gaze_for_shift(const Vec3& gaze, double shift_x, double shift_y, double focal_px);

}  // namespace gaze
