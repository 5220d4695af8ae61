# SPDX-License-Identifier: Apache-2.0
"""--cpus lists and --cluster names: a board file's clusters matched to the device's cpufreq
groups (bench/affinity.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgepack.bench.affinity import cluster_cpus, parse_cpu_list
from edgepack.errors import DeviceError, UsageError
from edgepack.spec.boards import load_board


@pytest.mark.parametrize(("text", "cpus"), [
    ("0", (0,)), ("2,3", (2, 3)), ("4-7", (4, 5, 6, 7)), ("0,2-3,9", (0, 2, 3, 9)),
    ("1023", (1023,)),
])
def test_cpu_lists(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpu_list(text) == cpus


@pytest.mark.parametrize(("text", "why"), [
    ("", "is not a CPU number"), ("a", "is not a CPU number"), ("1,", "is not a CPU number"),
    ("-1", "is not a CPU number"), ("3-1", "runs backwards"), ("1,1", "listed twice"),
    ("0-2,2", "listed twice"), ("1024", "0..1023"),
])
def test_bad_cpu_lists_name_the_flag(text: str, why: str) -> None:
    with pytest.raises(UsageError, match=why) as err:
        parse_cpu_list(text)
    assert str(err.value).startswith(f"--cpus {text}:")


def _facts(*khz: int | None) -> dict[str, Any]:
    return {"cpus": [{"cpu": i, "governor": "schedutil", "cur_khz": k, "min_khz": k,
                      "max_khz": k} for i, k in enumerate(khz)]}


def test_hi3559a_clusters_from_cpufreq(tmp_path: Path) -> None:
    board = load_board("hi3559a", project_dir=tmp_path)  # 2x A73 @ 1800 + 2x A53 @ 1200
    facts = _facts(1200000, 1200000, 1800000, 1800000)  # the A53s boot first here
    assert cluster_cpus(board, facts, "big") == (2, 3)
    assert cluster_cpus(board, facts, "cortex-a73") == (2, 3)
    assert cluster_cpus(board, facts, "little") == (0, 1)
    assert cluster_cpus(board, facts, "cortex-a53") == (0, 1)


def test_cluster_errors(tmp_path: Path) -> None:
    board = load_board("hi3559a", project_dir=tmp_path)
    with pytest.raises(UsageError, match="has the clusters big, little, cortex-a73, cortex-a53"):
        cluster_cpus(board, _facts(1, 1, 2, 2), "medium")
    # qemu-user or a kernel without cpufreq: one frequency group (or none) is no cluster map.
    no_map: tuple[dict[str, Any], ...] = (_facts(1800000, 1800000, 1800000, 1800000),
                                          {"cpus": []}, {})
    for facts in no_map:
        with pytest.raises(DeviceError, match="give --cpus LIST"):
            cluster_cpus(board, facts, "big")
    with pytest.raises(UsageError, match="CPU cluster"):
        cluster_cpus(load_board("rpi4", project_dir=tmp_path), _facts(1500000), "little")
