# SPDX-License-Identifier: Apache-2.0
"""``edgepack device up|down|status``: virtual boards (sshd on 127.0.0.1 + qemu-user);
``edgepack device list``: every target this machine can name;
``edgepack device provision``: the device creates its key and returns the public key."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgepack.commands import add_host_key_options
from edgepack.device import virtual
from edgepack.errors import UsageError
from edgepack.ui import emit, format_table


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("device", help="start and stop virtual boards",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="device_command", metavar="ACTION")
    sub.required = True
    p_up = sub.add_parser("up", help="start a virtual board: edgepack device up virtual:hi3559a")
    p_up.add_argument("board", metavar="virtual:BOARD", help="the board to emulate, e.g. "
                      "virtual:hi3559a (edgepack boards lists the ids)")
    p_up.add_argument("--serial", action="store_true", help="also start a serial console")
    p_up.add_argument("--json", action="store_true", help="print JSON")
    p_up.set_defaults(func=_up)
    p_down = sub.add_parser("down", help="stop virtual boards (all, or the one named)")
    p_down.add_argument("board", metavar="virtual:BOARD", nargs="?",
                        help="the board to stop (default: every running virtual board)")
    p_down.add_argument("--json", action="store_true", help="print JSON")
    p_down.set_defaults(func=_down)
    p_status = sub.add_parser("status", help="list virtual boards")
    p_status.add_argument("--json", action="store_true", help="print JSON")
    p_status.set_defaults(func=_status)
    p_list = sub.add_parser(
        "list", help="list the targets this machine can name: virtual boards, serial "
        "adapters, pinned SSH hosts")
    p_list.add_argument("--known-hosts", type=Path, metavar="FILE",
                        help="known_hosts file (default ~/.config/edgepack/known_hosts)")
    p_list.add_argument("--json", action="store_true", help="print JSON")
    p_list.set_defaults(func=_list)
    p_prov = sub.add_parser(
        "provision", help="create the device key on the device; write its public key",
        description="The agent creates an X25519 key on the device (0600, outside the "
        "content store); only the public key comes back, written to --out. Again on the same "
        "device: the same public key (the device keeps its key) unless --replace.")
    p_prov.add_argument("target", metavar="TARGET",
                        help="ssh://..., serial://... or virtual:BOARD[/serial]")
    p_prov.add_argument("--out", required=True, type=Path, metavar="FILE.pub",
                        help="where to write the public key (PEM), e.g. keys/board1.pub")
    p_prov.add_argument("--board", help="board id (default: the virtual board's)")
    p_prov.add_argument("--name", default="device", help="key name on the device")
    p_prov.add_argument("--replace", action="store_true",
                        help="make a new key even if the device has one (artifacts sealed to "
                        "the old key no longer open there)")
    p_prov.add_argument("--force", action="store_true",
                        help="overwrite --out even if it holds another key")
    add_host_key_options(p_prov)
    p_prov.add_argument("--sdk", type=Path, metavar="DIR",
                        help="a built SDK tree holding bin/edgepack-agent")
    p_prov.add_argument("--json", action="store_true", help="print JSON")
    p_prov.set_defaults(func=_provision)


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
    lines.append(f"  use: edgepack bench ... --board {d['board']} --target virtual:{d['board']}"
                 + (f"  (console: virtual:{d['board']}/serial)" if d.get("serial") else ""))
    return "\n".join(lines)


def _up(args: argparse.Namespace) -> int:
    from edgepack import api

    vb = api.device_up(virtual.parse_virtual(args.board), serial=args.serial)
    emit(vb.to_json(), args.json, _up_text)
    return 0


def _provision(args: argparse.Namespace) -> int:
    from edgepack.device.provision import ProvisionOptions, provision

    board = args.board
    if board is None:
        if not args.target.startswith("virtual:"):
            raise UsageError("--board is required unless TARGET is virtual:BOARD")
        board = virtual.parse_virtual(args.target).partition("/")[0]
    info = provision(ProvisionOptions(
        target=args.target, board=board, out=args.out, name=args.name, replace=args.replace,
        known_hosts=args.known_hosts, trust_new_host=args.trust_new_host, sdk_dir=args.sdk,
        force=args.force))
    emit(info, args.json, lambda d: (
        f"{'created' if d['created'] else 'kept'} device key {d['device_path']} on "
        f"{d['target']}\n  public key: {d['public_key']} ({d['fingerprint']})"))
    return 0


def _down(args: argparse.Namespace) -> int:
    from edgepack import api

    stopped = api.device_down(virtual.parse_virtual(args.board) if args.board else None)
    emit({"stopped": stopped}, args.json,
         lambda d: "stopped: " + (", ".join(d["stopped"]) or "nothing was running"))
    return 0


def _list(args: argparse.Namespace) -> int:
    from edgepack.device.listing import list_targets

    found = [t.to_json() for t in list_targets(args.known_hosts)]
    emit(found, args.json, lambda ts: format_table(
        ["target", "kind", "state", "detail"],
        [[t["target"], t["kind"], t["state"], t["detail"]] for t in ts])
        if ts else "no targets found (edgepack device up virtual:BOARD starts one)")
    return 0


def _status(args: argparse.Namespace) -> int:
    boards = virtual.status()
    emit(boards, args.json, lambda bs: format_table(
        ["board", "running", "port", "target"],
        [[b["board"], "yes" if b["running"] else "no", str(b["port"]), b["target"]]
         for b in bs]) if bs else "no virtual boards")
    return 0
