# SPDX-License-Identifier: Apache-2.0
"""The C API: its rules checked from C (status/NULL/out-parameter rules, one code per error),
the runner's error lines and exit codes, and an app built with find_package(edgepack)
against the installed SDK, linked shared and static."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
from opened_artifact import open_demo
from sdk_host import CMAKE, SDK, SdkBuild, run


def test_c_api_rules(sdk_host: SdkBuild, packed_demo: tuple[Path, Path]) -> None:
    epk, project = packed_demo
    k = project / "keys"
    out = run([sdk_host.c_api_test, epk, k / "dev1.key", k / "stranger.key", k / "publisher.pub"])
    assert out.stdout.strip() == "ok"


def test_c_api_v3_checked_runs_reads_labels_and_log(sdk_host: SdkBuild,
                                                     packed_demo: tuple[Path, Path]) -> None:
    """Run without inputs, read before a run, typed reads, labels and the log callback, from C
    (sdk_templates/tests/c_api/test_c_api_v3.c). The library prints nothing itself: its backend
    warning reaches the callback, so stderr stays empty."""
    demo = open_demo(packed_demo)
    proc = subprocess.run([str(sdk_host.build / "tests" / "c_api" / "test_c_api_v3"),
                           str(demo.epk), str(demo.key), str(demo.publisher)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stdout + proc.stderr
    assert proc.stderr == ""
    labelled = [m for m in demo.manifest["models"] if m.get("labels")]
    first = labelled[0]["labels"]
    assert f"label0={first[0]} count={len(first)}" in proc.stdout


def test_bound_inputs_are_read_in_place_for_one_run(sdk_host: SdkBuild,
                                                     packed_demo: tuple[Path, Path]) -> None:
    """ep_session_bind_tensor (API version 7) from C (sdk_templates/tests/c_api/
    test_bind_tensor.c): a bound frame gives the outputs of the same bytes copied in, the run
    reads the caller's memory as it is when it runs, the binding lasts one run (then the
    pipeline and its stages refuse to run until the input is set again), stage inputs bind in
    place when aligned and are copied when not, wrong sizes bind nothing."""
    demo = open_demo(packed_demo)
    proc = subprocess.run([str(sdk_host.build / "tests" / "c_api" / "test_bind_tensor"),
                           str(demo.epk), str(demo.key), str(demo.publisher)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


def _runner(sdk: SdkBuild, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(sdk.runner), *map(str, args)], capture_output=True, text=True,
                          check=False)


def test_runner_errors_one_line_each(sdk_host: SdkBuild, packed_demo: tuple[Path, Path],
                                     tmp_path: Path) -> None:
    epk, project = packed_demo
    k = project / "keys"
    base = (epk, *open_demo(packed_demo).key_args)
    truncated = tmp_path / "cut.epk"
    truncated.write_bytes(epk.read_bytes()[:500])
    tampered = tmp_path / "flip.epk"
    data = bytearray(epk.read_bytes())
    data[len(data) // 2] ^= 0x40
    tampered.write_bytes(bytes(data))
    empty = tmp_path / "none"
    empty.mkdir()
    proc = _runner(sdk_host, *base, "--outputs", tmp_path / "probe")
    assert proc.returncode == 0, proc.stderr
    cases = {
        "truncated": ((truncated, *base[1:]), 12, "artifact invalid (layout)"),
        "tampered": ((tampered, *base[1:]), 12, "artifact invalid (signature)"),
        "wrong key": ((epk, "--key", k / "dev2.pub", "--publisher", k / "publisher.pub"), 11,
                      "not an X25519 private key"),
        "foreign": ((epk, "--key", k / "stranger.key", "--publisher", k / "publisher.pub"), 12,
                    "artifact invalid (not_recipient)"),
        "counter": ((*base, "--min-counter", "999999"), 12, "artifact invalid (counter)"),
        "unknown stage": ((*base, "--stage", "nope"), 13, "unknown stage 'nope'"),
        "missing input": ((*base, "--inputs", empty), 13, "does not exist"),
        "usage": ((epk,), 2, "missing --key"),
    }
    for name, (args, code, text) in cases.items():
        proc = _runner(sdk_host, *args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == code, (name, proc.returncode, proc.stderr)
        assert len(lines) == 1 and lines[0].startswith("edgepack-run: error: "), (name, lines)
        assert text in lines[0], (name, lines)


def test_runner_refuses_wrong_dtype_and_shape(sdk_host: SdkBuild, packed_demo: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    demo = open_demo(packed_demo)
    base = (demo.epk, *demo.key_args)
    # The manifest names the pipeline inputs with their dtype and shape.
    first = demo.manifest["pipeline"]["inputs"][0]
    shape = tuple(first["shape"])
    for name, array, text in (
        ("dtype", np.zeros(shape, np.float32), "must be " + first["dtype"]),
        ("shape", np.zeros((*shape, 1), np.dtype(first["dtype"])), "must have shape"),
    ):
        d = tmp_path / name
        d.mkdir()
        np.save(d / f"{first['name']}.npy", array)
        proc = _runner(sdk_host, *base, "--inputs", d)
        assert proc.returncode == 11, (name, proc.stderr)
        assert text in proc.stderr, (name, proc.stderr)


def test_example_app_with_find_package(sdk_host: SdkBuild, packed_demo: tuple[Path, Path],
                                       tmp_path: Path) -> None:
    epk, project = packed_demo
    k = project / "keys"
    assert (sdk_host.prefix / "lib" / "cmake" / "edgepack" / "edgepackConfig.cmake").is_file()
    for linkage in ("OFF", "ON"):
        build = tmp_path / f"app-static-{linkage}"
        run([CMAKE, "-S", SDK / "examples" / "app", "-B", build, "-G", "Ninja",
             f"-DCMAKE_PREFIX_PATH={sdk_host.prefix}", f"-DEDGEPACK_APP_STATIC={linkage}"])
        run([CMAKE, "--build", build])
        out = run([build / "example_app", epk, k / "dev2.key", k / "publisher.pub"],
                  env={"LD_LIBRARY_PATH": str(sdk_host.prefix / "lib")}).stdout
        assert "stages" in out and "output " in out, out


def test_shared_library_has_a_versioned_soname(sdk_host: SdkBuild) -> None:
    lib = sdk_host.prefix / "lib"
    real = (lib / "libedgepack.so").resolve()
    assert (lib / "libedgepack.so").is_symlink() and (lib / "libedgepack.so.0").is_symlink()
    assert real.name.startswith("libedgepack.so.0.") and real.is_file()
    dynamic = run(["readelf", "-d", real]).stdout
    assert "Library soname: [libedgepack.so.0]" in dynamic
    needed = run(["readelf", "-d", sdk_host.build / "tests" / "c_api" / "test_c_api_v3"]).stdout
    assert "Shared library: [libedgepack.so.0]" in needed


def test_camera_frame_conversion_against_a_reference(sdk_host: SdkBuild) -> None:
    """NV12/NV21 within 1 of a double-precision BT.601 reference, packed formats exact, padded
    row strides honoured, bad frames refused (sdk_templates/tests/c_api/image_test.cpp); the
    session path (ep_session_set_image) is in test_c_api_v3.c."""
    out = run([sdk_host.build / "tests" / "c_api" / "image_test"])
    assert out.stdout.strip() == "ok" and out.stderr == ""
