// SPDX-License-Identifier: Apache-2.0
// The `.epk` reader: verifies, unseals and decrypts an artifact in memory and hands the runtime
// its sections (it implements edgepack::SectionSource).
//
// Verification order (docs/artifact-format.md): layout -> signature -> counter -> unseal ->
// decrypt+authenticate every section, chunk by chunk, manifest first. Parsing the manifest and
// the graphs is the runtime's job and happens only after this returns. Every failure in the
// chain is one ArtifactInvalid(reason); no plaintext is ever written to disk, and the content
// key and section keys are wiped as soon as they are no longer needed. Decrypted sections live
// in 64-byte-aligned buffers owned by the Artifact (wiped when it is destroyed), so the runtime
// can point into them (zero-copy constants).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "artifact/header.h"
#include "artifact/keys.h"
#include "runtime/runtime.h"

namespace edgepack {

struct OpenOptions {
  uint64_t min_counter = 0;  // refuse artifacts whose version_counter is below this
};

struct ArtifactTiming {
  // The signature check and the decryption run concurrently where there is a second core:
  double verify_ms = 0.0;   // from the start until layout + signature + counter passed
  double decrypt_ms = 0.0;  // unseal + decrypt/authenticate all sections, past verify_ms
};

class Artifact final : public SectionSource {
 public:
  // `data` is only read during the call; the Artifact keeps no pointer to it.
  static std::unique_ptr<Artifact> open(const uint8_t* data, size_t size, const DeviceKey& device,
                                        const PublisherKey& publisher,
                                        const OpenOptions& options = {});
  // Reads the whole file into memory first (the signature covers all of it).
  static std::unique_ptr<Artifact> open_file(const std::string& path, const DeviceKey& device,
                                             const PublisherKey& publisher,
                                             const OpenOptions& options = {});

  ~Artifact() override;
  Artifact(const Artifact&) = delete;
  Artifact& operator=(const Artifact&) = delete;

  const epk::Header& header() const { return header_; }
  const ArtifactTiming& timing() const { return timing_; }
  std::string manifest_json() const;
  std::vector<std::string> section_names() const;

  // Borrowed pointer into the decrypted section, valid while this Artifact lives.
  // Throws Error(kNotFound) for an unknown name.
  const uint8_t* section(const std::string& name, size_t* size) const override;

 private:
  struct Plaintext {
    uint8_t* data = nullptr;  // 64-byte aligned, at least 1 byte allocated
    size_t size = 0;
  };
  Artifact() = default;

  epk::Header header_;
  ArtifactTiming timing_;
  void decrypt_sections(const uint8_t* data, const DeviceKey& device);

  std::vector<Plaintext> plaintexts_;  // in table order
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace edgepack
