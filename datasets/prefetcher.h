// Prefetcher<T>: produce(i) for i = 0, 1, 2, ... on worker threads, consumed in order.
//
// At most `window` items are in flight or waiting, so memory stays bounded whatever the
// dataset size. produce() may throw: with `skip_bad`, a gaze::Error item is counted in
// skipped() and passed over; otherwise next() rethrows it in the consumer. Destroying the
// prefetcher stops the workers. Used for training batches, packing and loader benchmarks.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "datasets/dataset.h"
#include "libgaze/core/error.h"

namespace gaze {

template <class T>
class Prefetcher {
 public:
  Prefetcher(int64_t count, std::function<T(int64_t)> produce, int64_t workers, int64_t window, bool skip_bad)
      : count_(count),
        produce_(std::move(produce)),
        window_(std::max<int64_t>(window, 1)),
        skip_bad_(skip_bad),
        slots_(size_t(window_)) {
    for (int64_t w = 0; w < std::max<int64_t>(workers, 1); ++w) {
      try {
        threads_.emplace_back([this] { work(); });
      } catch (const std::system_error& e) {  // the system refused a thread: stop the others first
        stop_workers();
        throw Error("data.workers=" + std::to_string(workers) + ": cannot start decode thread " + std::to_string(w) +
                    ": " + e.what());
      }
    }
  }
  ~Prefetcher() { stop_workers(); }
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // The next item in order, or nullopt at the end.
  std::optional<T> next() {
    while (true) {
      std::unique_lock<std::mutex> lock(mutex_);
      if (consumed_ >= count_) return std::nullopt;
      Slot& slot = slots_[size_t(consumed_ % window_)];
      changed_.wait(lock, [&] { return slot.ready; });
      Slot taken = std::move(slot);
      slot = Slot{};
      ++consumed_;
      lock.unlock();
      changed_.notify_all();
      if (taken.error) {
        try {
          std::rethrow_exception(taken.error);
        } catch (const Error& e) {
          if (!skip_bad_) throw;
          skipped_.add(e.what());
          continue;
        }
      }
      return std::move(taken.value);
    }
  }
  const SkipLog& skipped() const { return skipped_; }

 private:
  struct Slot {
    bool ready = false;
    std::optional<T> value;
    std::exception_ptr error;
  };

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  void work() {
    while (true) {
      int64_t index;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stop_ || claimed_ >= count_ || claimed_ < consumed_ + window_; });
        if (stop_ || claimed_ >= count_) return;
        index = claimed_++;
      }
      Slot result;
      result.ready = true;
      try {
        result.value = produce_(index);
      } catch (...) {
        result.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slots_[size_t(index % window_)] = std::move(result);
      }
      changed_.notify_all();
    }
  }

  const int64_t count_;
  std::function<T(int64_t)> produce_;
  const int64_t window_;
  const bool skip_bad_;
  std::vector<Slot> slots_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int64_t claimed_ = 0, consumed_ = 0;
  bool stop_ = false;
  SkipLog skipped_;
};

}  // namespace gaze
