// SPDX-License-Identifier: Apache-2.0
// Test driver: opens many artifacts with one key set, in one process, and prints one line per
// file so that a test can check hundreds of tampered files quickly:
//   <file>\tok\t<section>=<sha256 hex>,...     all sections authenticated and decrypted
//   <file>\tinvalid\t<reason>                   ArtifactInvalid with its reason code
//   <file>\terror\t<code>\t<message>            any other edgepack::Error
// Usage: epk_check --key DEVICE.pem|--raw-key DEVICE.raw --publisher PUB.pem
//                  [--min-counter N] [--memory] FILE...
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "artifact/artifact.h"
#include "artifact/crypto.h"
#include "test_util.h"

namespace {

std::string digest_list(const edgepack::Artifact& a) {
  std::string out;
  for (const std::string& name : a.section_names()) {
    size_t size = 0;
    const uint8_t* p = a.section(name, &size);
    uint8_t d[32];
    edgepack::crypto::sha256(p, size, d);
    if (!out.empty()) out += ",";
    out += name + "=" + edgepack::test::hex(d, 32);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string key, raw_key, publisher;
  edgepack::OpenOptions options;
  bool memory = false;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--key" && i + 1 < argc) {
      key = argv[++i];
    } else if (arg == "--raw-key" && i + 1 < argc) {
      raw_key = argv[++i];
    } else if (arg == "--publisher" && i + 1 < argc) {
      publisher = argv[++i];
    } else if (arg == "--min-counter" && i + 1 < argc) {
      options.min_counter = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--memory") {
      memory = true;
    } else {
      files.push_back(arg);
    }
  }
  if ((key.empty() && raw_key.empty()) || publisher.empty() || files.empty()) {
    std::fprintf(stderr, "usage: epk_check --key K|--raw-key R --publisher P FILE...\n");
    return 2;
  }
  try {
    const edgepack::DeviceKey device =
        raw_key.empty() ? edgepack::DeviceKey::from_pem_file(key) : [&] {
          const std::string raw = edgepack::read_whole_file(raw_key, "raw key");
          return edgepack::DeviceKey::from_raw(raw.data(), raw.size());
        }();
    const edgepack::PublisherKey pub = edgepack::PublisherKey::from_pem_file(publisher);
    for (const std::string& f : files) {
      try {
        std::unique_ptr<edgepack::Artifact> a;
        if (memory) {
          const std::string bytes = edgepack::read_whole_file(f, "artifact");
          a = edgepack::Artifact::open(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                       device, pub, options);
        } else {
          a = edgepack::Artifact::open_file(f, device, pub, options);
        }
        std::printf("%s\tok\t%s\n", f.c_str(), digest_list(*a).c_str());
      } catch (const edgepack::ArtifactInvalid& e) {
        std::printf("%s\tinvalid\t%s\n", f.c_str(), e.reason().c_str());
      } catch (const edgepack::Error& e) {
        std::printf("%s\terror\t%d\t%s\n", f.c_str(), static_cast<int>(e.code()), e.what());
      }
    }
  } catch (const edgepack::Error& e) {
    std::fprintf(stderr, "epk_check: %s\n", e.what());
    return 3;
  }
  return 0;
}
