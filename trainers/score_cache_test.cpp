#include "trainers/score_cache.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "libgaze/core/error.h"
#include "libgaze/io/checkpoint_file.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;

namespace {

// Scores with numbers JSON must carry exactly: a sum with no short decimal form, a subnormal, a
// NaN (stored as null), negative ids.
DatasetScores awkward_scores() {
  DatasetScores s;
  s.generalised = 0.1 + 0.2;
  s.personalised = std::numeric_limits<double>::quiet_NaN();
  s.before = 1.0 / 3.0;
  s.baseline = 15.339999999999998;
  s.blink_auc = -1;
  s.k_curve = {{0, 7.25}, {5, 2.0000000000000004}};
  s.seconds_per_user = 4.9e-324;
  s.calibrate_seconds_per_user = 0.012;
  s.protocol = {"recording", 100, 3000};
  s.errors = {0.5, 1e-17, 123456.789};
  s.people = {{-1, 3.0}, {12, 4.1}};
  s.baseline_people = {{12, 15.0}};
  return s;
}

void write(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::trunc) << text; }

}  // namespace

TEST_CASE("a model's scores round-trip through their cache file to the last bit", "[score_cache]") {
  testing::TempDir dir;
  const std::string path = dir.file("scores.json");
  const DatasetScores s = awkward_scores();
  write_cached_scores(path, "key one", s);
  const auto back = read_cached_scores(path, "key one");
  REQUIRE(back.has_value());
  CHECK(back->generalised == s.generalised);
  CHECK(std::isnan(back->personalised));
  CHECK(back->before == s.before);
  CHECK(back->baseline == s.baseline);
  CHECK(back->blink_auc == -1);
  CHECK(back->k_curve == s.k_curve);
  CHECK(back->seconds_per_user == s.seconds_per_user);
  CHECK(back->calibrate_seconds_per_user == s.calibrate_seconds_per_user);
  CHECK(back->protocol.unit == "recording");
  CHECK(back->protocol.gap_ms == 100);
  CHECK(back->protocol.calibration_window_ms == 3000);
  CHECK(back->errors == s.errors);
  CHECK(back->people == s.people);
  CHECK(back->baseline_people == s.baseline_people);
  // Another key (another checkpoint, config, pack or libgaze) is a miss, and so is no key.
  CHECK(!read_cached_scores(path, "key two").has_value());
  CHECK(!read_cached_scores(path, "").has_value());
  CHECK(!read_cached_scores(dir.file("none.json"), "key one").has_value());
  // No key (a binary that cannot name its code) writes nothing.
  write_cached_scores(dir.file("unkeyed.json"), "", s);
  CHECK(!std::filesystem::exists(dir.file("unkeyed.json")));
}

TEST_CASE("a broken scores file is an error naming it, never scores", "[score_cache]") {
  testing::TempDir dir;
  const std::string path = dir.file("scores.json");
  write(path, "{\"key\": \"k\", \"scores\": {\"generalised\": 1.0");
  CHECK_THROWS_WITH(read_cached_scores(path, "k"), Contains(path) && Contains("invalid JSON"));
  write(path, "[1, 2]");
  CHECK_THROWS_WITH(read_cached_scores(path, "k"), Contains(path) && Contains("not a scores file"));
  write_cached_scores(path, "k", awkward_scores());
  std::string text = testing::read_file(path);
  text.replace(text.find("\"people\""), 8, "\"persons\"");
  write(path, text);
  CHECK_THROWS_WITH(read_cached_scores(path, "k"), Contains(path) && Contains("people") && Contains("delete it"));
}

TEST_CASE("the cache key names the commit, the checkpoint's weights, the scoring config and the pack",
          "[score_cache]") {
  testing::TempDir dir;
  const std::string checkpoint = dir.file("model.h5"), pack = dir.file("data.h5");
  const auto save = [&](float value, int64_t step = 2) {
    h5::Array weight;
    weight.shape = {2};
    weight.bytes.resize(2 * sizeof(float));
    const float values[2] = {value, 1.0f};
    std::memcpy(weight.bytes.data(), values, sizeof values);
    write_checkpoint_file(checkpoint, {"adapters", step, "config", {{"head.weight", weight}}, {}, {}});
  };
  save(0.5f);
  write(pack, "frames");
  Config config;
  // Uncommitted code, or none known: its scores cannot be named, so none are reused.
  CHECK(score_key(config, checkpoint, pack, "0123456789ab+changes").empty());
  CHECK(score_key(config, checkpoint, pack, "unknown").empty());
  const std::string code = "0123456789ab";
  const std::string key = score_key(config, checkpoint, pack, code);
  CHECK_THAT(key, Contains("libgaze code " + code) && Contains(checkpoint) && Contains(pack));
  CHECK(score_key(config, checkpoint, pack, "ba9876543210") != key);
  CHECK(score_key(config, checkpoint, "pack:" + pack, code) == key);
  Config other_seed = config;
  other_seed.run.seed += 1;
  CHECK(score_key(other_seed, checkpoint, pack, code) != key);
  save(0.25f);  // other weights
  CHECK(score_key(config, checkpoint, pack, code) != key);
  const std::string first_file = testing::read_file(checkpoint);
  save(0.5f, 3);  // the same weights in another file (another step): the same key
  CHECK(testing::read_file(checkpoint) != first_file);
  CHECK(score_key(config, checkpoint, pack, code) == key);
  write(pack, "frames and more");
  CHECK(score_key(config, checkpoint, pack, code) != key);
  CHECK_THROWS_WITH(score_key(config, dir.file("gone.h5"), pack, code), Contains(dir.file("gone.h5")));
}
