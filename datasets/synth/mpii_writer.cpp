#include "datasets/synth/mpii_writer.h"

#include <Eigen/Geometry>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

#include "datasets/codec.h"
#include "datasets/face_normalization.h"
#include "datasets/matfile.h"
#include "datasets/synth/synth_writer.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/parallel.h"
#include "libgaze/core/progress.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

constexpr int32_t kEyeHeight = 36, kEyeWidth = 60;

// One rendered image of a person: the gaze both eyes share and the head pose.
struct MpiiShot {
  EyeFrameState state;
  Vec3 gaze;                       // MPII frame: x right, y down, z forward, eye -> target
  std::array<double, 3> rotation;  // head pose, Rodrigues vector
};

// The renderer's label frame (x right, y up, z toward the camera) in MPII's camera frame.
Vec3 mpii_from_label(const Vec3& v) { return {v.x, -v.y, -v.z}; }

// A head rotation whose z axis has this pitch and yaw (MPII's head_pitch_yaw inverts it).
std::array<double, 3> head_rotation(double pitch, double yaw) {
  const Eigen::Matrix3d m =
      (Eigen::AngleAxisd(yaw, Eigen::Vector3d::UnitY()) * Eigen::AngleAxisd(-pitch, Eigen::Vector3d::UnitX()))
          .toRotationMatrix();
  const Eigen::Vector3d v = rodrigues_from_rotation(m);
  return {v.x(), v.y(), v.z()};
}

MpiiShot sample_shot(SplitMix& r, const SynthConfig& c) {
  MpiiShot s;
  // Looking at a screen below the camera: mostly downwards, across its width.
  s.state.visual_axis = aria_direction({r.uniform(-0.4, 0.4), r.uniform(-0.45, 0.1)});
  s.state.pupil_scale = r.uniform(0.8, 1.3);
  s.state.noise_sigma = c.noise * r.uniform(0.7, 1.3);
  s.state.blur_sigma = r.uniform(0.0, 0.6);
  s.state.exposure = r.uniform(0.8, 1.2);
  s.state.roll = 0.05 * r.normal();
  s.state.noise_seed = r.next();
  s.gaze = mpii_from_label(s.state.visual_axis);
  // Drawn yaw first: the order GCC took head_rotation's arguments in when kSynthRendererVersion 1
  // was recorded (a call's arguments have no order in C++).
  const double head_yaw = r.uniform(-0.35, 0.35), head_pitch = r.uniform(-0.3, 0.3);
  s.rotation = head_rotation(head_pitch, head_yaw);
  return s;
}

Image render_patch(const EyeParticipant& p, const EyeFrameState& state, bool right) {
  return equalize_histogram(render_eye(p, state, kEyeHeight, kEyeWidth, right));
}

// One eye's struct for a day: gaze [N 3], image [N 36 60] (column-major), pose [N 3].
MatValue eye_struct(const std::vector<const MpiiShot*>& shots, const std::vector<Image>& patches) {
  const size_t n = shots.size(), h = kEyeHeight, w = kEyeWidth;
  std::vector<double> gaze(n * 3), pose(n * 3);
  std::vector<uint8_t> image(n * h * w);
  for (size_t i = 0; i < n; ++i) {
    const Vec3& g = shots[i]->gaze;
    const double gv[3] = {g.x, g.y, g.z};
    for (size_t k = 0; k < 3; ++k) {
      gaze[i + n * k] = gv[k];
      pose[i + n * k] = shots[i]->rotation[k];
    }
    for (size_t row = 0; row < h; ++row)
      for (size_t col = 0; col < w; ++col) image[i + n * (row + h * col)] = patches[i].pixels[row * w + col];
  }
  return MatValue::structure({{"gaze", MatValue::matrix({n, 3}, gaze)},
                              {"image", MatValue::uint8_array({n, h, w}, image)},
                              {"pose", MatValue::matrix({n, 3}, pose)}});
}

// The 6-point face model (head frame, mm, y down, the face toward -z): the participant's right
// eye corners (image left), left eye corners, mouth corners.
const std::array<Eigen::Vector3d, 6> kFaceModel = {Eigen::Vector3d(-45.0, 0, 0),  Eigen::Vector3d(-21.0, 0, 0),
                                                   Eigen::Vector3d(21.0, 0, 0),   Eigen::Vector3d(45.0, 0, 0),
                                                   Eigen::Vector3d(-26.0, 68, 5), Eigen::Vector3d(26.0, 68, 5)};

struct ScreenSetup {
  double width_mm = 520, height_mm = 320, width_px = 1920, height_px = 1200;
  Eigen::Vector3d top_left{-260, 15, 0};  // monitorPose: rotation 0, translation top_left
};

// Pastes `patch` centred at (cx, cy) under a soft elliptical mask (all channels the same grey).
void paste_eye(Image& frame, const Image& patch, double cx, double cy) {
  const double ry = patch.height / 2.0, rx = patch.width / 2.0;
  for (int32_t y = 0; y < patch.height; ++y) {
    for (int32_t x = 0; x < patch.width; ++x) {
      const int32_t fy = int32_t(std::lround(cy - ry + y)), fx = int32_t(std::lround(cx - rx + x));
      if (fy < 0 || fx < 0 || fy >= frame.height || fx >= frame.width) continue;
      const double dx = (x + 0.5 - rx) / rx, dy = (y + 0.5 - ry) / ry, d = dx * dx + dy * dy;
      const double alpha = std::clamp((1.0 - d) * 4.0, 0.0, 1.0);
      for (int32_t c = 0; c < frame.channels; ++c) {
        const double v = frame.at(fy, fx, c) * (1 - alpha) + patch.at(y, x) * alpha;
        frame.at(fy, fx, c) = uint8_t(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  }
}

// One webcam frame: background, face ellipse, mouth, two eyes looking at `target` (camera frame).
Image render_face_frame(const EyeParticipant& p, const PinholeCamera& camera, const Eigen::Matrix3d& head,
                        const Eigen::Vector3d& translation, const Eigen::Vector3d& target,
                        const std::array<Eigen::Vector2d, 6>& landmarks, int32_t height, int32_t width, SplitMix& r,
                        const SynthConfig& c) {
  Image frame(height, width, 0, 3);
  const double tint[3] = {1.08, 1.0, 0.9};
  const double background = r.uniform(60, 140), slope = r.uniform(-0.1, 0.1);
  for (int32_t y = 0; y < height; ++y)
    for (int32_t x = 0; x < width; ++x)
      for (int32_t ch = 0; ch < 3; ++ch)
        frame.at(y, x, ch) = uint8_t(std::clamp(background + slope * (x - width / 2.0), 0.0, 255.0));
  // The face: an ellipse around the projected head centre (between the eyes and the mouth).
  const Eigen::Vector3d centre = head * Eigen::Vector3d(0, 30, 20) + translation;
  const Eigen::Vector2d middle = camera.project(centre);
  const double f = camera.matrix(0, 0), rx = 80 * f / centre.z(), ry = 112 * f / centre.z();
  for (int32_t y = std::max(0, int32_t(middle.y() - ry)); y < std::min(height, int32_t(middle.y() + ry) + 1); ++y) {
    for (int32_t x = std::max(0, int32_t(middle.x() - rx)); x < std::min(width, int32_t(middle.x() + rx) + 1); ++x) {
      const double dx = (x - middle.x()) / rx, dy = (y - middle.y()) / ry;
      if (dx * dx + dy * dy > 1) continue;
      const double shade = p.skin * (1.0 - 0.15 * (dx * dx + dy * dy));
      for (int32_t ch = 0; ch < 3; ++ch) frame.at(y, x, ch) = uint8_t(std::clamp(shade * tint[ch], 0.0, 255.0));
    }
  }
  // The mouth: a dark line between its corners.
  for (int step = 0; step <= 100; ++step) {
    const Eigen::Vector2d m = landmarks[4] + (landmarks[5] - landmarks[4]) * (step / 100.0);
    for (int dy = -1; dy <= 1; ++dy) {
      const int32_t y = int32_t(std::lround(m.y())) + dy, x = int32_t(std::lround(m.x()));
      if (y >= 0 && x >= 0 && y < height && x < width)
        for (int32_t ch = 0; ch < 3; ++ch) frame.at(y, x, ch) = uint8_t(p.skin * 0.45);
    }
  }
  // Each eye looks at the target from its centre; the renderer's frame is x right, y up, z
  // toward the camera (the eye is drawn as its camera would see it frontally).
  for (int eye = 0; eye < 2; ++eye) {
    const Eigen::Vector2d a = landmarks[size_t(2 * eye)], b = landmarks[size_t(2 * eye + 1)];
    const Eigen::Vector3d centre3 =
        head * (0.5 * (kFaceModel[size_t(2 * eye)] + kFaceModel[size_t(2 * eye + 1)])) + translation;
    const Eigen::Vector3d g = (target - centre3).normalized();
    EyeFrameState state;
    state.visual_axis = {g.x(), -g.y(), -g.z()};
    state.noise_sigma = c.noise;
    state.noise_seed = r.next();
    state.pupil_scale = r.uniform(0.8, 1.2);
    const double eye_width = std::max(8.0, (b - a).norm() * 1.9);
    const Image patch = render_eye(p, state, int32_t(std::lround(eye_width * 0.6)), int32_t(std::lround(eye_width)),
                                   /*mirror=*/eye == 0);  // landmarks 0, 1: the participant's right eye
    paste_eye(frame, patch, 0.5 * (a.x() + b.x()), 0.5 * (a.y() + b.y()));
  }
  for (auto& v : frame.pixels) v = uint8_t(std::clamp(v + c.noise * r.normal(), 0.0, 255.0));
  return frame;
}

std::string number_text(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6f", v);
  return text;
}

// Writes <out_dir>/<layout> in a staged folder: `write_person(person, staged root)` for every
// rendered person in parallel, with a progress bar; returns the final root.
std::string write_people(const SynthConfig& c, const std::string& layout, int64_t threads, int64_t per_person,
                         int64_t* images, const std::function<void(int64_t, const fs::path&)>& write_person) {
  const std::string root = (fs::path(c.out_dir) / layout).string();
  StagedFolder staged(root);
  ProgressBar bar("synth " + layout, c.participants);
  std::mutex bar_mutex;
  parallel_for(c.participants, threads, [&](int64_t person) {
    write_person(person, fs::path(staged.path()));
    std::lock_guard<std::mutex> lock(bar_mutex);
    bar.tick();
  });
  bar.finish();
  staged.commit();
  if (images) *images = c.participants * per_person;
  return root;
}

// "p07"
std::string person_name(int64_t person) {
  char name[32];
  std::snprintf(name, sizeof name, "p%02lld", (long long)person);
  return name;
}

}  // namespace

std::string write_synthetic_mpiigaze(const SynthConfig& c, uint64_t seed, int64_t threads, int64_t* images) {
  const int64_t per_person = std::max<int64_t>(2, c.mpii_images);
  return write_people(c, "mpiigaze", threads, per_person, images, [&](int64_t person, const fs::path& staged) {
    const fs::path normalized = staged / "Data" / "Normalized";
    const fs::path lists = staged / "Evaluation Subset" / "sample list for eye image";
    fs::create_directories(lists);
    const EyeParticipant anatomy = sample_participant(seed, person, eye_population(c));
    SplitMix r(seed_mix(seed, stream::kMpiiGaze, uint64_t(person)));
    std::vector<MpiiShot> shots;
    for (int64_t i = 0; i < per_person; ++i) shots.push_back(sample_shot(r, c));
    std::vector<Image> left, right;
    for (const MpiiShot& s : shots) {
      left.push_back(render_patch(anatomy, s.state, false));
      right.push_back(render_patch(anatomy, s.state, true));
    }
    // Days: three of about equal size, then a one-image day.
    char name[32];
    const std::string id = person_name(person);
    fs::create_directories(normalized / id);
    std::vector<std::pair<std::string, std::string>> listed;  // day/file, for the evaluation list
    const int64_t main_days = 3, before_last = per_person - 1;
    int64_t next = 0;
    for (int64_t d = 0; d <= main_days; ++d) {
      const int64_t end = d < main_days ? before_last * (d + 1) / main_days : per_person;
      if (end == next) continue;  // few images: fewer days
      std::vector<const MpiiShot*> day_shots;
      std::vector<Image> day_left, day_right;
      std::vector<MatValue> files;
      for (int64_t i = next, number = 1; i < end; ++i, ++number) {
        std::snprintf(name, sizeof name, "%04lld.jpg", (long long)number);
        files.push_back(MatValue::string(name));
        day_shots.push_back(&shots[size_t(i)]);
        day_left.push_back(left[size_t(i)]);
        day_right.push_back(right[size_t(i)]);
        char day[16];
        std::snprintf(day, sizeof day, "day%02lld", (long long)d + 1);
        listed.emplace_back(day, name);
      }
      next = end;
      char day[16];
      std::snprintf(day, sizeof day, "day%02lld.mat", (long long)d + 1);
      write_mat_file((normalized / id / day).string(),
                     {{"data", MatValue::structure({{"left", eye_struct(day_shots, day_left)},
                                                    {"right", eye_struct(day_shots, day_right)}})},
                      {"filenames", MatValue::cell_column(std::move(files))}});
    }
    // The evaluation list: a random subset, half left and half right eyes, shuffled.
    for (size_t i = listed.size() - 1; i > 0; --i) std::swap(listed[i], listed[r.next() % (i + 1)]);
    const size_t count = size_t(std::clamp<int64_t>(c.mpii_evaluation, 2, per_person)) & ~size_t(1);
    std::string text;
    for (size_t i = 0; i < count; ++i)
      text += listed[i].first + "/" + listed[i].second + (i % 2 ? " right" : " left") + "\n";
    write_text_atomically((lists / (id + ".txt")).string(), text);
  });
}

std::string write_synthetic_mpiifacegaze(const SynthConfig& c, uint64_t seed, int64_t threads, int64_t* images) {
  const int32_t height = int32_t(c.mpii_frame.at(0)), width = int32_t(c.mpii_frame.at(1));
  const int64_t per_person = std::max<int64_t>(1, c.mpii_images);
  const ScreenSetup screen;
  return write_people(c, "mpiifacegaze", threads, per_person, images, [&](int64_t person, const fs::path& staged) {
    const EyeParticipant anatomy = sample_participant(seed, person, eye_population(c));
    SplitMix r(seed_mix(seed, stream::kMpiiFaceGaze, uint64_t(person)));
    char name[64];
    const std::string id = person_name(person);
    const fs::path folder = staged / id;
    fs::create_directories(folder / "Calibration");
    // A webcam at this resolution: real MPIIFaceGaze cameras have f ~ 995 px at 1280 wide.
    PinholeCamera camera;
    const double f = 0.78 * width * r.uniform(0.97, 1.03);
    camera.matrix << f, 0, width / 2.0 + r.uniform(-8, 8), 0, f, height / 2.0 + r.uniform(-8, 8), 0, 0, 1;
    camera.distortion = {r.uniform(-0.08, 0.0), r.uniform(0.0, 0.12), r.uniform(-0.002, 0.002),
                         r.uniform(-0.002, 0.002), 0};
    std::vector<double> m(9), rvecs(300), tvecs(300);
    for (int row = 0; row < 3; ++row)
      for (int col = 0; col < 3; ++col) m[size_t(row + 3 * col)] = camera.matrix(row, col);
    for (auto& v : rvecs) v = r.uniform(-0.3, 0.3);
    for (auto& v : tvecs) v = r.uniform(-200, 600);
    write_mat_file((folder / "Calibration" / "Camera.mat").string(),
                   {{"cameraMatrix", MatValue::matrix({3, 3}, m)},
                    {"distCoeffs", MatValue::matrix({1, 5}, {camera.distortion.begin(), camera.distortion.end()})},
                    {"retval", MatValue::matrix({1, 1}, {r.uniform(0.2, 0.6)})},
                    {"rvecs", MatValue::matrix({100, 3}, rvecs)},
                    {"tvecs", MatValue::matrix({100, 3}, tvecs)}});
    write_mat_file(
        (folder / "Calibration" / "monitorPose.mat").string(),
        {{"rvects", MatValue::matrix({3, 1}, {0, 0, 0})},
         {"tvecs", MatValue::matrix({3, 1}, {screen.top_left.x(), screen.top_left.y(), screen.top_left.z()})}});
    write_mat_file((folder / "Calibration" / "screenSize.mat").string(),
                   {{"height_pixel", MatValue::matrix({1, 1}, {screen.height_px})},
                    {"width_pixel", MatValue::matrix({1, 1}, {screen.width_px})},
                    {"height_mm", MatValue::matrix({1, 1}, {screen.height_mm})},
                    {"width_mm", MatValue::matrix({1, 1}, {screen.width_mm})}});
    std::string annotations;
    for (int64_t i = 0; i < per_person; ++i) {
      // Each vector drawn z, y, x: the order GCC took the constructor's arguments in when
      // kSynthRendererVersion 1 was recorded (a call's arguments have no order in C++).
      Eigen::Vector3d rotation, translation;
      rotation.z() = r.uniform(-0.08, 0.08);
      rotation.y() = r.uniform(-0.35, 0.35);
      rotation.x() = r.uniform(-0.25, 0.25);
      const Eigen::Matrix3d head = rotation_from_rodrigues(rotation);
      translation.z() = r.uniform(450, 650);
      translation.y() = r.uniform(-20, 60);
      translation.x() = r.uniform(-60, 60);
      std::array<Eigen::Vector2d, 6> landmarks;
      Eigen::Vector3d centre = Eigen::Vector3d::Zero();
      for (size_t k = 0; k < 6; ++k) {
        const Eigen::Vector3d point = head * kFaceModel[k] + translation;
        landmarks[k] = camera.project(point);
        centre += point / 6.0;
      }
      const double px = r.uniform(0, screen.width_px), py = r.uniform(0, screen.height_px);
      const Eigen::Vector3d target = screen.top_left + Eigen::Vector3d(px / screen.width_px * screen.width_mm,
                                                                       py / screen.height_px * screen.height_mm, 0);
      const Image frame = render_face_frame(anatomy, camera, head, translation, target, landmarks, height, width, r, c);
      const std::string day = i < per_person / 2 ? "day01" : "day02";
      std::snprintf(name, sizeof name, "%04lld.jpg", (long long)(i + 1));
      fs::create_directories(folder / day);
      const std::vector<uint8_t> jpeg = encode_jpeg(frame, int(c.jpeg_quality));
      write_text_atomically((folder / day / name).string(), std::string(jpeg.begin(), jpeg.end()));
      std::string line = day + "/" + name + " " + number_text(px) + " " + number_text(py);
      for (const auto& l : landmarks)
        line += " " + std::to_string(std::lround(l.x())) + " " + std::to_string(std::lround(l.y()));
      for (const Eigen::Vector3d* v :
           std::initializer_list<const Eigen::Vector3d*>{&rotation, &translation, &centre, &target})
        for (int k = 0; k < 3; ++k) line += " " + number_text((*v)(k));
      annotations += line + (i % 2 ? " right\n" : " left\n");
    }
    write_text_atomically((folder / (id + ".txt")).string(), annotations);
  });
}

}  // namespace gaze
