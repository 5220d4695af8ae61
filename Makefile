# SPDX-License-Identifier: Apache-2.0
# Two commands do everything on a fresh Debian 12 machine (each runs the set-up first):
#   make demo   the main job on the default target (a virtual board when none is attached)
#   make test   the whole test suite
# and: make backend-conformance PLUGIN=<plugin .so> NAME=<its backend name>: the backend
# conformance suite against a plugin (docs/adding-a-backend.md)
.PHONY: setup demo test lint backend-conformance
PY := .venv/bin/python
TEST_DIRS := $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard tests/*/test_*.py)))))

setup:
	bash scripts/setup.sh

demo: setup
	bash scripts/demo.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check packager tests benchmarks
	.venv/bin/mypy
	@# The tests too, one folder at a time: each has its own conftest.py and helper modules.
	set -e; for d in $(TEST_DIRS); do MYPYPATH=packager:tests/$$d:tests .venv/bin/mypy tests/$$d; done
	git ls-files '*.c' '*.cc' '*.cpp' '*.h' '*.hpp' | xargs clang-format --dry-run --Werror

backend-conformance: setup
	@test -n "$(PLUGIN)" -a -n "$(NAME)" || { echo "make: error: backend-conformance needs PLUGIN=<path to the .so> and NAME=<backend name>"; exit 2; }
	EDGEPACK_CONFORMANCE_PLUGIN="$(PLUGIN)" EDGEPACK_CONFORMANCE_BACKEND="$(NAME)" \
	  $(PY) -m pytest tests/sdk/test_opencl.py -k "(op_matches or unsupported or real_model) and not fp16"
