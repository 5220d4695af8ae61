# SPDX-License-Identifier: Apache-2.0
"""The ``Transport`` protocol and the scheme registry (one module per transport, labgrid style).

A transport reaches one device and can: run a shell command, upload a file, and open a byte
stream to an agent it starts. It declares what its link needs from the agent client in
``link`` (``Link``). ``start_agent`` builds on those to bring up an ``AgentClient``, uploading
the agent binary when it is missing or outdated.

Each ``--target`` scheme is registered here with the module function that parses its URIs into
a ``Target`` and the one that connects to it (``docs/adding-a-transport.md``); modules are
imported only when a target uses them. ``register_transport`` adds one (``device/fake.py``, a
unit-test aid, is registered that way by the tests that use it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edgepack.device.client import AgentClient, ByteStream, sha256_file
from edgepack.device.protocol import DEFAULT_CHUNK_SSH
from edgepack.device.targets import Target
from edgepack.errors import DeviceError, UsageError
from edgepack.spec.boards import Console


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
    # serial: the board file's console (login, prompts, baud, line settings); the URI's
    # user= and baud= override it; None: spec.boards.DEFAULT_CONSOLE.
    console: Console | None = None


@dataclass(frozen=True)
class Link:
    """What a transport's link needs from the agent client."""

    chunk_size: int = DEFAULT_CHUNK_SSH  # PUT_CHUNK payload size
    retransmit: bool = False  # frames can be lost or corrupted (serial): resend on timeout
    compress: bool = False  # DEFLATE chunks when the agent decodes them (slow links)


class Transport(Protocol):
    target: Target

    @property
    def link(self) -> Link:
        """What this link needs from the agent client."""

    def run_command(self, command: str, timeout: float = 60.0) -> CommandResult:
        """Run a shell command line on the device."""

    def upload(self, local: Path, remote: str, mode: int = 0o755) -> None:
        """Copy a file to an absolute device path, replacing it atomically; verified."""

    def open_stream(self, command: str) -> ByteStream:
        """Start ``command`` (an agent) and return a byte stream to its stdin/stdout."""

    def close(self) -> None: ...


TransportFactory = Callable[[Target, TransportOptions], Transport]
TargetParser = Callable[[str, str], Target]  # (uri, flag) -> Target


@dataclass(frozen=True)
class Scheme:
    """One ``--target`` scheme: functions as objects or ``"module:function"`` strings."""

    parse: str | TargetParser
    connect: str | TransportFactory | None  # None: parse returns another scheme's target
    usage: str  # the URI form, for messages


_REGISTRY: dict[str, Scheme] = {
    "ssh": Scheme("edgepack.device.ssh:parse_uri", "edgepack.device.ssh:connect",
                  "ssh://user@host[:port]"),
    "serial": Scheme("edgepack.device.serial:parse_uri", "edgepack.device.serial:connect",
                     "serial:///dev/ttyX[?baud=115200]"),
    "labgrid": Scheme("edgepack.device.labgrid:parse_labgrid",
                      "edgepack.device.labgrid:connect", "labgrid://PLACE"),
    # A running virtual board: resolves to its ssh:// or serial:// target.
    "virtual": Scheme("edgepack.device.virtual:resolve_target", None, "virtual:BOARD[/serial]"),
}


def register_transport(scheme: str, *, parse: str | TargetParser,
                       connect: str | TransportFactory | None, usage: str) -> None:
    """Add (or replace) the transport of ``scheme``."""
    _REGISTRY[scheme] = Scheme(parse, connect, usage)


def unregister_transport(scheme: str) -> None:
    _REGISTRY.pop(scheme, None)


def schemes() -> dict[str, str]:
    """Registered schemes and their URI forms."""
    return {name: s.usage for name, s in _REGISTRY.items()}


def _resolve(entry: object, scheme: str) -> Callable[..., object]:
    if not isinstance(entry, str):
        assert callable(entry)
        return entry
    module_name, _, func = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        raise DeviceError(f"the {scheme} transport is not available in this edgepack "
                          "build") from None
    found: Callable[..., object] = getattr(module, func)
    return found


def parse_uri(uri: str, flag: str = "--target") -> Target:
    """A ``--target`` URI parsed by its scheme's transport (``targets.parse_target``)."""
    scheme = uri.partition(":")[0] if ":" in uri else ""
    entry = _REGISTRY.get(scheme)
    if entry is None:
        forms = " or ".join(s.usage for s in _REGISTRY.values())
        raise UsageError(f"{flag} {uri!r}: unknown scheme; use {forms}")
    target = _resolve(entry.parse, scheme)(uri, flag)
    assert isinstance(target, Target)
    return target


def connect(target: Target, options: TransportOptions) -> Transport:
    entry = _REGISTRY.get(target.scheme)
    if entry is None or entry.connect is None:
        raise UsageError(f"--target {target.uri}: no transport for scheme {target.scheme!r}")
    factory: TransportFactory = _resolve(entry.connect, target.scheme)  # type: ignore[assignment]
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
        _tune(transport, client)
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
    _tune(transport, client)
    return client, True


def _tune(transport: Transport, client: AgentClient) -> None:
    """A link with a faster mode for the agent's frames (serial: ``BAUD``) switches now."""
    tune = getattr(transport, "tune_link", None)
    if tune is not None:
        tune(client)


@dataclass(frozen=True)
class AgentSession:
    agent: AgentClient
    uploaded: bool  # the agent binary had to be uploaded first
    root: str  # the install root on the device


@contextmanager
def agent_session(target: Target, options: TransportOptions, root: str,
                  agent_binary: Path | None) -> Iterator[AgentSession]:
    """Connect to ``target``, start (or upload and start) the agent under ``root``; on exit
    say BYE and close the agent's stream and the link, whatever happened inside."""
    transport = connect(target, options)
    try:
        agent, uploaded = start_agent(transport, root, agent_binary)
        try:
            yield AgentSession(agent, uploaded, root)
        finally:
            agent.bye()
            agent.stream.close()
    finally:
        transport.close()


def _try_start(transport: Transport, command: str, timeout: float,
               retransmit: bool) -> AgentClient | None:
    stream = transport.open_stream(command)
    # A lossy link (serial) declares its own chunk size and asks for retransmission.
    link = transport.link
    client = AgentClient(stream, timeout=timeout, retransmit=retransmit or link.retransmit,
                         chunk_size=link.chunk_size,
                         device=transport.target.uri)
    client.compress = link.compress
    try:
        client.hello(timeout=20.0)
    except DeviceError:
        stream.close()
        return None
    return client
