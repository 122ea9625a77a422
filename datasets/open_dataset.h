// Opens any supported source as a Dataset from `data.*` config values.
//
// data.source is "kind:path" — openeds:<root>, aea:<root>, mpiigaze:<root>, mpiifacegaze:<root>,
// folder:<root>, pack:<file> — or a bare path whose kind is detected: a .h5 file is a pack, a
// folder with <split>/sequences is OpenEDS2020, a folder holding recording.vrs (itself or one
// level down) is AEA, a folder with Data/Normalized is MPIIGaze, one with p00/p00.txt or
// p00/Calibration/Camera.mat MPIIFaceGaze, any other folder an image folder. data.split=all opens OpenEDS's three
// splits as one ConcatDataset (and every item of a pack). Several sources separated by commas are read end to end.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "datasets/dataset.h"
#include "libgaze/config/config.h"

namespace gaze {

// "openeds", "aea", "folder" and the path, from a source string (detecting the kind).
std::pair<std::string, std::string> parse_source(const std::string& source, const std::string& split);

std::unique_ptr<Dataset> open_dataset(const DataConfig& data);

// Whether a source kind can yield both eyes of a frame side by side (data.eye = pair): AEA (the
// eye camera's frame), MPIIGaze (both normalised patches), MPIIFaceGaze (both eyes cropped from
// the face). OpenEDS2020 shows one eye.
bool has_eye_pairs(const std::string& kind);

// The evaluation protocol's split of each item of `data` (opened from `config`), for packing:
// the source's own splits (OpenEDS split folders, packs), AEA's 8:1:1 by recording (seeded),
// or train for anything else.
std::function<uint8_t(int64_t, const SampleLabel&)> protocol_split_of(const Dataset& data, const DataConfig& config,
                                                                      uint64_t seed);

}  // namespace gaze
