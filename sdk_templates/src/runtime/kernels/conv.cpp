// SPDX-License-Identifier: Apache-2.0
#include "conv.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "common/error.h"
#include "gemm.h"
#include "microkernel.h"

namespace edgepack {
namespace kernels {

namespace {

[[noreturn]] void bad(const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, "Conv: " + what);
}

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

constexpr int kMaxPanelWidth = 64;  // >= every micro-kernel's NR
// Depthwise planes up to this many floats (padded) take the flattened path: 16 KiB, two of
// them on each thread's stack.
constexpr int64_t kFlatPlaneFloats = 4096;

// First t >= 0 with start + t * step >= 0, and first t with start + t * step >= limit.
inline int64_t first_at_least(int64_t start, int64_t step, int64_t limit) {
  return start >= limit ? 0 : ceil_div(limit - start, step);
}

constexpr int64_t kMaxTaps = 16;    // kernel sizes up to this take im2col_panel_runs()
constexpr int64_t kMaxDwTaps = 64;  // depthwise kernels with up to this many taps: kDepthwise
constexpr int64_t kWinogradMinChannels = 8;
// A plane of at least this many Winograd tiles (or one NR panel, if fewer) takes that tile size.
constexpr int64_t kWinogradMaxPanelTiles = 16;
// Blocked depthwise layers whose padded input block would exceed this many floats (4 MiB per
// thread) take the row paths.
constexpr int64_t kMaxBlockedDwFloats = int64_t{1} << 20;
// Layers with at most this many input channels (and more than one tap) run direct_oc().
constexpr int64_t kDirectOcMaxInChannels = 4;
// 1x1 layers with at most this many output pixels may run transposed (pointwise_transposed()).
constexpr int64_t kMaxTransposedPixels = 64;
// Stride-1 depthwise layers with output rows up to this wide take the channel-blocked path.
constexpr int64_t kBlockedDwMaxWidth = 28;
// With 16 lanes (AVX-512), up to this wide (see depthwise_blocked()).
constexpr int64_t kBlockedDwMaxWidth16 = 56;
// A blocked depthwise layer with fewer than 4 blocks per thread is also cut into bands of output
// rows (run_depthwise_blocked()), each at least this many rows.
constexpr int64_t kMinDwBandRows = 4;
// A band of a blocked depthwise layer packs at most about this many floats of input (128 KiB), so
// that the packed rows are still in L2 when the kernel reads them and the output block is small:
// a 112x112 plane of 16 channels packed whole is 830 KiB, written and read back through L3.
constexpr int64_t kDwBandFloats = 32 * 1024;

// The depthwise paths' activation: ReLU / Clip become the row pass's [lo, hi] clamp; the other
// activations stay in `rest` (bias removed: the row pass adds it), for a second pass.
struct RowActivation {
  Epilogue rest;
  float lo, hi;
};

RowActivation split_activation(const Epilogue& ep) {
  RowActivation ra{ep, -std::numeric_limits<float>::infinity(),
                   std::numeric_limits<float>::infinity()};
  ra.rest.bias = nullptr;
  if (ep.act == Activation::kRelu) {
    ra.lo = 0.0f;
    ra.rest.act = Activation::kNone;
  } else if (ep.act == Activation::kClip) {
    ra.lo = ep.clip_min;
    ra.hi = ep.clip_max;
    ra.rest.act = Activation::kNone;
  }
  return ra;
}

// An output-row run inside one packed-B panel.
struct Im2colRun {
  int64_t oh, ow, len, at;  // output row, first output column, length, offset in the panel
};

// One panel of im2col_packed(), run by run: the row of every kh and the valid column range of
// every kw are worked out once per run, so the (ic, kh, kw) loop only copies.
void im2col_panel_runs(const Conv2dParams& p, int64_t cin, const float* in, int nr,
                       const Im2colRun* runs, int nruns, int64_t w, float* panel) {
  const int64_t k = cin * p.kernel_h * p.kernel_w;
  const int64_t H = p.in_h, W = p.in_w, sw = p.stride_w;
  if (w < nr)
    for (int64_t q = 0; q < k; ++q) std::fill(panel + q * nr + w, panel + q * nr + nr, 0.0f);
  for (int r = 0; r < nruns; ++r) {
    const Im2colRun& run = runs[r];
    const int64_t seg = run.len;
    int64_t ih[kMaxTaps], lo[kMaxTaps], hi[kMaxTaps], iw0[kMaxTaps];
    for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
      const int64_t row = run.oh * p.stride_h - p.pad_top + kh * p.dilation_h;
      ih[kh] = row >= 0 && row < H ? row : -1;
    }
    for (int64_t kw = 0; kw < p.kernel_w; ++kw) {
      iw0[kw] = run.ow * sw - p.pad_left + kw * p.dilation_w;
      lo[kw] = std::min(seg, first_at_least(iw0[kw], sw, 0));
      hi[kw] = std::max(lo[kw], std::min(seg, first_at_least(iw0[kw], sw, W)));
    }
    float* d = panel + run.at;
    for (int64_t ic = 0; ic < cin; ++ic) {
      const float* plane = in + ic * H * W;
      for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
        if (ih[kh] < 0) {
          for (int64_t kw = 0; kw < p.kernel_w; ++kw, d += nr) std::fill(d, d + seg, 0.0f);
          continue;
        }
        const float* row = plane + ih[kh] * W;
        for (int64_t kw = 0; kw < p.kernel_w; ++kw, d += nr) {
          const int64_t a = lo[kw], b = hi[kw], x0 = iw0[kw];
          for (int64_t t = 0; t < a; ++t) d[t] = 0.0f;
          if (sw == 1) {
            for (int64_t t = a; t < b; ++t) d[t] = row[x0 + t];
          } else if (sw == 2) {
            for (int64_t t = a; t < b; ++t) d[t] = row[x0 + 2 * t];
          } else {
            for (int64_t t = a; t < b; ++t) d[t] = row[x0 + t * sw];
          }
          for (int64_t t = b; t < seg; ++t) d[t] = 0.0f;
        }
      }
    }
  }
}

// Writes op(B) = im2col(input) (K = cin * kh * kw rows, N = oh * ow columns) for panels
// [p0, p1) straight into the packed-B layout of gemm.h, panel p0 at dst: panel p holds, for every
// k, the nr values of columns [p * nr, p * nr + nr), zero-padded. A panel's columns split into runs
// along output rows; the runs are the same for every k, so they are computed once per panel.
void im2col_packed(const Conv2dParams& p, int64_t cin, const float* in, int nr, int64_t p0,
                   int64_t p1, float* dst) {
  using Run = Im2colRun;
  Run runs[kMaxPanelWidth];
  const int64_t oh_n = p.out_h(), ow_n = p.out_w(), n = oh_n * ow_n;
  const int64_t k = cin * p.kernel_h * p.kernel_w;
  const int64_t sw = p.stride_w, W = p.in_w;
  for (int64_t panel = p0; panel < p1; ++panel) {
    const int64_t j0 = panel * nr, w = std::min<int64_t>(nr, n - j0);
    int nruns = 0;
    for (int64_t done = 0, oh = j0 / ow_n, ow = j0 % ow_n; done < w; ow = 0, ++oh) {
      const int64_t len = std::min(w - done, ow_n - ow);
      runs[nruns++] = Run{oh, ow, len, done};
      done += len;
    }
    float* d = dst + (panel - p0) * k * nr;
    if (p.kernel_h <= kMaxTaps && p.kernel_w <= kMaxTaps) {
      im2col_panel_runs(p, cin, in, nr, runs, nruns, w, d);
      continue;
    }
    for (int64_t ic = 0; ic < cin; ++ic) {
      const float* plane = in + ic * p.in_h * W;
      for (int64_t kh = 0; kh < p.kernel_h; ++kh) {
        for (int64_t kw = 0; kw < p.kernel_w; ++kw, d += nr) {
          for (int r = 0; r < nruns; ++r) {
            const Run& run = runs[r];
            float* out = d + run.at;
            const int64_t seg = run.len;
            const int64_t ih = run.oh * p.stride_h - p.pad_top + kh * p.dilation_h;
            if (ih < 0 || ih >= p.in_h) {
              for (int64_t t = 0; t < seg; ++t) out[t] = 0.0f;
              continue;
            }
            const float* row = plane + ih * W;
            const int64_t iw0 = run.ow * sw - p.pad_left + kw * p.dilation_w;
            int64_t lo, hi;
            if (sw == 1) {
              lo = std::min(seg, std::max<int64_t>(0, -iw0));
              hi = std::max(lo, std::min(seg, W - iw0));
            } else {
              lo = std::min(seg, first_at_least(iw0, sw, 0));
              hi = std::max(lo, std::min(seg, first_at_least(iw0, sw, W)));
            }
            int64_t t = 0;
            for (; t < lo; ++t) out[t] = 0.0f;
            if (sw == 1) {
              const float* src = row + iw0;
              for (; t < hi; ++t) out[t] = src[t];
            } else if (sw == 2) {  // constant stride: vectorised with shuffles
              const float* src = row + iw0;
              for (; t < hi; ++t) out[t] = src[2 * t];
            } else {
              for (; t < hi; ++t) out[t] = row[iw0 + t * sw];
            }
            for (; t < seg; ++t) out[t] = 0.0f;
          }
          for (int64_t t = w; t < nr; ++t) d[t] = 0.0f;
        }
      }
    }
  }
}

// How the im2col path splits the output channels of a column block: `parts` tasks of `rows`
// channels (a multiple of the micro-kernel's MR). Late layers have few output pixels, so few
// column blocks (ResNet-18's 14x14 and 7x7 stages: one): split over blocks alone, one thread did
// all the work. Each part packs its block again; that costs 1/M of the block's multiply-adds.
struct RowSplit {
  int64_t parts, rows;
};

RowSplit split_rows(int64_t m, int64_t blocks, int64_t slots) {
  const int64_t mr = gemm_shape().mr;
  const int64_t panels = ceil_div(m, mr);
  int64_t parts = 1;
  // Blocks that do not divide evenly over the threads leave some idle at the end: split until
  // tasks deal out evenly (parts = slots / gcd(blocks, slots)), or while blocks are few.
  if (slots > 1 && blocks < 4 * slots) {
    int64_t a = blocks, b = slots;
    while (b != 0) {
      const int64_t t = a % b;
      a = b;
      b = t;
    }
    parts = slots / a;
  }
  parts = std::max<int64_t>(1, std::min(parts, panels));
  const int64_t rows = ceil_div(panels, parts) * mr;
  return RowSplit{ceil_div(m, rows), rows};
}

// The zero-padded plane, phase-split by column: padded (i, j) at buf[i * sw * wq + (j % sw) * wq +
// j / sw] (i < hp rows, wq columns per phase), so every tap of a strided output row reads a
// contiguous run.
void phase_split(const Conv2dParams& p, const float* plane, int64_t hp, int64_t wq, float* buf) {
  const int64_t H = p.in_h, W = p.in_w, sw = p.stride_w, row_pitch = sw * wq;
  for (int64_t i = 0; i < hp; ++i) {
    float* dst = buf + i * row_pitch;
    const int64_t ih = i - p.pad_top;
    if (ih < 0 || ih >= H) {
      std::fill(dst, dst + row_pitch, 0.0f);
      continue;
    }
    const float* src = plane + ih * W;
    if (sw == 1) {
      std::fill(dst, dst + p.pad_left, 0.0f);
      std::copy(src, src + W, dst + p.pad_left);
      std::fill(dst + p.pad_left + W, dst + row_pitch, 0.0f);
      continue;
    }
    for (int64_t ph = 0; ph < sw; ++ph) {
      // Column q of phase ph is input column q * sw + ph - pad_left: zero before q_lo and
      // from q_hi on.
      float* d = dst + ph * wq;
      const int64_t q_lo = std::min(wq, first_at_least(ph - p.pad_left, sw, 0));
      const int64_t q_hi = std::max(q_lo, std::min(wq, first_at_least(ph - p.pad_left, sw, W)));
      std::fill(d, d + q_lo, 0.0f);
      const float* s0 = src + (q_lo * sw + ph - p.pad_left);
      for (int64_t q = q_lo; q < q_hi; ++q) d[q] = s0[(q - q_lo) * sw];
      std::fill(d + q_hi, d + wq, 0.0f);
    }
  }
}

// The Winograd tile for a layer, 0 for none: 3x3, stride 1, no dilation or groups, and enough
// channels that the transforms (per input and output channel) are small against the GEMMs (per
// pair of channels). F(4x4, 3x3) needs planes of a few tiles per panel; smaller planes take
// F(2x2, 3x3), whose 4x4 tiles waste less on padding. A panel here is at most 16 columns: a
// 32-column AVX-512 panel takes 16 tiles in its half kernel (fn_half). Asking for a whole
// 32-column panel, AVX-512 ran 7x7 planes by im2col (49 of 64 columns, 9 products per output
// against F(2x2)'s 4) and 14x14 by F(2x2) (49 of 64 tiles, 4 products per output against
// F(4x4)'s 2.25); with kc_one_panel (microkernel.h), 1 thread, ms: 512 -> 512 at 7x7 3.33 ->
// 1.74 (AVX2 2.69), 256 -> 256 at 14x14 1.78 -> 1.15 (AVX2 1.14).
int winograd_tile(const Conv2dParams& p) {
  if (!p.allow_winograd || p.kernel_h != 3 || p.kernel_w != 3 || p.stride_h != 1 ||
      p.stride_w != 1 || p.dilation_h != 1 || p.dilation_w != 1 || p.groups != 1)
    return 0;
  if (p.in_channels < kWinogradMinChannels || p.out_channels < kWinogradMinChannels) return 0;
  const int64_t min_tiles = std::min<int64_t>(gemm_shape().nr, kWinogradMaxPanelTiles);
  const int64_t tiles4 = ceil_div(p.out_h(), 4) * ceil_div(p.out_w(), 4);
  if (tiles4 >= min_tiles) return 4;
  const int64_t tiles2 = ceil_div(p.out_h(), 2) * ceil_div(p.out_w(), 2);
  return tiles2 >= min_tiles ? 2 : 0;
}

// Whether a layer runs the direct path with output channels in vectors: few input channels (K
// = cin x kh x kw of 27 for a 3x3 stem: im2col copies each input value 9 times, and the GEMM's
// K loop is short), groups 1, taps within the kernel's table.
bool direct_oc(const Conv2dParams& p) {
  if (p.groups != 1 || p.in_channels * p.kernel_h * p.kernel_w > kMaxOcConvTaps) return false;
  if (p.direct_oc >= 0) return p.direct_oc != 0;
  return p.in_channels <= kDirectOcMaxInChannels && p.kernel_h * p.kernel_w > 1;
}

// Whether a 1x1 layer (groups 1) runs transposed: pixels on the micro-kernel's M side (MR rows)
// and output channels on its N side (NR columns), when that pads fewer products: 7x7 = 49 pixels
// are 64 columns of 16-wide AVX2 panels (77% useful) but 54 rows of 6 (91%). The transpose of
// C^T back to NCHW costs one pass over the output: 10% of margin.
bool pointwise_transposed(const Conv2dParams& p) {
  if (p.groups != 1) return false;
  if (p.pointwise_transposed >= 0) return p.pointwise_transposed != 0;
  const int64_t mr = gemm_shape().mr, nr = gemm_shape().nr;
  const int64_t n = p.out_h() * p.out_w(), m = p.out_channels;
  // Larger planes pad little either way, and packing X^T and transposing C^T cost more there
  // (16 output channels of 112x112: 0.67 ms transposed against 0.24 direct).
  if (n > kMaxTransposedPixels) return false;
  const int64_t direct = ceil_div(m, mr) * mr * ceil_div(n, nr) * nr;
  const int64_t transposed = ceil_div(n, mr) * mr * ceil_div(m, nr) * nr;
  return 10 * transposed < 9 * direct;
}

// Whether a depthwise layer takes the channel-blocked path: strided layers (the row paths need
// the strided input de-interleaved, the blocked path reads whole pixels whatever the stride) and
// planes whose output rows are short (late stages: 7x7, 14x14), where row-wise vectors are mostly
// padding and the per-row work (edges, borders, the activation) dominates. Stride-1 layers with
// long rows (56, 112) stay on the row paths: no copy at all there (AVX2, 1 thread, ms: 144 x
// 56x56 3x3 0.29-0.32 row / 0.36 blocked; 96 x 112x112 3x3 stride 2 0.50 / 0.42; 72 x 56x56 5x5
// stride 2 0.27 / 0.11). With 16 lanes (AVX-512) the blocked path wins there too (a Xeon, SiLU:
// 144 x 56x56 3x3 0.91-1.00 row / 0.50-0.52 blocked, 32 x 112x112 3x3 0.61-0.68 / 0.45; an AMD
// EPYC, ReLU6: 144 x 56x56 0.23 / 0.26 blocked / row, but 32 x 112x112 0.27 / 0.19), and
// so it does on AVX2 for activations the row pass cannot fuse (SiLU: 144 x 56x56 3x3 0.65 row /
// 0.49 blocked, 32 x 112x112 0.68 / 0.51; HardSwish 72 x 56x56 0.20 / 0.15; ReLU6 0.28 / 0.44).
bool depthwise_blocked(const Conv2dParams& p, const Epilogue& ep) {
  if (p.kernel_h * p.kernel_w > kMaxBlockedDwTaps) return false;
  // Each thread's buffer holds L interleaved planes: large planes take the row paths.
  const int64_t lanes = selected_microkernel().dw_lanes;
  if ((p.in_h + p.pad_top + p.pad_bottom + p.kernel_h) *
          (p.in_w + p.pad_left + p.pad_right + p.kernel_w) * lanes >
      kMaxBlockedDwFloats)
    return false;
  if (p.depthwise_blocked >= 0) return p.depthwise_blocked != 0;
  // HardSwish / HardSigmoid / SiLU are a second pass over each row on the row paths (only a
  // clamp is fused there); the blocked path applies them in registers.
  const bool row_fuses_act =
      ep.act == Activation::kNone || ep.act == Activation::kRelu || ep.act == Activation::kClip;
  const int64_t max_width = lanes >= 16 ? kBlockedDwMaxWidth16 : kBlockedDwMaxWidth;
  return p.stride_w > 1 || p.out_w() <= max_width || !row_fuses_act;
}

}  // namespace

void Conv2d::prepare(const Conv2dParams& params, const float* weights, const float* bias,
                     const Epilogue& epilogue, int threads) {
  const Conv2dParams& p = params;
  if (p.batch < 1 || p.in_channels < 1 || p.in_h < 1 || p.in_w < 1 || p.out_channels < 1)
    bad("input/output dimensions must be positive");
  if (p.kernel_h < 1 || p.kernel_w < 1) bad("kernel_shape must be positive");
  if (p.stride_h < 1 || p.stride_w < 1) bad("strides must be positive");
  if (p.dilation_h < 1 || p.dilation_w < 1) bad("dilations must be positive");
  if (p.pad_top < 0 || p.pad_left < 0 || p.pad_bottom < 0 || p.pad_right < 0)
    bad("pads must be non-negative");
  if (p.groups < 1 || p.in_channels % p.groups != 0 || p.out_channels % p.groups != 0)
    bad("group must divide both input channels (" + std::to_string(p.in_channels) +
        ") and output channels (" + std::to_string(p.out_channels) + ")");
  if (p.out_h() < 1 || p.out_w() < 1) bad("kernel larger than padded input");
  if (weights == nullptr) bad("weights missing");

  p_ = p;
  ep_ = epilogue;
  ep_.bias_per_row = true;
  bias_.assign(static_cast<size_t>(p.out_channels), 0.0f);
  if (bias != nullptr) std::copy(bias, bias + p.out_channels, bias_.begin());
  ep_.bias = bias != nullptr ? bias_.data() : nullptr;

  const int64_t cin_g = p.in_channels / p.groups, cout_g = p.out_channels / p.groups;
  const int64_t k = cin_g * p.kernel_h * p.kernel_w;
  const int64_t n = p.out_h() * p.out_w();

  if (cin_g == 1 && cout_g == 1 && depthwise_blocked(p, epilogue)) {
    path_ = Path::kDepthwiseBlocked;
    const int64_t lanes = selected_microkernel().dw_lanes, taps = p.kernel_h * p.kernel_w;
    const int64_t blocks = ceil_div(p.out_channels, lanes);
    // Per block: taps x L weights, then L biases; zero past the last channel.
    weights_.assign(static_cast<size_t>(blocks * taps * lanes), 0.0f);
    dw_block_bias_.assign(static_cast<size_t>(blocks * lanes), 0.0f);
    for (int64_t c = 0; c < p.out_channels; ++c) {
      const int64_t blk = c / lanes, lane = c % lanes;
      for (int64_t t = 0; t < taps; ++t)
        weights_[static_cast<size_t>((blk * taps + t) * lanes + lane)] = weights[c * taps + t];
      dw_block_bias_[static_cast<size_t>(c)] = bias_[static_cast<size_t>(c)];
    }
    const int64_t hp = std::max(p.in_h + p.pad_top + p.pad_bottom,
                                (p.out_h() - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1);
    dw_padded_w_ = std::max(p.in_w + p.pad_left + p.pad_right,
                            (p.out_w() - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1);
    dw_padded_h_ = hp;
    // Per slot: the interleaved padded input block, then the interleaved output block.
    dw_in_floats_ = ceil_div(hp * dw_padded_w_ * lanes, 16) * 16;
    dw_plane_floats_ = dw_in_floats_ + ceil_div(p.out_h() * p.out_w() * lanes, 16) * 16;
    slots_ = std::max(1, threads);
    scratch_bytes_ = static_cast<size_t>(slots_ * dw_plane_floats_) * sizeof(float) + 64;
    return;
  }
  if (cin_g == 1 && cout_g == 1 && p.kernel_h == 3 && p.kernel_w == 3 && p.dilation_h == 1 &&
      p.dilation_w == 1 && p.stride_h == p.stride_w && (p.stride_h == 1 || p.stride_h == 2)) {
    path_ = Path::kDepthwise3x3;
    weights_.assign(weights, weights + p.out_channels * 9);
    scratch_bytes_ = 0;
    return;
  }
  if (cin_g == 1 && cout_g == 1 && p.kernel_h * p.kernel_w <= kMaxDwTaps) {
    path_ = Path::kDepthwise;
    weights_.assign(weights, weights + p.out_channels * p.kernel_h * p.kernel_w);
    // out_h()/out_w() round toward zero, so the last window may overhang the padded plane:
    // the buffer covers every tap (the overhang reads zeros).
    const int64_t hp = std::max(p.in_h + p.pad_top + p.pad_bottom,
                                (p.out_h() - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1);
    const int64_t wp = std::max(p.in_w + p.pad_left + p.pad_right,
                                (p.out_w() - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1);
    dw_padded_h_ = hp;
    dw_phase_cols_ = ceil_div(wp, p.stride_w);
    // + 16: the row kernel reads its last partial vector whole (up to 15 floats past a row).
    dw_plane_floats_ = ceil_div(hp * p.stride_w * dw_phase_cols_ + 16, 16) * 16;
    slots_ = std::max(1, threads);
    scratch_bytes_ = static_cast<size_t>(slots_ * dw_plane_floats_) * sizeof(float) + 64;
    return;
  }
  if (direct_oc(p)) {
    path_ = Path::kDirectOc;
    const int64_t lanes = selected_microkernel().dw_lanes;
    const int64_t blocks = ceil_div(p.out_channels, lanes);
    // Per block: k x L weights (ci, kh, kw order, as OIHW), then L biases; zero past the last
    // output channel.
    weights_.assign(static_cast<size_t>(blocks * k * lanes), 0.0f);
    dw_block_bias_.assign(static_cast<size_t>(blocks * lanes), 0.0f);
    for (int64_t c = 0; c < p.out_channels; ++c) {
      const int64_t blk = c / lanes, lane = c % lanes;
      for (int64_t t = 0; t < k; ++t)
        weights_[static_cast<size_t>((blk * k + t) * lanes + lane)] = weights[c * k + t];
      dw_block_bias_[static_cast<size_t>(c)] = bias_[static_cast<size_t>(c)];
    }
    dw_padded_h_ = std::max(p.in_h + p.pad_top + p.pad_bottom,
                            (p.out_h() - 1) * p.stride_h + (p.kernel_h - 1) * p.dilation_h + 1);
    dw_padded_w_ = std::max(p.in_w + p.pad_left + p.pad_right,
                            (p.out_w() - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1);
    // Scratch: the padded input planes (shared), then per slot two blocks of one output row.
    dw_in_floats_ = ceil_div(p.in_channels * dw_padded_h_ * dw_padded_w_, 16) * 16;
    dw_plane_floats_ = ceil_div(2 * p.out_w() * lanes, 16) * 16;
    slots_ = std::max(1, threads);
    scratch_bytes_ =
        static_cast<size_t>(dw_in_floats_ + slots_ * dw_plane_floats_) * sizeof(float) + 64;
    return;
  }
  const int wino_tile = winograd_tile(p);
  if (wino_tile != 0) {
    path_ = Path::kWinograd;
    Winograd3x3::Shape ws;
    ws.in_channels = p.in_channels;
    ws.out_channels = p.out_channels;
    ws.in_h = p.in_h;
    ws.in_w = p.in_w;
    ws.out_h = p.out_h();
    ws.out_w = p.out_w();
    ws.pad_top = p.pad_top;
    ws.pad_left = p.pad_left;
    winograd_.prepare(ws, weights, wino_tile, threads);
    scratch_bytes_ = winograd_.scratch_floats() * sizeof(float) + 64;
    return;
  }
  path_ = (p.kernel_h == 1 && p.kernel_w == 1 && p.stride_h == 1 && p.stride_w == 1 &&
           p.pad_top == 0 && p.pad_left == 0 && p.pad_bottom == 0 && p.pad_right == 0)
              ? Path::kPointwise
              : Path::kIm2col;
  if (path_ == Path::kPointwise && pointwise_transposed(p)) {
    path_ = Path::kPointwiseTransposed;
    // B = W^T (k x out channels), packed in NR-column panels.
    weights_.assign(packed_b_floats(k, p.out_channels), 0.0f);
    pack_b(weights, k, true, k, p.out_channels, weights_.data());
    // Scratch: gemm()'s packed A (X^T), then C^T (pixels x channels).
    pw_ct_offset_ =
        ceil_div(static_cast<int64_t>(gemm_scratch_floats(n, p.out_channels, k, false, true)), 16) *
        16;
    scratch_bytes_ = static_cast<size_t>(pw_ct_offset_ + n * p.out_channels) * sizeof(float) + 64;
    return;
  }
  group_a_floats_ = packed_a_floats(cout_g, k);
  weights_.assign(group_a_floats_ * static_cast<size_t>(p.groups), 0.0f);
  for (int64_t g = 0; g < p.groups; ++g)
    pack_a(weights + g * cout_g * k, k, false, cout_g, k, weights_.data() + g * group_a_floats_);
  // Pointwise: only a partial last B panel is packed (see gemm()). im2col: one column block
  // per slot, of at most ~768 KiB (so it is still in L2 when the GEMM reads it; fewer, wider
  // blocks also mean fewer passes over the weights) and at least one panel.
  const int64_t nr = gemm_shape().nr;
  slots_ = std::max(1, threads);
  block_panels_ = std::max<int64_t>(1, std::min(ceil_div(n, nr), (512 * 1024) / (k * nr)));
  const size_t b_floats = path_ == Path::kPointwise
                              ? gemm_scratch_floats(cout_g, n % nr, k, true, false)
                              : static_cast<size_t>(slots_ * block_panels_ * nr * k);
  scratch_bytes_ = b_floats * sizeof(float) + 64;
}

void Conv2d::run(const float* input, float* output, void* scratch, ThreadPool* pool) const {
  const Conv2dParams& p = p_;
  const int64_t cin_g = p.in_channels / p.groups, cout_g = p.out_channels / p.groups;
  const int64_t k = cin_g * p.kernel_h * p.kernel_w;
  const int64_t n = p.out_h() * p.out_w();
  pool = pool_for(pool, static_cast<double>(p.batch * p.out_channels * n) * static_cast<double>(k));
  float* packed_b = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) &
                                             ~static_cast<uintptr_t>(63));
  if (path_ == Path::kDepthwise3x3) {
    run_depthwise(input, output, pool);
    return;
  }
  if (path_ == Path::kDepthwise) {
    run_depthwise_taps(input, output, packed_b, pool);
    return;
  }
  if (path_ == Path::kDepthwiseBlocked) {
    run_depthwise_blocked(input, output, packed_b, pool);
    return;
  }
  if (path_ == Path::kPointwiseTransposed) {
    run_pointwise_transposed(input, output, packed_b, pool);
    return;
  }
  if (path_ == Path::kDirectOc) {
    run_direct_oc(input, output, packed_b, pool);
    return;
  }
  if (path_ == Path::kWinograd) {
    const int64_t in_image = p.in_channels * p.in_h * p.in_w, out_image = p.out_channels * n;
    for (int64_t b = 0; b < p.batch; ++b)
      winograd_.run(input + b * in_image, output + b * out_image, ep_, packed_b, pool);
    return;
  }
  const int64_t in_plane = p.in_h * p.in_w;
  const int nr = gemm_shape().nr;

  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t g = 0; g < p.groups; ++g) {
      const float* in = input + (b * p.in_channels + g * cin_g) * in_plane;
      float* out = output + (b * p.out_channels + g * cout_g) * n;
      GemmOperand bop;
      if (path_ == Path::kPointwise) {  // the input is B (k x n) as it is: gemm reads it in place
        bop.data = in;
        bop.ld = n;
      } else {
        // im2col fused with the GEMM: each task packs the B panels of one column block (all of
        // K) into its own slot of scratch and runs output channels [m0, m1) over it while it is
        // in cache. Each slot (one per thread) has its own scratch.
        const int64_t slots = pool != nullptr ? std::min<int64_t>(slots_, pool->threads()) : 1;
        // Blocks of equal width, as many as a multiple of the threads: 98 panels in blocks of at
        // most 28 are 4 blocks of 25, not 28 + 28 + 28 + 14 (2 threads: 56 panels against 42).
        // Fewer blocks than threads stay whole and split over output channels (split_rows),
        // which balances better than a few narrow blocks.
        const int64_t panels = ceil_div(n, nr);
        const int64_t blocks_min = ceil_div(panels, block_panels_);
        const int64_t target = blocks_min >= slots
                                   ? std::min(panels, ceil_div(blocks_min, slots) * slots)
                                   : blocks_min;
        const int64_t bp = ceil_div(panels, target);
        const int64_t block_cols = bp * nr;
        const int64_t blocks = ceil_div(n, block_cols);
        const RowSplit split = split_rows(cout_g, blocks, slots);
        const int64_t tasks = blocks * split.parts;
        const float* pa = weights_.data() + g * group_a_floats_;
        // Tasks are claimed one at a time: a thread that is descheduled or slower holds up one.
        // Thread t starts with the t-th share of the column blocks (OwnedTasks): the same part
        // of the output pixels in every layer, so layer by layer it reads what it wrote.
        OwnedTasks owned(tasks, slots);
        auto work = [&](int64_t s0, int64_t s1) {
          for (int64_t slot = s0; slot < s1; ++slot) {
            float* panel = packed_b + slot * block_panels_ * nr * k;
            for (int64_t t = owned.claim(slot); t >= 0; t = owned.claim(slot)) {
              const int64_t blk = t / split.parts, m0 = (t % split.parts) * split.rows;
              const int64_t j0 = blk * block_cols, ncols = std::min(block_cols, n - j0);
              Epilogue ep = ep_;
              if (ep.bias != nullptr) ep.bias += g * cout_g + m0;
              im2col_packed(p, cin_g, in, nr, j0 / nr, ceil_div(j0 + ncols, nr), panel);
              gemm_packed_block(std::min(split.rows, cout_g - m0), n, k,
                                pa + packed_a_floats(m0, k), panel, j0, ncols, out + m0 * n, n, ep);
            }
          }
        };
        if (slots > 1)
          pool->parallel_for(slots, work);
        else
          work(0, 1);
        continue;
      }
      GemmOperand a;
      a.packed = weights_.data() + g * group_a_floats_;
      Epilogue ep = ep_;
      if (ep.bias != nullptr) ep.bias += g * cout_g;
      gemm(cout_g, n, k, 1.0f, a, bop, 0.0f, out, n, ep, packed_b, pool);
    }
  }
}

void Conv2d::run_depthwise(const float* input, float* output, ThreadPool* pool) const {
  const Conv2dParams& p = p_;
  const int64_t oh_n = p.out_h(), ow_n = p.out_w(), s = p.stride_h;
  const int64_t H = p.in_h, W = p.in_w;
  const MicroKernel& kern = selected_microkernel();
  const RowActivation ra = split_activation(ep_);
  const Epilogue& act_only = ra.rest;
  const float lo = ra.lo, hi = ra.hi;
  // Interior columns: every tap of the row in [0, W).
  const int64_t ow_lo = std::min(ow_n, ceil_div(p.pad_left, s));
  const int64_t ow_hi = W - 3 + p.pad_left < 0
                            ? ow_lo
                            : std::max(ow_lo, std::min(ow_n, (W - 3 + p.pad_left) / s + 1));

  // Small planes (rows too short to fill vectors, border columns a large share): copy the plane
  // into a zero-padded buffer and run the row kernel once over the flattened plane. Output z =
  // oh * Wp + ow reads padded element s * z + r * Wp + t, so one pass covers every row; the
  // values for ow >= ow_n are computed and dropped.
  const int64_t Hp = H + p.pad_top + p.pad_bottom, Wp = W + p.pad_left + p.pad_right;
  const int64_t flat_n = (oh_n - 1) * Wp + ow_n;
  // (out_h() rounds toward zero, so a 3-tap window may overhang a padded plane of 1-2 rows.)
  const bool flat = Hp * Wp <= kFlatPlaneFloats && flat_n <= kFlatPlaneFloats &&
                    (oh_n - 1) * s + 3 <= Hp && (ow_n - 1) * s + 3 <= Wp;

  auto body = [&](int64_t c0, int64_t c1) {
    alignas(64) float padded[kFlatPlaneFloats];
    alignas(64) float flat_out[kFlatPlaneFloats];
    for (int64_t bc = c0; bc < c1; ++bc) {
      const int64_t c = bc % p.out_channels;
      const float* plane = input + bc * H * W;
      float* out_plane = output + bc * oh_n * ow_n;
      const float* w = weights_.data() + c * 9;
      const float bias = bias_[static_cast<size_t>(c)];
      if (flat) {
        std::fill(padded, padded + p.pad_top * Wp, 0.0f);
        for (int64_t ih = 0; ih < H; ++ih) {
          float* row = padded + (ih + p.pad_top) * Wp;
          std::fill(row, row + p.pad_left, 0.0f);
          std::copy(plane + ih * W, plane + ih * W + W, row + p.pad_left);
          std::fill(row + p.pad_left + W, row + Wp, 0.0f);
        }
        std::fill(padded + (H + p.pad_top) * Wp, padded + Hp * Wp, 0.0f);
        kern.dw3x3_row(padded, padded + Wp, padded + 2 * Wp, w, bias, lo, hi, flat_out, flat_n, s);
        for (int64_t oh = 0; oh < oh_n; ++oh)
          std::copy(flat_out + oh * Wp, flat_out + oh * Wp + ow_n, out_plane + oh * ow_n);
        if (act_only.act != Activation::kNone)
          apply_epilogue(act_only, out_plane, ow_n, oh_n, ow_n, 0, 0);
        continue;
      }
      for (int64_t oh = 0; oh < oh_n; ++oh) {
        float* out = out_plane + oh * ow_n;
        const int64_t ih0 = oh * s - p.pad_top;
        // Rows outside the input get zero weights and point at a valid row.
        float w9[9];
        const float* rows[3];
        for (int r = 0; r < 3; ++r) {
          const int64_t ih = ih0 + r;
          const bool valid = ih >= 0 && ih < H;
          rows[r] = plane + (valid ? ih : 0) * W;
          for (int t = 0; t < 3; ++t) w9[r * 3 + t] = valid ? w[r * 3 + t] : 0.0f;
        }
        auto edge = [&](int64_t ow) {
          float acc = bias;
          const int64_t iw0 = ow * s - p.pad_left;
          for (int r = 0; r < 3; ++r)
            for (int t = 0; t < 3; ++t) {
              const int64_t iw = iw0 + t;
              if (iw >= 0 && iw < W) acc += w9[r * 3 + t] * rows[r][iw];
            }
          acc = acc < lo ? lo : acc;
          out[ow] = acc > hi ? hi : acc;
        };
        for (int64_t ow = 0; ow < ow_lo; ++ow) edge(ow);
        if (ow_hi > ow_lo) {
          const int64_t off = ow_lo * s - p.pad_left;
          kern.dw3x3_row(rows[0] + off, rows[1] + off, rows[2] + off, w9, bias, lo, hi, out + ow_lo,
                         ow_hi - ow_lo, s);
        }
        for (int64_t ow = ow_hi; ow < ow_n; ++ow) edge(ow);
        if (act_only.act != Activation::kNone) apply_epilogue(act_only, out, ow_n, 1, ow_n, 0, 0);
      }
    }
  };
  const int64_t planes = p.batch * p.out_channels;
  if (pool != nullptr)
    pool->parallel_for(planes, body);
  else
    body(0, planes);
}

void Conv2d::run_depthwise_taps(const float* input, float* output, float* scratch,
                                ThreadPool* pool) const {
  const Conv2dParams& p = p_;
  const int64_t oh_n = p.out_h(), ow_n = p.out_w(), H = p.in_h, W = p.in_w;
  const int64_t sh = p.stride_h, sw = p.stride_w, dh = p.dilation_h, dw = p.dilation_w;
  const int64_t hp = dw_padded_h_;
  const int64_t wq = dw_phase_cols_, row_pitch = sw * wq;
  const int ntaps = static_cast<int>(p.kernel_h * p.kernel_w);
  const MicroKernel& kern = selected_microkernel();
  const RowActivation ra = split_activation(ep_);
  const Epilogue& act_only = ra.rest;
  const float lo = ra.lo, hi = ra.hi;
  // Where tap (r, t) of output row 0 starts in the phase-split plane: row r * dh, column
  // t * dw, which is phase (t * dw) % sw at offset (t * dw) / sw. Row oh adds oh * sh rows.
  int64_t tap_at[kMaxDwTaps];
  for (int64_t r = 0; r < p.kernel_h; ++r)
    for (int64_t t = 0; t < p.kernel_w; ++t)
      tap_at[r * p.kernel_w + t] = r * dh * row_pitch + ((t * dw) % sw) * wq + (t * dw) / sw;

  // Stride 1 and a small plane: one row-kernel pass over the flattened padded plane (output z =
  // oh * row_pitch + ow reads z + tap_at[t]), so short rows (14x14, 7x7 stages) still fill
  // blocks of vectors; the values for ow >= ow_n are computed and dropped. The row kernel reads
  // at most (hp - 1) * row_pitch + wp + 15 floats from the plane: inside its 16 floats of slack.
  const int64_t flat_n = (oh_n - 1) * row_pitch + ow_n;
  const bool flat = sh == 1 && sw == 1 && flat_n <= kFlatPlaneFloats;

  const int64_t planes = p.batch * p.out_channels;
  const int64_t slots = pool != nullptr ? std::min<int64_t>(slots_, planes) : 1;
  OwnedTasks owned(planes, slots);  // planes are claimed one at a time (see the im2col path)
  auto body = [&](int64_t s0, int64_t s1) {
    alignas(64) float flat_out[kFlatPlaneFloats];
    const float* taps[kMaxDwTaps];
    for (int64_t slot = s0; slot < s1; ++slot) {
      float* buf = scratch + slot * dw_plane_floats_;
      for (int64_t bc = owned.claim(slot); bc >= 0; bc = owned.claim(slot)) {
        const int64_t c = bc % p.out_channels;
        const float* plane = input + bc * H * W;
        float* out_plane = output + bc * oh_n * ow_n;
        phase_split(p, plane, hp, wq, buf);
        const float* w = weights_.data() + c * ntaps;
        const float bias = bias_[static_cast<size_t>(c)];
        if (flat) {
          for (int t = 0; t < ntaps; ++t) taps[t] = buf + tap_at[t];
          kern.dw_taps_row(taps, w, ntaps, bias, lo, hi, flat_out, flat_n);
          for (int64_t oh = 0; oh < oh_n; ++oh)
            std::copy(flat_out + oh * row_pitch, flat_out + oh * row_pitch + ow_n,
                      out_plane + oh * ow_n);
          if (act_only.act != Activation::kNone)
            apply_epilogue(act_only, out_plane, oh_n * ow_n, 1, oh_n * ow_n, 0, 0);
          continue;
        }
        for (int64_t oh = 0; oh < oh_n; ++oh) {
          const float* base = buf + oh * sh * row_pitch;
          for (int t = 0; t < ntaps; ++t) taps[t] = base + tap_at[t];
          float* out = out_plane + oh * ow_n;
          kern.dw_taps_row(taps, w, ntaps, bias, lo, hi, out, ow_n);
          if (act_only.act != Activation::kNone) apply_epilogue(act_only, out, ow_n, 1, ow_n, 0, 0);
        }
      }
    }
  };
  if (pool != nullptr && slots > 1)
    pool->parallel_for(slots, body);
  else
    body(0, 1);
}

void Conv2d::run_pointwise_transposed(const float* input, float* output, float* scratch,
                                      ThreadPool* pool) const {
  const Conv2dParams& p = p_;
  const int64_t n = p.out_h() * p.out_w(), m = p.out_channels, k = p.in_channels;
  float* ct = scratch + pw_ct_offset_;
  Epilogue ep = ep_;
  ep.bias_per_row = false;  // C^T: one output channel per column
  for (int64_t b = 0; b < p.batch; ++b) {
    GemmOperand a;  // op(A) = X^T (n x k): X is k x n
    a.data = input + b * k * n;
    a.ld = n;
    a.trans = true;
    GemmOperand bop;
    bop.packed = weights_.data();
    gemm(n, m, k, 1.0f, a, bop, 0.0f, ct, m, ep, scratch, pool);
    float* out = output + b * m * n;
    auto transpose = [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t j = 0; j < n; ++j) out[c * n + j] = ct[j * m + c];
    };
    if (pool != nullptr)
      pool->parallel_for(m, transpose);
    else
      transpose(0, m);
  }
}

void Conv2d::run_direct_oc(const float* input, float* output, float* scratch,
                           ThreadPool* pool) const {
  const Conv2dParams& p = p_;
  const MicroKernel& kern = selected_microkernel();
  const int64_t lanes = kern.dw_lanes, C = p.out_channels, H = p.in_h, W = p.in_w;
  const int64_t hp = dw_padded_h_, wp = dw_padded_w_, oh_n = p.out_h(), ow_n = p.out_w();
  const int64_t blocks = ceil_div(C, lanes), pairs = ceil_div(blocks, 2), tasks = oh_n * pairs;
  const int64_t out_plane = oh_n * ow_n;
  Epilogue act = ep_;
  act.bias = nullptr;  // the bias is the accumulators' start value
  const TileEpilogue te = tile_epilogue(act, 0, 0);
  OcConv g{};
  g.in = scratch;
  g.in_plane = hp * wp;
  g.in_w = wp;
  g.kernel_h = p.kernel_h;
  g.kernel_w = p.kernel_w;
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.dilation_h = p.dilation_h;
  g.dilation_w = p.dilation_w;
  g.out_w = ow_n;
  g.taps = static_cast<int>(p.in_channels * p.kernel_h * p.kernel_w);
  g.w = weights_.data();
  g.bias = dw_block_bias_.data();
  const int64_t slots = pool != nullptr ? std::min<int64_t>(slots_, tasks) : 1;
  for (int64_t b = 0; b < p.batch; ++b) {
    // The zero-padded input planes, shared by every task, padded in bands of rows: thread t pads
    // the t-th share of every plane's rows, about the rows its own output rows read (a network's
    // first layer: a 224x224 image, 0.6 MB, was copied by one thread).
    auto pad_rows = [&](int64_t r0, int64_t r1) {
      for (int64_t ci = 0; ci < p.in_channels; ++ci) {
        const float* plane = input + (b * p.in_channels + ci) * H * W;
        float* dst = scratch + ci * hp * wp;
        for (int64_t r = r0; r < r1; ++r) {
          float* row = dst + r * wp;
          const int64_t ih = r - p.pad_top;
          if (ih < 0 || ih >= H) {
            std::fill(row, row + wp, 0.0f);
            continue;
          }
          std::fill(row, row + p.pad_left, 0.0f);
          std::copy(plane + ih * W, plane + ih * W + W, row + p.pad_left);
          std::fill(row + p.pad_left + W, row + wp, 0.0f);
        }
      }
    };
    if (pool != nullptr && slots > 1)
      pool->parallel_for(hp, pad_rows);
    else
      pad_rows(0, hp);
    float* out = output + b * C * out_plane;
    // Rows are claimed one at a time (see the im2col path), thread t's share first.
    OwnedTasks owned(tasks, slots);
    auto body = [&](int64_t s0, int64_t s1) {
      for (int64_t slot = s0; slot < s1; ++slot) {
        float* work = scratch + dw_in_floats_ + slot * dw_plane_floats_;
        for (int64_t t = owned.claim(slot); t >= 0; t = owned.claim(slot)) {
          const int64_t oh = t / pairs, blk = (t % pairs) * 2;
          const int nblk = static_cast<int>(std::min<int64_t>(2, blocks - blk));
          kern.conv_oc_row(g, oh, blk, nblk, te, work);
          for (int i = 0; i < nblk; ++i) {
            const int64_t c0 = (blk + i) * lanes;
            kern.unpack(work + i * ow_n * lanes, ow_n, static_cast<int>(std::min(lanes, C - c0)),
                        out + c0 * out_plane + oh * ow_n, out_plane);
          }
        }
      }
    };
    if (pool != nullptr && slots > 1)
      pool->parallel_for(slots, body);
    else
      body(0, 1);
  }
}

void Conv2d::run_depthwise_blocked(const float* input, float* output, float* scratch,
                                   ThreadPool* pool) const {
  const Conv2dParams& p = p_;
  const MicroKernel& kern = selected_microkernel();
  const int64_t lanes = kern.dw_lanes, taps = p.kernel_h * p.kernel_w;
  const int64_t C = p.out_channels, H = p.in_h, W = p.in_w, wp = dw_padded_w_;
  const int64_t blocks = ceil_div(C, lanes);
  const int64_t out_plane = p.out_h() * p.out_w();
  Epilogue act = ep_;
  act.bias = nullptr;  // the bias is the accumulators' start value
  const TileEpilogue te = tile_epilogue(act, 0, 0);
  DwBlock g{};
  g.out_h = p.out_h();
  g.out_w = p.out_w();
  g.in_w = wp;
  g.kernel_h = p.kernel_h;
  g.kernel_w = p.kernel_w;
  g.stride_h = p.stride_h;
  g.stride_w = p.stride_w;
  g.dilation_h = p.dilation_h;
  g.dilation_w = p.dilation_w;
  g.out_plane = out_plane;
  // Few blocks (16 channels are one block of 16 lanes) would leave threads idle or unevenly
  // loaded: each block is then also cut into bands of output rows, each band packing the input
  // rows it reads (its window's halo rows twice). At least 4 output rows per band.
  const int64_t want = pool != nullptr ? slots_ : 1;
  int64_t bands = 1;
  if (want > 1 && p.batch * blocks < 4 * want)
    bands = std::max<int64_t>(
        1, std::min(ceil_div(4 * want, p.batch * blocks), p.out_h() / kMinDwBandRows));
  // Large planes: bands of at most kDwBandFloats packed floats (their halo rows, packed twice,
  // cost 1/16 more on a 112x112 plane at stride 2).
  const int64_t row_floats = wp * lanes, window_h = (p.kernel_h - 1) * p.dilation_h + 1;
  if (dw_in_floats_ > kDwBandFloats) {
    const int64_t fit_rows = std::max<int64_t>(
        1, (kDwBandFloats / row_floats - window_h) / p.stride_h + 1);  // output rows per band
    bands = std::max(bands, ceil_div(p.out_h(), std::max(fit_rows, kMinDwBandRows)));
  }
  const int64_t band_rows = ceil_div(p.out_h(), bands);
  bands = ceil_div(p.out_h(), band_rows);
  // The packed rows a band reads: the rest of a slot's input buffer is never touched.
  const int64_t band_in_floats =
      std::min(dw_in_floats_, ((band_rows - 1) * p.stride_h + window_h) * row_floats);
  const int64_t tasks = p.batch * blocks * bands;
  const int64_t slots = std::min(want, tasks);
  // Thread t takes the t-th share of the blocks first: the channels that the op before (a 1x1
  // layer split by output channels) wrote on that thread, so they are in its own L2.
  OwnedTasks owned(tasks, slots);
  auto body = [&](int64_t s0, int64_t s1) {
    for (int64_t slot = s0; slot < s1; ++slot) {
      float* buf = scratch + slot * dw_plane_floats_;
      // The side pads stay zero: each block overwrites the interior columns only.
      std::fill(buf, buf + band_in_floats, 0.0f);
      for (int64_t t = owned.claim(slot); t >= 0; t = owned.claim(slot)) {
        const int64_t band = t % bands, bb = t / bands, b = bb / blocks, blk = bb % blocks;
        const int64_t c0 = blk * lanes;
        const int nc = static_cast<int>(std::min(lanes, C - c0));
        DwBlock gb = g;
        gb.channels = nc;
        const int64_t oy0 = band * band_rows, oy1 = std::min(p.out_h(), oy0 + band_rows);
        gb.out_h = oy1 - oy0;
        // Padded rows [pr0, pr1) of the band, input rows [iy0, iy1) within them.
        const int64_t pr0 = oy0 * p.stride_h, pr1 = (oy1 - 1) * p.stride_h + window_h;
        const int64_t iy0 = std::max<int64_t>(0, pr0 - p.pad_top);
        const int64_t iy1 = std::min(H, pr1 - p.pad_top);
        const int64_t top = std::min(pr1 - pr0, std::max<int64_t>(0, p.pad_top - pr0));
        const int64_t rows_in = std::max<int64_t>(0, iy1 - iy0);
        if (bands > 1) {  // rows an earlier band's interior may have left there
          std::fill(buf, buf + top * row_floats, 0.0f);
          std::fill(buf + (top + rows_in) * row_floats, buf + (pr1 - pr0) * row_floats, 0.0f);
        }
        const float* plane = input + (b * C + c0) * H * W;
        if (rows_in > 0)
          kern.dw_pack(plane + iy0 * W, H * W, nc, rows_in, W, top, p.pad_left, wp, buf);
        kern.dw_cblock(buf, weights_.data() + blk * taps * lanes, dw_block_bias_.data() + c0, gb,
                       te, buf + dw_in_floats_, output + (b * C + c0) * out_plane + oy0 * g.out_w);
      }
    }
  };
  if (pool != nullptr && slots > 1)
    pool->parallel_for(slots, body);
  else
    body(0, 1);
}

}  // namespace kernels
}  // namespace edgepack
