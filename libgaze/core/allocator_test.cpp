#include "libgaze/core/allocator.h"

#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#define LIBGAZE_OWN_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LIBGAZE_OWN_MALLOC 0
#endif
#endif
#ifndef LIBGAZE_OWN_MALLOC
#define LIBGAZE_OWN_MALLOC 1
#endif

namespace {

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Minor page faults of allocating and writing `bytes`, then freeing them.
long faults_of_one_buffer(size_t bytes) {
  const long before = minor_faults();
  auto* p = static_cast<char*>(std::malloc(bytes));
  REQUIRE(p != nullptr);
  std::memset(p, 1, bytes);
  asm volatile("" : : "r"(p) : "memory");  // the compiler may not drop the writes (or the malloc)
  std::free(p);
  return minor_faults() - before;
}

}  // namespace

TEST_CASE("keep_freed_memory: a freed activation-sized buffer is reused without page faults", "[allocator]") {
  if (!LIBGAZE_OWN_MALLOC) {
    WARN("not checked: the sanitizer's allocator replaces glibc malloc");
    return;
  }
  constexpr size_t kBytes = size_t(64) << 20;  // above glibc's largest dynamic mmap threshold (32 MiB)
  constexpr long kPages = long(kBytes / 4096);
  // glibc's default: the block is unmapped on free, so every step faults all its pages again.
  CHECK(faults_of_one_buffer(kBytes) > kPages / 2);
  gaze::keep_freed_memory();
  faults_of_one_buffer(kBytes);  // the first use still faults the pages in
  CHECK(faults_of_one_buffer(kBytes) < kPages / 50);
}
