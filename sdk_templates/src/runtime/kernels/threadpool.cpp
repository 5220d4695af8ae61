// SPDX-License-Identifier: Apache-2.0
#include "threadpool.h"

namespace edgepack {

namespace {
thread_local bool t_in_worker = false;

// Workers spin briefly before sleeping: back-to-back kernels (one per op) then start without a
// futex round trip, while an idle pool costs no CPU.
constexpr int kSpinIterations = 20000;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}
}  // namespace

bool ThreadPool::in_worker() { return t_in_worker; }

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  workers_.reserve(static_cast<size_t>(threads_ - 1));
  for (int i = 0; i + 1 < threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run(int64_t n, Task task, void* ctx) {
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  const int chunks = n < threads_ ? static_cast<int>(n) : threads_;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    task_ = task;
    ctx_ = ctx;
    n_ = n;
    chunks_ = chunks;
    pending_.store(threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();

  t_in_worker = true;
  task(ctx, 0, chunk_begin(n, chunks, 1));
  t_in_worker = false;

  for (int i = 0; i < kSpinIterations; ++i) {
    if (pending_.load(std::memory_order_acquire) == 0) return;
    cpu_relax();
  }
  std::unique_lock<std::mutex> lock(state_mutex_);
  done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::worker_loop(int index) {
  t_in_worker = true;
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int i = 0; gen == seen && i < kSpinIterations; ++i) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(state_mutex_);
      wake_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    const int chunk = index + 1;
    if (chunk < chunks_) task_(ctx_, chunk_begin(n_, chunks_, chunk), chunk_begin(n_, chunks_, chunk + 1));
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(state_mutex_);
      done_.notify_one();
    }
  }
}

}  // namespace edgepack
