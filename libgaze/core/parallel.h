// parallel_for: split [0, n) over worker threads (no dependencies beyond <thread>).
//
// Work is handed out in index order through an atomic counter, so uneven items balance
// themselves. The first exception thrown by any worker is rethrown in the caller after all
// workers stop; remaining items are abandoned. threads <= 0 means hardware concurrency.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace gaze {

// Threads to use: `threads`, or all cores for <= 0; never more than the cores there are
// (256 compute threads on 2 cores only thrash).
inline int resolve_threads(int64_t threads) {
  const unsigned hw = std::thread::hardware_concurrency();
  const int cores = hw ? static_cast<int>(hw) : 1;
  return threads > 0 ? static_cast<int>(std::min<int64_t>(threads, cores)) : cores;
}

inline void parallel_for(int64_t n, int64_t threads, const std::function<void(int64_t)>& body) {
  const int workers = static_cast<int>(std::min<int64_t>(resolve_threads(threads), std::max<int64_t>(n, 1)));
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  const auto run = [&] {
    for (int64_t i; !failed && (i = next++) < n;) {
      try {
        body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < workers; ++w) {
    try {
      pool.emplace_back(run);
    } catch (const std::system_error&) {
      break;  // fewer threads than asked: the ones running (and this one) finish the work
    }
  }
  run();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace gaze
