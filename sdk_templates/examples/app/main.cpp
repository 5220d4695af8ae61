// SPDX-License-Identifier: Apache-2.0
// A minimal edgepack app: open an artifact, bind zeros to every pipeline input, run, and print
// each output's shape and byte size.
// Usage: example_app ARTIFACT DEVICE_KEY PUBLISHER_PUB
#include <cstdio>
#include <vector>

#include "edgepack.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: example_app ARTIFACT DEVICE_KEY PUBLISHER_PUB\n");
    return 2;
  }
  try {
    ep::Env env;
    ep::Options options;
    options.threads(1);
    ep::Session session = ep::Session::from_file(env, argv[1], ep::Key::pem_file(argv[2]),
                                                 ep::Key::pem_file(argv[3]), &options);
    session.prepare();
    std::printf("edgepack %s, %zu stages\n", ep::version().c_str(), session.stage_names().size());
    const std::vector<ep::TensorInfo> inputs = session.inputs();
    std::vector<std::vector<unsigned char>> buffers;
    for (const ep::TensorInfo& in : inputs) {
      size_t count = 1;
      for (int64_t d : in.shape) count *= static_cast<size_t>(d);
      const size_t item = in.dtype == EP_DTYPE_UINT8 ? 1 : in.dtype == EP_DTYPE_INT64 ? 8 : 4;
      buffers.emplace_back(count * item, 0);
    }
    // Bound, not copied: the run reads the buffers where they lie (a camera frame's own
    // memory, say). A binding lasts one run: bind again, or set_tensor, before the next.
    for (size_t i = 0; i < inputs.size(); ++i)
      session.bind_tensor("", inputs[i].name, inputs[i].dtype, inputs[i].shape, buffers[i].data(),
                          buffers[i].size());
    session.run();
    for (const ep::TensorInfo& out : session.outputs()) {
      const ep::TensorRef t = session.get_tensor("", out.name);
      std::printf("output %s: rank %zu, %zu bytes\n", out.name.c_str(), t.shape.size(), t.bytes);
    }
    const ep::LoadTiming load = session.load_timing();
    std::printf("load: verify %.3f ms, decrypt %.3f ms, prepare %.3f ms\n", load.verify_ms,
                load.decrypt_ms, load.prepare_ms);
  } catch (const ep::Exception& e) {
    std::fprintf(stderr, "example_app: error %d: %s\n", static_cast<int>(e.code()), e.what());
    return 1;
  }
  return 0;
}
