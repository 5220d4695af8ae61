# SPDX-License-Identifier: Apache-2.0
"""The signed, encrypted artifact: container format, crypto, keys, manifest, pack."""
