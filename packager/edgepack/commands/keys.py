# SPDX-License-Identifier: Apache-2.0
"""``edgepack keys``: create and inspect publisher (Ed25519) and device (X25519) key files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgepack.artifact import keys
from edgepack.ui import emit


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("keys", help="create and inspect key files",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION")
    sub.required = True

    new = sub.add_parser("new", help="generate a key pair",
                         description="Write a private key (PEM PKCS#8, mode 0600) to --out and "
                         "its public key beside it as <stem>.pub.")
    new.add_argument("kind", choices=["publisher", "device"],
                     help="publisher: Ed25519 signing key; device: X25519 recipient key")
    new.add_argument("--out", required=True, type=Path, metavar="FILE",
                     help="private key file to write, e.g. keys/publisher.key")
    new.add_argument("--force", action="store_true", help="replace existing key files")
    new.add_argument("--json", action="store_true", help="print JSON")
    new.set_defaults(func=run_new)

    show = sub.add_parser("show", help="print kind and fingerprint of a key file")
    show.add_argument("file", type=Path, metavar="FILE",
                      help="a key file (PEM): private or public, X25519 or Ed25519")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=run_show)


def run_new(args: argparse.Namespace) -> int:
    generate = keys.generate_publisher_key if args.kind == "publisher" else keys.generate_device_key
    pub = generate(args.out, force=args.force)
    info = keys.describe_key_file(args.out)
    data = {"private": str(args.out), "public": str(pub), "kind": info["kind"],
            "fingerprint": info["fingerprint"]}
    emit(data, args.json, lambda d: f"wrote {d['private']} (private, mode 0600) and "
         f"{d['public']}\n{d['kind']} key {d['fingerprint']}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    info = keys.describe_key_file(args.file)
    emit(info, args.json, lambda d: f"{d['path']}: {d['kind']} {d['form']} key "
         f"({d['algorithm']})\nfingerprint {d['fingerprint']}")
    return 0
