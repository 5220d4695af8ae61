// SPDX-License-Identifier: Apache-2.0
// A small fork-join thread pool for the CPU kernels.
//
// Workers are started once and persist; parallel_for() splits [0, n) into up to kChunksPerThread
// contiguous chunks per thread and returns when every chunk is done. Thread t (the caller is 0,
// worker i is i + 1) owns the t-th contiguous share of the chunks and runs them front to back;
// a thread whose share is done takes chunks from the back of the others' shares. So a worker
// that is not scheduled (a loaded machine) or runs on a slower core (big.LITTLE) holds up at most
// the chunk it has taken, not a fixed share of the work, while on a quiet machine consecutive
// loops split the same way run the same part of [0, n) on the same core: an op that reads what
// the one before it wrote finds its part in its own core's cache. (With every chunk claimed by
// whichever thread came first, half of a 14x14 depthwise convolution's input was in the other
// core's L2, and at 2 threads it took longer than at 1.) Each index of [0, n) is in exactly one
// chunk, so kernels that give every index its own scratch slot (n <= threads) stay correct. A
// call allocates nothing. With threads == 1, or when called from inside a running parallel_for
// (nested), fn runs inline. Concurrent calls from different threads are serialised.
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
  // Claims and runs chunks of job `gen` as thread `self` until none are left.
  void run_chunks(uint64_t gen, int self);
  bool run_one(uint64_t gen, int share, bool own);
  static bool in_worker();

  // Thread t's share of the current job's chunks, one word so that a claim checks the job, the
  // share's end and its next chunk at once: generation << 32 | end << 16 | next. The owner takes
  // `next`, others take `end - 1`.
  struct alignas(64) Share {
    std::atomic<uint64_t> word{0};
  };

  int threads_;
  std::vector<Share> shares_;  // one per thread, sized once
  std::vector<std::thread> workers_;
  std::mutex call_mutex_;  // serialises callers

  // Current job, published under state_mutex_ by bumping generation_.
  std::mutex state_mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::atomic<uint64_t> generation_{0};
  int chunks_ = 0;
  std::atomic<int> done_chunks_{0};
  bool stop_ = false;
  Task task_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
};

// The threads a session runs kernels on for `requested`: unpinned (`cpus` empty), at most the
// CPUs in the process's affinity mask. More threads than cores made every run slower than on
// one thread (MobileNetV2 on 2 cores: 4.5 ms at 2 threads, 7.7 at 1, 7.9 at 3 or 4): the spare
// workers spin or are descheduled holding a chunk. A CPU list given with ep_options_set_cpus
// is the user's explicit placement and is kept as asked. ThreadPool itself takes any count (the
// kernel tests split work over 3 and 4 threads on 2 cores).
int usable_threads(int requested, const std::vector<int>& cpus);

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

// The work of one element of a memory-bound loop (element-wise arithmetic, a plane's average),
// in kMinParallelWork's units: such loops split from 4096 elements. Their input was mostly
// written by a split op before them, half of it in the other core's cache, and one thread
// reading that half costs more than the split (2 threads on the 2-core AVX-512 host:
// MobileNetV3-small's squeeze-and-excitation Muls of 240 x 14 x 14 0.0079 -> 0.0035 ms, the
// model 3% faster).
constexpr double kMemoryBoundElementWork = 16.0;

// Chunk i of n split into k nearly equal contiguous parts.
inline int64_t chunk_begin(int64_t n, int k, int i) {
  return n * i / k;
}

// Tasks [0, n) of a kernel's parallel_for(slots, ...) body, dealt out like the pool's chunks:
// slot s owns the s-th contiguous share and takes it front to back, then takes tasks from the back
// of the other slots' shares. With slots == pool threads, slot s runs on thread s, so a kernel
// whose task order follows the data (blocks of output pixels, bands of rows) keeps each thread on
// the part of the tensor it wrote in the op before. Lives on the caller's stack; no allocation.
class OwnedTasks {
 public:
  static constexpr int kMaxShares = 16;  // more slots share (slot % kMaxShares)

  OwnedTasks(int64_t n, int64_t slots) {
    shares_ = static_cast<int>(slots < 1 ? 1 : (slots > kMaxShares ? kMaxShares : slots));
    for (int s = 0; s < shares_; ++s)
      share_[s].word.store(static_cast<uint64_t>(chunk_begin(n, shares_, s + 1)) << 32 |
                               static_cast<uint64_t>(chunk_begin(n, shares_, s)),
                           std::memory_order_relaxed);
  }
  OwnedTasks(const OwnedTasks&) = delete;
  OwnedTasks& operator=(const OwnedTasks&) = delete;

  // The next task for `slot`, or -1 when every task has been taken.
  int64_t claim(int64_t slot) {
    const int own = static_cast<int>(slot % shares_);
    for (int i = 0; i < shares_; ++i) {
      std::atomic<uint64_t>& w = share_[(own + i) % shares_].word;
      uint64_t c = w.load(std::memory_order_relaxed);
      for (;;) {
        const uint64_t next = c & 0xffffffffu, end = c >> 32;
        if (next >= end) break;
        const uint64_t want = i == 0 ? c + 1 : (end - 1) << 32 | next;
        if (w.compare_exchange_weak(c, want, std::memory_order_relaxed))
          return static_cast<int64_t>(i == 0 ? next : end - 1);
      }
    }
    return -1;
  }

 private:
  struct alignas(64) Share {
    std::atomic<uint64_t> word{0};  // end << 32 | next
  };
  Share share_[kMaxShares];
  int shares_ = 1;
};

}  // namespace edgepack
