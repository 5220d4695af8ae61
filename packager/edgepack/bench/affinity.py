# SPDX-License-Identifier: Apache-2.0
"""Which CPUs a bench runs on: ``--cpus LIST`` or ``--cluster NAME`` (docs/cli.md).

A board file lists its CPU clusters (``cpu.cores``: model, count, mhz). The device says which of
its CPUs belong together through the maximum frequency each reports (HELLO facts, ``cpus[]``
from cpufreq): the clusters of the board file, fastest first, are matched to the device's
frequency groups, fastest first. ``big`` is the fastest cluster, ``little`` the slowest. The
runner then pins its threads there (``edgepack-run --cpus``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgepack.errors import DeviceError, UsageError
from edgepack.spec.boards import Board

MAX_CPU = 1023  # as edgepack-run --cpus and ep_options_set_cpus


def parse_cpu_list(text: str, flag: str = "--cpus") -> tuple[int, ...]:
    """``"0,2-3"`` -> ``(0, 2, 3)``; the same rules as ``edgepack-run --cpus``."""
    cpus: list[int] = []
    for item in text.split(","):
        lo_text, dash, hi_text = item.partition("-")
        if not lo_text.isdigit() or (dash and not hi_text.isdigit()):
            raise UsageError(f"{flag} {text}: '{item}' is not a CPU number or range like 4-7")
        lo, hi = int(lo_text), int(hi_text) if dash else int(lo_text)
        if hi > MAX_CPU:
            raise UsageError(f"{flag} {text}: CPU numbers are 0..{MAX_CPU}")
        if hi < lo:
            raise UsageError(f"{flag} {text}: the range '{item}' runs backwards")
        for cpu in range(lo, hi + 1):
            if cpu in cpus:
                raise UsageError(f"{flag} {text}: CPU {cpu} is listed twice")
            cpus.append(cpu)
    return tuple(cpus)


def cluster_names(board: Board) -> list[str]:
    return ["big", "little", *(c.model for c in board.cpu.cores)]


def cluster_cpus(board: Board, facts: Mapping[str, Any], cluster: str) -> tuple[int, ...]:
    """The device CPUs of ``cluster`` (``big``, ``little`` or a model of the board file)."""
    names = cluster_names(board)
    if cluster not in names:
        raise UsageError(f"--cluster {cluster}: board {board.id} has the clusters "
                         f"{', '.join(names)}")
    clusters = sorted(board.cpu.cores, key=lambda c: -(c.mhz or 0))
    if len(clusters) < 2 or any(c.mhz is None for c in clusters):
        raise UsageError(f"--cluster {cluster}: {board.path} lists "
                         f"{len(clusters)} CPU cluster(s)"
                         + ("" if len(clusters) < 2 else " without mhz for each")
                         + "; give --cpus LIST instead")
    if cluster == "big":
        index = 0
    elif cluster == "little":
        index = len(clusters) - 1
    else:
        index = next(i for i, c in enumerate(clusters) if c.model == cluster)
    groups: dict[int, list[int]] = {}
    for entry in facts.get("cpus") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("max_khz"), int) \
                and isinstance(entry.get("cpu"), int):
            groups.setdefault(int(entry["max_khz"]), []).append(int(entry["cpu"]))
    if len(groups) != len(clusters):
        raise DeviceError(
            f"--cluster {cluster}: the device reports {len(groups)} CPU frequency group(s) "
            f"(cpufreq), the board file {len(clusters)} clusters; the CPUs of a cluster are "
            "not known", hint="give --cpus LIST (CPU numbers as in /proc/cpuinfo)")
    ordered = [sorted(groups[khz]) for khz in sorted(groups, reverse=True)]
    return tuple(ordered[index])
