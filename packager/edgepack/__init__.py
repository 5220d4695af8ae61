# SPDX-License-Identifier: Apache-2.0
"""edgepack: package ONNX models for embedded boards, build per-board C++ SDKs, benchmark them."""

__version__ = "0.1.0"
