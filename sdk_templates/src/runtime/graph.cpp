// SPDX-License-Identifier: Apache-2.0
#include "runtime/graph.h"

#include <cstring>
#include <limits>

namespace edgepack {
namespace {

constexpr size_t kHeaderSize = 144;
constexpr size_t kTensorRecord = 96;
constexpr size_t kNodeRecord = 40;
constexpr size_t kAttrRecord = 24;

[[noreturn]] void bad(const std::string& what) {
  throw Error(ErrorCode::kArtifactInvalid, "device graph: " + what);
}

// Little-endian readers that never read past `size` (callers check ranges first).
uint16_t rd16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t rd32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t rd64(const uint8_t* p) {
  return static_cast<uint64_t>(rd32(p)) | (static_cast<uint64_t>(rd32(p + 4)) << 32);
}

// True when [off, off + count * unit) lies within [0, limit), overflow-safe.
bool in_range(uint64_t off, uint64_t count, uint64_t unit, uint64_t limit) {
  if (off > limit) return false;
  if (unit != 0 && count > (limit - off) / unit) return false;
  return true;
}

struct Reader {
  const uint8_t* base;
  size_t size;
  uint64_t str_off, str_len, data_off, data_len;
  const uint8_t* data;  // the (possibly realigned) data section

  std::string str(uint32_t off, uint32_t len, const char* what) const {
    if (!in_range(off, len, 1, str_len)) bad(std::string(what) + ": string out of range");
    const char* p = reinterpret_cast<const char*>(base + str_off + off);
    if (std::memchr(p, 0, len) != nullptr) bad(std::string(what) + ": string contains NUL");
    return std::string(p, len);
  }
};

}  // namespace

const GraphAttr* NodeAttrs::find(const std::string& name) const {
  for (const auto& a : list)
    if (a.name == name) return &a;
  return nullptr;
}

int64_t NodeAttrs::get_int(const std::string& name, int64_t fallback) const {
  const GraphAttr* a = find(name);
  if (!a) return fallback;
  if (a->type == AttrType::kInt) return a->i;
  if (a->type == AttrType::kFloat) return static_cast<int64_t>(a->f);
  throw Error(ErrorCode::kInvalidArgument, "attribute '" + name + "' is not an int");
}

float NodeAttrs::get_float(const std::string& name, float fallback) const {
  const GraphAttr* a = find(name);
  if (!a) return fallback;
  if (a->type == AttrType::kFloat) return a->f;
  if (a->type == AttrType::kInt) return static_cast<float>(a->i);
  throw Error(ErrorCode::kInvalidArgument, "attribute '" + name + "' is not a float");
}

std::vector<int64_t> NodeAttrs::get_ints(const std::string& name,
                                         std::vector<int64_t> fallback) const {
  const GraphAttr* a = find(name);
  if (!a) return fallback;
  if (a->type == AttrType::kInts) {
    std::vector<int64_t> v(a->count);
    if (a->count) std::memcpy(v.data(), a->ints, a->count * sizeof(int64_t));
    return v;
  }
  if (a->type == AttrType::kInt) return {a->i};
  throw Error(ErrorCode::kInvalidArgument, "attribute '" + name + "' is not a list of ints");
}

std::vector<float> NodeAttrs::get_floats(const std::string& name,
                                         std::vector<float> fallback) const {
  const GraphAttr* a = find(name);
  if (!a) return fallback;
  if (a->type == AttrType::kFloats) {
    std::vector<float> v(a->count);
    if (a->count) std::memcpy(v.data(), a->floats, a->count * sizeof(float));
    return v;
  }
  if (a->type == AttrType::kFloat) return {a->f};
  throw Error(ErrorCode::kInvalidArgument, "attribute '" + name + "' is not a list of floats");
}

std::string NodeAttrs::get_string(const std::string& name, std::string fallback) const {
  const GraphAttr* a = find(name);
  if (!a) return fallback;
  if (a->type != AttrType::kString)
    throw Error(ErrorCode::kInvalidArgument, "attribute '" + name + "' is not a string");
  return a->s;
}

std::unique_ptr<DeviceGraph> load_graph(const uint8_t* b, size_t size) {
  if (b == nullptr || size < kHeaderSize) bad("too short for a header");
  if (std::memcmp(b, "EPDG", 4) != 0) bad("bad magic");
  auto g = std::make_unique<DeviceGraph>();
  g->version_major = rd16(b + 4);
  g->version_minor = rd16(b + 6);
  if (g->version_major != 1) bad("unsupported version " + std::to_string(g->version_major));
  const uint32_t header_size = rd32(b + 8);
  if (header_size < kHeaderSize || header_size > size) bad("bad header size");
  if (rd64(b + 16) != size) bad("file size field does not match the byte count");
  g->arena_size = rd64(b + 24);
  if (g->arena_size > (uint64_t{1} << 40)) bad("arena size is implausible");

  Reader r{b, size, rd64(b + 32), rd64(b + 40), rd64(b + 128), rd64(b + 136), nullptr};
  if (!in_range(r.str_off, r.str_len, 1, size)) bad("string table out of range");
  if (!in_range(r.data_off, r.data_len, 1, size)) bad("data section out of range");
  if (r.data_off % 64 != 0) bad("data section is not 64-byte aligned");
  r.data = b + r.data_off;
  // Zero-copy needs the data section aligned in memory; otherwise copy it once.
  if (reinterpret_cast<uintptr_t>(r.data) % 64 != 0 && r.data_len > 0) {
    g->aligned_copy.resize(r.data_len + 64);
    uint8_t* p = g->aligned_copy.data();
    p += (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64;
    std::memcpy(p, r.data, r.data_len);
    r.data = p;
  }

  const uint64_t t_off = rd64(b + 48), n_off = rd64(b + 64), a_off = rd64(b + 80),
                 i_off = rd64(b + 96);
  const uint32_t t_cnt = rd32(b + 56), n_cnt = rd32(b + 72), a_cnt = rd32(b + 88),
                 i_cnt = rd32(b + 104);
  if (!in_range(t_off, t_cnt, kTensorRecord, size)) bad("tensor table out of range");
  if (!in_range(n_off, n_cnt, kNodeRecord, size)) bad("node table out of range");
  if (!in_range(a_off, a_cnt, kAttrRecord, size)) bad("attribute table out of range");
  if (!in_range(i_off, i_cnt, 4, size)) bad("index table out of range");
  auto index = [&](uint64_t slot) { return rd32(b + i_off + 4 * slot); };
  auto slots = [&](uint32_t first, uint32_t count, const std::string& what) {
    if (!in_range(first, count, 1, i_cnt)) bad(what + ": index range out of range");
    std::vector<uint32_t> v(count);
    for (uint32_t k = 0; k < count; ++k) v[k] = index(uint64_t{first} + k);
    return v;
  };

  g->tensors.resize(t_cnt);
  for (uint32_t t = 0; t < t_cnt; ++t) {
    const uint8_t* p = b + t_off + uint64_t{t} * kTensorRecord;
    GraphTensor& gt = g->tensors[t];
    const std::string what = "tensor " + std::to_string(t);
    gt.name = r.str(rd32(p), rd32(p + 4), what.c_str());
    if (gt.name.empty()) bad(what + ": empty name");
    const uint8_t dt = p[8];
    if (dt < 1 || dt > kMaxDType) bad(what + ": unknown dtype " + std::to_string(dt));
    gt.dtype = static_cast<DType>(dt);
    gt.rank = p[9];
    if (gt.rank > kMaxRank) bad(what + ": rank too large");
    gt.flags = rd16(p + 10);
    if (gt.flags & ~uint16_t{15}) bad(what + ": unknown flags");
    gt.location = rd64(p + 16);
    gt.bytes = rd64(p + 24);
    uint64_t n = dtype_size(gt.dtype);
    for (int d = 0; d < kMaxRank; ++d) {
      const int64_t dim = static_cast<int64_t>(rd64(p + 32 + 8 * d));
      if (d >= gt.rank) {
        gt.shape[d] = 0;
        continue;
      }
      if (dim < 0 || dim > (int64_t{1} << 40)) bad(what + ": bad dimension");
      gt.shape[d] = dim;
      if (dim != 0 && n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(dim))
        bad(what + ": size overflows");
      n *= static_cast<uint64_t>(dim);
    }
    if (n != gt.bytes) bad(what + ": byte size does not match its shape");
    const bool constant = gt.flags & kTensorConstant;
    if (constant && (gt.flags & (kTensorInput | kTensorOutput | kTensorDynamicDim0)))
      bad(what + ": a constant cannot be an input, output or dynamic");
    if ((gt.flags & kTensorDynamicDim0) && gt.rank < 1) bad(what + ": dynamic with rank 0");
    if (constant) {
      if (gt.location % 64 != 0) bad(what + ": constant not 64-byte aligned");
      if (!in_range(gt.location, gt.bytes, 1, r.data_len)) bad(what + ": outside the data section");
      gt.constant = r.data + gt.location;
    } else if (!in_range(gt.location, gt.bytes, 1, g->arena_size)) {
      bad(what + ": outside the arena");
    }
  }

  auto check_tensor = [&](uint32_t t, const std::string& what, bool allow_none) {
    if (t == kNoTensor && allow_none) return;
    if (t >= t_cnt) bad(what + ": tensor index out of range");
  };
  std::vector<GraphAttr> attrs(a_cnt);
  for (uint32_t a = 0; a < a_cnt; ++a) {
    const uint8_t* p = b + a_off + uint64_t{a} * kAttrRecord;
    const std::string what = "attribute " + std::to_string(a);
    GraphAttr& ga = attrs[a];
    ga.name = r.str(rd32(p), rd32(p + 4), what.c_str());
    const uint8_t type = p[8];
    ga.count = rd32(p + 12);
    const uint64_t v = rd64(p + 16);
    switch (type) {
      case 1:
        ga.i = static_cast<int64_t>(v);
        break;
      case 2: {
        const uint32_t bits = static_cast<uint32_t>(v);
        std::memcpy(&ga.f, &bits, 4);
        break;
      }
      case 3:
        if (v % 8 != 0 || !in_range(v, ga.count, 8, r.data_len)) bad(what + ": ints out of range");
        ga.ints = reinterpret_cast<const int64_t*>(r.data + v);
        break;
      case 4:
        if (v % 4 != 0 || !in_range(v, ga.count, 4, r.data_len))
          bad(what + ": floats out of range");
        ga.floats = reinterpret_cast<const float*>(r.data + v);
        break;
      case 5:
        if (v > 0xFFFFFFFFu) bad(what + ": string out of range");
        ga.s = r.str(static_cast<uint32_t>(v), ga.count, what.c_str());
        break;
      default:
        bad(what + ": unknown type");
    }
    ga.type = static_cast<AttrType>(type);
  }

  std::vector<int> producer(t_cnt, -2);  // -2: none, -1: graph input
  for (uint32_t t = 0; t < t_cnt; ++t)
    if (g->tensors[t].flags & kTensorConstant) producer[t] = -3;
  g->inputs = slots(rd32(b + 112), rd32(b + 116), "graph inputs");
  g->outputs = slots(rd32(b + 120), rd32(b + 124), "graph outputs");
  for (uint32_t t : g->inputs) {
    check_tensor(t, "graph input", false);
    if (!(g->tensors[t].flags & kTensorInput)) bad("graph input without the input flag");
    producer[t] = -1;
  }
  for (uint32_t t : g->outputs) {
    check_tensor(t, "graph output", false);
    if (!(g->tensors[t].flags & kTensorOutput)) bad("graph output without the output flag");
  }

  g->nodes.resize(n_cnt);
  for (uint32_t n = 0; n < n_cnt; ++n) {
    const uint8_t* p = b + n_off + uint64_t{n} * kNodeRecord;
    const std::string what = "node " + std::to_string(n);
    GraphNode& gn = g->nodes[n];
    gn.op_type = r.str(rd32(p), rd32(p + 4), what.c_str());
    gn.name = r.str(rd32(p + 8), rd32(p + 12), what.c_str());
    if (gn.op_type.empty()) bad(what + ": empty op type");
    gn.inputs = slots(rd32(p + 16), rd32(p + 20), what);
    gn.outputs = slots(rd32(p + 24), rd32(p + 28), what);
    const uint32_t af = rd32(p + 32), ac = rd32(p + 36);
    if (!in_range(af, ac, 1, a_cnt)) bad(what + ": attribute range out of range");
    gn.attrs.list.assign(attrs.begin() + af, attrs.begin() + af + ac);
    for (uint32_t t : gn.inputs) {
      check_tensor(t, what + " input", true);
      if (t != kNoTensor && producer[t] == -2) bad(what + ": reads a tensor before it is written");
    }
    for (uint32_t t : gn.outputs) {
      check_tensor(t, what + " output", false);
      if (producer[t] != -2) bad(what + ": writes a tensor that already has a producer");
      producer[t] = static_cast<int>(n);
    }
  }
  for (uint32_t t : g->outputs)
    if (producer[t] < 0) bad("graph output '" + g->tensors[t].name + "' is never written");
  return g;
}

}  // namespace edgepack
