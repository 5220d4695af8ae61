# SPDX-License-Identifier: Apache-2.0
"""The ``Transport`` protocol and its registry (one module per transport, labgrid style).

A transport reaches one device and can: run a shell command, upload a file, and open a byte
stream to an agent it starts. ``start_agent`` builds on those three to bring up an
``AgentClient``, uploading the agent binary when it is missing or outdated.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edgepack.device.client import AgentClient, ByteStream, sha256_file
from edgepack.device.protocol import DEFAULT_CHUNK_SSH
from edgepack.device.targets import Target
from edgepack.errors import DeviceError, UsageError


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class TransportOptions:
    known_hosts: Path | None = None  # ssh: None -> edgepack's own file
    trust_new_host: bool = False
    identity: Path | None = None
    connect_timeout: float = 10.0


class Transport(Protocol):
    target: Target

    def run_command(self, command: str, timeout: float = 60.0) -> CommandResult:
        """Run a shell command line on the device."""

    def upload(self, local: Path, remote: str, mode: int = 0o755) -> None:
        """Copy a file to an absolute device path, replacing it atomically; verified."""

    def open_stream(self, command: str) -> ByteStream:
        """Start ``command`` (an agent) and return a byte stream to its stdin/stdout."""

    def close(self) -> None: ...


TransportFactory = Callable[[Target, TransportOptions], Transport]

# scheme -> "module:function"; modules are imported only when a target needs them.
_REGISTRY: dict[str, str | TransportFactory] = {
    "ssh": "edgepack.device.ssh:connect",
    "serial": "edgepack.device.serial:connect",
    "labgrid": "edgepack.device.labgrid:connect",  # a place in a labgrid farm
}


def register_transport(scheme: str, factory: TransportFactory | str) -> None:
    _REGISTRY[scheme] = factory


def connect(target: Target, options: TransportOptions) -> Transport:
    entry = _REGISTRY.get(target.scheme)
    if entry is None:
        raise UsageError(f"--target {target.uri}: no transport for scheme {target.scheme!r}")
    if isinstance(entry, str):
        module_name, _, func = entry.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            raise DeviceError(f"the {target.scheme} transport is not available in this "
                              "edgepack build") from None
        factory: TransportFactory = getattr(module, func)
    else:
        factory = entry
    return factory(target, options)


def agent_path(root: str) -> str:
    return f"{root.rstrip('/')}/.edgepack/bin/edgepack-agent"


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def start_agent(transport: Transport, root: str, agent_binary: Path | None, *,
                timeout: float = 60.0, retransmit: bool = False) -> tuple[AgentClient, bool]:
    """Start the agent under ``root``; returns the client and whether the agent was uploaded.

    The running agent's HELLO reports the SHA-256 of its own binary; when it differs from
    ``agent_binary`` (or no agent starts at all) the binary is uploaded and started again.
    """
    path = agent_path(root)
    command = f"exec {_quote(path)} --root {_quote(root)}"
    want = sha256_file(agent_binary) if agent_binary is not None else None
    client = _try_start(transport, command, timeout, retransmit)
    if client is not None and (want is None or (client.hello_info is not None
                               and client.hello_info.agent_sha256 == want)):
        return client, False
    if client is not None:
        client.bye()
        client.stream.close()
    if agent_binary is None:
        raise DeviceError(f"no agent at {path} on {transport.target.uri} and none to upload",
                          hint="build the SDK for the board (it contains bin/edgepack-agent)")
    transport.upload(agent_binary, path, 0o755)
    client = _try_start(transport, command, timeout, retransmit)
    if client is None:
        raise DeviceError(f"the agent uploaded to {path} does not start on "
                          f"{transport.target.uri}",
                          hint="check that the board's architecture matches the SDK build")
    return client, True


def _try_start(transport: Transport, command: str, timeout: float,
               retransmit: bool) -> AgentClient | None:
    stream = transport.open_stream(command)
    # A lossy link (serial) declares its own chunk size and asks for retransmission.
    client = AgentClient(stream, timeout=timeout,
                         retransmit=retransmit or bool(getattr(transport, "retransmit", False)),
                         chunk_size=int(getattr(transport, "chunk_size", DEFAULT_CHUNK_SSH)))
    client.compress = bool(getattr(transport, "compress", False))
    try:
        client.hello(timeout=20.0)
    except DeviceError:
        stream.close()
        return None
    return client
