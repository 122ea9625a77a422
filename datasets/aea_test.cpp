// Tests of the VRS reader, the MPS gaze CSV parser and the AEA loader on the real 4-frame
// recording in ../shared/fixtures/aea_sample (projectaria_tools test data, Apache-2.0).
#include "datasets/aea.h"

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "datasets/codec.h"
#include "libgaze/core/error.h"
#include "libgaze/metrics/angular_error.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {
const std::string kFixture = LIBGAZE_SOURCE_DIR "/../shared/fixtures/aea_sample";
const int64_t kTimes[4] = {86435306, 86535306, 86635306, 86735306};
const double kYawPitch[4][2] = {
    {-0.36566, -0.121962}, {-0.205619, -0.14999300000000002}, {-0.095982, -0.147992}, {-0.003813, -0.157194}};

// A copy of the fixture recording whose files a test may damage.
std::string copy_fixture(const testing::TempDir& dir) {
  const std::string rec = dir.file("loc1_script1_seq1_rec1");
  fs::create_directories(rec + "/mps/eye_gaze");
  fs::copy_file(kFixture + "/recording.vrs", rec + "/recording.vrs");
  fs::copy_file(kFixture + "/mps/eye_gaze/general_eye_gaze.csv", rec + "/mps/eye_gaze/general_eye_gaze.csv");
  return rec;
}
}  // namespace

TEST_CASE("the VRS reader walks every record of the real recording", "[vrs][aea]") {
  REQUIRE(fs::exists(kFixture + "/recording.vrs"));
  VrsReader vrs(kFixture + "/recording.vrs");
  CHECK(vrs.records().size() == 787);
  int eye = 0, compressed = 0;
  for (const VrsRecord& r : vrs.records()) {
    if (r.type_id == 211 && r.instance_id == 1 && r.record_type == 3) {
      CHECK(r.compression == 0);
      CHECK(vrs_time_to_us(r.timestamp) == kTimes[eye]);
      const auto payload = vrs.read_payload(r);
      CHECK(find_jpeg_start(payload) == 84);
      ++eye;
    }
    // zstd: records of other streams; each must decompress to its stated size. (Type ids 1
    // and 2 are VRS's own index/description records, whose payload framing is its own.)
    if (r.compression == 2 && r.type_id > 2) {
      CHECK(vrs.read_payload(r).size() == r.uncompressed_size);
      ++compressed;
    }
  }
  CHECK(eye == 4);
  CHECK(compressed > 0);
}

TEST_CASE("the AEA loader yields the 4 real frames with the formula's gaze", "[aea]") {
  AeaOptions options;
  options.eye = "pair";
  AeaDataset data(kFixture, options);
  REQUIRE(data.size() == 4);
  CHECK(data.recordings().at(0).layout == MpsGazeLayout::kGeneralV2);
  for (int i = 0; i < 4; ++i) {
    const Sample s = data.get(i);
    CHECK(s.image.width == 640);
    CHECK(s.image.height == 240);
    CHECK(s.label.timestamp_us == kTimes[i]);
    const Vec3 expected = aria_direction({kYawPitch[i][0], kYawPitch[i][1]});
    const Vec3 got{s.label.gaze[0], s.label.gaze[1], s.label.gaze[2]};
    CHECK(angular_error_deg(got, expected) < 1e-4);
    CHECK(s.label.gaze[0] == Approx(expected.x).margin(1e-6));
    // A real eye image, not a flat field.
    const auto [lo, hi] = std::minmax_element(s.image.pixels.begin(), s.image.pixels.end());
    CHECK(int(*hi) - int(*lo) > 50);
  }
}

TEST_CASE("both eyes: halves of the frame, the right one mirrored with its label", "[aea]") {
  AeaOptions pair_options;
  pair_options.eye = "pair";
  const Sample pair = AeaDataset(kFixture, pair_options).get(1);
  AeaDataset both(kFixture, AeaOptions{});
  REQUIRE(both.size() == 8);
  const Sample left = both.get(2), right = both.get(3);
  CHECK(left.label.key == "aea_sample/86535306/L");
  CHECK(right.label.key == "aea_sample/86535306/R");
  CHECK(left.image.width == 320);
  CHECK(left.image.pixels == crop(pair.image, 0, 0, 240, 320).pixels);
  CHECK(right.image.pixels == mirror_horizontal(crop(pair.image, 0, 320, 240, 320)).pixels);
  CHECK(right.label.gaze[0] == -left.label.gaze[0]);
  CHECK(right.label.gaze[1] == left.label.gaze[1]);
}

TEST_CASE("timestamps match exactly or within the tolerance", "[aea]") {
  testing::TempDir dir;
  const std::string rec = copy_fixture(dir);
  // Shift every CSV timestamp by 40 µs: exact matching finds nothing, 50 µs tolerance all.
  std::string csv = testing::read_file(rec + "/mps/eye_gaze/general_eye_gaze.csv");
  for (int64_t t : kTimes) {
    csv.replace(csv.find(std::to_string(t)), 8, std::to_string(t + 40));
  }
  dir.write("loc1_script1_seq1_rec1/mps/eye_gaze/general_eye_gaze.csv", csv);
  AeaOptions options;
  options.eye = "pair";
  AeaDataset exact(rec, options);
  CHECK(exact.size() == 0);
  CHECK(exact.recordings()[0].eye_frames == 4);
  options.tolerance_us = 50;
  CHECK(AeaDataset(rec, options).size() == 4);
}

TEST_CASE("damaged recordings fail with the file and byte offset", "[aea][vrs]") {
  testing::TempDir dir;
  const std::string rec = copy_fixture(dir);
  const std::string vrs_path = rec + "/recording.vrs";
  const std::string bytes = testing::read_file(vrs_path);
  // Cut inside the third eye frame's record.
  dir.write("loc1_script1_seq1_rec1/recording.vrs", bytes.substr(0, 2725891 + 5000));
  CHECK_THROWS_WITH(AeaDataset(rec, AeaOptions{}), Contains("recording.vrs: byte 2725891: truncated VRS file"));
  AeaOptions skip;
  skip.skip_bad = true;
  skip.eye = "pair";
  AeaDataset partial(rec, skip);
  CHECK(partial.size() == 2);
  CHECK(partial.skipped().count == 1);
  // Corrupt JPEG bytes inside an eye record: decode names the record's offset.
  std::string corrupt = bytes;
  for (size_t i = 1807572 + 32 + 84 + 200; i < 1807572 + 32 + 84 + 4000; ++i) corrupt[i] = char(0xFF);
  dir.write("loc1_script1_seq1_rec1/recording.vrs", corrupt);
  AeaOptions pair;
  pair.eye = "pair";
  AeaDataset damaged(rec, pair);
  CHECK_NOTHROW(damaged.get(0));
  CHECK_THROWS_WITH(damaged.get(1), Contains("recording.vrs: byte 1807572: corrupt JPEG"));
  // Not a VRS file at all.
  dir.write("loc1_script1_seq1_rec1/recording.vrs", "hello, this is not VRS at all, not even close to it.....");
  CHECK_THROWS_WITH(AeaDataset(rec, pair), Contains("not a VRS file (bad magic)"));
  CHECK_THROWS_WITH(AeaDataset(dir.file("nothing"), pair), Contains("AEA root not found"));
}

TEST_CASE("MPS CSV layouts are recognised by header and combined as the SPEC says", "[aea][csv]") {
  testing::TempDir dir;
  const std::string legacy =
      dir.write("legacy.csv",
                "tracking_timestamp_us,yaw_rads_cpf,pitch_rads_cpf,depth_m,yaw_low_rads_cpf,pitch_low_rads_cpf,"
                "yaw_high_rads_cpf,pitch_high_rads_cpf\r\n20,0.1,0.2,,0,0,0,0\r\n10,-0.1,0,1.0,0,0,0,0\r\n");
  const MpsGazeTable a = read_mps_gaze_csv(legacy);
  CHECK(a.layout == MpsGazeLayout::kLegacy);
  REQUIRE(a.rows.size() == 2);
  CHECK(a.rows[0].timestamp_us == 10);  // sorted
  CHECK(a.rows[1].direction[0] == Approx(aria_direction({0.1, 0.2}).x));

  const std::string vergence =
      dir.write("vergence.csv",
                "tracking_timestamp_us,left_yaw_rads_cpf,right_yaw_rads_cpf,pitch_rads_cpf,depth_m,session_uid\n"
                "5,-0.05,0.08,0.1,,abc\n");
  const MpsGazeTable v = read_mps_gaze_csv(vergence);
  CHECK(v.layout == MpsGazeLayout::kVergence);
  const Vec3 expected = aria_vergence_direction(-0.05, 0.08, 0.1);
  CHECK(v.rows[0].direction[0] == Approx(expected.x));
  CHECK(v.rows[0].direction[2] == Approx(expected.z));

  const std::string gen2 =
      dir.write("gen2.csv",
                "tracking_timestamp_us,yaw_rads_cpf,pitch_rads_cpf,left_yaw_rads_cpf,right_yaw_rads_cpf\n"
                "1,0.2,0.0,0.1,0.3\n");
  const MpsGazeTable g = read_mps_gaze_csv(gen2);
  CHECK(g.layout == MpsGazeLayout::kGen2);
  CHECK(g.rows[0].direction[0] == Approx(aria_direction({0.2, 0.0}).x));
  CHECK(read_mps_gaze_csv(kFixture + "/mps/eye_gaze/general_eye_gaze.csv").layout == MpsGazeLayout::kGeneralV2);

  // Nearest-row matching.
  CHECK(a.match(14, 5)->timestamp_us == 10);
  CHECK(a.match(16, 5)->timestamp_us == 20);
  CHECK(a.match(15, 4) == nullptr);
}

TEST_CASE("bad gaze CSVs name file:line and column", "[aea][csv]") {
  testing::TempDir dir;
  const std::string no_cols = dir.write("a.csv", "tracking_timestamp_us,foo\n1,2\n");
  CHECK_THROWS_WITH(read_mps_gaze_csv(no_cols), Contains("a.csv:1: not an MPS eye-gaze CSV"));
  const std::string short_row = dir.write("b.csv", "tracking_timestamp_us,yaw_rads_cpf,pitch_rads_cpf\n1,0.1\n");
  CHECK_THROWS_WITH(read_mps_gaze_csv(short_row), dir.file("b.csv") + ":2: expected 3 fields, got 2");
  const std::string nan =
      dir.write("c.csv", "tracking_timestamp_us,yaw_rads_cpf,pitch_rads_cpf\n1,0.1,0\n2,nan,0\n3,x,0\n");
  CHECK_THROWS_WITH(read_mps_gaze_csv(nan),
                    dir.file("c.csv") + ":3: column yaw_rads_cpf is not a finite number: 'nan'");
  SkipLog skip;
  const MpsGazeTable t = read_mps_gaze_csv(nan, &skip);
  CHECK(t.rows.size() == 1);
  CHECK(skip.count == 2);
  CHECK_THAT(skip.summary(), Contains("skipped 2 bad items") && Contains("c.csv:4"));
  CHECK_THROWS_WITH(read_mps_gaze_csv(dir.file("none.csv")), Contains("none.csv: cannot open file"));
}

TEST_CASE("compressed eye records (zstd and lz4) read like plain ones", "[aea][vrs]") {
  testing::TempDir dir;
  const std::string rec = dir.file("rec");
  fs::create_directories(rec + "/mps/eye_gaze");
  Image frame(24, 64);
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 64; ++x) frame.at(y, x) = uint8_t(3 * x + y);
  std::vector<uint8_t> payload(16, 0);
  const auto jpeg = encode_jpeg(frame, 95);
  payload.insert(payload.end(), jpeg.begin(), jpeg.end());
  {
    VrsWriter writer(rec + "/recording.vrs", 5);
    writer.add_record(211, 1, VrsRecordType::kData, 1.0, 2, payload, VrsCompression::kNone);
    writer.add_record(211, 1, VrsRecordType::kData, 1.1, 2, payload, VrsCompression::kZstd);
    writer.add_record(211, 1, VrsRecordType::kData, 1.2, 2, payload, VrsCompression::kLz4);
    writer.add_record(1202, 1, VrsRecordType::kData, 1.25, 1, std::vector<uint8_t>(100, 7), VrsCompression::kZstd);
    writer.finish();
  }
  std::ofstream(rec + "/mps/eye_gaze/general_eye_gaze.csv")
      << "tracking_timestamp_us,yaw_rads_cpf,pitch_rads_cpf\n1000000,0,0\n1100000,0.1,0\n1200000,0.2,0\n";
  VrsReader vrs(rec + "/recording.vrs");
  REQUIRE(vrs.records().size() == 4);
  CHECK(vrs.records()[1].compression == 2);
  CHECK(vrs.records()[2].compression == 1);
  CHECK(vrs.records()[1].payload_size() < payload.size() + 64);
  AeaOptions options;
  options.eye = "pair";
  AeaDataset data(rec, options);
  REQUIRE(data.size() == 3);
  const Image plain = data.get(0).image;
  CHECK(data.get(1).image.pixels == plain.pixels);
  CHECK(data.get(2).image.pixels == plain.pixels);
  CHECK(data.label(2).gaze[0] == Approx(std::tan(0.2) / std::sqrt(1 + std::tan(0.2) * std::tan(0.2))));
}
