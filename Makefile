# bwemu: the two commands a user needs are `make demo` and `make test`.
# Both set everything up first (cross toolchain, Python environment,
# firmware) and are quick when there is nothing left to do.

PYTHON		?= python3
VENV		?= .venv
BIN		:= $(VENV)/bin
CROSS_COMPILE	?= powerpc64-linux-gnu-
export CROSS_COMPILE
# The Python scripts in scripts/ have no .py suffix, so ruff would not find
# them in the directory: they are picked by their "#!" line (the "." in the
# pattern spares a "#", which make versions read differently) and named.
PY_SCRIPTS	:= $(shell grep -l '^.!/usr/bin/env python' scripts/*)
LINT_PATHS	:= emulator wrapper_model tests $(PY_SCRIPTS)

all: setup

setup: toolchain $(VENV)/.installed firmware

toolchain:
	@scripts/setup-toolchain

$(VENV)/.installed: pyproject.toml
	@scripts/setup-python $(PYTHON) $(VENV)
	@touch $@

# firmware/Makefile picks the build directory from the whole configuration
# (POLICY, FAULT, ABI: build/firmware, build/firmware-seed, ...).
firmware: toolchain
	@$(MAKE) -s -C firmware

demo: setup
	$(BIN)/bwemu boot

# ruff over the code, tests and scripts; mypy over the packages (its
# settings, like ruff's, are in pyproject.toml).
lint: $(VENV)/.installed
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/mypy

test: setup lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/bwemu bench
	$(BIN)/python scripts/bench-ranges

# The mutation run (docs/testing.md): every mutant of tests/mutants/*.toml
# against its tests, MUTANT_JOBS at a time.  Not part of `make test` (it
# runs tests once per mutant); run it before changing a checker.
MUTANT_JOBS	?= 2
mutants: setup
	nice $(BIN)/python scripts/mutants --jobs $(MUTANT_JOBS)

clean:
	rm -rf build

.PHONY: all setup toolchain firmware demo lint test bench mutants clean
