// The project's one random number generator and its one way of deriving seeds.
//
// Every random choice in libgaze (rendered people and frames, splits, K-means seeding, batch
// orders, augmentation, masks drawn on the CPU, personalisation pools) comes from a SplitMix
// (splitmix64: tiny state, fast, statistically fine for this use, identical on every platform)
// seeded by seed_mix(parent seed, stream). A stream is either an index (the step, the person,
// the item) or one of the named constants below, so two uses of one seed never share a stream
// and a result is a pure function of (seed, what it is for). Nothing here touches global state.
#pragma once

#include <cmath>
#include <cstdint>

namespace gaze {

// The splitmix64 finaliser: a bijective 64-bit mixer (also a good hash of one word).
constexpr uint64_t hash64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct SplitMix {
  uint64_t state;
  explicit SplitMix(uint64_t seed) : state(seed) {}
  uint64_t next() { return hash64(state += 0x9e3779b97f4a7c15ULL); }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  double normal() {  // standard normal (Box-Muller)
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
};

// The seed of stream `stream` under `seed`.
constexpr uint64_t seed_mix(uint64_t seed, uint64_t stream) {
  return hash64(((seed * 0x9e3779b97f4a7c15ULL) ^ (stream + 0x632be59bd9b4e019ULL)) + 0x9e3779b97f4a7c15ULL);
}

// seed_mix(seed, a, b, ...) = seed_mix(seed_mix(seed, a), b, ...): a stream within a stream.
template <class... Rest>
constexpr uint64_t seed_mix(uint64_t seed, uint64_t stream, uint64_t next, Rest... rest) {
  return seed_mix(seed_mix(seed, stream), next, uint64_t(rest)...);
}

// Named streams (arbitrary distinct constants: ASCII of the name).
namespace stream {
constexpr uint64_t kKMeans = 0x6b6d65616e73ULL;       // "kmeans": k-means++ seeding
constexpr uint64_t kSplit = 0x73706c6974ULL;          // "split": dataset splits
constexpr uint64_t kParticipant = 0x706572736f6eULL;  // "person": a rendered person's anatomy
constexpr uint64_t kSequence = 0x736571ULL;           // "seq": a rendered person's gaze sequence
constexpr uint64_t kPersonalize = 0x7573657273ULL;    // "users": calibration pools, tuning
constexpr uint64_t kReplay = 0x7265706c6179ULL;       // "replay": the replay subset
constexpr uint64_t kMask = 0x6d61736bULL;             // "mask": MAE patch masks per step
constexpr uint64_t kOpenEDS = 0x6f70656e656473ULL;    // "openeds": rendered OpenEDS sequences
constexpr uint64_t kAEA = 0x616561ULL;                // "aea": rendered AEA recordings
constexpr uint64_t kVrs = 0x767273ULL;                // "vrs": a written VRS file's ids
constexpr uint64_t kImages = 0x696d61676573ULL;       // "images": rendered natural-image stand-ins
constexpr uint64_t kMpiiGaze = 0x6d70696967ULL;       // "mpiig": rendered MPIIGaze eyes
constexpr uint64_t kMpiiFaceGaze = 0x6d70696966ULL;   // "mpiif": rendered MPIIFaceGaze frames
constexpr uint64_t kLight = 0x6c69676874ULL;          // "light": a rendered sequence's ambient light
}  // namespace stream

}  // namespace gaze
