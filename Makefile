# Everything a fresh machine with only python3 needs: `make bench` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install bench bench-all bench-quick test test-deps check lint clean

install: $(STAMP)

# The stamp depends on pyproject.toml and constraints.txt only, so a second `make` reinstalls nothing.
# pyproject.toml holds compatible ranges; constraints.txt the exact set the project is tested with.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@# R with TMB for the tmb engines (Debian's r-cran-tmb), before pip: rpy2 builds against R.
	Rscript -e 'library(TMB)' >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && apt-get install -y -qq r-cran-tmb >/dev/null; }; } || \
		echo "R/TMB is missing (the tmb engines will be unavailable): apt-get install r-cran-tmb"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[all]'
	@# valgrind for `adtiers bench --counter instructions`; where it cannot be installed, counting says so.
	command -v valgrind >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }; } || echo "valgrind is missing: apt-get install valgrind"
	@# ADOL-C for the adolc engine (a Debian package; Stan Math and CppAD come with '.[all]' from PyPI).
	test -e /usr/include/adolc/adolc.h || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && apt-get install -y -qq libadolc-dev >/dev/null; }; } || \
		echo "ADOL-C is missing (the adolc engine will be unavailable): apt-get install libadolc-dev"
	@# clang for the tinygrad engine: its CPU device compiles the kernels it generates with clang.
	command -v clang >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && apt-get install -y -qq clang >/dev/null; }; } || \
		echo "clang is missing (the tinygrad engine will be unavailable): apt-get install clang"
	touch $(STAMP)

# The report is written even when some cells failed; make still exits with the benchmark's status.
# `make bench` times the @default engines (adtiers list shows the groups) at two worker processes per
# cell, for the 20-minute budget of a fresh clone on a 2-core machine; `make bench-all` every engine at
# the default three.
bench: $(STAMP)
	$(BIN)/adtiers bench --engines @default --processes 2; status=$$?; $(BIN)/adtiers report && exit $$status

bench-all: $(STAMP)
	$(BIN)/adtiers bench --engines @all; status=$$?; $(BIN)/adtiers report && exit $$status

bench-quick: $(STAMP)
	$(BIN)/adtiers bench --quick --engines @default; status=$$?; $(BIN)/adtiers report && exit $$status

check: $(STAMP)
	$(BIN)/adtiers check

# What the tests need from Debian (headless Chromium for the report's browser test), installed where
# make runs as root with apt; elsewhere that test is skipped and says what to install.
test-deps:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; } || \
		echo "chromium is missing (the report's browser test will be skipped): apt-get install chromium"

test: $(STAMP) test-deps
	NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest -q -n 2 --durations=25

lint: $(STAMP)
	$(BIN)/ruff format --check . && $(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
