# SPDX-License-Identifier: Apache-2.0
"""Benchmarks on a device and their reports."""
