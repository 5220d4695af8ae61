# SPDX-License-Identifier: Apache-2.0
"""Upload progress: rate and ETA on a terminal (one redrawn line), plain lines otherwise, and
nothing at all for a file the device already has."""

from __future__ import annotations

import io
import time

import pytest

from edgepack.bench.runner import UploadDisplay
from edgepack.ui import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_line_shows_rate_and_eta() -> None:
    out = _Terminal()
    with Progress("upload bin/edgepack-run", total=10_000, stream=out, unit="B") as p:
        time.sleep(0.6)
        p.advance(2_500)
    text = out.getvalue()
    assert "\r\x1b[Kupload bin/edgepack-run [" in text and "25.0% 2500/10000B" in text
    assert ", ETA 0m0" in text and "kB/s" in text  # 2500 B in ~0.6 s: about 2 s left
    assert "\r\x1b[Kupload bin/edgepack-run: done in " in text and text.endswith("s\n")


def test_plain_output_prints_progress_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(Progress, "plain_every_s", 0.2)
    with Progress("upload artifact.epk", total=1_000, stream=out, unit="B") as p:
        for _ in range(4):
            time.sleep(0.25)
            p.advance(100)
    lines = out.getvalue().splitlines()
    assert lines[0] == "upload artifact.epk ..."
    assert any("40.0% 400/1000B" in line and "ETA" in line for line in lines[1:-1]), lines
    assert "\r" not in out.getvalue() and lines[-1].startswith("upload artifact.epk: done in")


def test_upload_display_stays_silent_for_files_already_there(
        capsys: pytest.CaptureFixture[str]) -> None:
    with UploadDisplay("upload bench/artifact.epk") as show:
        show(5_000, 5_000)  # PUT_BEGIN said complete: nothing travels
    assert capsys.readouterr().err == ""
    with UploadDisplay("upload bench/artifact.epk") as show:
        show(1_000, 5_000)  # resumed: 1000 bytes were there
        show(5_000, 5_000)
    err = capsys.readouterr().err
    assert "upload bench/artifact.epk ..." in err and "done in" in err


def test_upload_display_counts_only_what_travels(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # A re-deploy: 4 MB are copied on the device, 10 kB travel; the rate and the ETA are
    # those of the 10 kB, not inflated by the copied bytes.
    monkeypatch.setattr(Progress, "plain_every_s", 0.2)
    with UploadDisplay("upload bench/artifact.epk") as show:
        show(4_000_000, 4_010_000)
        time.sleep(1.0)
        show(4_005_000, 4_010_000)
        show(4_010_000, 4_010_000)
    err = capsys.readouterr().err
    assert "50.0% 5000/10000B" in err, err
    rate = float(err.split("50.0% 5000/10000B, ")[1].split(" kB/s")[0])
    assert rate < 6.0, err  # 5000 B in about 1 s, not 4 MB
