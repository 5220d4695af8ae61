// SPDX-License-Identifier: Apache-2.0
// The OpenCL 1.2 backend (libedgepack_opencl.so, ABI 2.1 of edgepack_backend.h): Conv (groups,
// depthwise, fused activations), Gemm, MatMul, MaxPool/AveragePool/GlobalAveragePool, broadcast
// binary ops (PRelu too), activations, Concat, Resize (2-D nearest/linear), Softmax, Transpose,
// and the reshape family as buffer copies; float32 tensors with static shapes.
//
// Per partition, prepare_partition creates one cl_mem per tensor the partition touches
// (constants uploaded once), one cl_kernel per node with its arguments set, and run_partition
// writes the partition inputs, enqueues the kernels in order and reads the outputs back (the
// explicit copies of the ABI). The program is built once per process from kernels.cl.h.
//
// Device: the first GPU of the first platform that has one, else the first device of any type
// (PoCL's CPU device in the tests). EDGEPACK_OPENCL_DEVICE=<substring> picks by device name.
// Precision: float32 storage and arithmetic by default; EDGEPACK_OPENCL_PRECISION=fp16 stores
// every tensor (constants too) as half, halving memory traffic, with float arithmetic (results
// then differ from float32 by about 1e-3 relative). describe() says which, and cl_khr_fp16.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "edgepack_backend.h"
#include "kernels.cl.h"

namespace {

using Tensor = edgepack_backend_tensor;
using Node = edgepack_backend_node;

struct Fail {
  std::string msg;
};

[[noreturn]] void fail(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  throw Fail{buf};
}

void check(cl_int rc, const char* what) {
  if (rc != CL_SUCCESS) fail("%s failed (OpenCL error %d)", what, static_cast<int>(rc));
}

int64_t numel(const Tensor* t) {
  int64_t n = 1;
  for (int d = 0; d < t->rank; ++d) n *= t->static_shape[d];
  return n;
}

// --- node attributes ---------------------------------------------------------------------------

int64_t get_int(const Node* n, const char* name, int64_t fallback) {
  int64_t v = 0;
  return n->attrs->get_int(n->attrs->self, name, &v) ? v : fallback;
}
float get_float(const Node* n, const char* name, float fallback) {
  float v = 0;
  return n->attrs->get_float(n->attrs->self, name, &v) ? v : fallback;
}
std::vector<int64_t> get_ints(const Node* n, const char* name, std::vector<int64_t> fallback) {
  const int64_t* d = nullptr;
  size_t c = 0;
  if (!n->attrs->get_ints(n->attrs->self, name, &d, &c)) return fallback;
  return {d, d + c};
}
std::vector<float> get_floats(const Node* n, const char* name) {
  const float* d = nullptr;
  size_t c = 0;
  if (!n->attrs->get_floats(n->attrs->self, name, &d, &c)) return {};
  return {d, d + c};
}
std::string get_string(const Node* n, const char* name, const char* fallback) {
  const char* s = nullptr;
  return n->attrs->get_string(n->attrs->self, name, &s) ? s : fallback;
}

// Activation codes of kernels.cl.h act().
struct Act {
  cl_int code = 0;
  float p0 = 0, p1 = 0;
};

bool fused_activation(const Node* n, Act* out) {
  const std::string a = get_string(n, "activation", "");
  if (a.empty()) return true;
  if (a == "Relu")
    *out = {1, 0, 0};
  else if (a == "Clip")
    *out = {2, get_float(n, "activation_min", -INFINITY), get_float(n, "activation_max", INFINITY)};
  else if (a == "HardSwish")
    *out = {3, 0, 0};
  else if (a == "HardSigmoid")
    *out = {4, get_float(n, "activation_alpha", 0.2f), get_float(n, "activation_beta", 0.5f)};
  else if (a == "Silu")
    *out = {5, 0, 0};
  else
    return false;
  return true;
}

bool unary_activation(const Node* n, Act* out) {
  const std::string op = n->op_type;
  static const std::map<std::string, int> codes = {
      {"Relu", 1}, {"Clip", 2},      {"HardSwish", 3}, {"HardSigmoid", 4}, {"Sigmoid", 6},
      {"Tanh", 7}, {"LeakyRelu", 8}, {"Elu", 9},       {"Exp", 10},        {"Abs", 11},
      {"Neg", 12}, {"Sqrt", 13},     {"Log", 14},      {"Identity", 15},   {"Dropout", 15}};
  auto it = codes.find(op);
  if (it == codes.end()) return false;
  out->code = it->second;
  if (op == "Clip") {
    out->p0 = get_float(n, "min", -INFINITY);
    out->p1 = get_float(n, "max", INFINITY);
  } else if (op == "HardSigmoid") {
    out->p0 = get_float(n, "alpha", 0.2f);
    out->p1 = get_float(n, "beta", 0.5f);
  } else if (op == "LeakyRelu") {
    out->p0 = get_float(n, "alpha", 0.01f);
  } else if (op == "Elu") {
    out->p0 = get_float(n, "alpha", 1.0f);
  }
  return true;
}

const std::map<std::string, int>& binary_ops() {
  static const std::map<std::string, int> ops = {{"Add", 0}, {"Sub", 1}, {"Mul", 2}, {"Div", 3},
                                                 {"Max", 4}, {"Min", 5}, {"Pow", 6}, {"PRelu", 7}};
  return ops;
}

bool is_reshape(const std::string& op) {
  return op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze";
}

// --- the device ------------------------------------------------------------------------------

struct Device {
  cl_platform_id platform = nullptr;
  cl_device_id device = nullptr;
  cl_context context = nullptr;
  cl_command_queue queue = nullptr;
  cl_program program = nullptr;
  bool fp16 = false;  // tensors stored as half
  std::string description;
  std::string error;  // why there is no device
  std::mutex build_mutex;

  ~Device() {
    if (program) clReleaseProgram(program);
    if (queue) clReleaseCommandQueue(queue);
    if (context) clReleaseContext(context);
  }

  bool open() {
    cl_uint np = 0;
    cl_int rc = clGetPlatformIDs(0, nullptr, &np);
    if (rc != CL_SUCCESS || np == 0) {
      error = "no OpenCL platform (clGetPlatformIDs: " + std::to_string(rc) +
              "); is an ICD (e.g. the vendor's libOpenCL, or pocl-opencl-icd) installed?";
      return false;
    }
    std::vector<cl_platform_id> ps(np);
    clGetPlatformIDs(np, ps.data(), nullptr);
    const char* want = std::getenv("EDGEPACK_OPENCL_DEVICE");
    for (int pass = 0; pass < 2 && !device; ++pass) {
      for (cl_platform_id p : ps) {
        cl_uint nd = 0;
        const cl_device_type type = pass == 0 && !want ? CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_ALL;
        if (clGetDeviceIDs(p, type, 0, nullptr, &nd) != CL_SUCCESS || nd == 0) continue;
        std::vector<cl_device_id> ds(nd);
        clGetDeviceIDs(p, type, nd, ds.data(), nullptr);
        for (cl_device_id d : ds) {
          if (want && info(d, CL_DEVICE_NAME).find(want) == std::string::npos) continue;
          platform = p;
          device = d;
          break;
        }
        if (device) break;
      }
    }
    if (!device) {
      error = want ? std::string("no OpenCL device whose name contains '") + want + "'"
                   : "no OpenCL device";
      return false;
    }
    context = clCreateContext(nullptr, 1, &device, nullptr, nullptr, &rc);
    if (rc != CL_SUCCESS) {
      error = "clCreateContext: " + std::to_string(rc);
      return false;
    }
    queue = clCreateCommandQueue(context, device, 0, &rc);
    if (rc != CL_SUCCESS) {
      error = "clCreateCommandQueue: " + std::to_string(rc);
      return false;
    }
    const bool has_fp16 =
        info(device, CL_DEVICE_EXTENSIONS).find("cl_khr_fp16") != std::string::npos;
    const char* precision = std::getenv("EDGEPACK_OPENCL_PRECISION");
    fp16 = precision && std::strcmp(precision, "fp16") == 0;
    description = info(device, CL_DEVICE_NAME) + " (" + info(device, CL_DEVICE_VERSION) + ", " +
                  (fp16 ? "fp16 storage" : "fp32") + (has_fp16 ? ", cl_khr_fp16" : "") + ")";
    return true;
  }

  static std::string info(cl_device_id d, cl_device_info what) {
    size_t n = 0;
    clGetDeviceInfo(d, what, 0, nullptr, &n);
    std::string s(n, '\0');
    clGetDeviceInfo(d, what, n, &s[0], nullptr);
    while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
    return s;
  }

  // Builds the kernel program once (the first partition pays for it).
  void build() {
    std::lock_guard<std::mutex> lock(build_mutex);
    if (program) return;
    const char* src = edgepack_opencl::kernel_source();
    cl_int rc = CL_SUCCESS;
    cl_program p = clCreateProgramWithSource(context, 1, &src, nullptr, &rc);
    check(rc, "clCreateProgramWithSource");
    const char* opts = fp16 ? "-cl-std=CL1.2 -DEP_FP16" : "-cl-std=CL1.2";
    rc = clBuildProgram(p, 1, &device, opts, nullptr, nullptr);
    if (rc != CL_SUCCESS) {
      size_t n = 0;
      clGetProgramBuildInfo(p, device, CL_PROGRAM_BUILD_LOG, 0, nullptr, &n);
      std::string log(n, '\0');
      clGetProgramBuildInfo(p, device, CL_PROGRAM_BUILD_LOG, n, &log[0], nullptr);
      clReleaseProgram(p);
      fail("kernel build failed (%d): %.160s", static_cast<int>(rc), log.c_str());
    }
    program = p;
  }

  size_t elem() const { return fp16 ? 2 : 4; }
};

// float32 -> IEEE half (round to nearest even), for constants uploaded to an fp16 device.
uint16_t to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  int32_t exp = static_cast<int32_t>((x >> 23) & 0xFF) - 127 + 15;
  uint32_t mant = x & 0x7FFFFFu;
  if (((x >> 23) & 0xFF) == 0xFF)
    return static_cast<uint16_t>(sign | 0x7C00u | (mant ? 0x200u : 0));
  if (exp >= 31) return static_cast<uint16_t>(sign | 0x7C00u);
  if (exp <= 0) {
    if (exp < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float from_half(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FFu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        --exp;
      }
      x = sign | (exp << 23) | ((mant & 0x3FFu) << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7F800000u | (mant << 13);
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

// --- support -----------------------------------------------------------------------------------

bool supports(const Node* n) {
  const std::string op = n->op_type;
  if (n->num_outputs < 1 || !n->outputs[0]) return false;
  for (size_t i = 0; i < n->num_outputs; ++i)
    if (n->outputs[i] &&
        (n->outputs[i]->dtype != EP_BACKEND_FLOAT32 || n->outputs[i]->dynamic_dim0))
      return false;
  const size_t checked = is_reshape(op) ? 1 : n->num_inputs;
  for (size_t i = 0; i < n->num_inputs; ++i) {
    const Tensor* t = n->inputs[i];
    if (!t) continue;
    if (i < checked && (t->dtype != EP_BACKEND_FLOAT32 || t->dynamic_dim0)) return false;
    if (i >= checked && !t->is_constant) return false;
  }
  const Tensor* x = n->num_inputs ? n->inputs[0] : nullptr;
  const Tensor* y = n->outputs[0];
  if (!x) return false;
  // Only these kernels apply a fused activation; on any other op it would be dropped.
  const bool applies_activation =
      op == "Conv" || op == "Gemm" || op == "MatMul" || binary_ops().count(op) > 0;
  if (!applies_activation && !get_string(n, "activation", "").empty()) return false;
  if (numel(y) > INT32_MAX || numel(x) > INT32_MAX) return false;
  Act act;
  if (op == "Conv") {
    return n->num_inputs >= 2 && x->rank == 4 && n->inputs[1]->is_constant &&
           fused_activation(n, &act);
  }
  if (op == "Gemm") return x->rank == 2 && fused_activation(n, &act);
  if (op == "MatMul") {
    const Tensor* b = n->inputs[1];
    if (x->rank < 2 || b->rank < 2 || y->rank < 2 || !fused_activation(n, &act)) return false;
    // Batch: B shared (rank 2), A shared (rank 2), or equal batch dims.
    if (b->rank == 2 || x->rank == 2) return true;
    if (x->rank != b->rank) return false;
    for (int d = 0; d < x->rank - 2; ++d)
      if (x->static_shape[d] != b->static_shape[d]) return false;
    return true;
  }
  if (op == "MaxPool" || op == "AveragePool")
    return x->rank == 4 && n->num_outputs == 1 && get_int(n, "storage_order", 0) == 0;
  if (op == "GlobalAveragePool") return x->rank == 4;
  if (binary_ops().count(op))
    return n->num_inputs == 2 && n->inputs[1] && y->rank <= 6 && fused_activation(n, &act);
  if (unary_activation(n, &act)) return n->num_outputs == 1;
  if (op == "Concat") return n->num_inputs >= 1;
  if (op == "Softmax") return true;
  if (op == "Resize") {
    const std::string mode = get_string(n, "mode", "nearest");
    const std::string ctm = get_string(n, "coordinate_transformation_mode", "half_pixel");
    const std::string nm = get_string(n, "nearest_mode", "round_prefer_floor");
    if (x->rank != 4 || (mode != "nearest" && mode != "linear")) return false;
    if (ctm != "half_pixel" && ctm != "asymmetric" && ctm != "align_corners" &&
        ctm != "pytorch_half_pixel")
      return false;
    if (nm != "round_prefer_floor" && nm != "round_prefer_ceil" && nm != "floor" && nm != "ceil")
      return false;
    return x->static_shape[0] == y->static_shape[0] && x->static_shape[1] == y->static_shape[1];
  }
  if (is_reshape(op)) return numel(x) == numel(y);
  if (op == "Transpose") return x->rank == y->rank && x->rank <= 8;
  return false;
}

// --- partitions ----------------------------------------------------------------------------------

struct Launch {
  cl_kernel kernel = nullptr;  // nullptr: a buffer copy (reshape family)
  size_t dims = 1;
  size_t global[3] = {1, 1, 1};
  size_t local[3] = {0, 0, 0};  // 0: the driver picks
  cl_mem copy_src = nullptr, copy_dst = nullptr;
  size_t copy_bytes = 0;
};

struct PartitionState {
  Device* dev = nullptr;
  std::map<const Tensor*, cl_mem> buffers;
  std::vector<cl_mem> extra;  // metadata buffers
  std::vector<Launch> launches;
  std::vector<uint16_t> staging;  // fp16 conversion of inputs/outputs (sized at prepare)

  ~PartitionState() {
    for (Launch& l : launches)
      if (l.kernel) clReleaseKernel(l.kernel);
    for (auto& kv : buffers) clReleaseMemObject(kv.second);
    for (cl_mem m : extra) clReleaseMemObject(m);
  }

  cl_mem buffer(const Tensor* t) {
    auto it = buffers.find(t);
    if (it != buffers.end()) return it->second;
    cl_int rc = CL_SUCCESS;
    const size_t n = static_cast<size_t>(numel(t));
    const size_t bytes = std::max<size_t>(n * dev->elem(), 4);
    cl_mem m = clCreateBuffer(dev->context, CL_MEM_READ_WRITE, bytes, nullptr, &rc);
    check(rc, "clCreateBuffer");
    buffers[t] = m;
    if (t->is_constant) upload(t, m, true);
    return m;
  }

  void upload(const Tensor* t, cl_mem m, bool blocking) {
    const size_t n = static_cast<size_t>(numel(t));
    if (n == 0) return;
    if (!dev->fp16) {
      check(clEnqueueWriteBuffer(dev->queue, m, blocking ? CL_TRUE : CL_FALSE, 0, n * 4, t->data, 0,
                                 nullptr, nullptr),
            "clEnqueueWriteBuffer");
      return;
    }
    std::vector<uint16_t> h(n);
    const float* f = static_cast<const float*>(t->data);
    for (size_t i = 0; i < n; ++i) h[i] = to_half(f[i]);
    check(clEnqueueWriteBuffer(dev->queue, m, CL_TRUE, 0, n * 2, h.data(), 0, nullptr, nullptr),
          "clEnqueueWriteBuffer");
  }

  cl_mem meta(const std::vector<cl_int>& v) {
    cl_int rc = CL_SUCCESS;
    cl_mem m = clCreateBuffer(dev->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                              std::max<size_t>(v.size(), 1) * sizeof(cl_int),
                              const_cast<cl_int*>(v.data()), &rc);
    check(rc, "clCreateBuffer (metadata)");
    extra.push_back(m);
    return m;
  }

  cl_kernel kernel(const char* name) {
    cl_int rc = CL_SUCCESS;
    cl_kernel k = clCreateKernel(dev->program, name, &rc);
    check(rc, "clCreateKernel");
    return k;
  }
};

// Sets kernel arguments in order.
struct Args {
  cl_kernel k;
  cl_uint i = 0;
  template <class T>
  Args& operator<<(const T& v) {
    check(clSetKernelArg(k, i++, sizeof(T), &v), "clSetKernelArg");
    return *this;
  }
};

// Work-groups of 8 x 4 over the first two dimensions (the kernels skip the padding), so that
// drivers that vectorise across work-items (PoCL) or share caches (GPUs) get regular groups.
void tile_2d(Launch& l) {
  const size_t lx = 8, ly = 4;
  l.local[0] = lx;
  l.local[1] = ly;
  l.local[2] = 1;
  l.global[0] = (l.global[0] + lx - 1) / lx * lx;
  l.global[1] = (l.global[1] + ly - 1) / ly * ly;
}

cl_int i32(int64_t v) {
  return static_cast<cl_int>(v);
}

void prepare_node(PartitionState& s, const Node* n) {
  const std::string op = n->op_type;
  const Tensor* x = n->inputs[0];
  const Tensor* y = n->outputs[0];
  cl_mem X = s.buffer(x), Y = s.buffer(y);
  Launch l;
  if (op == "Conv") {
    const Tensor* w = n->inputs[1];
    const Tensor* b = n->num_inputs > 2 ? n->inputs[2] : nullptr;
    const auto k = get_ints(n, "kernel_shape", {w->static_shape[2], w->static_shape[3]});
    const auto st = get_ints(n, "strides", {1, 1});
    const auto pads = get_ints(n, "pads", {0, 0, 0, 0});
    const auto dil = get_ints(n, "dilations", {1, 1});
    const int64_t group = get_int(n, "group", 1);
    Act a;
    fused_activation(n, &a);
    const bool tiled = (y->static_shape[1] / group) % 4 == 0;
    l.kernel = s.kernel(tiled ? "conv2d_t44" : "conv2d");
    cl_mem W = s.buffer(w), B = b ? s.buffer(b) : W;
    Args{l.kernel} << X << W << B << Y << i32(x->static_shape[1]) << i32(x->static_shape[2])
                   << i32(x->static_shape[3]) << i32(y->static_shape[1]) << i32(y->static_shape[2])
                   << i32(y->static_shape[3]) << i32(k[0]) << i32(k[1]) << i32(st[0]) << i32(st[1])
                   << i32(pads[0]) << i32(pads[1]) << i32(dil[0]) << i32(dil[1]) << i32(group)
                   << cl_int(b ? 1 : 0) << a.code << a.p0 << a.p1;
    l.dims = 3;
    l.global[0] = static_cast<size_t>(tiled ? (y->static_shape[3] + 3) / 4 : y->static_shape[3]);
    l.global[1] = static_cast<size_t>(y->static_shape[2]);
    l.global[2] = static_cast<size_t>(y->static_shape[0] * y->static_shape[1] / (tiled ? 4 : 1));
    tile_2d(l);
  } else if (op == "Gemm" || op == "MatMul") {
    const Tensor* b = n->inputs[1];
    const Tensor* c = op == "Gemm" && n->num_inputs > 2 ? n->inputs[2] : nullptr;
    const bool ta = op == "Gemm" && get_int(n, "transA", 0);
    const bool tb = op == "Gemm" && get_int(n, "transB", 0);
    const int64_t M = y->static_shape[y->rank - 2], N = y->static_shape[y->rank - 1];
    const int64_t K = ta ? x->static_shape[x->rank - 2] : x->static_shape[x->rank - 1];
    int64_t batch = 1;
    for (int d = 0; d < y->rank - 2; ++d) batch *= y->static_shape[d];
    // Element strides of A (M x K) and B (K x N), transposed or not.
    const cl_int sam = i32(ta ? 1 : K), sak = i32(ta ? M : 1);
    const cl_int sbk = i32(tb ? 1 : N), sbn = i32(tb ? K : 1);
    const cl_int sab = i32(x->rank == 2 ? 0 : M * K), sbb = i32(b->rank == 2 ? 0 : K * N);
    cl_int scm = 0, scn = 0;
    if (c) {  // broadcast C to (M, N)
      const int64_t cm = c->rank >= 2 ? c->static_shape[c->rank - 2] : 1;
      const int64_t cn = c->rank >= 1 ? c->static_shape[c->rank - 1] : 1;
      scm = i32(cm == 1 ? 0 : cn);
      scn = i32(cn == 1 ? 0 : 1);
    }
    Act a;
    fused_activation(n, &a);
    l.kernel = s.kernel("matmul");
    cl_mem Bm = s.buffer(b), C = c ? s.buffer(c) : Bm;
    Args{l.kernel} << X << Bm << C << Y << i32(M) << i32(N) << i32(K) << sam << sak << sbk << sbn
                   << sab << sbb << scm << scn << get_float(n, "alpha", 1.0f)
                   << get_float(n, "beta", 1.0f) << cl_int(c ? 1 : 0) << a.code << a.p0 << a.p1;
    l.dims = 3;
    l.global[0] = static_cast<size_t>(N);
    l.global[1] = static_cast<size_t>(M);
    l.global[2] = static_cast<size_t>(batch);
    tile_2d(l);
  } else if (op == "MaxPool" || op == "AveragePool") {
    const auto k = get_ints(n, "kernel_shape", {1, 1});
    const auto st = get_ints(n, "strides", {1, 1});
    const auto pads = get_ints(n, "pads", {0, 0, 0, 0});
    const auto dil = get_ints(n, "dilations", {1, 1});
    l.kernel = s.kernel("pool2d");
    Args{l.kernel} << X << Y << i32(x->static_shape[2]) << i32(x->static_shape[3])
                   << i32(y->static_shape[2]) << i32(y->static_shape[3]) << i32(k[0]) << i32(k[1])
                   << i32(st[0]) << i32(st[1]) << i32(pads[0]) << i32(pads[1]) << i32(pads[2])
                   << i32(pads[3]) << i32(dil[0]) << i32(dil[1]) << cl_int(op == "MaxPool")
                   << i32(get_int(n, "count_include_pad", 0));
    l.dims = 3;
    l.global[0] = static_cast<size_t>(y->static_shape[3]);
    l.global[1] = static_cast<size_t>(y->static_shape[2]);
    l.global[2] = static_cast<size_t>(y->static_shape[0] * y->static_shape[1]);
    tile_2d(l);
  } else if (op == "GlobalAveragePool") {
    l.kernel = s.kernel("global_avgpool");
    Args{l.kernel} << X << Y << i32(x->static_shape[2] * x->static_shape[3]);
    l.global[0] = static_cast<size_t>(x->static_shape[0] * x->static_shape[1]);
  } else if (binary_ops().count(op)) {
    const Tensor* b = n->inputs[1];
    const int r = y->rank;
    std::vector<cl_int> meta(static_cast<size_t>(3 * std::max(r, 1)), 0);
    if (r == 0) meta[0] = 1;
    auto strides = [&](const Tensor* t, int base) {
      int64_t stride = 1;
      for (int d = r - 1; d >= 0; --d) {
        const int td = d - (r - t->rank);
        const int64_t dim = td >= 0 ? t->static_shape[td] : 1;
        meta[static_cast<size_t>(base + d)] = dim == 1 ? 0 : i32(stride);
        stride *= dim;
      }
    };
    for (int d = 0; d < r; ++d) meta[static_cast<size_t>(d)] = i32(y->static_shape[d]);
    strides(x, r);
    strides(b, 2 * r);
    Act a;
    fused_activation(n, &a);
    l.kernel = s.kernel("binary");
    Args{l.kernel} << X << s.buffer(b) << Y << s.meta(meta) << cl_int(r)
                   << cl_int(binary_ops().at(op)) << i32(numel(y)) << a.code << a.p0 << a.p1;
    l.global[0] = static_cast<size_t>(numel(y));
  } else if (op == "Concat") {
    const int64_t axis = get_int(n, "axis", 0);
    int64_t inner = 1, outer = 1;
    for (int d = static_cast<int>(axis) + 1; d < y->rank; ++d) inner *= y->static_shape[d];
    for (int d = 0; d < axis; ++d) outer *= y->static_shape[d];
    const int64_t row_out = y->static_shape[axis] * inner;
    int64_t offset = 0;
    for (size_t i = 0; i < n->num_inputs; ++i) {
      const Tensor* t = n->inputs[i];
      const int64_t row_in = t->static_shape[axis] * inner;
      if (row_in > 0) {
        Launch part;
        part.kernel = s.kernel("concat_part");
        Args{part.kernel} << s.buffer(t) << Y << i32(row_in) << i32(row_out) << i32(offset)
                          << i32(outer * row_in);
        part.global[0] = static_cast<size_t>(outer * row_in);
        s.launches.push_back(part);
      }
      offset += row_in;
    }
    return;
  } else if (op == "Softmax") {
    int64_t axis = get_int(n, "axis", -1);
    if (axis < 0) axis += x->rank;
    int64_t inner = 1;
    for (int d = static_cast<int>(axis) + 1; d < x->rank; ++d) inner *= x->static_shape[d];
    const int64_t len = x->rank ? x->static_shape[axis] : 1;
    const int64_t rows = len ? numel(x) / len : 0;
    l.kernel = s.kernel("softmax");
    Args{l.kernel} << X << Y << i32(len) << i32(inner) << i32(rows);
    l.global[0] = static_cast<size_t>(std::max<int64_t>(rows, 1));
  } else if (op == "Resize") {
    const std::string mode = get_string(n, "mode", "nearest");
    const std::string ctm = get_string(n, "coordinate_transformation_mode", "half_pixel");
    const std::string nm = get_string(n, "nearest_mode", "round_prefer_floor");
    const auto scales = get_floats(n, "scales");
    const float sh = scales.size() == 4 ? scales[2]
                                        : static_cast<float>(y->static_shape[2]) /
                                              static_cast<float>(x->static_shape[2]);
    const float sw = scales.size() == 4 ? scales[3]
                                        : static_cast<float>(y->static_shape[3]) /
                                              static_cast<float>(x->static_shape[3]);
    const cl_int ctm_code = ctm == "asymmetric"           ? 1
                            : ctm == "align_corners"      ? 2
                            : ctm == "pytorch_half_pixel" ? 3
                                                          : 0;
    const cl_int nm_code = nm == "floor" ? 1 : nm == "ceil" ? 2 : nm == "round_prefer_ceil" ? 3 : 0;
    l.kernel = s.kernel("resize2d");
    Args{l.kernel} << X << Y << i32(x->static_shape[2]) << i32(x->static_shape[3])
                   << i32(y->static_shape[2]) << i32(y->static_shape[3]) << sh << sw << ctm_code
                   << cl_int(mode == "linear") << nm_code;
    l.dims = 3;
    l.global[0] = static_cast<size_t>(y->static_shape[3]);
    l.global[1] = static_cast<size_t>(y->static_shape[2]);
    l.global[2] = static_cast<size_t>(y->static_shape[0] * y->static_shape[1]);
    tile_2d(l);
  } else if (op == "Transpose") {
    const int r = x->rank;
    const auto perm = get_ints(n, "perm", {});
    std::vector<cl_int> meta(static_cast<size_t>(2 * std::max(r, 1)), 1);
    std::vector<int64_t> stride(static_cast<size_t>(std::max(r, 1)), 1);
    for (int d = r - 2; d >= 0; --d)
      stride[static_cast<size_t>(d)] = stride[static_cast<size_t>(d + 1)] * x->static_shape[d + 1];
    for (int d = 0; d < r; ++d) {
      const int64_t p =
          perm.size() == static_cast<size_t>(r) ? perm[static_cast<size_t>(d)] : r - 1 - d;
      if (p < 0 || p >= r) fail("Transpose perm out of range");
      meta[static_cast<size_t>(d)] = i32(y->static_shape[d]);
      meta[static_cast<size_t>(r + d)] = i32(stride[static_cast<size_t>(p)]);
    }
    l.kernel = s.kernel("transpose");
    Args{l.kernel} << X << Y << s.meta(meta) << cl_int(r) << i32(numel(y));
    l.global[0] = static_cast<size_t>(std::max<int64_t>(numel(y), 1));
  } else if (is_reshape(op)) {
    l.copy_src = X;
    l.copy_dst = Y;
    l.copy_bytes = static_cast<size_t>(numel(y)) * s.dev->elem();
  } else {
    Act a;
    if (!unary_activation(n, &a)) fail("op %s is not supported", n->op_type);
    l.kernel = s.kernel("unary");
    Args{l.kernel} << X << Y << a.code << a.p0 << a.p1 << i32(numel(y));
    l.global[0] = static_cast<size_t>(numel(y));
  }
  s.launches.push_back(l);
}

// --- the ABI table -----------------------------------------------------------------------------

Device* g_device = nullptr;

int supports_op(void* ctx, const edgepack_backend_node* node) {
  (void)ctx;
  try {
    return supports(node) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int prepare_partition(void* ctx, const edgepack_backend_partition* part, void** state, char* err,
                      size_t err_size) {
  auto* dev = static_cast<Device*>(ctx);
  *state = nullptr;
  try {
    dev->build();
    auto s = std::make_unique<PartitionState>();
    s->dev = dev;
    for (size_t i = 0; i < part->num_nodes; ++i) {
      if (!supports(part->nodes[i]))
        fail("node '%s' (%s) is not supported", part->nodes[i]->name, part->nodes[i]->op_type);
      prepare_node(*s, part->nodes[i]);
    }
    size_t most = 0;
    for (size_t i = 0; i < part->num_inputs; ++i) {
      s->buffer(part->inputs[i]);
      most = std::max(most, static_cast<size_t>(numel(part->inputs[i])));
    }
    for (size_t i = 0; i < part->num_outputs; ++i)
      most = std::max(most, static_cast<size_t>(numel(part->outputs[i])));
    if (dev->fp16) s->staging.resize(most);
    check(clFinish(dev->queue), "clFinish (constant upload)");
    *state = s.release();
    return 0;
  } catch (const Fail& f) {
    std::snprintf(err, err_size, "%s", f.msg.c_str());
  } catch (const std::exception& e) {
    std::snprintf(err, err_size, "%s", e.what());
  }
  return 1;
}

int run_partition(void* ctx, const edgepack_backend_partition* part, void* state, char* err,
                  size_t err_size) {
  auto* dev = static_cast<Device*>(ctx);
  auto* s = static_cast<PartitionState*>(state);
  try {
    for (size_t i = 0; i < part->num_inputs; ++i) {
      const Tensor* t = part->inputs[i];
      const size_t n = static_cast<size_t>(numel(t));
      if (n == 0) continue;
      if (dev->fp16) {
        const float* f = static_cast<const float*>(t->data);
        for (size_t k = 0; k < n; ++k) s->staging[k] = to_half(f[k]);
        check(clEnqueueWriteBuffer(dev->queue, s->buffers.at(t), CL_TRUE, 0, n * 2,
                                   s->staging.data(), 0, nullptr, nullptr),
              "clEnqueueWriteBuffer");
      } else {
        check(clEnqueueWriteBuffer(dev->queue, s->buffers.at(t), CL_FALSE, 0, n * 4, t->data, 0,
                                   nullptr, nullptr),
              "clEnqueueWriteBuffer");
      }
    }
    for (const Launch& l : s->launches) {
      if (!l.kernel) {
        if (l.copy_bytes)
          check(clEnqueueCopyBuffer(dev->queue, l.copy_src, l.copy_dst, 0, 0, l.copy_bytes, 0,
                                    nullptr, nullptr),
                "clEnqueueCopyBuffer");
        continue;
      }
      bool empty = false;
      for (size_t d = 0; d < l.dims; ++d) empty = empty || l.global[d] == 0;
      if (empty) continue;
      check(clEnqueueNDRangeKernel(dev->queue, l.kernel, static_cast<cl_uint>(l.dims), nullptr,
                                   l.global, l.local[0] ? l.local : nullptr, 0, nullptr, nullptr),
            "clEnqueueNDRangeKernel");
    }
    for (size_t i = 0; i < part->num_outputs; ++i) {
      Tensor* t = part->outputs[i];
      const size_t n = static_cast<size_t>(numel(t));
      if (n == 0) continue;
      if (dev->fp16) {
        check(clEnqueueReadBuffer(dev->queue, s->buffers.at(t), CL_TRUE, 0, n * 2,
                                  s->staging.data(), 0, nullptr, nullptr),
              "clEnqueueReadBuffer");
        float* f = static_cast<float*>(t->data);
        for (size_t k = 0; k < n; ++k) f[k] = from_half(s->staging[k]);
      } else {
        check(clEnqueueReadBuffer(dev->queue, s->buffers.at(t), CL_FALSE, 0, n * 4, t->data, 0,
                                  nullptr, nullptr),
              "clEnqueueReadBuffer");
      }
    }
    check(clFinish(dev->queue), "clFinish");
    return 0;
  } catch (const Fail& f) {
    std::snprintf(err, err_size, "%s", f.msg.c_str());
  } catch (const std::exception& e) {
    std::snprintf(err, err_size, "%s", e.what());
  }
  return 1;
}

void release_partition(void* ctx, void* state) {
  (void)ctx;
  delete static_cast<PartitionState*>(state);
}

// init/release pairs: a process may load the plugin for several sessions (dlopen hands back
// the same copy); the device goes with the last release.
int g_users = 0;

void release(void* ctx) {
  (void)ctx;
  if (--g_users > 0) return;
  delete g_device;
  g_device = nullptr;
}

const char* describe(void* ctx) {
  return static_cast<Device*>(ctx)->description.c_str();
}

edgepack_backend_api g_api;

}  // namespace

extern "C" __attribute__((visibility("default"))) const edgepack_backend_api* edgepack_backend_init(
    uint32_t runtime_api_version) {
  if (EDGEPACK_BACKEND_API_VERSION_MAJOR(runtime_api_version) != EDGEPACK_BACKEND_API_MAJOR)
    return nullptr;
  if (!g_device) {
    auto dev = std::make_unique<Device>();
    if (!dev->open()) {
      std::fprintf(stderr, "edgepack: opencl backend: %s\n", dev->error.c_str());
      return nullptr;
    }
    g_device = dev.release();
  }
  ++g_users;
  std::memset(&g_api, 0, sizeof g_api);
  g_api.api_version = EDGEPACK_BACKEND_API_VERSION;
  g_api.struct_size = sizeof(edgepack_backend_api);
  g_api.name = "opencl";
  g_api.context = g_device;
  g_api.supports_op = supports_op;
  g_api.prepare_partition = prepare_partition;
  g_api.run_partition = run_partition;
  g_api.release_partition = release_partition;
  g_api.release = release;
  g_api.describe = describe;
  return &g_api;
}
