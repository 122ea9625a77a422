#include "datasets/synth/synth_writer.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "datasets/codec.h"
#include "datasets/synth/mpii_writer.h"
#include "datasets/synth/natural_images.h"
#include "datasets/vrs.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/json.h"
#include "libgaze/core/parallel.h"
#include "libgaze/core/progress.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw Error(path.string() + ": write failed");
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  write_file(path, std::string(bytes.begin(), bytes.end()));
}

struct Person {
  EyeParticipant anatomy;
  std::string split;
};

std::vector<Person> people(const SynthConfig& c, uint64_t seed) {
  const int64_t n = c.participants;
  // Every split gets at least one person; rounding leftovers shrink the train split.
  const int64_t validation = std::max<int64_t>(1, std::llround(n * c.validation_participants));
  const int64_t train = std::clamp<int64_t>(std::llround(n * c.train_participants), 1, n - validation - 1);
  if (train < 1 || n - train - validation < 1) throw Error("synth: too few participants for three splits");
  std::vector<Person> out;
  for (int64_t i = 0; i < n; ++i) {
    out.push_back({sample_participant(seed, i, eye_population(c)), i < train                ? "train"
                                                                   : i < train + validation ? "validation"
                                                                                            : "test"});
  }
  return out;
}

}  // namespace

std::string people_csv(const SynthConfig& c, uint64_t seed) {
  constexpr double kDeg = 180.0 / 3.14159265358979323846;
  std::string out =
      "participant,split,kappa_yaw_deg,kappa_pitch_deg,eye_distance_mm,eye_offset_x_mm,eye_offset_y_mm,"
      "eyeball_radius_mm,cornea_radius_mm,cornea_offset_mm,iris_radius_mm,pupil_radius_mm,lid_open,iris_brightness,"
      "camera_yaw_deg,camera_pitch_deg,leds\n";
  for (const Person& person : people(c, seed)) {
    const EyeParticipant& a = person.anatomy;
    char row[400];
    std::snprintf(row, sizeof row, "%lld,%s,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.2f,%.4f,%.4f,%d\n",
                  (long long)a.id, person.split.c_str(), a.kappa_yaw * kDeg, a.kappa_pitch * kDeg, a.eye_distance,
                  a.eye_offset_x, a.eye_offset_y, a.eyeball_radius, a.cornea_radius, a.cornea_offset, a.iris_radius,
                  a.pupil_radius, a.lid_open, a.iris_brightness, a.camera_yaw * kDeg, a.camera_pitch * kDeg,
                  int(a.leds));
    out += row;
  }
  return out;
}

namespace {

std::string gaze_row(int64_t id, const Vec3& g) {
  char line[160];
  std::snprintf(line, sizeof line, "%03lld,%.7f,%.7f,%.7f", (long long)id, g.x, g.y, g.z);
  return line;
}

void write_openeds(const SynthConfig& c, const std::vector<Person>& persons, uint64_t seed, int64_t threads,
                   SynthReport& report) {
  StagedFolder staged((fs::path(c.out_dir) / "openeds").string());
  struct Job {
    size_t person;
    int64_t frame;
    fs::path png;
    EyeFrameState state;
  };
  std::vector<Job> jobs;
  std::string participants = "";
  for (size_t i = 0; i < persons.size(); ++i) {
    const Person& person = persons[i];
    const int64_t frames = person.split == "train"        ? c.train_frames
                           : person.split == "validation" ? c.validation_frames
                                                          : c.test_frames;
    const std::string seq = std::to_string(1000 + i);
    const fs::path split = fs::path(staged.path()) / person.split;
    fs::create_directories(split / "sequences" / seq);
    fs::create_directories(split / "labels");
    participants += seq + "," + std::to_string(person.anatomy.id) + "\n";
    // The test split has 5 label rows more than images, as in the real release.
    const int64_t rows = person.split == "test" ? frames + 5 : frames;
    const auto sequence =
        generate_sequence(person.anatomy, rows, 100.0, c, seed_mix(seed, stream::kOpenEDS, uint64_t(i)));
    std::string labels, blinks;
    for (int64_t f = 0; f < rows; ++f) {
      if (f < frames && sequence[f].blink) blinks += std::to_string(f) + "\n";
      labels += gaze_row(f, sequence[f].state.visual_axis) + (f % 2 ? "\r\n" : "\n");  // CRLF too
      if (f < frames) {
        char name[32];
        std::snprintf(name, sizeof name, "%03lld.png", (long long)f);
        jobs.push_back({i, f, split / "sequences" / seq / name, sequence[f].state});
      }
    }
    write_file(split / "labels" / (seq + ".txt"), labels);
    fs::create_directories(split / "blinks");
    write_file(split / "blinks" / (seq + ".txt"), blinks);
  }
  write_file(fs::path(staged.path()) / "participants.csv", participants);
  ProgressBar bar("synth openeds", int64_t(jobs.size()));
  std::mutex bar_mutex;
  parallel_for(int64_t(jobs.size()), threads, [&](int64_t j) {
    const Job& job = jobs[j];
    const Image image =
        render_eye(persons[job.person].anatomy, job.state, int32_t(c.openeds_size[0]), int32_t(c.openeds_size[1]));
    write_bytes(job.png, encode_png(image));
    std::lock_guard<std::mutex> lock(bar_mutex);
    bar.tick();
  });
  bar.finish();
  staged.commit();
  report.openeds_images = int64_t(jobs.size());
  report.openeds_root = (fs::path(c.out_dir) / "openeds").string();
}

// A small fixed metadata block ahead of each JPEG, like Aria's image-record DataLayout.
std::vector<uint8_t> eye_record_payload(int64_t frame, double timestamp, const std::vector<uint8_t>& jpeg) {
  std::vector<uint8_t> payload(32 + jpeg.size(), 0);  // sized once: no reallocation to insert into
  const uint64_t number = uint64_t(frame);
  const int64_t capture_ns = int64_t(std::llround(timestamp * 1e9));
  const double exposure_s = 0.001, gain = 1.0;
  std::memcpy(&payload[0], &number, 8);
  std::memcpy(&payload[8], &capture_ns, 8);
  std::memcpy(&payload[16], &exposure_s, 8);
  std::memcpy(&payload[24], &gain, 8);
  std::copy(jpeg.begin(), jpeg.end(), payload.begin() + 32);
  return payload;
}

void write_aea(const SynthConfig& c, const std::vector<Person>& persons, uint64_t seed, int64_t threads,
               SynthReport& report) {
  StagedFolder staged((fs::path(c.out_dir) / "aea").string());
  const int32_t height = int32_t(c.aea_size[0]), width = int32_t(c.aea_size[1]);
  ProgressBar bar("synth aea", int64_t(persons.size()) * c.aea_frames);
  std::mutex bar_mutex;
  // Zero-padded to the largest index, so that the reader's sorted recording index is the person's.
  const int digits = std::max(2, int(std::to_string(persons.size() - 1).size()));
  for (size_t i = 0; i < persons.size(); ++i) {
    const Person& person = persons[i];
    char name[64];
    std::snprintf(name, sizeof name, "synth_p%0*zu_rec1", digits, i);
    const fs::path rec = fs::path(staged.path()) / name;
    fs::create_directories(rec / "mps" / "eye_gaze");
    const auto sequence =
        generate_sequence(person.anatomy, c.aea_frames, 10.0, c, seed_mix(seed, stream::kAEA, uint64_t(i)));
    std::vector<std::vector<uint8_t>> jpegs(sequence.size());
    parallel_for(int64_t(sequence.size()), threads, [&](int64_t f) {
      // Both eyes see the same far target; the right eye is the mirror of a left eye.
      Image frame(height, width);
      const Image left = render_eye(person.anatomy, sequence[f].state, height, width / 2, false);
      const Image right = render_eye(person.anatomy, sequence[f].state, height, width / 2, true);
      for (int32_t y = 0; y < height; ++y) {
        std::memcpy(&frame.at(y, 0), &left.pixels[size_t(y) * left.width], width / 2);
        std::memcpy(&frame.at(y, width / 2), &right.pixels[size_t(y) * right.width], width / 2);
      }
      jpegs[f] = encode_jpeg(frame, int(c.jpeg_quality));
      std::lock_guard<std::mutex> lock(bar_mutex);
      bar.tick();
    });
    VrsWriter vrs((rec / "recording.vrs").string(), seed_mix(seed, stream::kVrs, uint64_t(i)));
    const std::string config_json =
        Json{{"image_width", width}, {"image_height", height}, {"pixel_format", "GREY8"}, {"codec", "jpg"}}.dump();
    vrs.add_record(211, 1, VrsRecordType::kConfiguration, 0.0, 1,
                   std::vector<uint8_t>(config_json.begin(), config_json.end()));
    vrs.add_record(211, 1, VrsRecordType::kState, 0.0, 1, {});
    std::string blinks;
    std::string csv =
        "tracking_timestamp_us,yaw_rads_cpf,pitch_rads_cpf,depth_m,yaw_low_rads_cpf,pitch_low_rads_cpf,"
        "yaw_high_rads_cpf,pitch_high_rads_cpf,session_uid\n";
    for (size_t f = 0; f < sequence.size(); ++f) {
      // Device time with a sub-microsecond part, as on Aria: the CSV holds the truncated µs.
      const double t = 10.0 + 0.1 * double(f) + 0.00030625;
      vrs.add_record(211, 1, VrsRecordType::kData, t, 2, eye_record_payload(int64_t(f), t, jpegs[f]));
      // An IMU-like stream stored zstd-compressed, which the eye reader must skip.
      std::vector<uint8_t> imu(256);
      for (size_t k = 0; k < imu.size(); ++k) imu[k] = uint8_t((f * 7 + k * 13) & 0xFF);
      vrs.add_record(1202, 1, VrsRecordType::kData, t + 0.05, 1, imu, VrsCompression::kZstd);
      const YawPitch angles = aria_angles(sequence[f].state.visual_axis);
      const int64_t t_us = int64_t(std::floor(t * 1e6 + 1e-3));
      if (sequence[f].blink) blinks += std::to_string(t_us) + "\n";
      char row[256];
      std::snprintf(row, sizeof row, "%lld,%.9f,%.9f,,%.9f,%.9f,%.9f,%.9f,synth-%02zu\n", (long long)t_us, angles.yaw,
                    angles.pitch, angles.yaw - 0.02, angles.pitch - 0.02, angles.yaw + 0.02, angles.pitch + 0.02, i);
      csv += row;
    }
    vrs.finish();
    write_file(rec / "mps" / "eye_gaze" / "general_eye_gaze.csv", csv);
    write_file(rec / "synth_blinks.txt", blinks);
    const Json metadata = {
        {"dataset_name", "libgaze_synth"}, {"participant", person.anatomy.id}, {"split_hint", person.split}};
    write_file(rec / "metadata.json", metadata.dump(2) + "\n");
  }
  bar.finish();
  staged.commit();
  report.aea_frames = int64_t(persons.size()) * c.aea_frames;
  report.aea_root = (fs::path(c.out_dir) / "aea").string();
}

}  // namespace

EyePopulation eye_population(const SynthConfig& c) {
  EyePopulation population;
  population.camera_yaw_deg = c.camera_tilt_deg.at(0);
  population.camera_pitch_deg = c.camera_tilt_deg.at(1);
  population.eye_distance_min = c.eye_distance_mm.at(0);
  population.eye_distance_max = c.eye_distance_mm.at(1);
  population.eye_offset = c.eye_offset_mm;
  population.leds = int32_t(c.leds);
  population.anatomy_spread = c.anatomy_spread;
  population.iris_brightness_min = c.iris_brightness.at(0);
  population.iris_brightness_max = c.iris_brightness.at(1);
  return population;
}

std::vector<SynthFrame> generate_sequence(const EyeParticipant& p, int64_t frames, double fps, const SynthConfig& c,
                                          uint64_t seed) {
  SplitMix r(seed_mix(seed, uint64_t(p.id)));
  std::vector<SynthFrame> out;
  double yaw = r.uniform(-0.4, 0.4), pitch = r.uniform(-0.3, 0.22);
  double pupil = r.uniform(0.8, 1.2);
  double slip_x = c.slip_mm * r.normal(), slip_y = c.slip_mm * r.normal(), slip_z = 0.5 * c.slip_mm * r.normal();
  const double roll = 0.03 * r.normal();
  // The light has a stream of its own, so that a sequence's gaze is the same under any light.
  SplitMix light(seed_mix(seed, uint64_t(p.id), stream::kLight));
  const double light_gradient = light.uniform(0.3, 1.0) * c.light_gradient;
  const double light_angle = light.uniform(0, 2 * 3.14159265358979);
  const double blink_frames = std::max(1.0, 0.15 * fps);
  double blink_left = 0;
  for (int64_t f = 0; f < frames; ++f) {
    // Saccade to a new fixation ~every 0.3 s, else a slow drift.
    if (r.uniform() < 1.0 / (0.3 * fps) || f == 0) {
      yaw = r.uniform(-0.45, 0.45);
      pitch = r.uniform(-0.35, 0.25);
    } else {
      yaw += 0.004 * r.normal();
      pitch += 0.004 * r.normal();
    }
    if (blink_left <= 0 && r.uniform() < c.blink_rate / fps) blink_left = blink_frames;
    double blink = 0;
    if (blink_left > 0) {
      const double phase = 1 - blink_left / blink_frames;  // 0..1 over the blink
      blink = std::sin(3.14159265358979 * phase);
      blink_left -= 1;
    }
    pupil = std::clamp(pupil + 0.02 * r.normal(), 0.6, 1.5);
    slip_x += 0.02 * c.slip_mm * r.normal();
    slip_y += 0.02 * c.slip_mm * r.normal();
    SynthFrame frame;
    frame.state.visual_axis = aria_direction({yaw, pitch});
    frame.state.pupil_scale = pupil;
    frame.state.blink = blink;
    frame.state.slip_x = slip_x;
    frame.state.slip_y = slip_y;
    frame.state.slip_z = slip_z;
    frame.state.roll = roll;
    frame.state.noise_sigma = c.noise * r.uniform(0.7, 1.3);
    frame.state.blur_sigma = r.uniform(0.0, 0.8);
    frame.state.exposure = r.uniform(c.exposure.at(0), c.exposure.at(1));
    frame.state.light_gradient = light_gradient;
    frame.state.light_angle = light_angle;
    frame.state.noise_seed = r.next();
    frame.blink = blink > 0.5;
    out.push_back(frame);
  }
  return out;
}

// Natural-image stand-ins in ImageNet's layout: images/class_NN/NNNNN.jpg.
void write_images(const SynthConfig& c, uint64_t seed, int64_t threads, SynthReport& report) {
  StagedFolder staged((fs::path(c.out_dir) / "images").string());
  for (int64_t k = 0; k < c.image_classes; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "class_%02lld", (long long)k);
    fs::create_directories(fs::path(staged.path()) / name);
  }
  ProgressBar bar("synth images", c.images);
  std::mutex bar_mutex;
  parallel_for(c.images, threads, [&](int64_t i) {
    const int64_t label = i % c.image_classes;
    const Image image = render_natural_image(int32_t(c.image_size[0]), int32_t(c.image_size[1]), label, i, seed);
    char name[64];
    std::snprintf(name, sizeof name, "class_%02lld/%05lld.jpg", (long long)label, (long long)i);
    write_bytes(fs::path(staged.path()) / name, encode_jpeg(image, int(c.jpeg_quality)));
    std::lock_guard<std::mutex> lock(bar_mutex);
    bar.tick();
  });
  bar.finish();
  staged.commit();
  report.images = c.images;
  report.images_root = (fs::path(c.out_dir) / "images").string();
}

SynthReport write_synthetic_datasets(const SynthConfig& c, uint64_t seed, int64_t threads) {
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  fs::create_directories(c.out_dir, ec);
  if (ec) throw Error(c.out_dir + ": cannot create output folder: " + ec.message());
  const std::vector<Person> persons = people(c, seed);
  SynthReport report;
  for (const auto& layout : c.layouts) {
    if (layout == "openeds") write_openeds(c, persons, seed, threads, report);
    if (layout == "aea") write_aea(c, persons, seed, threads, report);
    if (layout == "images") write_images(c, seed, threads, report);
    if (layout == "mpiigaze")
      report.mpiigaze_root = write_synthetic_mpiigaze(c, seed, threads, &report.mpiigaze_images);
    if (layout == "mpiifacegaze")
      report.mpiifacegaze_root = write_synthetic_mpiifacegaze(c, seed, threads, &report.mpiifacegaze_images);
  }
  // Last, so that it is there only when every layout it describes is.
  if (std::count(c.layouts.begin(), c.layouts.end(), "openeds") ||
      std::count(c.layouts.begin(), c.layouts.end(), "aea"))
    write_text_atomically((fs::path(c.out_dir) / "people.csv").string(), people_csv(c, seed));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace gaze
