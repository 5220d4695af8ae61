# SPDX-License-Identifier: Apache-2.0
"""``edgepack device up|down|status``: virtual boards (sshd on 127.0.0.1 + qemu-user)."""

from __future__ import annotations

import argparse
from typing import Any

from edgepack.device import virtual
from edgepack.ui import emit, format_table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("device", help="start and stop virtual boards",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="device_command", metavar="ACTION")
    sub.required = True
    p_up = sub.add_parser("up", help="start a virtual board: edgepack device up virtual:hi3559a")
    p_up.add_argument("board", metavar="virtual:BOARD")
    p_up.add_argument("--serial", action="store_true", help="also start a serial console")
    p_up.add_argument("--json", action="store_true", help="print JSON")
    p_up.set_defaults(func=_up)
    p_down = sub.add_parser("down", help="stop virtual boards (all, or the one named)")
    p_down.add_argument("board", metavar="virtual:BOARD", nargs="?")
    p_down.add_argument("--json", action="store_true", help="print JSON")
    p_down.set_defaults(func=_down)
    p_status = sub.add_parser("status", help="list virtual boards")
    p_status.add_argument("--json", action="store_true", help="print JSON")
    p_status.set_defaults(func=_status)


def _up_text(d: dict[str, Any]) -> str:
    lines = [
        f"virtual:{d['board']} is up (sshd pid {d['pids']['sshd']}, port {d['port']})",
        f"  target:           {d['target']}",
        f"  device root:      {d['root']}",
        f"  user key:         {d['identity']}",
        f"  known_hosts file: {d['known_hosts']}",
        f"  known_hosts line: {d['known_hosts_entry']}",
    ]
    if d.get("serial"):
        lines.append(f"  serial target:    {d['serial'].get('target', '?')}")
    lines.append(f"  use: edgepack bench ... --board {d['board']} --target '{d['target']}' "
                 f"--known-hosts {d['known_hosts']}")
    return "\n".join(lines)


def _up(args: argparse.Namespace) -> int:
    vb = virtual.up(virtual.parse_virtual(args.board), serial=args.serial)
    emit(vb.to_json(), args.json, _up_text)
    return 0


def _down(args: argparse.Namespace) -> int:
    board = virtual.parse_virtual(args.board) if args.board else None
    stopped = virtual.down(board)
    emit({"stopped": stopped}, args.json,
         lambda d: "stopped: " + (", ".join(d["stopped"]) or "nothing was running"))
    return 0


def _status(args: argparse.Namespace) -> int:
    boards = virtual.status()
    emit(boards, args.json, lambda bs: format_table(
        ["board", "running", "port", "target"],
        [[b["board"], "yes" if b["running"] else "no", str(b["port"]), b["target"]]
         for b in bs]) if bs else "no virtual boards")
    return 0
