# Everything a fresh machine with only python3 needs: `make bench` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install bench bench-quick test check lint clean

install: $(STAMP)

# The stamp depends on pyproject.toml only, so a second `make` reinstalls nothing.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[all]'
	@# valgrind for `adtiers bench --counter instructions`; where it cannot be installed, counting says so.
	command -v valgrind >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		{ apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }; } || echo "valgrind is missing: apt-get install valgrind"
	touch $(STAMP)

# The report is written even when some cells failed; make still exits with the benchmark's status.
bench: $(STAMP)
	$(BIN)/adtiers bench; status=$$?; $(BIN)/adtiers report && exit $$status

bench-quick: $(STAMP)
	$(BIN)/adtiers bench --quick; status=$$?; $(BIN)/adtiers report && exit $$status

check: $(STAMP)
	$(BIN)/adtiers check

test: $(STAMP)
	NUMBA_ENABLE_CUDASIM=1 $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff format --check . && $(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
