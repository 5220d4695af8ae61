// SPDX-License-Identifier: Apache-2.0
// The explicit CPU op table, generated from ops/op_list.h (no static self-registration).
#include <set>
#include <string>

#include "runtime/op.h"

namespace edgepack {
namespace ops {
// Declarations of every op's functions (one family may serve several ONNX types).
#define EDGEPACK_OP(type, prefix)         \
  void prefix##_prepare(PrepareContext&); \
  void prefix##_run(RunContext&);
#include "runtime/ops/op_list.h"
#undef EDGEPACK_OP
}  // namespace ops

const std::vector<OpKernel>& cpu_ops() {
  static const std::vector<OpKernel> table = {
#define EDGEPACK_OP(type, prefix) {#type, &ops::prefix##_prepare, &ops::prefix##_run},
#include "runtime/ops/op_list.h"
#undef EDGEPACK_OP
  };
  return table;
}

const OpKernel* find_cpu_op(const std::string& op_type) {
  for (const OpKernel& k : cpu_ops())
    if (op_type == k.op_type) return &k;
  return nullptr;
}

}  // namespace edgepack
