// The dataset contract every loader implements (no torch).
//
// A Dataset is an indexed, immutable list of labelled eye images. Construction indexes the
// source (file lists, labels, record offsets) and validates what it can without decoding;
// get(i) decodes one image and is safe to call from several threads at once. label(i) is
// cheap (no decode): samplers, K-means and splits use it.
//
// Bad input throws gaze::Error naming the file and line / byte offset. With `skip_bad`, a
// loader drops the bad item instead, counts it in skipped() and keeps the first messages.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "datasets/image.h"

namespace gaze {

struct SampleLabel {
  std::array<float, 3> gaze{0, 0, 1};  // unit vector, camera/CPF convention of the source
  int64_t participant = 0;
  std::string key;            // stable, unique within the dataset ("seq/012", ...)
  int64_t timestamp_us = -1;  // where the source has one
  bool blink = false;         // known closed eye (rendered data)
  // Head pose (pitch, yaw) in radians in the image's camera frame, for the baselines that take
  // it (GazeNet, RT-Gene). Zero where the source has none: a near-eye camera moves with the
  // head, so its images carry no head pose.
  std::array<float, 2> head{0, 0};
};

struct Sample {
  Image image;
  SampleLabel label;
};

// Counts skipped items and keeps the first few messages for the report.
struct SkipLog {
  int64_t count = 0;
  std::vector<std::string> examples;
  void add(const std::string& message);
  void merge(const SkipLog& other);
  std::string summary() const;  // "skipped 3 bad items, e.g.: ..." or ""
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Sample get(int64_t index) const = 0;
  virtual const SampleLabel& label(int64_t index) const = 0;
  virtual std::string describe() const = 0;  // "openeds /data/openeds (train)"
  // What a participant id stands for: "participant" (a person), "sequence" (OpenEDS without a
  // participants file), "recording" (AEA: the wearer is not recorded) or "class" (image
  // folders). Personalisation and reports use it to stay honest about who is "unseen".
  virtual std::string participant_unit() const { return "participant"; }
  const SkipLog& skipped() const { return skipped_; }

 protected:
  SkipLog skipped_;
};

// Normalises (x,y,z) into a unit vector; throws gaze::Error with `where` for zero/non-finite.
std::array<float, 3> unit_gaze(double x, double y, double z, const std::string& where);

// The sum of every item's gaze label (blinks included): its direction is the data's mean gaze.
std::array<double, 3> gaze_label_sum(const Dataset& data);

}  // namespace gaze
