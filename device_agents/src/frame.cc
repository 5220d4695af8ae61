// SPDX-License-Identifier: Apache-2.0
#include "frame.h"

namespace epagent {
namespace {

uint32_t g_crc_table[256];
bool g_crc_ready = false;

void init_crc_table() {
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    g_crc_table[i] = c;
  }
  g_crc_ready = true;
}

void put_u32(std::vector<uint8_t>* v, uint32_t x) {
  for (int i = 0; i < 4; ++i) v->push_back(uint8_t(x >> (8 * i)));
}

uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t len, uint32_t crc) {
  if (!g_crc_ready) init_crc_table();
  crc = ~crc;
  for (size_t i = 0; i < len; ++i) crc = g_crc_table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

std::vector<uint8_t> cobs_encode(const uint8_t* data, size_t len) {
  std::vector<uint8_t> out;
  out.reserve(len + len / 254 + 2);
  size_t code_pos = 0;
  out.push_back(0);
  uint8_t code = 1;
  for (size_t i = 0; i < len; ++i) {
    if (data[i] == 0) {
      out[code_pos] = code;
      code_pos = out.size();
      out.push_back(0);
      code = 1;
      continue;
    }
    out.push_back(data[i]);
    if (++code == 0xFF) {
      out[code_pos] = code;
      code_pos = out.size();
      out.push_back(0);
      code = 1;
    }
  }
  out[code_pos] = code;
  return out;
}

bool cobs_decode(const uint8_t* data, size_t len, std::vector<uint8_t>* out) {
  out->clear();
  size_t i = 0;
  while (i < len) {
    uint8_t code = data[i];
    if (code == 0) return false;
    size_t end = i + code;
    if (end > len) return false;
    out->insert(out->end(), data + i + 1, data + end);
    i = end;
    if (code != 0xFF && i < len) out->push_back(0);
  }
  return true;
}

std::vector<uint8_t> encode_frame(const Frame& f) {
  std::vector<uint8_t> raw;
  raw.reserve(kFrameOverhead + f.payload.size());
  raw.push_back(kMagic);
  raw.push_back(kProtocolVersion);
  raw.push_back(f.type);
  raw.push_back(f.flags);
  put_u32(&raw, f.seq);
  put_u32(&raw, uint32_t(f.payload.size()));
  raw.insert(raw.end(), f.payload.begin(), f.payload.end());
  put_u32(&raw, crc32(raw.data(), raw.size()));
  std::vector<uint8_t> enc = cobs_encode(raw.data(), raw.size());
  std::vector<uint8_t> wire;
  wire.reserve(enc.size() + 2);
  wire.push_back(0);
  wire.insert(wire.end(), enc.begin(), enc.end());
  wire.push_back(0);
  return wire;
}

bool parse_frame(const std::vector<uint8_t>& raw, Frame* out, std::string* why) {
  if (raw.size() < kFrameOverhead) {
    *why = "frame too short";
    return false;
  }
  if (raw[0] != kMagic) {
    *why = "bad magic";
    return false;
  }
  if (raw[1] != kProtocolVersion) {
    *why = "unsupported frame version";
    return false;
  }
  uint32_t len = get_u32(&raw[8]);
  if (len != raw.size() - kFrameOverhead) {
    *why = "length mismatch";
    return false;
  }
  uint32_t crc = get_u32(&raw[raw.size() - 4]);
  if (crc32(raw.data(), raw.size() - 4) != crc) {
    *why = "bad CRC";
    return false;
  }
  out->type = raw[2];
  out->flags = raw[3];
  out->seq = get_u32(&raw[4]);
  out->payload.assign(raw.begin() + kHeaderSize, raw.end() - 4);
  return true;
}

void FrameDecoder::feed(const uint8_t* data, size_t len, std::vector<Result>* out) {
  for (size_t i = 0; i < len; ++i) {
    uint8_t b = data[i];
    if (b != 0) {
      if (skipping_) {
        ++skipped_;
      } else if (buf_.size() >= kMaxFrame) {
        skipping_ = true;
        skipped_ = buf_.size() + 1;
        buf_.clear();
      } else {
        buf_.push_back(b);
      }
      continue;
    }
    if (skipping_) {
      out->push_back({Event::kOversize, Frame(), skipped_, "frame too large"});
      skipping_ = false;
      skipped_ = 0;
      continue;
    }
    if (buf_.empty()) continue;
    Result r{Event::kDropped, Frame(), buf_.size(), ""};
    std::vector<uint8_t> raw;
    if (!cobs_decode(buf_.data(), buf_.size(), &raw)) {
      r.why = "bad COBS";
    } else if (parse_frame(raw, &r.frame, &r.why)) {
      r.event = Event::kFrame;
    }
    buf_.clear();
    out->push_back(std::move(r));
  }
}

}  // namespace epagent
