# SPDX-License-Identifier: Apache-2.0
"""Renders the agent's ``device_agents/src/protocol_table.h`` from ``protocol.py``'s message ids
and limits, so both sides of the protocol read one table.

``python -m edgepack.device.protocol_header --write`` regenerates the header; ``--check`` exits 1
when the checked-in file differs (tests/device/test_protocol.py runs the same comparison).
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgepack.device.protocol import LIMITS, MAGIC, PROTOCOL_VERSION, MsgType
from edgepack.fsutil import generated_file_main

HEADER_PATH = Path("device_agents/src/protocol_table.h")  # relative to the repository root


def _camel(name: str) -> str:
    return "k" + "".join(part.capitalize() for part in name.split("_"))


def render_header() -> str:
    lines = [
        "// SPDX-License-Identifier: Apache-2.0",
        "// Generated from packager/edgepack/device/protocol.py by",
        "// `python -m edgepack.device.protocol_header --write`: edit the table, not this file.",
        "// Message ids and limits of the agent protocol (PROTOCOL.md sections 2 and 5).",
        "#pragma once",
        "",
        "#include <cstdint>",
        "",
        "namespace epagent {",
        "",
        f"constexpr uint8_t kMagic = 0x{MAGIC:02X};",
        f"constexpr uint8_t kProtocolVersion = {PROTOCOL_VERSION};",
        "",
        "enum MsgType : uint8_t {",
    ]
    lines += [f"  {_camel(t.name)} = 0x{int(t):02X}," for t in MsgType]
    lines += ["};", ""]
    for name, limit in LIMITS.items():
        if limit.agent:
            lines.append(f"// {limit.doc}")
            lines.append(f"constexpr int64_t {_camel(name)} = {limit.value};")
    lines += ["", "}  // namespace epagent", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return generated_file_main("edgepack.device.protocol_header", HEADER_PATH, render_header, argv)


if __name__ == "__main__":
    sys.exit(main())
