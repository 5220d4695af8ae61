# SPDX-License-Identifier: Apache-2.0
"""The command line as a user reads it: help and default on every option, one meaning of
``--json``, docs/cli.md generated from the parser, ``bench --json FILE`` deprecated, and
``edgepack device list``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from edgepack.cli import build_parser
from edgepack.cli import main as cli_main
from edgepack.cliformat import options_without_help, render_markdown, walk
from edgepack.device.listing import serial_targets, ssh_targets
from edgepack.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]


def test_every_option_has_help() -> None:
    assert options_without_help(build_parser()) == []


def test_defaults_are_shown(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli_main(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "timed iterations (default: as many as fit in about 20 s, 10 to 100" in out
    assert "ones (default: 2)" in out and "every core of the device (default: 1)" in out
    assert "(default: False)" not in out and "(default: None)" not in out


def test_json_means_print_json_everywhere() -> None:
    """Every ``--json`` is a flag that prints JSON on stdout; files are ``--out-json FILE``."""
    seen = []
    for path, p in walk(build_parser()):
        for action in p._actions:
            if "--json" in action.option_strings:
                seen.append(path)
                assert action.default is False and action.const is True, path
                assert "print" in (action.help or "") and "JSON" in (action.help or ""), path
                if isinstance(action, argparse._StoreTrueAction):
                    continue
                assert path == ("bench",) and action.nargs == "?"  # the deprecated --json FILE
    assert len(seen) >= 10


def test_docs_cli_md_is_generated_from_the_parser() -> None:
    doc = (REPO / "docs" / "cli.md").read_text()
    assert doc == render_markdown(build_parser()), \
        "docs/cli.md is stale: run python -m edgepack.cliformat > docs/cli.md"
    assert "(errors.md)" in doc and "## edgepack device list" in doc


def test_bench_json_file_is_deprecated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["bench", str(tmp_path / "missing.epk"), "--board", "hi3559a", "--target",
            "ssh://root@192.0.2.1", "--key", str(tmp_path / "k"), "--publisher",
            str(tmp_path / "p")]
    code = cli_main([*base, "--json", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert "warning: --json" in err and "deprecated: use --out-json FILE" in err
    assert code != 0 and err.count("edgepack: error:") == 1
    code = cli_main([*base, "--json", "a.json", "--out-json", "b.json"])
    assert code == ExitCode.USAGE and "--out-json FILE once" in capsys.readouterr().err


def test_device_list_reads_known_hosts_and_serial_adapters(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("[127.0.0.1]:2222 ssh-ed25519 AAAA\nboard1,10.0.0.5 ssh-rsa AAAA\n"
                  "|1|hashed|= ssh-rsa AAAA\n# comment\n")
    hosts = [t.target for t in ssh_targets(kh)]
    assert hosts == ["ssh://USER@127.0.0.1:2222", "ssh://USER@board1", "ssh://USER@10.0.0.5"]
    assert ssh_targets(tmp_path / "absent") == []
    dev = tmp_path / "dev"
    (dev / "serial" / "by-id").mkdir(parents=True)
    for name in ("ttyUSB0", "ttyACM1", "ttyS0"):
        (dev / name).touch()
    (dev / "serial" / "by-id" / "usb-FTDI_FT232R-if00").symlink_to(dev / "ttyUSB0")
    serial = {t.detail: t.target for t in serial_targets(dev)}
    assert set(serial) == {str(dev / "ttyUSB0"), str(dev / "ttyACM1")}
    assert serial[str(dev / "ttyUSB0")].endswith("by-id/usb-FTDI_FT232R-if00?baud=115200")
    assert cli_main(["device", "list", "--known-hosts", str(kh), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"target": "ssh://USER@board1", "kind": "ssh", "state": "pinned",
            "detail": f"ssh-rsa in {kh}"} in listed
