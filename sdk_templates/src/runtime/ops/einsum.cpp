// SPDX-License-Identifier: Apache-2.0
// Einsum (float32 or float64, up to 4 operands) as a direct sum over every letter of the equation.
// Lowering writes the equation explicit ("ab,bc->ac": ellipses expanded to letters, the output
// spelled out); repeated letters within an operand take diagonals. Meant for the small
// contractions of attention blocks; big matrix products should arrive as MatMul.
#include "runtime/ops/op_util.h"

namespace edgepack {
namespace ops {
namespace {
constexpr int kMaxOperands = 4;
constexpr int kMaxLetters = 16;

struct EinsumState : OpState {
  int operands = 0;
  int letters = 0;  // distinct letters; the output's come first
  int out_letters = 0;
  int64_t dim[kMaxLetters] = {};
  int64_t stride[kMaxOperands][kMaxLetters] = {};  // element stride of each letter per operand
  DType dtype = DType::kFloat32;
};
}  // namespace

void einsum_prepare(PrepareContext& ctx) {
  need_outputs(ctx, 1);
  const std::string eq = ctx.attrs->get_string("equation", "");
  const size_t arrow = eq.find("->");
  if (arrow == std::string::npos) ctx.fail("equation '" + eq + "' must be explicit (lowering)");
  std::vector<std::string> terms;
  std::string cur;
  for (char ch : eq.substr(0, arrow)) {
    if (ch == ',') {
      terms.push_back(cur);
      cur.clear();
    } else if (ch != ' ')
      cur += ch;
  }
  terms.push_back(cur);
  std::string out;
  for (char ch : eq.substr(arrow + 2))
    if (ch != ' ') out += ch;
  auto st = std::make_unique<EinsumState>();
  st->operands = static_cast<int>(terms.size());
  if (st->operands != static_cast<int>(ctx.inputs.size()) || st->operands > kMaxOperands)
    ctx.fail("the equation's operands do not match the inputs (at most 4)");
  std::string order = out;  // output letters first, then the summed ones
  for (const std::string& t : terms)
    for (char ch : t)
      if (order.find(ch) == std::string::npos) order += ch;
  if (order.size() > kMaxLetters) ctx.fail("too many distinct letters");
  st->letters = static_cast<int>(order.size());
  st->out_letters = static_cast<int>(out.size());
  for (int l = 0; l < st->letters; ++l) st->dim[l] = -1;
  for (int k = 0; k < st->operands; ++k) {
    Tensor* t = need_input(ctx, k, "operand");
    if (k == 0) st->dtype = t->dtype;
    if (t->dtype != DType::kFloat32 && t->dtype != DType::kFloat64)
      ctx.fail("float32/float64 only");
    need_dtype(ctx, *t, st->dtype);
    if (t->dynamic_dim0) ctx.fail("a dynamic dimension 0 is not supported");
    if (static_cast<int>(terms[k].size()) != t->rank)
      ctx.fail("operand rank does not match '" + terms[k] + "'");
    int64_t s = 1;
    for (int d = t->rank - 1; d >= 0; --d) {
      const int l = static_cast<int>(order.find(terms[k][d]));
      const int64_t n = t->static_shape[d];
      if (st->dim[l] >= 0 && st->dim[l] != n && n != 1 && st->dim[l] != 1)
        ctx.fail(std::string("letter '") + terms[k][d] + "' has two sizes");
      if (n != 1 || st->dim[l] < 0) st->dim[l] = std::max(st->dim[l], n);
      if (n != 1) st->stride[k][l] += s;  // size-1 dims broadcast
      s *= n;
    }
  }
  std::vector<int64_t> shape;
  for (int l = 0; l < st->out_letters; ++l) shape.push_back(st->dim[l]);
  need_dtype(ctx, *ctx.outputs[0], st->dtype);
  need_shape(ctx, *ctx.outputs[0], shape);
  ctx.state = std::move(st);
}

namespace {
template <class T>
void einsum_typed(RunContext& ctx, const EinsumState& st) {
  T* y = ctx.output(0)->as<T>();
  const T* in[kMaxOperands] = {};
  for (int k = 0; k < st.operands; ++k) in[k] = ctx.input(k)->as<T>();
  int64_t out_n = 1, sum_n = 1;
  for (int l = 0; l < st.out_letters; ++l) out_n *= st.dim[l];
  for (int l = st.out_letters; l < st.letters; ++l) sum_n *= st.dim[l];
  parallel(ctx.pool, out_n, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {  // o walks the output in row-major order
      int64_t base[kMaxOperands] = {};
      int64_t rem = o;
      for (int l = st.out_letters - 1; l >= 0; --l) {
        const int64_t i = rem % st.dim[l];
        rem /= st.dim[l];
        for (int k = 0; k < st.operands; ++k) base[k] += i * st.stride[k][l];
      }
      double acc = 0.0;
      for (int64_t t = 0; t < sum_n; ++t) {
        int64_t off[kMaxOperands];
        for (int k = 0; k < st.operands; ++k) off[k] = base[k];
        int64_t r = t;
        for (int l = st.letters - 1; l >= st.out_letters; --l) {
          const int64_t i = r % st.dim[l];
          r /= st.dim[l];
          for (int k = 0; k < st.operands; ++k) off[k] += i * st.stride[k][l];
        }
        double p = 1.0;
        for (int k = 0; k < st.operands; ++k) p *= static_cast<double>(in[k][off[k]]);
        acc += p;
      }
      y[o] = static_cast<T>(acc);
    }
  });
}
}  // namespace

void einsum_run(RunContext& ctx) {
  const auto& st = *ctx.state_as<EinsumState>();
  if (st.dtype == DType::kFloat64)
    einsum_typed<double>(ctx, st);
  else
    einsum_typed<float>(ctx, st);
}

}  // namespace ops
}  // namespace edgepack
