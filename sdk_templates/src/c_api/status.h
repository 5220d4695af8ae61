// SPDX-License-Identifier: Apache-2.0
// ep_status and the wrapper every C entry point runs its body in: whatever is thrown inside
// becomes a status, nothing crosses the C boundary.
#pragma once

#include <new>
#include <string>

#include "common/error.h"
#include "edgepack.h"

struct ep_status {
  ep_error_code code;
  std::string message;
};

namespace edgepack::capi {

// Returned when even a status cannot be allocated; ep_status_release never frees it.
ep_status* out_of_memory_status();

ep_status* make_status(ep_error_code code, const std::string& message) noexcept;

// Runs `body` (which returns nothing and reports failure by throwing); returns NULL on success.
template <class F>
ep_status* guarded(F&& body) noexcept {
  try {
    body();
    return nullptr;
  } catch (const ArtifactInvalid& e) {
    return make_status(EP_ARTIFACT_INVALID, std::string(e.what()) + " (" + e.reason() + ")");
  } catch (const Error& e) {
    return make_status(static_cast<ep_error_code>(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    return out_of_memory_status();
  } catch (const std::exception& e) {
    return make_status(EP_RUNTIME_ERROR, e.what());
  } catch (...) {
    return make_status(EP_RUNTIME_ERROR, "unknown error");
  }
}

[[noreturn]] void invalid_argument(const std::string& message);

}  // namespace edgepack::capi
