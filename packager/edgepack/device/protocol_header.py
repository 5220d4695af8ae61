# SPDX-License-Identifier: Apache-2.0
"""Renders the agent's ``device_agents/src/protocol_table.h`` from ``protocol.py``'s message ids
and limits, so both sides of the protocol read one table.

``python -m edgepack.device.protocol_header --write`` regenerates the header; ``--check`` exits 1
when the checked-in file differs (tests/device/test_protocol.py runs the same comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgepack.device.protocol import LIMITS, MAGIC, PROTOCOL_VERSION, MsgType

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
    p = argparse.ArgumentParser(prog="python -m edgepack.device.protocol_header")
    p.add_argument("--root", type=Path, default=Path("."), help="the repository root")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help="regenerate protocol_table.h")
    g.add_argument("--check", action="store_true", help="exit 1 when protocol_table.h is stale")
    args = p.parse_args(argv)
    path = args.root / HEADER_PATH
    text = render_header()
    if args.write:
        path.write_text(text, encoding="utf-8")
        return 0
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        print(f"{path} is stale: run python -m edgepack.device.protocol_header --write",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
