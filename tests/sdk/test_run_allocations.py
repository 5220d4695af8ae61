# SPDX-License-Identifier: Apache-2.0
"""Pipeline::run allocates nothing after the first run (runtime.h's promise): the C++ program
`alloc_test` counts global operator new calls (every thread's) while it runs the packed example
(detector -> crops -> classifier, the classifier a `map` step over the detected rows) on its
golden image, as a whole pipeline and stage by stage, with 1 and 2 kernel threads."""

from __future__ import annotations

from pathlib import Path

import pytest
from opened_artifact import open_demo
from sdk_host import SdkBuild, run


@pytest.mark.parametrize("threads", [1, 2])
def test_runs_after_the_first_allocate_nothing(sdk_host: SdkBuild,
                                               packed_demo: tuple[Path, Path], tmp_path: Path,
                                               threads: int) -> None:
    demo = open_demo(packed_demo)
    rows = demo.npy(demo.manifest["golden"]["outputs"]["detector.boxes"]["section"]).shape[0]
    assert rows > 0, "the golden image has no detections: the map step would not run"
    proc = run([sdk_host.build / "tests" / "alloc_test", demo.epk, demo.key, demo.publisher,
                demo.write_golden_inputs(tmp_path / "in"), "--threads", str(threads),
                "--runs", "4"])
    counts: dict[str, dict[str, int]] = {}
    for line in proc.stdout.splitlines():
        case, *fields = line.split()
        counts[case] = {f.split("=")[0]: int(f.split("=")[1]) for f in fields}
    assert "pipeline" in counts and any(c.startswith("stage:") for c in counts), proc.stdout
    assert counts["pipeline"]["runs"] == rows, proc.stdout  # the map step ran every row
    later = {case: c["later"] for case, c in counts.items()}
    assert later == dict.fromkeys(counts, 0), proc.stdout
