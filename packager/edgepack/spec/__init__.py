# SPDX-License-Identifier: Apache-2.0
"""The project spec (`edgepack.toml`) and board files: loading, schema checks, records."""
