# SPDX-License-Identifier: Apache-2.0
"""``run_bench``: benchmark an artifact on a board through the device agent.

Steps: open the artifact on the host with a recipient key held on the host (checks the keys,
reads the manifest and its golden data) → build or reuse the board's SDK (runner + agent) →
connect and start the agent (uploading it when missing or outdated) → preflight → upload what
the device lacks (content addressed) → golden-input run + benchmark run of ``edgepack-run`` →
fetch results → compare outputs with the host reference → report (``edgepack.report/2``).

Keys (docs/keys.md): no private key is ever written to the device by the bench. With
``device_key`` set, the runner reads the key the device made at provisioning
(``<root>/.edgepack/keys/<name>.key``); otherwise the host-held key (a fleet key) reaches the
runner through its stdin pipe (``edgepack-run --key -``).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from edgepack import __version__
from edgepack.artifact import golden as reference_data
from edgepack.artifact.container import open_artifact, read_file
from edgepack.artifact.keys import load_device_private, load_publisher_public
from edgepack.bench.affinity import cluster_cpus
from edgepack.bench.inputs import BenchInputs, load_inputs, reference_outputs
from edgepack.bench.plan import DEFAULT_WARMUP, Plan, RunProgress, plan_iterations
from edgepack.bench.report import (
    REPORT_SCHEMA,
    compare_output,
    run_facts,
    summarize,
    throughput,
    validate_report,
)
from edgepack.build.elfinfo import required_glibc
from edgepack.device.client import AgentClient, AgentError, Hello, RunResult
from edgepack.device.targets import Target, check_install_root, is_this_host, parse_target
from edgepack.device.transport import TransportOptions, agent_session
from edgepack.errors import DeviceError, UsageError
from edgepack.spec.arch import ARCHES
from edgepack.spec.boards import Board, load_board
from edgepack.ui import Progress

# uname -m values that run each board architecture.
MACHINES = {a.name: set(a.uname) for a in ARCHES.values()}
RUN_DIR = "bench"


@dataclass
class BenchOptions:
    artifact: Path
    board: str
    target: str
    key: Path | None  # a recipient's private key held on the host: reads the golden reference
    publisher: Path
    iterations: int | None = None  # None: --duration, else as many as fit (bench/plan.py)
    warmup: int = DEFAULT_WARMUP
    threads: int = 1  # 0: every core the device has online (or of cpus/cluster)
    cpus: tuple[int, ...] | None = None  # --cpus: the runner's threads pinned there
    cluster: str | None = None  # --cluster: big, little or a model of the board file
    known_hosts: Path | None = None
    trust_new_host: bool = False
    tolerance: float = 1e-3
    min_cosine: float = 0.999
    sdk_dir: Path | None = None  # a built SDK tree (bin/edgepack-run, bin/edgepack-agent)
    run_timeout_s: float = 900.0
    profile: bool = False  # edgepack-run --profile on the timed runs: report["profile"]
    device_key: str | None = None  # name of a key provisioned on the device ("device")
    duration_s: float | None = None  # run the timed loop for about this long instead
    inputs: Path | None = None  # --input: .npy, image or folder for the timed runs
    project: Path | None = None  # --project: the host reference for --input runs from it
    log: Callable[[str], None] = field(default=lambda m: print(m, file=sys.stderr))


@dataclass(frozen=True)
class Golden:
    inputs: dict[str, bytes]  # name -> .npy bytes
    outputs: dict[str, reference_data.Reference]  # whole, or the summary of a large output


def load_golden(opts: BenchOptions) -> tuple[dict[str, Any], Golden, bytes]:
    data = read_file(opts.artifact)
    if opts.key is None:
        raise UsageError("the golden reference inside the artifact needs a recipient key held "
                         "on the host: give --key FILE (with --device-key it is used on the "
                         "host only)")
    device_key = load_device_private(opts.key)
    publisher = load_publisher_public(opts.publisher)
    opened = open_artifact(data, device_key, publisher)
    manifest: dict[str, Any] = json.loads(opened.manifest_bytes)
    golden = manifest.get("golden") or {}
    inputs = {n: reference_data.input_npy(g, opened.sections)
              for n, g in golden.get("inputs", {}).items()}
    outputs = {n: reference_data.read_output(g, opened.sections)
               for n, g in golden.get("outputs", {}).items()}
    return manifest, Golden(inputs, outputs), data


def sdk_for(board: Board, sdk_dir: Path | None) -> Path:
    if sdk_dir is not None:
        return sdk_dir
    from edgepack.build.sdkbuild import build_sdk
    from edgepack.build.sysroot import cache_root

    return build_sdk(board, cache_root() / "bench-sdk").sdk_dir


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


def preflight(hello: Hello, board: Board, need_bytes: int,
              need_glibc: str | None = None) -> list[str]:
    """Problems that make a bench run meaningless or impossible; empty when all is well.
    ``need_glibc``: the highest GLIBC_ the runner needs (``elfinfo.required_glibc``); the
    board's ``min_glibc`` when not given."""
    f = hello.facts
    problems = []
    machine = str(f.get("machine", ""))
    if machine not in MACHINES.get(board.arch, {board.arch}):
        problems.append(f"the device is {machine or 'unknown'}, board {board.id} is {board.arch}")
    glibc = f.get("glibc")
    need = need_glibc or board.min_glibc
    if glibc and _version_tuple(str(glibc)) < _version_tuple(need):
        problems.append(f"device glibc {glibc} is older than {need}, which edgepack-run needs "
                        f"(board {board.id}: min_glibc {board.min_glibc})")
    free = int(f.get("root_free_bytes", 0))
    if free < need_bytes:
        problems.append(f"{free} bytes free at {f.get('root')}, {need_bytes} needed")
    avail = int(f.get("mem_available_kb", -1))
    if 0 <= avail * 1024 < need_bytes:
        problems.append(f"only {avail} KiB of memory available")
    return problems


def _clocks(facts: dict[str, Any]) -> dict[str, Any]:
    return {"cpus": list(facts.get("cpus", [])), "thermal": list(facts.get("thermal", []))}


def _check(res: RunResult, what: str) -> None:
    if not res.ok:
        why = ("timed out" if res.timed_out else f"signal {res.signal}" if res.signal
               else f"exit code {res.exit_code}")
        tail = (res.stderr or res.stdout).decode(errors="replace").strip()[-800:]
        raise DeviceError(f"{what} failed on the device ({why}): {tail}")


def run_bench(opts: BenchOptions) -> dict[str, Any]:
    board = load_board(opts.board)
    target: Target = parse_target(opts.target)
    check_install_root(target)
    manifest, golden, artifact_bytes = load_golden(opts)
    own = load_inputs(opts.inputs, manifest, opts.log) if opts.inputs is not None else None
    own_ref = None
    if own is not None and opts.project is not None:
        opts.log(f"host reference on {own.source} (project {opts.project})")
        own_ref = reference_outputs(opts.project, manifest, board.id, own)
    sdk = sdk_for(board, opts.sdk_dir)
    runner, agent_bin = sdk / "bin" / "edgepack-run", sdk / "bin" / "edgepack-agent"
    for p in (runner, agent_bin):
        if not p.is_file():
            raise DeviceError(f"{p} missing from the SDK build for {board.id}")
    root = target.root or board.install_root
    opts.log(f"connecting to {target.uri}; the agent runs under {root}")
    options = TransportOptions(known_hosts=opts.known_hosts,
                               trust_new_host=opts.trust_new_host, console=board.console)
    with agent_session(target, options, root, agent_bin) as session:
        return _bench_on(session.agent, session.uploaded, opts, board, target, manifest,
                         golden, artifact_bytes, runner, own, own_ref)


def _bench_on(agent: AgentClient, agent_uploaded: bool, opts: BenchOptions, board: Board,
              target: Target, manifest: dict[str, Any], golden: Golden, artifact_bytes: bytes,
              runner: Path, own: BenchInputs | None = None,
              own_ref: dict[str, np.ndarray[Any, Any]] | None = None) -> dict[str, Any]:
    hello = agent.hello_info
    assert hello is not None
    need = len(artifact_bytes) * 2 + runner.stat().st_size
    problems = preflight(hello, board, need, required_glibc([runner]))
    if problems:
        raise DeviceError("preflight failed on " + target.uri + ": " + "; ".join(problems))
    files: list[tuple[str, bytes, int]] = [
        ("bin/edgepack-run", runner.read_bytes(), 0o755),
        (f"{RUN_DIR}/artifact.epk", artifact_bytes, 0o644),
        (f"{RUN_DIR}/keys/publisher.pub", opts.publisher.read_bytes(), 0o644),
    ]
    if own is not None:
        files += [(f"{RUN_DIR}/input/{name}.npy", data, 0o644)
                  for name, data in own.arrays.items()]
    total = sum(len(d) for _, d, _ in files)
    sent = wire = 0
    for remote, data, mode in files:
        with UploadDisplay(f"upload {remote}") as show:
            # The file installed there now is the base of a re-deploy: what it shares with
            # the new one is copied on the device (an artifact's unchanged sections).
            put = agent.put_bytes(data, progress=show, base=remote)
        agent.install(put.sha256, remote, mode)
        sent += put.bytes_sent
        wire += put.wire_bytes
    opts.log(f"uploaded {sent} of {total} bytes (the device had the rest), {wire} bytes on the "
             "wire")
    key_arg, key_pipe = _runner_key(agent, opts)
    cpus = opts.cpus
    if opts.cluster is not None:
        cpus = cluster_cpus(board, hello.facts, opts.cluster)
        opts.log(f"cluster {opts.cluster}: CPUs {','.join(map(str, cpus))}")
    threads = len(cpus) if cpus and opts.threads == 0 else resolve_threads(opts.threads,
                                                                             hello.facts)
    common = [f"{RUN_DIR}/artifact.epk", "--key", key_arg,
              "--publisher", f"{RUN_DIR}/keys/publisher.pub", "--threads", str(threads),
              *(["--cpus", ",".join(map(str, cpus))] if cpus else [])]
    # The golden inputs travel once, inside the artifact: the runner reads them from there.
    inputs = ["--inputs", "@golden"] if golden.inputs else []
    opts.log("golden-input run")
    # One timed run after the first (--bench 1) measures a run for the iteration plan.
    res = agent.run(["bin/edgepack-run", *common, *inputs, "--outputs", f"{RUN_DIR}/out",
                     "--bench", "1", "--json", f"{RUN_DIR}/golden.json"],
                    timeout_s=opts.run_timeout_s, stdin=key_pipe)
    _check(res, "golden-input run")
    plan = _plan(opts, json.loads(agent.get(f"{RUN_DIR}/golden.json")))
    if own is not None:  # the outputs of its first run are checked when there is a reference
        inputs = ["--inputs", f"{RUN_DIR}/input", "--outputs", f"{RUN_DIR}/out-input"]
    before = agent.hello().facts
    label = (f"benchmark: {plan.warmup} warmup + {plan.iterations} iterations"
             + (f" on {own.source}" if own is not None else ""))
    with RunProgress(label, plan.expected_s):
        res = agent.run(["bin/edgepack-run", *common, *inputs, "--bench", str(plan.iterations),
                         "--warmup", str(plan.warmup), "--json", f"{RUN_DIR}/bench.json",
                         *(["--profile"] if opts.profile else [])],
                        timeout_s=max(opts.run_timeout_s, 60.0 + 3.0 * plan.expected_s),
                        stdin=key_pipe)
    _check(res, "benchmark run")
    after = agent.hello().facts
    device_json: dict[str, Any] = json.loads(agent.get(f"{RUN_DIR}/bench.json"))
    outputs = []
    for name, ref in golden.outputs.items():
        got = np.load(io.BytesIO(agent.get(f"{RUN_DIR}/out/{name}.npy")), allow_pickle=False)
        outputs.append(ref.compare(name, got, opts.tolerance, opts.min_cosine))
    report = build_report(opts, board, target, hello, before, after, manifest,
                          artifact_bytes, runner, device_json, outputs,
                          {"bytes_total": total, "bytes_sent": sent, "bytes_on_wire": wire,
                           "agent_uploaded": agent_uploaded})
    report["conditions"]["plan"] = {"mode": plan.mode, "duration_s": plan.duration_s,
                                    "estimate_ms": plan.estimate_ms}
    report["input"] = own.describe() if own is not None else {"source": "golden",
                                                                "kind": "golden"}
    if own_ref is not None:
        checked = [compare_output(name, np.load(io.BytesIO(agent.get(
                       f"{RUN_DIR}/out-input/{name}.npy")), allow_pickle=False),
                       ref, opts.tolerance, opts.min_cosine) for name, ref in own_ref.items()]
        report["input"]["accuracy"] = {"passed": bool(checked) and all(
            o["passed"] for o in checked), "outputs": checked}
    validate_report(report)
    return report


def resolve_threads(threads: int, facts: dict[str, Any]) -> int:
    """``--threads 0``: every core the device has online (HELLO's ``cpu_cores``)."""
    if threads > 0:
        return threads
    cores = facts.get("cpu_cores") or len(facts.get("cpus") or []) or 1
    return max(1, int(cores))


def _plan(opts: BenchOptions, golden_run: dict[str, Any]) -> Plan:
    samples = golden_run.get("end_to_end", {}).get("samples") or []
    estimate = float(samples[0]) if samples else float(golden_run["first_inference_ms"])
    plan = plan_iterations(estimate, iterations=opts.iterations, duration_s=opts.duration_s,
                           warmup=opts.warmup)
    if plan.mode != "iterations":
        opts.log(f"one run takes {estimate:.3f} ms: {plan.iterations} iterations "
                 + (f"fill --duration {plan.duration_s:g} s" if plan.mode == "duration"
                    else "(default: about 20 s, 10 to 100 iterations)"))
    return plan


class UploadDisplay:
    """Progress of one upload (bar, rate and ETA on a terminal; plain lines otherwise), shown
    only once bytes actually travel: files the device already has stay silent. It counts the
    bytes that travel: what the device already holds (a resumed upload, or what a re-deploy
    copies from the installed file) is neither in the total nor in the rate."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Progress | None = None
        self.held = 0  # bytes the device had when the upload started

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if done >= total:
                return
            self.held = done
            self.bar = Progress(self.label, total=total - done, unit="B").__enter__()
        self.bar.advance(done - self.held - self.bar.done)

    def __enter__(self) -> UploadDisplay:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.bar is not None:
            self.bar.__exit__(exc_type, exc, tb)


def _runner_key(agent: AgentClient, opts: BenchOptions) -> tuple[str, bytes | None]:
    """The runner's ``--key`` argument and the bytes for its stdin pipe, if any."""
    if opts.device_key is not None:
        try:
            key = agent.keygen(opts.device_key, create=False)  # only looks the key up
        except AgentError as exc:
            if exc.code != "not_found":
                raise
            raise DeviceError(f"the device has no provisioned key {opts.device_key!r}",
                              hint="run: edgepack device provision TARGET --out keys/NAME.pub, "
                              "and pack the artifact to that public key") from None
        return key.path, None
    assert opts.key is not None
    return "-", opts.key.read_bytes()


def build_report(opts: BenchOptions, board: Board, target: Target, hello: Hello,
                 before: dict[str, Any], after: dict[str, Any], manifest: dict[str, Any],
                 artifact_bytes: bytes, runner: Path, device_json: dict[str, Any],
                 outputs: list[dict[str, Any]], transfer: dict[str, Any]) -> dict[str, Any]:
    load = device_json["load"]
    stages = [{"stage": s["stage"], "runs": int(s["runs"]), "ms": summarize(s["ms"]["samples"])}
              for s in device_json.get("stages", [])]
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "provenance": {
            "tool_version": __version__,
            "artifact": opts.artifact.name,
            "artifact_sha256": hashlib.sha256(artifact_bytes).hexdigest(),
            "package": manifest.get("package"),
            "board": board.id,
            "target": _redact(target),
            "agent_version": hello.agent_version,
            "agent_sha256": hello.agent_sha256,
            "runner_sha256": hashlib.sha256(runner.read_bytes()).hexdigest(),
            "sdk": {"edgepack_version": device_json.get("edgepack_version"),
                    "api_version": device_json.get("api_version")},
        },
        "device": before,
        "conditions": {"threads": int(device_json.get("threads", opts.threads)),
                       "warmup": int(device_json.get("warmup", 0)),
                       "iterations": int(device_json["iterations"]),
                       "cpus": device_json.get("cpus"),
                       "before": _clocks(before), "after": _clocks(after)},
        "load": {k: float(load[k]) for k in ("verify_ms", "decrypt_ms", "prepare_ms",
                                             "total_ms")},
        "first_inference_ms": float(device_json["first_inference_ms"]),
        "end_to_end": summarize(device_json["end_to_end"]["samples"]),
        "run": run_facts(target.uri, is_this_host(target), str(before.get("machine") or "")),
        "stages": stages,
        "memory": {"peak_rss_kib": int(device_json.get("peak_rss_kib", 0))},
        "accuracy": {"tolerance": opts.tolerance, "min_cosine": opts.min_cosine,
                     "passed": bool(outputs) and all(o["passed"] for o in outputs),
                     "outputs": outputs},
        "transfer": transfer,
    }
    report["throughput"] = throughput(report["end_to_end"])
    if isinstance(device_json.get("profile"), dict):
        report["profile"] = device_json["profile"]
    validate_report(report)
    return report


def _redact(target: Target) -> str:
    """The target without local file paths (identity), which say nothing about the device."""
    if target.scheme == "ssh":
        return f"ssh://{target.user}@{target.host}:{target.port}"
    if target.scheme == "labgrid":
        if not target.host:  # a place chosen by tags
            from edgepack.device.labgrid import place_of

            return f"labgrid://?tags={place_of(target).tag_text}"
        return f"labgrid://{target.host}"  # the place
    return f"serial://{target.device}" + (f"?baud={target.baud}" if target.baud else "")
