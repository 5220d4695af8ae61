// SPDX-License-Identifier: Apache-2.0
#include "c_api/status.h"

namespace edgepack::capi {
namespace {
ep_status g_out_of_memory{EP_OUT_OF_MEMORY, "out of memory"};
}  // namespace

ep_status* out_of_memory_status() {
  return &g_out_of_memory;
}

ep_status* make_status(ep_error_code code, const std::string& message) noexcept {
  try {
    return new ep_status{code, message};
  } catch (...) {
    return out_of_memory_status();
  }
}

void invalid_argument(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

}  // namespace edgepack::capi

extern "C" {

ep_error_code ep_status_code(const ep_status* status) {
  return status == nullptr ? EP_OK : status->code;
}

const char* ep_status_message(const ep_status* status) {
  return status == nullptr ? "" : status->message.c_str();
}

void ep_status_release(ep_status* status) {
  if (status != nullptr && status != edgepack::capi::out_of_memory_status()) delete status;
}

}  // extern "C"
