# SPDX-License-Identifier: Apache-2.0
"""Renders the C++ reader's ``sdk_templates/src/artifact/format_table.h`` from the Python
writer's constants (``container.py``, ``crypto.py``): the format version, the header flags and
the block-hash signature's parameters, so that both sides of the format read one table.

``python -m edgepack.artifact.format_header --write`` regenerates the header; ``--check`` exits
1 when the checked-in file differs (tests/unit/test_artifact.py runs the same comparison).
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgepack.artifact import container, crypto
from edgepack.fsutil import generated_file_main

HEADER_PATH = Path("sdk_templates/src/artifact/format_table.h")  # relative to the repository root


def _c_string(raw: bytes) -> str:
    """``raw`` without its one trailing NUL as a C string literal (the literal adds the NUL)."""
    text = raw[:-1].decode("ascii")
    if not raw.endswith(b"\0") or "\0" in text or not text.isprintable() or '"' in text:
        raise ValueError(f"{raw!r}: not printable ASCII ending in one NUL")
    return f'"{text}"'


def render_header() -> str:
    prefix = crypto.BLOCK_SIGNATURE_PREFIX
    lines = [
        "// SPDX-License-Identifier: Apache-2.0",
        "// Generated from packager/edgepack/artifact/container.py and crypto.py by",
        "// `python -m edgepack.artifact.format_header --write`: edit those, not this file.",
        "// The `.epk` format version, header flags and signature parameters",
        "// (docs/artifact-format.md).",
        "#pragma once",
        "",
        "#include <cstddef>",
        "#include <cstdint>",
        "",
        "namespace edgepack::epk {",
        "",
        f"constexpr uint16_t kFormatVersion = {container.FORMAT_VERSION};",
        "// Header flags; readers refuse any other bit. Stable sections: every section entry",
        "// carries its key wrapped under this release's content key (\"Stable section keys\").",
        f"constexpr uint16_t kFlagStableSections = 0x{container.FLAG_STABLE_SECTIONS:04X};",
        "// Block-hash signature: Ed25519 over kBlockSignaturePrefix (its NUL included), the",
        "// signed length (u64), kSignatureBlockSize (u32) and the SHA-256 of every block.",
        f"constexpr uint16_t kFlagBlockSignature = 0x{container.FLAG_BLOCK_SIGNATURE:04X};",
        f"constexpr uint16_t kKnownFlags = 0x{container.KNOWN_FLAGS:04X};",
        f"constexpr size_t kSignatureSize = {crypto.SIGNATURE_SIZE};",
        f"constexpr uint32_t kSignatureBlockSize = {crypto.SIGNATURE_BLOCK_SIZE};",
        f"constexpr char kBlockSignaturePrefix[] = {_c_string(prefix)};",
        f"static_assert(sizeof(kBlockSignaturePrefix) == {len(prefix)}, \"the prefix's NUL is "
        "signed\");",
        "",
        "}  // namespace edgepack::epk",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return generated_file_main("edgepack.artifact.format_header", HEADER_PATH, render_header, argv)


if __name__ == "__main__":
    sys.exit(main())
