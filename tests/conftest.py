# SPDX-License-Identifier: Apache-2.0
"""Root of the test tree. Being a conftest.py outside any package, its folder (tests/) is put on
sys.path by pytest, so shared test helpers kept here (``real_models``) import by name from
every test folder."""
