# SPDX-License-Identifier: Apache-2.0
"""CLI commands, one module each. The order here is the order in ``edgepack --help``."""

from __future__ import annotations

import argparse
from pathlib import Path

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


def add_host_key_options(parser: argparse.ArgumentParser) -> None:
    """``--known-hosts FILE`` and ``--trust-new-host``: how a command that reaches a board over
    SSH pins its host key (device/ssh.py)."""
    parser.add_argument("--known-hosts", type=Path, metavar="FILE",
                        help="known_hosts file (default ~/.config/edgepack/known_hosts)")
    parser.add_argument("--trust-new-host", action="store_true",
                        help="accept and record an unknown host key (never a changed one)")
