#include "datasets/open_dataset.h"

#include <algorithm>
#include <filesystem>

#include "datasets/aea.h"
#include "datasets/concat.h"
#include "datasets/image_folder.h"
#include "datasets/limits.h"
#include "datasets/mpiifacegaze.h"
#include "datasets/mpiigaze.h"
#include "datasets/openeds.h"
#include "datasets/pack.h"
#include "datasets/splits.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {

std::pair<std::string, std::string> parse_source(const std::string& source, const std::string& split) {
  namespace fs = std::filesystem;
  const std::vector<std::string> kinds = {"openeds", "aea", "mpiigaze", "mpiifacegaze", "folder", "pack"};
  const auto colon = source.find(':');
  if (colon != std::string::npos && colon > 1) {  // "C:" style paths do not occur on Linux
    const std::string kind = source.substr(0, colon);
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) {
      throw Error("data.source '" + source + "': unknown kind '" + kind + "'" + suggest_suffix(kind, kinds));
    }
    return {kind, source.substr(colon + 1)};
  }
  if (source.empty()) throw Error("data.source is empty: give kind:path or a dataset folder");
  const fs::path path(source);
  if (!fs::exists(path)) throw Error(source + ": dataset not found");
  if (fs::is_regular_file(path) && (path.extension() == ".h5" || path.extension() == ".hdf5")) return {"pack", source};
  if (fs::is_directory(path / split / "sequences") || fs::is_directory(path / "train" / "sequences")) {
    return {"openeds", source};
  }
  if (fs::is_regular_file(path / "recording.vrs")) return {"aea", source};
  if (fs::is_directory(path / "Data" / "Normalized")) return {"mpiigaze", source};
  if (fs::is_regular_file(path / "p00" / "p00.txt") || fs::is_regular_file(path / "p00" / "Calibration" / "Camera.mat"))
    return {"mpiifacegaze", source};
  if (fs::is_directory(path)) {
    for (const auto& entry : fs::directory_iterator(path)) {
      if (fs::is_regular_file(entry.path() / "recording.vrs")) return {"aea", source};
    }
    return {"folder", source};
  }
  throw Error(
      source +
      ": cannot tell what kind of dataset this is; prefix it with openeds:, aea:, mpiigaze:, mpiifacegaze:, folder: "
      "or pack:");
}

bool has_eye_pairs(const std::string& kind) { return kind == "aea" || kind == "mpiigaze" || kind == "mpiifacegaze"; }

std::unique_ptr<Dataset> open_dataset(const DataConfig& data) {
  set_decode_limits({data.max_image_pixels, data.max_record_mib << 20});
  if (data.source.find(',') != std::string::npos) {  // several sources, end to end
    auto all = std::make_unique<ConcatDataset>();
    for (const std::string& one : split(data.source, ',')) {
      DataConfig part = data;
      part.source = trim(one);
      all->add(open_dataset(part), 0);
    }
    return all;
  }
  const auto [kind, path] = parse_source(data.source, data.split == "all" ? "train" : data.split);
  if (data.eye == "pair" && kind != "pack" && !has_eye_pairs(kind))  // a pack holds what it was packed from
    throw Error(data.source +
                ": data.eye=pair needs a source that shows both eyes (aea, mpiigaze, mpiifacegaze), not " + kind);
  if (kind == "pack") {
    return std::make_unique<PackDataset>(path, data.split == "all" ? "" : data.split, data.hold_out, data.train_people);
  }
  // Natural-image folders have no people to count (the paper protocol's pretraining reads one).
  if (data.train_people >= 0 && kind != "folder")
    throw Error(data.source + ": data.train_people needs a pack (gaze pack), not the " + kind + " source");
  if (kind == "openeds" && data.split == "all") {
    auto all = std::make_unique<ConcatDataset>();
    for (size_t s = 0; s < kSplitNames.size(); ++s) {
      DataConfig one = data;
      one.split = kSplitNames[s];
      all->add(open_dataset(one), uint8_t(s));
    }
    return all;
  }
  if (kind == "openeds") {
    OpenEdsOptions options;
    options.split = data.split;
    options.participants_file = data.participants_file;
    options.skip_bad = data.skip_bad;
    options.expected_height = int32_t(data.openeds_size.at(0));
    options.expected_width = int32_t(data.openeds_size.at(1));
    return std::make_unique<OpenEdsDataset>(path, options);
  }
  if (kind == "mpiigaze") {
    MpiiGazeOptions options;
    options.split = data.split;
    options.hold_out = data.hold_out;
    options.subset = data.mpii_subset;
    options.eye = data.eye;
    options.mirror_right = data.mirror_right;
    options.skip_bad = data.skip_bad;
    return std::make_unique<MpiiGazeDataset>(path, options);
  }
  if (kind == "mpiifacegaze") {
    MpiiFaceGazeOptions options;
    options.split = data.split;
    options.hold_out = data.hold_out;
    options.colour = data.colour;
    options.skip_bad = data.skip_bad;
    options.eye_pair = data.eye == "pair";
    return std::make_unique<MpiiFaceGazeDataset>(path, options);
  }
  if (kind == "aea") {
    AeaOptions options;
    options.eye = data.eye;
    options.mirror_right = data.mirror_right;
    options.tolerance_us = data.tolerance_us;
    options.skip_bad = data.skip_bad;
    return std::make_unique<AeaDataset>(path, options);
  }
  return std::make_unique<ImageFolderDataset>(path, data.colour ? 3 : 1);
}

// The split each item goes to in a pack: the source's own (OpenEDS splits, packs), 8:1:1 by
// group for the rest of the gaze datasets (AEA recordings, MPIIGaze / MPIIFaceGaze people: one
// leave-people-out fold), or train.
std::function<uint8_t(int64_t, const SampleLabel&)> protocol_split_of(const Dataset& data, const DataConfig& config,
                                                                      uint64_t seed) {
  if (const auto* concat = dynamic_cast<const ConcatDataset*>(&data)) {
    return [concat](int64_t i, const SampleLabel&) { return concat->split_of(i); };
  }
  if (const auto* pack = dynamic_cast<const PackDataset*>(&data)) {
    return [pack](int64_t i, const SampleLabel&) { return pack->split_of(i); };
  }
  const std::string kind = parse_source(config.source, config.split == "all" ? "train" : config.split).first;
  if (kind == "aea" || kind == "mpiigaze" || kind == "mpiifacegaze") {
    int64_t groups = 0;
    for (int64_t i = 0; i < data.size(); ++i) groups = std::max(groups, data.label(i).participant + 1);
    const auto splits = std::make_shared<std::vector<uint8_t>>(split_groups(groups, {0.8, 0.1, 0.1}, seed));
    return [splits](int64_t, const SampleLabel& l) { return (*splits)[size_t(l.participant)]; };
  }
  if (kind == "openeds") {
    const auto it = std::find(kSplitNames.begin(), kSplitNames.end(), config.split);
    const uint8_t id = uint8_t(it == kSplitNames.end() ? 0 : it - kSplitNames.begin());
    return [id](int64_t, const SampleLabel&) { return id; };
  }
  return [](int64_t, const SampleLabel&) { return uint8_t(0); };
}

}  // namespace gaze
