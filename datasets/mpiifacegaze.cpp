#include "datasets/mpiifacegaze.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include "datasets/codec.h"
#include "datasets/csv.h"
#include "datasets/matfile.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"

namespace gaze {
namespace {

namespace fs = std::filesystem;

PinholeCamera read_camera(const std::string& path) {
  const MatFile file(path);
  const MatVar matrix = file.read("cameraMatrix");
  matrix.expect_dims({3, 3});
  const MatVar distortion = file.read("distCoeffs");
  distortion.expect_numel(5);
  PinholeCamera camera;
  const std::vector<double> m = matrix.doubles(), d = distortion.doubles();
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) camera.matrix(r, c) = m[size_t(r + 3 * c)];  // column-major
  for (size_t i = 0; i < 5; ++i) camera.distortion[i] = d[i];
  if (!(camera.matrix(0, 0) > 0 && camera.matrix(1, 1) > 0 && camera.matrix(2, 2) == 1))
    throw Error(path + ": cameraMatrix: expected [[fx 0 cx]; [0 fy cy]; [0 0 1]] with positive focal lengths");
  return camera;
}

}  // namespace

MpiiFaceGazeDataset::Annotation MpiiFaceGazeDataset::parse_annotation(const std::string& line,
                                                                      const std::string& where) {
  std::istringstream in(line);
  std::vector<std::string> fields;
  for (std::string f; in >> f;) fields.push_back(f);
  if (fields.size() != 28)
    throw Error(where +
                ": expected 28 fields (path, screen gaze, 6 landmarks, head pose, face centre, target, eye), "
                "found " +
                std::to_string(fields.size()));
  std::vector<double> v;
  for (size_t i = 1; i < 27; ++i)
    v.push_back(parse_finite_double(fields[i], where + ": field " + std::to_string(i + 1)));
  Annotation a;
  a.image = fields[0];
  a.screen = {v[0], v[1]};
  for (size_t k = 0; k < 6; ++k) a.landmarks[k] = {v[2 + 2 * k], v[3 + 2 * k]};
  a.head_rotation = {v[14], v[15], v[16]};
  a.head_translation = {v[17], v[18], v[19]};
  a.face_centre = {v[20], v[21], v[22]};
  a.gaze_target = {v[23], v[24], v[25]};
  a.eye = fields[27];
  if (a.eye != "left" && a.eye != "right")
    throw Error(where + ": field 28 must be left or right, found '" + a.eye + "'");
  if (a.face_centre.z() <= 0) throw Error(where + ": the face centre must lie in front of the camera (z > 0)");
  if ((a.gaze_target - a.face_centre).norm() == 0) throw Error(where + ": the gaze target equals the face centre");
  return a;
}

MpiiFaceGazeDataset::MpiiFaceGazeDataset(const std::string& root, const MpiiFaceGazeOptions& options)
    : root_(root), options_(options) {
  if (!fs::is_directory(root)) throw Error(root + ": MPIIFaceGaze folder not found");
  if (options.eye_pair && options.colour) throw Error("MPIIFaceGaze: eye pairs are grey; colour must be off");
  for (const std::string& person : mpii_people(root, options.split, options.hold_out, "MPIIFaceGaze")) {
    const fs::path folder = fs::path(root) / person;
    const std::string list = (folder / (person + ".txt")).string();
    try {
      cameras_.push_back(read_camera((folder / "Calibration" / "Camera.mat").string()));
    } catch (const Error& e) {
      if (!options.skip_bad) throw;
      skipped_.add(e.what());
      continue;
    }
    std::istringstream lines(read_text_file(list));
    std::string line;
    for (int64_t number = 1; std::getline(lines, line); ++number) {
      if (trim(line).empty()) continue;
      const std::string where = list + ":" + std::to_string(number);
      try {
        const Annotation a = parse_annotation(line, where);
        const Eigen::Matrix3d head = rotation_from_rodrigues(a.head_rotation);
        Item item;
        item.path = (folder / a.image).string();
        item.camera = cameras_.size() - 1;
        item.face = normalize_face(cameras_.back(), a.face_centre, head, options.normalization);
        if (options.eye_pair) {
          const FaceNormalizationOptions& n = options.normalization;
          for (size_t k = 0; k < 4; ++k) {
            const Eigen::Vector2d p = normalized_pixel(cameras_.back(), item.face, a.landmarks[k]);
            // Eyes far outside the face crop mean the landmarks and the face centre disagree.
            if (!(std::abs(p.x() - n.width / 2.0) <= n.width && std::abs(p.y() - n.height / 2.0) <= n.height))
              throw Error(where + ": eye corner " + std::to_string(k + 1) + " (fields " + std::to_string(4 + 2 * k) +
                          "-" + std::to_string(5 + 2 * k) + ") falls outside the normalised face");
            item.eye_corners[k] = p;
          }
        }
        const Eigen::Vector3d g = (item.face.rotation * (a.gaze_target - a.face_centre)).normalized();
        item.label.gaze = unit_gaze(g.x(), g.y(), g.z(), where);
        item.label.head = head_pitch_yaw(item.face.rotation * head);
        item.label.participant = mpii_person_number(person);
        item.label.key = person + "/" + a.image + "/" + a.eye;
        items_.push_back(std::move(item));
      } catch (const Error& e) {
        if (!options.skip_bad) throw;
        skipped_.add(e.what());
      }
    }
  }
  if (items_.empty() && skipped_.count == 0) throw Error(root + ": no MPIIFaceGaze annotations");
}

Sample MpiiFaceGazeDataset::get(int64_t index) const {
  const Item& item = items_.at(size_t(index));
  const std::vector<uint8_t> bytes = read_binary_file(item.path);
  const Image frame = decode_jpeg(bytes.data(), bytes.size(), item.path, options_.colour ? 3 : 1);
  Sample s;
  s.label = item.label;
  s.image = warp_normalized(frame, cameras_[item.camera], item.face, options_.normalization);
  if (options_.eye_pair)
    s.image = crop_eye_pair(s.image, item.eye_corners, MpiiGazeDataset::kHeight, MpiiGazeDataset::kWidth);
  return s;
}

std::string MpiiFaceGazeDataset::describe() const {
  return "mpiifacegaze " + root_ + " (" + mpii_people_description(options_.split, options_.hold_out) +
         (options_.eye_pair ? ", eye pairs" : "") + ")";
}

}  // namespace gaze
