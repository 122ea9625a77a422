#include "datasets/cached.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "datasets/pack.h"
#include "libgaze/core/error.h"
#include "tests/test_util.h"

using namespace gaze;
using Catch::Contains;

namespace {
// Item i: a 10x20 image whose pixels depend on i; counts how often each item is decoded.
class CountingDataset : public Dataset {
 public:
  explicit CountingDataset(int64_t n, int64_t bad = -1) : bad_(bad), decodes_(size_t(n)) {
    for (int64_t i = 0; i < n; ++i) {
      SampleLabel l;
      l.gaze = unit_gaze(0.02 * i, 0.01, 1, "counting");
      l.key = "item/" + std::to_string(i);
      labels_.push_back(l);
    }
  }
  int64_t size() const override { return int64_t(labels_.size()); }
  Sample get(int64_t i) const override {
    ++decodes_[size_t(i)];
    if (i == bad_) throw Error("counting: item " + std::to_string(i) + " is corrupt");
    Image image(10, 20);
    for (size_t p = 0; p < image.pixels.size(); ++p) image.pixels[p] = uint8_t(p * 7 + size_t(i) * 31);
    return {image, labels_[size_t(i)]};
  }
  const SampleLabel& label(int64_t i) const override { return labels_[size_t(i)]; }
  std::string describe() const override { return "counting"; }
  int64_t decodes(int64_t i) const { return decodes_[size_t(i)]; }

 private:
  std::vector<SampleLabel> labels_;
  int64_t bad_;
  mutable std::vector<std::atomic<int64_t>> decodes_;
};

constexpr int64_t kImageBytes = 10 * 20;
}  // namespace

TEST_CASE("a cached dataset returns the source's samples and decodes each cached item once", "[cache]") {
  auto owned = std::make_unique<CountingDataset>(8);
  const CountingDataset& source = *owned;
  const CachedDataset cached(std::move(owned), 8 * kImageBytes);
  REQUIRE(cached.size() == 8);
  CHECK(cached.describe() == "counting");
  for (int pass = 0; pass < 3; ++pass) {
    for (int64_t i = 0; i < 8; ++i) {
      const Sample s = cached.get(i);
      CHECK(s.image.pixels == source.get(i).image.pixels);
      CHECK(s.image.height == 10);
      CHECK(s.label.key == source.label(i).key);
      CHECK(&cached.label(i) == &source.label(i));
    }
  }
  // One decode through the cache plus the comparison's three.
  for (int64_t i = 0; i < 8; ++i) CHECK(source.decodes(i) == 1 + 3);
  CHECK(cached.cached_bytes() == 8 * kImageBytes);
}

TEST_CASE("a cached dataset keeps no more than its budget and decodes the rest every time", "[cache]") {
  auto owned = std::make_unique<CountingDataset>(6);
  const CountingDataset& source = *owned;
  const CachedDataset cached(std::move(owned), 2 * kImageBytes + kImageBytes / 2);
  for (int pass = 0; pass < 4; ++pass)
    for (int64_t i = 0; i < 6; ++i) CHECK(cached.get(i).image.pixels.size() == size_t(kImageBytes));
  CHECK(cached.cached_bytes() == 2 * kImageBytes);
  CHECK(source.decodes(0) == 1);
  CHECK(source.decodes(1) == 1);
  for (int64_t i = 2; i < 6; ++i) CHECK(source.decodes(i) == 4);
}

TEST_CASE("a cached dataset passes a bad item's error on every read and caches nothing for it", "[cache]") {
  const CachedDataset cached(std::make_unique<CountingDataset>(3, 1), 1 << 20);
  CHECK_THROWS_WITH(cached.get(1), Contains("counting: item 1 is corrupt"));
  CHECK_THROWS_WITH(cached.get(1), Contains("counting: item 1 is corrupt"));
  CHECK(cached.get(2).label.key == "item/2");
  CHECK(cached.cached_bytes() == kImageBytes);
  CHECK_THROWS_AS(cached.get(3), std::out_of_range);
}

TEST_CASE("a cached pack read from several threads equals the pack", "[cache]") {
  testing::TempDir dir;
  write_pack(CountingDataset(40), dir.file("p.h5"), {});
  const PackDataset pack(dir.file("p.h5"));
  const CachedDataset cached(std::make_unique<PackDataset>(dir.file("p.h5")), 1 << 20);
  std::vector<std::thread> threads;
  std::atomic<int64_t> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int pass = 0; pass < 3; ++pass)
        for (int64_t i = 0; i < 40; ++i) {
          const int64_t item = (i * 7 + t) % 40;
          if (cached.get(item).image.pixels != pack.get(item).image.pixels) ++mismatches;
        }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(mismatches == 0);
  CHECK(cached.cached_bytes() == 40 * kImageBytes);
  const auto uncached = cache_decoded(std::make_unique<PackDataset>(dir.file("p.h5")), 0);
  CHECK(dynamic_cast<const PackDataset*>(uncached.get()) != nullptr);
}
