# SPDX-License-Identifier: Apache-2.0
"""``provision``: have the device create its X25519 key and bring back only the public key.

The agent generates the key on the board (``KEYGEN``, PROTOCOL.md section 8) and keeps it at
``<root>/.edgepack/keys/<name>.key``, mode 0600 in a 0700 folder, outside the content store and
outside every path INSTALL, GET and RUN accept. The public key is written as the same PEM
``edgepack keys new device`` writes, ready for the ``recipients`` of ``edgepack.toml``.
Running it again returns the same public key (the device keeps its key) unless ``replace``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from edgepack.artifact.keys import fingerprint
from edgepack.device.targets import check_install_root, parse_target
from edgepack.device.transport import TransportOptions, agent_session
from edgepack.errors import KeyFileError
from edgepack.fsutil import write_atomic
from edgepack.spec.boards import load_board


@dataclass(frozen=True)
class ProvisionOptions:
    target: str
    board: str
    out: Path
    name: str = "device"
    replace: bool = False
    known_hosts: Path | None = None
    trust_new_host: bool = False
    sdk_dir: Path | None = None  # a built SDK tree holding bin/edgepack-agent
    force: bool = False  # overwrite an existing --out file with another key


def provision(opts: ProvisionOptions) -> dict[str, Any]:
    from edgepack.bench.runner import sdk_for  # the agent binary comes from the board's SDK

    board = load_board(opts.board)
    target = parse_target(opts.target)
    check_install_root(target)
    agent_bin = sdk_for(board, opts.sdk_dir) / "bin" / "edgepack-agent"
    root = target.root or board.install_root
    options = TransportOptions(known_hosts=opts.known_hosts,
                               trust_new_host=opts.trust_new_host, console=board.console)
    with agent_session(target, options, root, agent_bin) as session:
        key = session.agent.keygen(opts.name, replace=opts.replace)
    public = X25519PublicKey.from_public_bytes(key.public)
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    if opts.out.exists() and not opts.force and opts.out.read_bytes() != pem:
        raise KeyFileError(f"{opts.out}: already holds another key; refusing to overwrite it",
                           hint="choose another --out, or pass --force")
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(opts.out, pem, 0o644)
    return {"target": target.uri, "board": board.id, "name": key.name,
            "device_path": f"{root.rstrip('/')}/{key.path}", "created": key.created,
            "public_key": str(opts.out), "fingerprint": fingerprint(public)}
