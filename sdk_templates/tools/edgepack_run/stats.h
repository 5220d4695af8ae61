// SPDX-License-Identifier: Apache-2.0
// Summary statistics of latency samples, as the runner's JSON report gives them.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace edgepack_run {

struct Summary {
  double min = 0, mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, std = 0;
};

// Percentile with linear interpolation between closest ranks (numpy's default), q in [0, 100].
inline double percentile(std::vector<double> sorted, double q) {
  if (sorted.empty()) return 0.0;
  std::sort(sorted.begin(), sorted.end());
  const double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

// Population standard deviation (ddof = 0).
inline Summary summarize(const std::vector<double>& s) {
  Summary r;
  if (s.empty()) return r;
  r.min = *std::min_element(s.begin(), s.end());
  r.max = *std::max_element(s.begin(), s.end());
  double sum = 0;
  for (double v : s) sum += v;
  r.mean = sum / static_cast<double>(s.size());
  double var = 0;
  for (double v : s) var += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(var / static_cast<double>(s.size()));
  r.p50 = percentile(s, 50);
  r.p90 = percentile(s, 90);
  r.p99 = percentile(s, 99);
  return r;
}

}  // namespace edgepack_run
