# bwemu: the two commands a user needs are `make demo` and `make test`.
# Both set everything up first (cross toolchain, Python environment,
# firmware) and are quick when there is nothing left to do.

PYTHON		?= python3
VENV		?= .venv
BIN		:= $(VENV)/bin
CROSS_COMPILE	?= powerpc64-linux-gnu-
export CROSS_COMPILE

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

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/bwemu bench
	$(BIN)/python scripts/bench-ranges

clean:
	rm -rf build

.PHONY: all setup toolchain firmware demo test bench clean
