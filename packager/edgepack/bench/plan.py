# SPDX-License-Identifier: Apache-2.0
"""How many iterations a bench runs, and the progress line (with ETA) while it runs.

The board runs the timed loop in one ``edgepack-run`` process that reports nothing until it
ends, so the count is fixed before it starts, from one timed run of the golden-input pass:

- ``--iterations N``: exactly N;
- ``--duration S``: as many as fit in S seconds (warm-up not counted), 1 to ``MAX_ITERATIONS``;
- neither: as many as fit in ``AUTO_BUDGET_S``, between ``AUTO_MIN`` and ``AUTO_MAX``. A model
  of 2.5 s per run under emulation gets 10 iterations (about a minute for the whole bench, see
  docs/cli.md), a millisecond model 100.

The progress line counts the expected time against the clock (the runner cannot report
iterations as they finish); it shows elapsed time, the estimate and the time left.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from edgepack.ui import terminal_safe

AUTO_BUDGET_S = 20.0
AUTO_MIN, AUTO_MAX = 10, 100
DEFAULT_WARMUP = 2
MAX_ITERATIONS = 100_000  # the report keeps every sample


@dataclass(frozen=True)
class Plan:
    iterations: int
    warmup: int
    estimate_ms: float  # one run, measured in the golden-input pass
    mode: str  # "iterations" | "duration" | "auto"
    duration_s: float | None = None

    @property
    def expected_s(self) -> float:
        return (self.iterations + self.warmup) * self.estimate_ms / 1000.0


def plan_iterations(estimate_ms: float, *, iterations: int | None, duration_s: float | None,
                    warmup: int) -> Plan:
    """The count for the timed runs, given the time of one run (ms)."""
    per_run = max(estimate_ms, 1e-3)
    if iterations is not None:
        return Plan(iterations, warmup, estimate_ms, "iterations")
    if duration_s is not None:
        n = min(MAX_ITERATIONS, max(1, math.floor(duration_s * 1000.0 / per_run)))
        return Plan(n, warmup, estimate_ms, "duration", duration_s)
    n = min(AUTO_MAX, max(AUTO_MIN, math.floor(AUTO_BUDGET_S * 1000.0 / per_run)))
    return Plan(n, warmup, estimate_ms, "auto")


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}m{s % 60:02d}s"


class RunProgress:
    """``with RunProgress(label, expected_s):`` elapsed / expected time and ETA while a run
    the host cannot see into goes on. On a terminal one line redrawn twice a second; otherwise
    a line at the start, one every ``plain_every_s`` seconds and one at the end."""

    plain_every_s = 10.0

    def __init__(self, label: str, expected_s: float, stream: TextIO | None = None) -> None:
        self.label = terminal_safe(label)
        self.expected_s = expected_s
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self._start = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self, elapsed: float) -> str:
        if elapsed <= self.expected_s:
            frac = elapsed / self.expected_s if self.expected_s > 0 else 1.0
            return (f"{frac * 100:5.1f}% {_clock(elapsed)} of ~{_clock(self.expected_s)}, "
                    f"ETA {_clock(self.expected_s - elapsed)}")
        return f"{_clock(elapsed)}, over the estimate of ~{_clock(self.expected_s)}"

    def _write(self, text: str, end: str) -> None:
        self.stream.write(text + end)
        self.stream.flush()

    def _tick(self) -> None:
        period = 0.5 if self.live else self.plain_every_s
        while not self._stop.wait(period):
            elapsed = time.monotonic() - self._start
            if self.live:
                self._write(f"\r\x1b[K{self.label}: {self.status(elapsed)}", "")
            else:
                self._write(f"{self.label}: {self.status(elapsed)}", "\n")

    def __enter__(self) -> RunProgress:
        self._start = time.monotonic()
        self._write(f"{self.label} (~{_clock(self.expected_s)}) ...", "" if self.live else "\n")
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        elapsed = time.monotonic() - self._start
        state = "done" if exc_type is None else "stopped"
        prefix = "\r\x1b[K" if self.live else ""
        self._write(f"{prefix}{self.label}: {state} in {_clock(elapsed)}", "\n")
