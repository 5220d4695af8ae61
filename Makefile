# SPDX-License-Identifier: Apache-2.0
# Two commands do everything on a fresh Debian 12 machine (each runs the set-up first):
#   make demo   the main job on the default target (a virtual board when none is attached)
#   make test   the whole test suite
.PHONY: setup demo test lint
PY := .venv/bin/python

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check packager tests benchmarks
	.venv/bin/mypy
	git ls-files '*.c' '*.cc' '*.cpp' '*.h' '*.hpp' | xargs clang-format --dry-run --Werror
