# SPDX-License-Identifier: Apache-2.0
"""``edgepack boards`` and ``edgepack keys``: in process through cli.main, and once as a process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edgepack.artifact import keys
from edgepack.cli import main
from edgepack.errors import KeyFileError

REPO = Path(__file__).resolve().parents[2]


def test_boards_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["id", "name", "arch", "processors", "toolchains"]
    hi = next(line for line in lines if line.startswith("hi3559a "))
    assert "npu(nnie)" in hi and "aarch64-himix100-linux, aarch64-linux-gnu" in hi
    assert any(line.startswith("rpi4-armhf ") and " armhf " in line for line in lines)


def test_boards_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_id = {b["id"]: b for b in data}
    assert set(by_id) >= {"hi3559a", "rpi4", "rpi4-armhf", "jetson-nano", "jetson-orin-nano",
                          "host"}
    npu = next(p for p in by_id["hi3559a"]["processors"] if p["id"] == "npu")
    assert npu["backend"] == "nnie" and "Conv" in npu["ops"]
    assert by_id["host"]["processors"][0]["ops"] == "all"
    assert by_id["rpi4-armhf"]["cpu"]["flags"][-1] == "-mfloat-abi=hard"


def test_keys_new_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "keys" / "dev1.key"
    assert main(["keys", "new", "device", "--out", str(out), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert made["public"] == str(tmp_path / "keys" / "dev1.pub")
    assert made["kind"] == "device"
    assert made["fingerprint"] == keys.fingerprint(keys.load_device_public(out))
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    assert main(["keys", "show", made["public"]]) == 0
    text = capsys.readouterr().out
    assert "device public key (X25519)" in text and made["fingerprint"] in text

    assert main(["keys", "show", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["kind"], shown["form"], shown["fingerprint"]) == \
        ("device", "private", made["fingerprint"])


def test_keys_new_refuses_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "publisher.key"
    assert main(["keys", "new", "publisher", "--out", str(out)]) == 0
    first = out.read_bytes()
    capsys.readouterr()
    assert main(["keys", "new", "publisher", "--out", str(out)]) == KeyFileError.exit_code
    err = capsys.readouterr().err
    assert err.startswith(f"edgepack: error: {out}: already exists") and "--force" in err
    assert "Traceback" not in err
    assert out.read_bytes() == first
    assert main(["keys", "new", "publisher", "--out", str(out), "--force"]) == 0
    assert out.read_bytes() != first


def test_keys_show_wrong_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["keys", "show", str(tmp_path / "notes.txt")]) == KeyFileError.exit_code
    assert "notes.txt: not a PEM file" in capsys.readouterr().err


def test_console_script_as_a_process(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("edgepack")
    assert script.is_file(), f"{script} missing: run `bash scripts/setup.sh` (pip install -e .)"
    env = dict(os.environ, PYTHONPATH=str(REPO / "packager"))
    run = subprocess.run([str(script), "keys", "new", "publisher",
                          "--out", str(tmp_path / "p.key"), "--json"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["kind"] == "publisher"
    again = subprocess.run([str(script), "keys", "new", "publisher",
                            "--out", str(tmp_path / "p.key")],
                           capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert again.returncode == KeyFileError.exit_code
    assert "already exists" in again.stderr and "Traceback" not in again.stderr


def test_exit_code_table_is_documented() -> None:
    """docs/errors.md lists every ExitCode with its number, and each error kind has its own."""
    from edgepack import errors

    doc = (REPO / "docs" / "errors.md").read_text()
    for code in errors.ExitCode:
        assert f"| {code.value} | {code.name} |" in doc, code
    kinds = [c for c in vars(errors).values()
             if isinstance(c, type) and issubclass(c, errors.EdgepackError)]
    codes = [c.exit_code for c in kinds if c is not errors.EdgepackError]
    assert len(codes) == len(set(codes)) and errors.ExitCode.CHECK_FAILED not in codes


def test_device_and_artifact_strings_reach_the_terminal_escaped(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A hostile CPU model or stage name cannot retitle the terminal or move the cursor."""
    from edgepack import ui
    from edgepack.commands import boards as boards_cmd
    from edgepack.errors import DeviceError

    evil = "A73\x1b]0;pwned\x07\x1b[2J\r\x9b31m"
    assert ui.terminal_safe(evil) == "A73\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x9b31m"
    assert ui.terminal_safe("a\tb\nc") == "a\tb\nc"
    ui.emit({"cpu": evil}, False, lambda d: f"cpu {d['cpu']}")
    ui.emit({"cpu": evil}, True, lambda d: "")
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "cpu A73\\x1b]0;pwned" in out and '"cpu": "A73\\u001b]0;pwned' in out

    def fail(_args: object) -> int:
        raise DeviceError(f"device said {evil}")

    monkeypatch.setattr(boards_cmd, "run", fail)
    assert main(["boards"]) == DeviceError.exit_code
    err = capsys.readouterr().err
    assert err.startswith("edgepack: error: device said A73\\x1b]0;pwned") and "\x1b" not in err
