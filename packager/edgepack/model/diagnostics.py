# SPDX-License-Identifier: Apache-2.0
"""Messages of onnx and onnxruntime exceptions fit for one ``edgepack: error:`` line."""

from __future__ import annotations

MAX_DETAIL = 400


def one_line(exc: BaseException) -> str:
    """The exception's text on one line (onnx's checker adds ``==> Context:`` paragraphs and
    shape inference lists one error per line), cut to ``MAX_DETAIL`` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 3] + "..."
