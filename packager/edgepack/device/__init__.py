# SPDX-License-Identifier: Apache-2.0
"""Talking to boards: the agent protocol, its client, transports (SSH, serial), virtual boards."""
