# SPDX-License-Identifier: Apache-2.0
"""Flash-and-test: run with a board, e.g.

    pytest examples/pytest-board --edgepack-board host                  # virtual:host
    pytest examples/pytest-board --edgepack-board rpi4 --edgepack-target ssh://pi@rpi4.lan
    pytest examples/pytest-board --edgepack-board rpi4 --edgepack-target labgrid://rpi4-1
"""

from __future__ import annotations

from typing import Any

import pytest

from edgepack.pytest_plugin import EdgepackDevice


def test_outputs_match_the_host_reference(edgepack_device: EdgepackDevice,
                                          packed: Any) -> None:
    report = edgepack_device.bench(packed.artifact, key=packed.key, publisher=packed.publisher,
                                   iterations=10, warmup=1)
    assert report["schema"].startswith("edgepack.report/")
    assert report["accuracy"]["passed"], report["accuracy"]
    assert report["end_to_end"]["n"] == 10
    assert report["end_to_end"]["p50"] < 100.0  # ms; a latency budget for this model


def test_a_timed_run(edgepack_device: EdgepackDevice, packed: Any) -> None:
    # as many iterations as fit in one second, instead of a fixed count
    report = edgepack_device.bench(packed.artifact, key=packed.key, publisher=packed.publisher,
                                   duration=1.0, warmup=0)
    assert report["conditions"]["plan"]["mode"] == "duration"
    assert report["end_to_end"]["n"] >= 1 and report["accuracy"]["passed"]


def test_board_answers(edgepack_device: EdgepackDevice) -> None:
    out = edgepack_device.run("echo ready")
    assert (out.exit_code, out.stdout.strip()) == (0, "ready")


@pytest.mark.edgepack_board("rpi4", "rpi4-armhf")
def test_only_on_a_raspberry_pi(edgepack_device: EdgepackDevice) -> None:
    out = edgepack_device.run("cat /proc/device-tree/model")
    assert "Raspberry Pi 4" in out.stdout
