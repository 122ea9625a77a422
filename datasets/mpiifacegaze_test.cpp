// The MPII face normalisation and the MPIIFaceGaze loader on gaze synth's MPIIFaceGaze layout
// (tests/python checks the labels against an independent numpy restatement of public code).
#include "datasets/mpiifacegaze.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "datasets/matfile.h"
#include "datasets/synth/mpii_writer.h"
#include "libgaze/core/atomic_file.h"
#include "libgaze/core/error.h"
#include "libgaze/core/strings.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

PinholeCamera webcam() {
  PinholeCamera camera;
  camera.matrix << 500, 0, 322, 0, 502, 178, 0, 0, 1;
  camera.distortion = {-0.06, 0.09, 0.001, -0.001, 0};
  return camera;
}

}  // namespace

TEST_CASE("face normalisation: the face centre lands in the middle, at the normalised distance", "[mpiifacegaze]") {
  const PinholeCamera camera = webcam();
  const Eigen::Vector3d centre(40, -25, 560);
  const Eigen::Matrix3d head = rotation_from_rodrigues({0.1, -0.3, 0.05});
  const FaceNormalizationOptions o;
  const NormalizedFace face = normalize_face(camera, centre, head, o);
  CHECK((face.rotation * face.rotation.transpose() - Eigen::Matrix3d::Identity()).norm() < 1e-12);
  CHECK((face.rotation * centre - Eigen::Vector3d(0, 0, centre.norm())).norm() < 1e-9);
  CHECK(face.scale == Approx(600 / centre.norm()));
  const Eigen::Vector3d p = face.warp * camera.matrix * centre;  // undistorted pixel of the centre, warped
  CHECK(p.x() / p.z() == Approx(112).margin(1e-6));
  CHECK(p.y() / p.z() == Approx(112).margin(1e-6));
  // The normalised y axis is perpendicular to the head's x axis (roll removed).
  CHECK(std::abs(face.rotation.row(1).dot(head.col(0))) < 1e-12);
}

TEST_CASE("face normalisation: a point of the distorted frame appears where the normalised camera sees it",
          "[mpiifacegaze]") {
  const PinholeCamera camera = webcam();
  const Eigen::Vector3d centre(-30, 10, 600), point = centre + Eigen::Vector3d(35, -20, 10);
  const FaceNormalizationOptions o;
  const NormalizedFace face = normalize_face(camera, centre, rotation_from_rodrigues({0, 0.2, 0}), o);
  // A bright 3x3 dot at the point's real (distorted) pixel in a dark frame.
  Image frame(360, 640, 0, 3);
  const Eigen::Vector2d q = camera.project(point);
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx)
      for (int c = 0; c < 3; ++c) frame.at(int32_t(std::lround(q.y())) + dy, int32_t(std::lround(q.x())) + dx, c) = 255;
  const Image out = warp_normalized(frame, camera, face, o);
  REQUIRE(out.height == 224);
  REQUIRE(out.channels == 3);
  // Where the normalised camera (focal 960, scaled to 600 mm) sees the point.
  Eigen::Matrix3d cn;
  cn << 960, 0, 112, 0, 960, 112, 0, 0, 1;
  Eigen::Matrix3d s = Eigen::Matrix3d::Identity();
  s(2, 2) = face.scale;
  const Eigen::Vector3d want = cn * s * face.rotation * point;
  double sum = 0, x = 0, y = 0;
  for (int32_t v = 0; v < out.height; ++v)
    for (int32_t u = 0; u < out.width; ++u) {
      sum += out.at(v, u);
      x += u * double(out.at(v, u));
      y += v * double(out.at(v, u));
    }
  REQUIRE(sum > 0);
  // The dot is 3 source pixels of ~1 mm at this distance, magnified about 1.9x: its centroid
  // lands within a pixel of the prediction.
  CHECK(std::abs(x / sum - want.x() / want.z()) < 1.0);
  CHECK(std::abs(y / sum - want.y() / want.z()) < 1.0);
}

TEST_CASE("face normalisation: a landmark maps to where the normalised camera sees its point", "[mpiifacegaze]") {
  const PinholeCamera camera = webcam();
  const Eigen::Vector3d centre(25, 30, 580), point = centre + Eigen::Vector3d(-32, -35, 12);
  const NormalizedFace face = normalize_face(camera, centre, rotation_from_rodrigues({0.1, -0.25, 0}), {});
  Eigen::Matrix3d cn;
  cn << 960, 0, 112, 0, 960, 112, 0, 0, 1;
  Eigen::Matrix3d s = Eigen::Matrix3d::Identity();
  s(2, 2) = face.scale;
  const Eigen::Vector3d want = cn * s * face.rotation * point;
  const Eigen::Vector2d got = normalized_pixel(camera, face, camera.project(point));  // undistorts first
  CHECK(got.x() == Approx(want.x() / want.z()).margin(1e-6));
  CHECK(got.y() == Approx(want.y() / want.z()).margin(1e-6));
  const Eigen::Vector2d pixel(600, 20);  // far from the centre, where distortion is largest
  CHECK((camera.undistort_pixel(camera.distort_pixel(pixel)) - pixel).norm() < 1e-6);
}

TEST_CASE("eye pairs: each eye is cropped around its corners, image-left eye first", "[mpiifacegaze]") {
  Image face(224, 224, 10);
  // Corners 40 px apart; a bright 5x5 mark between the left eye's corners, a mid-grey one
  // between the right eye's.
  const std::array<Eigen::Vector2d, 4> corners = {Eigen::Vector2d(50, 90), Eigen::Vector2d(90, 90),
                                                  Eigen::Vector2d(134, 94), Eigen::Vector2d(174, 94)};
  for (int dy = -2; dy <= 2; ++dy)
    for (int dx = -2; dx <= 2; ++dx) {
      face.at(90 + dy, 70 + dx) = 250;
      face.at(94 + dy, 154 + dx) = 120;
    }
  const Image pair = crop_eye_pair(face, corners, 36, 60);
  REQUIRE(pair.height == 36);
  REQUIRE(pair.width == 120);
  CHECK(pair.at(18, 30) > 200);  // the mark lands in the middle of the left half
  CHECK(pair.at(18, 90) > 100);  // and the other in the middle of the right half
  CHECK(pair.at(18, 90) < 140);
  CHECK(pair.at(2, 2) == 10);  // crops are 1.6 x 40 = 64 px wide: the background around
  // A 5 px mark in a 64 px crop resampled to 60 px stays about 5 px wide.
  CHECK(pair.at(18, 36) == 10);
  // Centred to the sub-pixel: a one-pixel mark at the corners' midpoint lands symmetrically on
  // the middle four output pixels (a half-pixel shift would favour one side).
  Image dot(224, 224, 10);
  dot.at(90, 70) = 250;
  const Image centred = crop_eye_pair(dot, corners, 36, 60);
  CHECK(centred.at(17, 29) > 40);
  CHECK(centred.at(17, 29) == centred.at(17, 30));
  CHECK(centred.at(17, 29) == centred.at(18, 29));
  CHECK(centred.at(17, 29) == centred.at(18, 30));
  CHECK_THROWS_WITH(crop_eye_pair(Image(224, 224, 0, 3), corners, 36, 60), Contains("expected a grey face"));
  auto bad = corners;
  bad[1].x() = std::nan("");
  CHECK_THROWS_WITH(crop_eye_pair(face, bad, 36, 60), Contains("not finite"));
}

TEST_CASE("MPIIFaceGaze: gaze synth's layout through the loader", "[mpiifacegaze]") {
  testing::TempDir dir;
  SynthConfig c;
  c.out_dir = dir.path();
  c.participants = 3;
  c.mpii_images = 4;
  int64_t frames = 0;
  const std::string root = write_synthetic_mpiifacegaze(c, 9, 2, &frames);
  CHECK(frames == 12);
  for (const char* file : {"p01/p01.txt", "p01/day01/0001.jpg", "p01/day02/0004.jpg", "p01/Calibration/Camera.mat",
                           "p01/Calibration/monitorPose.mat", "p01/Calibration/screenSize.mat"})
    CHECK(fs::is_regular_file(fs::path(root) / file));
  CHECK(MatFile(root + "/p00/Calibration/monitorPose.mat").has("rvects"));

  const MpiiFaceGazeDataset data(root, {});
  REQUIRE(data.size() == 12);
  CHECK(data.label(5).key == "p01/day01/0002.jpg/right");
  CHECK(data.label(5).participant == 1);
  // The normalised gaze keeps its angle to the line of sight: angle(target - centre, centre)
  // equals the angle between the normalised gaze and the normalised camera's z axis.
  const std::string line = read_text_file(root + "/p01/p01.txt");
  const auto a = MpiiFaceGazeDataset::parse_annotation(line.substr(0, line.find('\n')), "p01.txt:1");
  const double want = std::acos((a.gaze_target - a.face_centre).normalized().dot(a.face_centre.normalized()));
  CHECK(std::acos(double(data.label(4).gaze[2])) == Approx(want).epsilon(1e-5));
  CHECK(data.label(4).gaze[2] < 0);  // looking back toward the camera and the screen
  const Sample s = data.get(4);
  CHECK(s.image.height == 224);
  CHECK(s.image.channels == 1);
  // The face fills the middle of the crop: brighter than the dark corners outside the warp.
  CHECK(s.image.at(112, 112) > 40);
  MpiiFaceGazeOptions colour;
  colour.colour = true;
  CHECK(MpiiFaceGazeDataset(root, colour).get(0).image.channels == 3);
  // Eye pairs: the two eyes cropped at their landmarks, labelled as the face.
  MpiiFaceGazeOptions pairs;
  pairs.eye_pair = true;
  const MpiiFaceGazeDataset eyes(root, pairs);
  REQUIRE(eyes.size() == data.size());
  const Image pair = eyes.get(4).image;
  CHECK(pair.height == 36);
  CHECK(pair.width == 120);
  CHECK(eyes.label(4).gaze == data.label(4).gaze);
  CHECK(eyes.describe().find("eye pairs") != std::string::npos);
  // Each half shows an eye (gaze synth draws them at the landmarks): a dark iris and pupil
  // in the middle third, on skin and sclera brighter than it.
  for (int32_t half = 0; half < 2; ++half) {
    int32_t darkest = 255, brightest = 0;
    for (int32_t r = 12; r < 24; ++r)
      for (int32_t c = 20; c < 40; ++c) darkest = std::min<int32_t>(darkest, pair.at(r, half * 60 + c));
    for (int32_t r = 0; r < 36; ++r)
      for (int32_t c = 0; c < 60; ++c) brightest = std::max<int32_t>(brightest, pair.at(r, half * 60 + c));
    CHECK(brightest - darkest > 40);
  }
  pairs.colour = true;
  CHECK_THROWS_WITH(MpiiFaceGazeDataset(root, pairs), Contains("eye pairs are grey"));
  MpiiFaceGazeOptions held;
  held.split = "test";
  held.hold_out = 2;
  CHECK(MpiiFaceGazeDataset(root, held).size() == 4);
}

TEST_CASE("MPIIFaceGaze: bad annotations and calibration files are named", "[mpiifacegaze]") {
  testing::TempDir dir;
  SynthConfig c;
  c.out_dir = dir.path();
  c.participants = 3;
  c.mpii_images = 2;
  const std::string root = write_synthetic_mpiifacegaze(c, 9, 1, nullptr);
  const std::string list = root + "/p02/p02.txt";
  const std::string text = read_text_file(list);
  SECTION("too few fields") {
    write_text_atomically(list, text + "day01/0009.jpg 1 2 3\n");
    CHECK_THROWS_WITH(MpiiFaceGazeDataset(root, {}), Contains("p02.txt:3: expected 28 fields") && Contains("found 4"));
    MpiiFaceGazeOptions skip;
    skip.skip_bad = true;
    const MpiiFaceGazeDataset skipped(root, skip);
    CHECK(skipped.size() == 6);
    CHECK(skipped.skipped().count == 1);
  }
  SECTION("a field that is not a number") {
    std::string bad = text.substr(0, text.find('\n'));
    bad.replace(bad.find(' '), 1, " x");
    write_text_atomically(list, bad + "\n");
    CHECK_THROWS_WITH(MpiiFaceGazeDataset(root, {}), Contains("p02.txt:1: field 2 is not a finite number: '"));
  }
  SECTION("eye corners far from the face, when cropping eye pairs") {
    std::vector<std::string> fields = split(text.substr(0, text.find('\n')), ' ');
    fields[7] = "90000";  // the third landmark's x: an eye corner 90,000 px away
    write_text_atomically(list, join(fields, " ") + "\n");
    MpiiFaceGazeOptions pairs;
    pairs.eye_pair = true;
    CHECK_THROWS_WITH(MpiiFaceGazeDataset(root, pairs),
                      Contains("p02.txt:1: eye corner 3 (fields 8-9) falls outside the normalised face"));
    CHECK(MpiiFaceGazeDataset(root, {}).size() == 5);  // the face itself is still there
  }
  SECTION("a calibration without its camera matrix") {
    write_mat_file(root + "/p02/Calibration/Camera.mat", {{"distCoeffs", MatValue::matrix({1, 5}, {0, 0, 0, 0, 0})}});
    CHECK_THROWS_WITH(MpiiFaceGazeDataset(root, {}),
                      Contains("p02/Calibration/Camera.mat: no readable variable 'cameraMatrix'"));
  }
  SECTION("a missing frame is named when read") {
    fs::remove(root + "/p02/day02/0002.jpg");
    const MpiiFaceGazeDataset data(root, {});
    CHECK_THROWS_WITH(data.get(5), Contains("p02/day02/0002.jpg"));
  }
}
