// SPDX-License-Identifier: Apache-2.0
// convert_frame against a naive double-precision BT.601 reference: NV12 and NV21 within 1 of
// the reference on every channel, packed formats exact, row strides with padding honoured, and
// the refusals (odd NV12 size, short stride). Prints "ok".
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "c_api/image.h"
#include "common/error.h"

using edgepack::capi::convert_frame;
using edgepack::capi::Frame;
using edgepack::capi::PixelFormat;

static int failures = 0;
#define CHECK(c)                                                                 \
  do {                                                                           \
    if (!(c)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
      ++failures;                                                                \
    }                                                                            \
  } while (0)

static double clamp(double v) {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

int main() {
  const int w = 6, h = 4;
  const size_t ys = w + 10, cs = w + 6;  // padded strides
  std::vector<uint8_t> y(ys * h, 0xEE), uv(cs * h / 2, 0xEE);
  unsigned seed = 7;
  auto rnd = [&] { return static_cast<uint8_t>((seed = seed * 1103515245u + 12345u) >> 16); };
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) y[r * ys + c] = rnd();
  for (int r = 0; r < h / 2; ++r)
    for (int c = 0; c < w; ++c) uv[r * cs + c] = rnd();
  for (PixelFormat f : {PixelFormat::kNv12, PixelFormat::kNv21}) {
    Frame fr{f, w, h, {y.data(), uv.data()}, {ys, cs}};
    std::vector<uint8_t> bgr(w * h * 3), rgb(w * h * 3), gray(w * h);
    convert_frame(fr, "bgr", bgr.data());
    convert_frame(fr, "rgb", rgb.data());
    convert_frame(fr, "gray", gray.data());
    for (int r = 0; r < h; ++r)
      for (int c = 0; c < w; ++c) {
        const uint8_t* ch = &uv[(r / 2) * cs + (c / 2) * 2];
        const double Y = y[r * ys + c], U = f == PixelFormat::kNv12 ? ch[0] : ch[1],
                     V = f == PixelFormat::kNv12 ? ch[1] : ch[0];
        const double R = clamp(1.164 * (Y - 16) + 1.596 * (V - 128));
        const double G = clamp(1.164 * (Y - 16) - 0.391 * (U - 128) - 0.813 * (V - 128));
        const double B = clamp(1.164 * (Y - 16) + 2.018 * (U - 128));
        const uint8_t* o = &rgb[(r * w + c) * 3];
        const uint8_t* b = &bgr[(r * w + c) * 3];
        CHECK(std::fabs(o[0] - R) <= 1.5 && std::fabs(o[1] - G) <= 1.5 &&
              std::fabs(o[2] - B) <= 1.5);
        CHECK(b[0] == o[2] && b[1] == o[1] && b[2] == o[0]);
        CHECK(std::fabs(gray[r * w + c] - (0.299 * o[0] + 0.587 * o[1] + 0.114 * o[2])) <= 1.0);
      }
  }
  // Packed BGRA with a padded stride into rgb: exact.
  std::vector<uint8_t> bgra((w * 4 + 8) * h, 0xEE);
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w * 4; ++c) bgra[r * (w * 4 + 8) + c] = rnd();
  Frame packed{PixelFormat::kBgra, w, h, {bgra.data(), nullptr}, {w * 4 + 8, 0}};
  std::vector<uint8_t> out(w * h * 3);
  convert_frame(packed, "rgb", out.data());
  for (int r = 0; r < h; ++r)
    for (int c = 0; c < w; ++c) {
      const uint8_t* p = &bgra[r * (w * 4 + 8) + c * 4];
      const uint8_t* o = &out[(r * w + c) * 3];
      CHECK(o[0] == p[2] && o[1] == p[1] && o[2] == p[0]);
    }
  // Refusals.
  auto refused = [](const Frame& f, const char* text) {
    std::vector<uint8_t> dst(64 * 3);
    try {
      convert_frame(f, "bgr", dst.data());
    } catch (const edgepack::Error& e) {
      return e.code() == edgepack::ErrorCode::kInvalidArgument &&
             std::string(e.what()).find(text) != std::string::npos;
    }
    return false;
  };
  CHECK(refused(Frame{PixelFormat::kNv12, 5, 4, {y.data(), uv.data()}, {ys, cs}}, "even"));
  CHECK(refused(Frame{PixelFormat::kRgb, w, h, {bgra.data(), nullptr}, {w * 3 - 1, 0}},
                "smaller than one row"));
  CHECK(refused(Frame{PixelFormat::kNv21, w, h, {y.data(), nullptr}, {ys, cs}}, "chroma"));
  if (failures == 0) std::printf("ok\n");
  return failures == 0 ? 0 : 1;
}
