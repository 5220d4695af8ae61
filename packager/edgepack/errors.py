# SPDX-License-Identifier: Apache-2.0
"""One family of errors for user mistakes. Each carries a clear message and an exit code.

The CLI prints ``edgepack: error: <message>`` and exits with ``exit_code``; no traceback.
Anything that is not an ``EdgepackError`` is a bug and keeps its traceback.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Every exit status of the ``edgepack`` command, in one table (docs/errors.md)."""

    OK = 0
    ERROR = 1  # an EdgepackError without a more specific kind
    USAGE = 2  # a bad flag or argument combination (argparse uses 2 as well)
    SPEC = 3  # an invalid data file: edgepack.toml, a board file, a report, a labels file
    MODEL = 4  # an ONNX model that cannot be ingested
    ARTIFACT = 5  # the artifact is invalid (one opaque reason for every crypto/format failure)
    KEY = 6  # a key file missing, unreadable or of the wrong kind
    TOOLCHAIN = 7  # a missing or failing build tool
    DEVICE = 8  # a board that cannot be reached, refuses, or reports a failure
    CHECK_FAILED = 9  # ran, and its check did not pass (accuracy, regression, doctor)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class EdgepackError(Exception):
    """A user-facing error: bad input, missing tool, refused artifact."""

    exit_code: int = ExitCode.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(EdgepackError):
    """A bad flag or argument combination."""

    exit_code = ExitCode.USAGE


class SpecError(EdgepackError):
    """An invalid data file (edgepack.toml, a board file). Names the file and the field."""

    exit_code = ExitCode.SPEC

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        field: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        where = str(path)
        if line is not None:
            where += f":{line}"
        if field:
            where += f": {field}"
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = str(path)
        self.field = field
        self.line = line


class ModelError(EdgepackError):
    """An ONNX model that cannot be ingested (checker failure, unsupported op or opset)."""

    exit_code = ExitCode.MODEL


class ArtifactInvalid(EdgepackError):
    """The single opaque failure for anything wrong with an artifact's bytes or keys.

    ``reason`` is a non-secret code for logs (e.g. ``signature``, ``not_recipient``); the
    message shown to the user is always the same.
    """

    exit_code = ExitCode.ARTIFACT

    def __init__(self, reason: str) -> None:
        super().__init__("artifact invalid")
        self.reason = reason


class KeyFileError(EdgepackError):
    """A key file that is missing, unreadable or of the wrong kind."""

    exit_code = ExitCode.KEY


class ToolchainError(EdgepackError):
    """A missing or failing build tool (compiler, sysroot package, qemu, conan)."""

    exit_code = ExitCode.TOOLCHAIN


class DeviceError(EdgepackError):
    """A board that cannot be reached, refuses, or reports a failure."""

    exit_code = ExitCode.DEVICE
