# SPDX-License-Identifier: Apache-2.0
"""Host keys are pinned: unknown keys are refused with their fingerprint, changed keys always."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from edgepack.cli import main as cli_main
from edgepack.device.ssh import HostKeyRefused
from edgepack.device.targets import Target
from edgepack.device.transport import TransportOptions, connect


def _fingerprint(pubkey_file: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(pubkey_file)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[1]


def test_unknown_host_key_is_refused_with_fingerprint(
        vboard: dict[str, object], target: Target, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    with pytest.raises(HostKeyRefused) as err:
        connect(target, TransportOptions(known_hosts=known))
    host_pub = Path(str(vboard["dir"])) / "host_ed25519.pub"
    assert _fingerprint(host_pub) in str(err.value)
    assert "--trust-new-host" in str(err.value)
    assert not known.exists()


def test_trust_new_host_records_the_key(vboard: dict[str, object], target: Target,
                                        tmp_path: Path) -> None:
    known = tmp_path / "sub" / "known_hosts"
    connect(target, TransportOptions(known_hosts=known, trust_new_host=True)).close()
    line = known.read_text().strip()
    assert line == str(vboard["known_hosts_entry"])
    # Now pinned: a plain connect works without the flag.
    t = connect(target, TransportOptions(known_hosts=known))
    assert t.run_command("echo pinned").stdout == b"pinned\n"
    t.close()


def test_changed_host_key_is_refused_even_with_trust_new_host(
        vboard: dict[str, object], target: Target, tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")],
                   check=True)
    other = (tmp_path / "other.pub").read_text().split()
    known = tmp_path / "known_hosts"
    known.write_text(f"{target.host_key_name} {other[0]} {other[1]}\n")
    before = known.read_text()
    for trust in (False, True):
        with pytest.raises(HostKeyRefused, match="CHANGED") as err:
            connect(target, TransportOptions(known_hosts=known, trust_new_host=trust))
        assert _fingerprint(tmp_path / "other.pub") in str(err.value)
    assert known.read_text() == before


def test_device_status_lists_the_running_board(vboard: dict[str, object],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["device", "status"]) == 0
    out = capsys.readouterr().out
    assert "hi3559a" in out and "yes" in out
