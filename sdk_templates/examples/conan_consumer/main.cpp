// SPDX-License-Identifier: Apache-2.0
// Prints the SDK's version and checks that the library accepts this header's API version.
#include <cstdio>

#include "edgepack.h"

int main() {
  ep_env* env = nullptr;
  ep_status* status = ep_env_create(EP_API_VERSION, &env);
  if (status != nullptr) {
    std::fprintf(stderr, "ep_env_create: %s\n", ep_status_message(status));
    ep_status_release(status);
    return 1;
  }
  std::printf("edgepack %s api %u\n", ep_get_version(),
              static_cast<unsigned>(ep_get_api_version()));
  ep_env_release(env);
  return 0;
}
