// SPDX-License-Identifier: Apache-2.0
// The one error type used inside the SDK. It never crosses the C ABI: every entry point in
// src/c_api catches it and turns it into an ep_status with the same code.
#pragma once

#include <stdexcept>
#include <string>

namespace edgepack {

// Values are shared with ep_status_code in include/edgepack.h; append only.
enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // a caller mistake: bad name, wrong dtype/shape, NULL pointer
  kArtifactInvalid = 2,  // any failure verifying, unsealing, decrypting or parsing an artifact
  kNotFound = 3,         // unknown stage, tensor or file
  kUnsupported = 4,      // op, dtype or backend not available in this build
  kRuntimeError = 5,     // a failure while running (e.g. a kernel's data-dependent check)
  kOutOfMemory = 6,
  kIoError = 7,  // a file could not be read or written
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

// Thrown for every artifact failure; `reason` is a short non-secret code for logs
// ("signature", "counter", "not_recipient", "chunk", "layout", "manifest", ...).
class ArtifactInvalid : public Error {
 public:
  explicit ArtifactInvalid(const std::string& reason)
      : Error(ErrorCode::kArtifactInvalid, "artifact invalid"), reason_(reason) {}
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

}  // namespace edgepack
