# SPDX-License-Identifier: Apache-2.0
"""Lowering ONNX stages to the device graph format."""
