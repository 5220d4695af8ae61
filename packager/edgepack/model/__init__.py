# SPDX-License-Identifier: Apache-2.0
"""Model handling: ingest, optimisation, pre/post graphs, stage plan, host reference."""
