# SPDX-License-Identifier: Apache-2.0
"""CLI commands, one module each. The order here is the order in ``edgepack --help``."""

COMMANDS: list[str] = [
    "boards",
    "keys",
    "pack",
    "inspect",
    "verify",
    "unpack",
    "build",
    "sdk",
    "doctor",
    "device",
    "report",
    "bench",
]
