// SPDX-License-Identifier: Apache-2.0
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "common/error.h"

namespace edgepack {

namespace {
thread_local bool t_in_worker = false;

// Workers spin for a while before sleeping: the next parallel op usually starts after a few
// small single-threaded ops (tens to hundreds of microseconds), and a worker that is still
// spinning joins it at once, while one that sleeps needs a futex wake-up and arrives after the
// caller has done most of the chunks (a 40 us loop in 8 chunks on 2 threads: 20.8 us back to back,
// 46-48 us after a 2 ms pause, worse than 1 thread; measured on a 2-core machine at load 7, where
// the pauses in between mostly could not be told apart). The spin is bounded by time, not by a
// count of pause instructions: `pause` takes 10 to 150 cycles on x86 cores and `yield` about one
// on the boards' ARM cores, where 20000 of them were ~10 us. An idle pool sleeps after kSpin.
constexpr std::chrono::microseconds kSpin{200};
constexpr int kPausesPerClockRead = 64;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}
}  // namespace

int usable_threads(int requested, const std::vector<int>& cpus) {
  if (requested < 1) requested = 1;
  if (!cpus.empty()) return requested;
  cpu_set_t set;
  CPU_ZERO(&set);
  const int most = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
  return most > 0 && requested > most ? most : requested;
}

bool ThreadPool::in_worker() {
  return t_in_worker;
}

ThreadPool::ThreadPool(int threads, const std::vector<int>& cpus)
    : threads_(threads < 1 ? 1 : threads), shares_(static_cast<size_t>(threads_)) {
  workers_.reserve(static_cast<size_t>(threads_ - 1));
  for (int i = 0; i + 1 < threads_; ++i) {
    workers_.emplace_back([this, i] { worker_loop(i); });
    if (cpus.empty()) continue;
    const int cpu = cpus[static_cast<size_t>(i + 1) % cpus.size()];
    cpu_set_t set;
    CPU_ZERO(&set);
    int rc = EINVAL;
    if (cpu >= 0 && cpu < CPU_SETSIZE) {
      CPU_SET(cpu, &set);
      rc = pthread_setaffinity_np(workers_.back().native_handle(), sizeof(set), &set);
    }
    if (rc != 0) {
      {
        std::lock_guard<std::mutex> lock(state_mutex_);
        stop_ = true;
      }
      wake_.notify_all();
      for (auto& w : workers_) w.join();
      throw Error(ErrorCode::kInvalidArgument, "cannot pin a kernel thread to CPU " +
                                                   std::to_string(cpu) + ": " + std::strerror(rc));
    }
  }
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
  const int most = std::min(kChunksPerThread * threads_, kMaxChunks);
  const int chunks = n < most ? static_cast<int>(n) : most;
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(state_mutex_);
    task_ = task;
    ctx_ = ctx;
    n_ = n;
    chunks_ = chunks;
    done_chunks_.store(0, std::memory_order_relaxed);
    gen = generation_.load(std::memory_order_relaxed) + 1;
    // The shares first, then the generation the workers wait for (with the old generation in
    // the words a worker that woke early would find nothing to claim and miss the job).
    for (int t = 0; t < threads_; ++t)
      shares_[static_cast<size_t>(t)].word.store(
          (gen & 0xffffffffu) << 32 |
              static_cast<uint64_t>(chunk_begin(chunks, threads_, t + 1)) << 16 |
              static_cast<uint64_t>(chunk_begin(chunks, threads_, t)),
          std::memory_order_release);
    generation_.store(gen, std::memory_order_release);
  }
  wake_.notify_all();

  // The caller runs its own share, then takes chunks from the others': when a worker is not
  // scheduled (more runnable threads than cores), its chunks are run here instead of waited for.
  t_in_worker = true;
  run_chunks(gen, 0);
  t_in_worker = false;

  const auto spin_end = std::chrono::steady_clock::now() + kSpin;
  for (int i = 1;; ++i) {
    if (done_chunks_.load(std::memory_order_acquire) == chunks) return;
    cpu_relax();
    if (i % kPausesPerClockRead == 0 && std::chrono::steady_clock::now() > spin_end) break;
  }
  std::unique_lock<std::mutex> lock(state_mutex_);
  done_.wait(lock, [&] { return done_chunks_.load(std::memory_order_acquire) == chunks; });
}

bool ThreadPool::run_one(uint64_t gen, int share, bool own) {
  std::atomic<uint64_t>& word = shares_[static_cast<size_t>(share)].word;
  uint64_t c = word.load(std::memory_order_acquire);
  for (;;) {
    // The job is in the word: a claim only succeeds for the job whose share it read. (A worker
    // late for a finished job must not take a chunk of the next one with the old job's bounds:
    // a chunk run twice or counted for the wrong job.)
    if ((c >> 32) != (gen & 0xffffffffu)) return false;
    const int next = static_cast<int>(c & 0xffffu);
    const int end = static_cast<int>((c >> 16) & 0xffffu);
    if (next >= end) return false;
    const uint64_t want =
        own ? c + 1 : (c & ~(uint64_t{0xffff} << 16)) | static_cast<uint64_t>(end - 1) << 16;
    if (!word.compare_exchange_weak(c, want, std::memory_order_acq_rel)) continue;
    const int chunk = own ? next : end - 1;
    // The job cannot change before this chunk is counted done, so its fields are stable here.
    task_(ctx_, chunk_begin(n_, chunks_, chunk), chunk_begin(n_, chunks_, chunk + 1));
    if (done_chunks_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks_) {
      std::lock_guard<std::mutex> lock(state_mutex_);
      done_.notify_one();
    }
    return true;
  }
}

void ThreadPool::run_chunks(uint64_t gen, int self) {
  while (run_one(gen, self, true)) {
  }
  for (int i = 1; i < threads_; ++i)
    while (run_one(gen, (self + i) % threads_, false)) {
    }
}

void ThreadPool::worker_loop(int index) {
  t_in_worker = true;
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    const auto spin_end = std::chrono::steady_clock::now() + kSpin;
    for (int i = 1; gen == seen; ++i) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
      if (i % kPausesPerClockRead == 0 && std::chrono::steady_clock::now() > spin_end) break;
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(state_mutex_);
      wake_.wait(lock,
                 [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    run_chunks(gen, index + 1);
  }
}

}  // namespace edgepack
