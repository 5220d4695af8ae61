// SPDX-License-Identifier: Apache-2.0
// Device facts for HELLO (PROTOCOL.md section 6), read fresh on every call.
#pragma once

#include <string>

namespace epagent {

// A JSON object text describing the device now (kernel, CPU, memory, storage at `root`,
// glibc, cpufreq and thermal zones).
std::string device_facts_json(const std::string& root);
std::string read_boot_id();

}  // namespace epagent
