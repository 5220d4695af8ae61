// SPDX-License-Identifier: Apache-2.0
// A small fork-join thread pool for the CPU kernels.
//
// Workers are started once and persist; parallel_for() splits [0, n) into up to kChunksPerThread
// contiguous chunks per thread and returns when every chunk is done. Chunks are claimed by
// whichever thread is free first, the caller included, so a worker that is not scheduled (a
// loaded machine) or runs on a slower core (big.LITTLE) holds up at most the chunk it has taken,
// not a fixed share of the work. Each index of [0, n) is in exactly one chunk, so kernels that
// give every index its own scratch slot (n <= threads) stay correct. A call allocates nothing. With
// threads == 1, or when called from inside a running parallel_for (nested), fn runs inline.
// Concurrent calls from different threads are serialised.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace edgepack {

class ThreadPool {
 public:
  // threads >= 1 is the total number of threads that run chunks, the caller included
  // (values < 1 are treated as 1). With `cpus` not empty, worker i is pinned to
  // cpus[(i + 1) % cpus.size()] (cpus[0] is left for the caller, which pins itself if it
  // wants); an impossible CPU (offline, outside the process's allowed set) throws Error.
  explicit ThreadPool(int threads, const std::vector<int>& cpus = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  // Calls fn(begin, end) on disjoint chunks covering [0, n); fn must not throw (an exception
  // escaping a worker terminates the program, as with std::thread).
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    if (n <= 0) return;
    if (threads_ == 1 || n == 1 || in_worker()) {
      fn(int64_t{0}, n);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    run(
        n, [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Task = void (*)(void* ctx, int64_t begin, int64_t end);
  void run(int64_t n, Task task, void* ctx);
  void worker_loop(int index);
  void run_chunks(uint64_t gen);  // claims and runs chunks of job `gen` until none are left
  static bool in_worker();

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // serialises callers

  // Current job, published under state_mutex_ by bumping generation_.
  std::mutex state_mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> claim_{0};  // generation << 32 | chunks << 16 | next unclaimed chunk
  std::atomic<int> done_chunks_{0};
  bool stop_ = false;
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
};

// Chunks per thread a parallel_for() is cut into at most (see the top of this file).
constexpr int kChunksPerThread = 4;
constexpr int kMaxChunks = 0xffff;  // the chunk fields of the claim word are 16 bits

// Work (about one multiply-add per unit) below which a loop runs on the calling thread alone:
// waking the workers and the closing barrier cost some microseconds per parallel_for (on the
// order of 5-50 us, more on a loaded machine; kernels_test prints the measured cost as "pool:"),
// about what one core needs for this much work. Splitting smaller loops made small-tensor
// models (squeeze-and-excitation, late 7x7 stages) slower with every added thread.
constexpr double kMinParallelWork = 65536.0;

// `pool`, or nullptr (run inline) when `work` is too small to pay for the split.
inline ThreadPool* pool_for(ThreadPool* pool, double work) {
  return work < kMinParallelWork ? nullptr : pool;
}

// Chunk i of n split into k nearly equal contiguous parts.
inline int64_t chunk_begin(int64_t n, int k, int i) {
  return n * i / k;
}

}  // namespace edgepack
