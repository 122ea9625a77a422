// gaze synth — render the synthetic datasets; gaze data info|dump — see what a loader reads.
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "cli/commands.h"
#include "datasets/concat.h"
#include "datasets/open_dataset.h"
#include "datasets/pack.h"
#include "datasets/splits.h"
#include "datasets/synth/synth_writer.h"
#include "libgaze/core/error.h"
#include "libgaze/core/progress.h"
#include "libgaze/core/strings.h"

namespace gaze::cli {
namespace {

void print_info(const Dataset& data) {
  std::printf("source        %s\n", data.describe().c_str());
  std::printf("items         %lld\n", (long long)data.size());
  std::map<int64_t, int64_t> per_participant;
  double sum[3] = {0, 0, 0}, sum2[3] = {0, 0, 0};
  double yaw_min = 1e9, yaw_max = -1e9, pitch_min = 1e9, pitch_max = -1e9;
  int64_t blinks = 0;
  for (int64_t i = 0; i < data.size(); ++i) {
    const SampleLabel& l = data.label(i);
    ++per_participant[l.participant];
    for (int k = 0; k < 3; ++k) {
      sum[k] += l.gaze[k];
      sum2[k] += l.gaze[k] * l.gaze[k];
    }
    const double yaw = std::atan2(l.gaze[0], l.gaze[2]) * 180 / M_PI;
    const double pitch = std::atan2(l.gaze[1], l.gaze[2]) * 180 / M_PI;
    yaw_min = std::min(yaw_min, yaw);
    yaw_max = std::max(yaw_max, yaw);
    pitch_min = std::min(pitch_min, pitch);
    pitch_max = std::max(pitch_max, pitch);
    blinks += l.blink;
  }
  std::printf("participants  %zu (", per_participant.size());
  int shown = 0;
  for (const auto& [id, count] : per_participant) {
    if (shown++ == 8) {
      std::printf(", ...");
      break;
    }
    std::printf("%s%lld: %lld", shown > 1 ? ", " : "", (long long)id, (long long)count);
  }
  std::printf(")\n");
  if (data.size() > 0) {
    const Sample first = data.get(0);
    std::printf("image size    %dx%d (HxW, first item)\n", first.image.height, first.image.width);
    const double n = double(data.size());
    std::printf("gaze mean     %.4f %.4f %.4f (std %.4f %.4f %.4f)\n", sum[0] / n, sum[1] / n, sum[2] / n,
                std::sqrt(std::max(0.0, sum2[0] / n - sum[0] * sum[0] / n / n)),
                std::sqrt(std::max(0.0, sum2[1] / n - sum[1] * sum[1] / n / n)),
                std::sqrt(std::max(0.0, sum2[2] / n - sum[2] * sum[2] / n / n)));
    std::printf("yaw range     %.1f .. %.1f deg (atan2(x, z))\n", yaw_min, yaw_max);
    std::printf("pitch range   %.1f .. %.1f deg (atan2(y, z))\n", pitch_min, pitch_max);
    std::printf("blinks        %lld labelled\n", (long long)blinks);
  }
  if (data.skipped().count) std::printf("%s\n", data.skipped().summary().c_str());
}

void print_dump(const Dataset& data, int64_t limit) {
  std::printf("key,participant,timestamp_us,gx,gy,gz\n");
  const int64_t n = limit > 0 ? std::min(limit, data.size()) : data.size();
  for (int64_t i = 0; i < n; ++i) {
    const SampleLabel& l = data.label(i);
    std::printf("%s,%lld,%s,%.7f,%.7f,%.7f\n", l.key.c_str(), (long long)l.participant,
                l.timestamp_us >= 0 ? std::to_string(l.timestamp_us).c_str() : "", l.gaze[0], l.gaze[1], l.gaze[2]);
  }
}

}  // namespace

void register_synth(CLI::App& app) {
  auto* command = app.add_subcommand(
      "synth", "render synthetic eye datasets (OpenEDS2020 and AEA layouts) and RGB natural-image stand-ins");
  auto options = std::make_shared<ConfigOptions>();
  options->add_to(*command);
  command->callback([options] {
    const Config config = options->load();
    const SynthReport r = write_synthetic_datasets(config.synth, uint64_t(config.run.seed), config.run.threads);
    if (!r.openeds_root.empty()) {
      std::printf("openeds  %s  %lld images\n", r.openeds_root.c_str(), (long long)r.openeds_images);
    }
    if (!r.aea_root.empty()) std::printf("aea      %s  %lld eye frames\n", r.aea_root.c_str(), (long long)r.aea_frames);
    if (!r.images_root.empty())
      std::printf("images   %s  %lld RGB images\n", r.images_root.c_str(), (long long)r.images);
    if (!r.mpiigaze_root.empty())
      std::printf("mpiigaze %s  %lld images (two eyes each)\n", r.mpiigaze_root.c_str(), (long long)r.mpiigaze_images);
    if (!r.mpiifacegaze_root.empty())
      std::printf("mpiifacegaze %s  %lld webcam frames\n", r.mpiifacegaze_root.c_str(),
                  (long long)r.mpiifacegaze_images);
    const int64_t frames = r.openeds_images + r.aea_frames + r.images + r.mpiigaze_images + r.mpiifacegaze_images;
    std::printf("rendered %lld frames in %.1f s (%.1f frames/s)\n", (long long)frames, r.seconds,
                r.seconds > 0 ? frames / r.seconds : 0.0);
  });
}

void register_pack(CLI::App& app) {
  auto* command = app.add_subcommand("pack", "write any source into one chunked, checksummed HDF5 pack");
  auto options = std::make_shared<ConfigOptions>();
  auto source = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto size = std::make_shared<std::string>();
  command->add_option("source", *source, "kind:path or a dataset folder (overrides data.source)");
  command->add_option("-o,--output", *output, "pack file to write (.h5)")->required();
  command->add_option("--size", *size, "resize every image to HxW (default: keep; sizes must match)");
  options->add_to(*command);
  command->callback([options, source, output, size] {
    Config config = options->load(*source);
    // OpenEDS: pack all three splits unless one was asked for.
    if (config_origin(config, "data.split") == "default") config.data.split = "all";
    const auto dataset = open_dataset(config.data);
    PackOptions pack;
    pack.skip_bad = config.data.skip_bad;
    pack.threads = config.run.threads;
    pack.split_of = protocol_split_of(*dataset, config.data, uint64_t(config.run.seed));
    if (!size->empty()) {
      const auto hw = split(*size, 'x');
      try {
        if (hw.size() != 2) throw std::invalid_argument("");
        pack.height = std::stoi(hw[0]);
        pack.width = std::stoi(hw[1]);
      } catch (const std::exception&) {
        throw Error("--size: expected HxW (e.g. 240x320), got '" + *size + "'");
      }
    }
    const PackReport r = write_pack(*dataset, *output, pack);
    std::printf("packed %lld items from %s into %s (%.1f MB, %.1f s, %.0f items/s)\n", (long long)r.written,
                dataset->describe().c_str(), output->c_str(), r.bytes / 1e6, r.seconds,
                r.seconds > 0 ? r.written / r.seconds : 0.0);
    SkipLog all = dataset->skipped();
    all.merge(r.skipped);
    if (all.count) std::printf("%s\n", all.summary().c_str());
  });
}

void register_data(CLI::App& app) {
  auto* data = app.add_subcommand("data", "inspect a dataset source: what the loader reads");
  data->require_subcommand(1);
  register_data_bench(*data);
  for (const char* name : {"info", "dump"}) {
    const bool dump = std::string(name) == "dump";
    auto* command = data->add_subcommand(name, dump ? "CSV of key, participant, timestamp, gaze per item"
                                                    : "count, image size, participants, label statistics");
    auto options = std::make_shared<ConfigOptions>();
    auto source = std::make_shared<std::string>();
    auto limit = std::make_shared<int64_t>(0);
    command->add_option("source", *source, "kind:path or a dataset folder (overrides data.source)");
    options->add_to(*command);
    if (dump) command->add_option("--limit", *limit, "at most this many rows (0 = all)");
    command->callback([options, source, limit, dump] {
      const Config config = options->load(*source);
      const auto dataset = open_dataset(config.data);
      if (dump) {
        print_dump(*dataset, *limit);
      } else {
        print_info(*dataset);
      }
    });
  }
}

}  // namespace gaze::cli
