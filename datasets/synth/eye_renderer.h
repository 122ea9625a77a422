// A near-eye infrared camera renderer driven by a 3-D eye model (no dependencies).
//
// Geometry (millimetres, camera at the origin looking along +z, +y up): an eyeball sphere
// (radius ~12) rotates about its centre so that its optical axis points along the gaze; the
// cornea is a second sphere (radius ~7.8) centred 5.3 mm along the optical axis, so it bulges
// out of the eyeball and meets it at the limbus. Each pixel's ray is intersected with both;
// rays entering the cornea are refracted (n = 1.376) onto the iris plane, where a pupil of
// varying radius sits inside a textured iris. Corneal glints are the specular reflections of
// a ring of IR LEDs around the camera, found by solving for the mirror point on the cornea.
// Eyelids (image-space curves around the projected eye centre) follow vertical gaze and blink;
// lashes hang from the upper lid; skin, sensor noise, blur, vignetting and camera slip finish it.
// The camera may be tilted against the wearer's straight ahead (a camera below or beside the
// eye, as on real headsets): the eye is then seen rotated by the tilt, while the lids, being
// drawn in image space, stay level.
//
// The label is the visual axis; the optical axis is offset from it by the participant's kappa
// angle, so a model trained across participants has a per-person bias left to personalise.
// Label frame (as Aria's CPF): +x to the wearer's left (image right), +y up, +z forward (toward
// the camera). Rendering is deterministic for a given participant, state and seed.
#pragma once

#include <cstdint>

#include "datasets/image.h"
#include "libgaze/core/random.h"
#include "libgaze/metrics/gaze_vector.h"

namespace gaze {

struct EyeParticipant {
  int64_t id = 0;
  double eyeball_radius = 12.0, cornea_radius = 7.8, cornea_offset = 5.3, iris_depth = 9.6;
  double iris_radius = 5.8, pupil_radius = 1.8;   // pupil at rest, mm
  double kappa_yaw = 0.09, kappa_pitch = 0.025;   // visual minus optical axis, radians
  double eye_distance = 32.0;                     // camera to eyeball centre, mm
  double eye_offset_x = 0.0, eye_offset_y = 0.0;  // how the headset sits, mm
  double lid_open = 0.62, lid_follow = 0.55, lid_width = 1.35, lower_lid = 0.42;
  double skin = 150, sclera = 200, iris_brightness = 105, lash_density = 0.6;
  double camera_yaw = 0, camera_pitch = 0;  // the camera's tilt (EyePopulation), radians
  int32_t leds = 8;                         // IR LEDs in the ring around the camera
  uint64_t texture_seed = 1;
};

// The population people are drawn from: the renderer's defaults, or a held-out condition
// (synth.camera_tilt_deg, eye_distance_mm, eye_offset_mm, leds, anatomy_spread, iris_brightness).
struct EyePopulation {
  double camera_yaw_deg = 0, camera_pitch_deg = 0;
  double eye_distance_min = 29.0, eye_distance_max = 35.0;  // mm
  double eye_offset = 2.0;                                  // mm, either way on x and y
  int32_t leds = 8;
  double anatomy_spread = 1.0;  // scales each anatomy draw's deviation from its mean
  double iris_brightness_min = 70, iris_brightness_max = 140;
};

// Participant `id`'s anatomy and headset fit, drawn deterministically from (seed, id).
EyeParticipant sample_participant(uint64_t seed, int64_t id, const EyePopulation& population = {});

struct EyeFrameState {
  Vec3 visual_axis{0, 0, 1};                  // unit, label frame
  double pupil_scale = 1.0;                   // dilation relative to the participant's rest radius
  double blink = 0.0;                         // 0 open .. 1 closed
  double slip_x = 0, slip_y = 0, slip_z = 0;  // headset slip, mm
  double roll = 0.0;                          // camera roll, radians
  double noise_sigma = 3.0;                   // sensor noise, grey levels
  double blur_sigma = 0.0;                    // optical blur, pixels at the rendered size
  double exposure = 1.0;
  double light_gradient = 0.0;  // ambient light: relative change from the centre to the edge
  double light_angle = 0.0;     // the direction it grows toward, radians in the image (0: right, pi/2: down)
  uint64_t noise_seed = 0;
};

// Renders a left eye as seen by its camera; `mirror` renders the right eye (the mirror image of
// a left eye looking at the mirrored direction). Image size is free; the eye fills a similar
// fraction of any size.
Image render_eye(const EyeParticipant& p, const EyeFrameState& state, int32_t height, int32_t width,
                 bool mirror = false);

// The renderer's pinhole focal length in pixels for an image `width` wide (the eye spans ~55% of
// the width at the reference distance, whatever the size): 0.733 image widths. What
// train.augmentation.focal needs to turn labels as this camera sees an eye elsewhere in the frame.
double synth_focal_px(double width);

// The optical axis for a visual axis and a participant's kappa (label frame, unit).
Vec3 optical_axis(const EyeParticipant& p, const Vec3& visual_axis);

}  // namespace gaze
